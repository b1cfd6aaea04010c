package s3

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cellarsim/cellar/internal/errs"
)

// Keys with characters XML 1.0 cannot carry survive a listing: with encoding-type=url
// as percent-encoding, without it as character references (as S3 writes them).
func TestListingKeysWithControlCharacters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := startServer(t, newFakeBackend(), HandlerOptions{}, false)
	c := ts.client
	bucket := aws.String("ctlchars")
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: bucket}); err != nil {
		t.Fatal(err)
	}
	keys := []string{"k\x00nul", "k\x01one", "k\x1besc", "k\ufffeend", "k\ttab\nnl\rcr", "sp ace+plus/x", "amp&<lt>\"'"}
	for _, k := range keys {
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: bucket, Key: aws.String(k), Body: strings.NewReader("x")}); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
	}

	t.Run("v2 encoding-type=url", func(t *testing.T) {
		out, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: bucket, EncodingType: types.EncodingTypeUrl})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range out.Contents {
			k, err := url.QueryUnescape(aws.ToString(o.Key))
			if err != nil {
				t.Fatalf("key %q: %v", aws.ToString(o.Key), err)
			}
			got = append(got, k)
		}
		want := slices.Clone(keys)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("keys %q, want %q", got, want)
		}
	})

	t.Run("v1 encoding-type=url fields", func(t *testing.T) {
		out, err := c.ListObjects(ctx, &awss3.ListObjectsInput{Bucket: bucket, EncodingType: types.EncodingTypeUrl,
			Prefix: aws.String("sp "), Delimiter: aws.String("/"), Marker: aws.String("sp a")})
		if err != nil {
			t.Fatal(err)
		}
		// '/' stays as sent; everything else that is not unreserved is encoded.
		if p, d, m := aws.ToString(out.Prefix), aws.ToString(out.Delimiter), aws.ToString(out.Marker); p != "sp%20" || d != "/" || m != "sp%20a" {
			t.Errorf("Prefix %q Delimiter %q Marker %q, want sp%%20, / and sp%%20a", p, d, m)
		}
		if len(out.CommonPrefixes) != 1 || aws.ToString(out.CommonPrefixes[0].Prefix) != "sp%20ace%2Bplus/" {
			t.Errorf("CommonPrefixes %+v, want sp%%20ace%%2Bplus/", out.CommonPrefixes)
		}
		if out.EncodingType != types.EncodingTypeUrl {
			t.Errorf("EncodingType %q", out.EncodingType)
		}
	})

	t.Run("without encoding", func(t *testing.T) {
		// aws-sdk-go-v2's XML parser refuses these references, as it does S3's: read
		// the document as bytes.
		out, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: bucket, Prefix: aws.String("sp")})
		if err != nil || len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "sp ace+plus/x" {
			t.Fatalf("listing of plain keys: %v %+v", err, out)
		}
		raw := newRawServer(t, HandlerOptions{})
		for _, k := range keys {
			if r := do(t, raw, "PUT", "/bkt/"+url.PathEscape(k), strings.NewReader("x"), nil); r.status != 200 {
				t.Fatalf("put %q: %d %s", k, r.status, r.body)
			}
		}
		r := do(t, raw, "GET", "/bkt?list-type=2", nil, nil)
		for _, want := range []string{"<Key>k&#x0;nul</Key>", "<Key>k&#x1;one</Key>", "<Key>k&#x1b;esc</Key>", "<Key>k&#xfffe;end</Key>",
			"<Key>k&#x9;tab&#xA;nl&#xD;cr</Key>", "<Key>amp&amp;&lt;lt&gt;&#34;&#39;</Key>"} {
			if !bytes.Contains(r.body, []byte(want)) {
				t.Errorf("listing lacks %s:\n%s", want, r.body)
			}
		}
		if bytes.ContainsRune(r.body, '\uFFFD') {
			t.Errorf("listing replaced a character with U+FFFD:\n%s", r.body)
		}
	})
}

// Creating a bucket you already own: 200 in us-east-1, BucketAlreadyOwnedByYou elsewhere.
func TestCreateOwnedBucketByRegion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		ts := startServer(t, newFakeBackend(), HandlerOptions{Region: region}, false)
		c := newSDKClient(ts.srv.URL, ts.http, func(o *awss3.Options) { o.Region = region })
		in := &awss3.CreateBucketInput{Bucket: aws.String("owned")}
		if region != "us-east-1" {
			in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(region)}
		}
		if _, err := c.CreateBucket(ctx, in); err != nil {
			t.Fatalf("%s: first CreateBucket: %v", region, err)
		}
		_, err := c.CreateBucket(ctx, in)
		switch code := apiErrorCode(err); {
		case region == "us-east-1" && err != nil:
			t.Errorf("%s: CreateBucket again: %v, want success", region, err)
		case region != "us-east-1" && code != "BucketAlreadyOwnedByYou":
			t.Errorf("%s: CreateBucket again: %v, want BucketAlreadyOwnedByYou", region, err)
		}
	}
}

// ACLs: the owner's FULL_CONTROL is the only grant; ACLs that keep it are accepted, any
// other is refused as S3 refuses it for a bucket whose ACLs are disabled.
func TestCannedACLs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := startServer(t, newFakeBackend(), HandlerOptions{}, false)
	c := ts.client
	b, k := aws.String("acls"), aws.String("obj")
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: b, ACL: types.BucketCannedACLPrivate}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("x"), ACL: types.ObjectCannedACLBucketOwnerFullControl}); err != nil {
		t.Fatal(err)
	}
	ownerOnly := func(what string, o *types.Owner, grants []types.Grant) {
		t.Helper()
		if o == nil || aws.ToString(o.ID) != owner.ID || len(grants) != 1 || grants[0].Permission != types.PermissionFullControl ||
			grants[0].Grantee == nil || aws.ToString(grants[0].Grantee.ID) != owner.ID || grants[0].Grantee.Type != types.TypeCanonicalUser {
			t.Errorf("%s: owner %+v grants %+v, want the owner's FULL_CONTROL alone", what, o, grants)
		}
	}
	oa, err := c.GetObjectAcl(ctx, &awss3.GetObjectAclInput{Bucket: b, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	ownerOnly("GetObjectAcl", oa.Owner, oa.Grants)
	ba, err := c.GetBucketAcl(ctx, &awss3.GetBucketAclInput{Bucket: b})
	if err != nil {
		t.Fatal(err)
	}
	ownerOnly("GetBucketAcl", ba.Owner, ba.Grants)

	if _, err := c.PutObjectAcl(ctx, &awss3.PutObjectAclInput{Bucket: b, Key: k, ACL: types.ObjectCannedACLPrivate}); err != nil {
		t.Errorf("PutObjectAcl private: %v", err)
	}
	if _, err := c.PutBucketAcl(ctx, &awss3.PutBucketAclInput{Bucket: b, ACL: types.BucketCannedACLPrivate}); err != nil {
		t.Errorf("PutBucketAcl private: %v", err)
	}
	if _, err := c.PutObjectAcl(ctx, &awss3.PutObjectAclInput{Bucket: b, Key: k, AccessControlPolicy: &types.AccessControlPolicy{
		Owner:  oa.Owner,
		Grants: []types.Grant{{Grantee: &types.Grantee{Type: types.TypeCanonicalUser, ID: aws.String(owner.ID)}, Permission: types.PermissionFullControl}},
	}}); err != nil {
		t.Errorf("PutObjectAcl with the owner's full control as XML: %v", err)
	}

	refused := map[string]error{}
	_, refused["PutObjectAcl public-read"] = c.PutObjectAcl(ctx, &awss3.PutObjectAclInput{Bucket: b, Key: k, ACL: types.ObjectCannedACLPublicRead})
	_, refused["PutBucketAcl public-read-write"] = c.PutBucketAcl(ctx, &awss3.PutBucketAclInput{Bucket: b, ACL: types.BucketCannedACLPublicReadWrite})
	_, refused["PutObjectAcl grant to all users"] = c.PutObjectAcl(ctx, &awss3.PutObjectAclInput{Bucket: b, Key: k, AccessControlPolicy: &types.AccessControlPolicy{
		Owner:  oa.Owner,
		Grants: []types.Grant{{Grantee: &types.Grantee{Type: types.TypeGroup, URI: aws.String("http://acs.amazonaws.com/groups/global/AllUsers")}, Permission: types.PermissionRead}},
	}})
	_, refused["PutObject public-read"] = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b, Key: aws.String("public"), Body: strings.NewReader("x"), ACL: types.ObjectCannedACLPublicRead})
	_, refused["PutObject grant-read"] = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b, Key: aws.String("public"), Body: strings.NewReader("x"), GrantRead: aws.String("uri=http://acs.amazonaws.com/groups/global/AllUsers")})
	for what, err := range refused {
		if code := apiErrorCode(err); code != "AccessControlListNotSupported" {
			t.Errorf("%s: %v, want AccessControlListNotSupported", what, err)
		}
	}
	if _, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b, Key: aws.String("public")}); apiErrorCode(err) != "NotFound" {
		t.Errorf("a refused public-read PUT stored its object: %v", err)
	}
	if _, err := c.GetObjectAcl(ctx, &awss3.GetObjectAclInput{Bucket: b, Key: aws.String("missing")}); apiErrorCode(err) != "NoSuchKey" {
		t.Errorf("GetObjectAcl of a missing key: %v, want NoSuchKey", err)
	}
	if _, err := c.GetBucketAcl(ctx, &awss3.GetBucketAclInput{Bucket: aws.String("missing")}); apiErrorCode(err) != "NoSuchBucket" {
		t.Errorf("GetBucketAcl of a missing bucket: %v, want NoSuchBucket", err)
	}
}

// Requests net/http refuses before any handler runs are answered in S3 error XML.
func TestHTTPLevelErrorsAreS3XML(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: NewHandler(newFakeBackend(), HandlerOptions{Logger: discardLogger()}),
		MaxHeaderBytes: 64 << 10, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(XMLErrorListener(ln))
	t.Cleanup(func() { srv.Close() })

	cases := []struct {
		name, request string
		status        int
		code          string
	}{
		{"garbage request line", "GARBAGE\r\n\r\n", 400, "BadRequest"},
		{"bad Content-Length", "PUT /bkt/k HTTP/1.1\r\nHost: s3\r\nContent-Length: abc\r\n\r\n", 400, "BadRequest"},
		{"two Content-Lengths", "PUT /bkt/k HTTP/1.1\r\nHost: s3\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 400, "BadRequest"},
		{"headers over 64 KiB", "GET /bkt/k HTTP/1.1\r\nHost: s3\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n", 400, "RequestHeaderSectionTooLarge"},
		{"unknown transfer encoding", "PUT /bkt/k HTTP/1.1\r\nHost: s3\r\nTransfer-Encoding: bogus\r\n\r\n", 501, "NotImplemented"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			go io.WriteString(conn, tc.request) // the server may answer before reading it all
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			var e errorResponse
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/xml" || xml.Unmarshal(body, &e) != nil ||
				e.Code != tc.code || e.RequestID == "" || resp.Header.Get(hdrRequestID) != e.RequestID || resp.Header.Get(hdrCell) != cellNone {
				t.Errorf("got %d %v\n%s\nwant %d %s in S3 error XML", resp.StatusCode, resp.Header, body, tc.status, tc.code)
			}
		})
	}
}

// cellDropsOnBodyError is a backend whose cell call fails as a cancelled one does
// (Unavailable) as soon as the request body cannot be read: what a client that
// closes its connection mid-body causes, since that cancels the request's context.
type cellDropsOnBodyError struct{ *fakeBackend }

func (b cellDropsOnBodyError) PutObject(ctx context.Context, in PutInput) (string, ObjectInfo, error) {
	buf := make([]byte, 4)
	for {
		if _, err := in.Body.Read(buf); err != nil {
			return b.cellOf(in.Bucket), ObjectInfo{}, errs.New(errs.Unavailable, "the cell call was cancelled")
		}
	}
}

// A body cut short is the client's fault: 400 IncompleteBody, never a 503.
func TestTruncatedBodyIsIncompleteBody(t *testing.T) {
	t.Parallel()
	be := newFakeBackend()
	if _, err := be.CreateBucket(context.Background(), "bkt"); err != nil {
		t.Fatal(err)
	}
	ts := startServerOn(t, cellDropsOnBodyError{be}, be, HandlerOptions{Credentials: map[string]string{}}, false)
	conn, err := net.Dial("tcp", ts.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, "PUT /bkt/k HTTP/1.1\r\nHost: s3\r\nContent-Length: 100\r\n\r\n0123456789")
	conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	var e errorResponse
	if resp.StatusCode != 400 || xml.Unmarshal(body, &e) != nil || e.Code != "IncompleteBody" {
		t.Errorf("got %d\n%s\nwant 400 IncompleteBody", resp.StatusCode, body)
	}
}
