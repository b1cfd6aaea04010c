package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// The credentials the SDK test clients sign with.
const (
	testAccessKey = "AKIDCELLARTEST"
	testSecretKey = "cellar-test-secret"
)

// testServer is the S3 handler on a real 127.0.0.1 listener, with an SDK client whose
// HTTP client checks the headers every response must carry and records what was sent.
type testServer struct {
	srv    *httptest.Server
	be     *fakeBackend
	client *awss3.Client
	http   *checkingClient
}

func startServer(t *testing.T, be *fakeBackend, opts HandlerOptions, useTLS bool) *testServer {
	t.Helper()
	return startServerOn(t, be, be, opts, useTLS)
}

// startServerOn serves backend, which may wrap the fake be to change its behaviour.
func startServerOn(t *testing.T, backend Backend, be *fakeBackend, opts HandlerOptions, useTLS bool) *testServer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	if opts.Credentials == nil { // SDK clients sign; raw tests pass an empty map
		opts.Credentials = map[string]string{testAccessKey: testSecretKey}
	}
	srv := httptest.NewUnstartedServer(NewHandler(backend, opts))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener.Close()
	srv.Listener = ln
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	hc := &checkingClient{t: t, c: srv.Client()}
	return &testServer{srv: srv, be: be, http: hc, client: newSDKClient(srv.URL, hc)}
}

// newSDKClient configures aws-sdk-go-v2 as config.LoadDefaultConfig would by default
// (checksums when supported), without reading the environment or ~/.aws.
func newSDKClient(endpoint string, hc aws.HTTPClient, optFns ...func(*awss3.Options)) *awss3.Client {
	cfg := aws.Config{
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""),
		HTTPClient:                 hc,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}
	return awss3.NewFromConfig(cfg, append([]func(*awss3.Options){func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	}}, optFns...)...)
}

type sentRequest struct {
	method, path   string
	header         http.Header
	contentLength  int64
	transferChunks bool
}

// checkingClient is the SDK's HTTP client: it fails the test when a response lacks
// x-cellar-cell, x-amz-request-id or x-amz-id-2, and records each request's headers.
type checkingClient struct {
	t  *testing.T
	c  *http.Client
	mu sync.Mutex
	// sent holds the requests made, in order.
	sent []sentRequest
}

func (cc *checkingClient) Do(req *http.Request) (*http.Response, error) {
	cc.mu.Lock()
	cc.sent = append(cc.sent, sentRequest{method: req.Method, path: req.URL.Path, header: req.Header.Clone(),
		contentLength: req.ContentLength, transferChunks: req.ContentLength < 0})
	cc.mu.Unlock()
	resp, err := cc.c.Do(req)
	if err == nil {
		checkStandardHeaders(cc.t, req.Method+" "+req.URL.String(), resp)
	}
	return resp, err
}

func (cc *checkingClient) lastPut(t *testing.T) sentRequest {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for i := len(cc.sent) - 1; i >= 0; i-- {
		if cc.sent[i].method == http.MethodPut {
			return cc.sent[i]
		}
	}
	t.Fatal("no PUT sent")
	return sentRequest{}
}

func checkStandardHeaders(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	for _, h := range []string{hdrCell, hdrRequestID, hdrID2} {
		if resp.Header.Get(h) == "" {
			t.Errorf("%s: response %d has no %s header", what, resp.StatusCode, h)
		}
	}
}

func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// onlyReader hides every method but Read, so the SDK cannot seek or learn the length.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestSDKBuckets(t *testing.T) {
	t.Parallel()
	ts := startServer(t, newFakeBackend(), HandlerOptions{}, false)
	c, ctx := ts.client, context.Background()

	for _, b := range []string{"alpha", "beta.bucket", "gamma-3"} {
		if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatalf("CreateBucket %s: %v", b, err)
		}
	}
	// An explicit LocationConstraint naming the gateway's region is accepted; another is not.
	_, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("delta"),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: "us-east-1"}})
	if err != nil {
		t.Fatalf("CreateBucket with us-east-1 constraint: %v", err)
	}
	_, err = c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("epsilon"),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraintEuWest1}})
	if apiErrorCode(err) != "IllegalLocationConstraintException" {
		t.Errorf("CreateBucket in eu-west-1: got %v, want IllegalLocationConstraintException", err)
	}
	// In us-east-1, creating a bucket you own again succeeds (other regions: see
	// TestCreateOwnedBucketByRegion).
	if _, err = c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Errorf("CreateBucket twice in us-east-1: got %v, want success", err)
	}

	lb, err := c.ListBuckets(ctx, &awss3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range lb.Buckets {
		names = append(names, aws.ToString(b.Name))
		if b.CreationDate == nil || b.CreationDate.IsZero() {
			t.Errorf("bucket %s has no creation date", aws.ToString(b.Name))
		}
	}
	if want := []string{"alpha", "beta.bucket", "delta", "gamma-3"}; !slices.Equal(names, want) {
		t.Errorf("ListBuckets = %v, want %v", names, want)
	}

	// ListBuckets pagination and prefix, through the SDK's paginator.
	var paged []string
	p := awss3.NewListBucketsPaginator(c, &awss3.ListBucketsInput{MaxBuckets: aws.Int32(1)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Buckets {
			paged = append(paged, aws.ToString(b.Name))
		}
	}
	if !slices.Equal(paged, names) {
		t.Errorf("paged ListBuckets = %v, want %v", paged, names)
	}
	lb, err = c.ListBuckets(ctx, &awss3.ListBucketsInput{Prefix: aws.String("g")})
	if err != nil || len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != "gamma-3" {
		t.Errorf("ListBuckets prefix g = %v, %v", lb, err)
	}

	if _, err := c.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Errorf("HeadBucket: %v", err)
	}
	_, err = c.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String("nope")})
	var nf *types.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("HeadBucket missing: got %v, want NotFound", err)
	}
	loc, err := c.GetBucketLocation(ctx, &awss3.GetBucketLocationInput{Bucket: aws.String("alpha")})
	if err != nil || loc.LocationConstraint != "" {
		t.Errorf("GetBucketLocation = %q, %v; want \"\" (us-east-1)", loc.LocationConstraint, err)
	}

	// A bucket with an object cannot be deleted; once emptied it can.
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("beta.bucket"), Key: aws.String("k"),
		Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: aws.String("beta.bucket")})
	if apiErrorCode(err) != "BucketNotEmpty" {
		t.Errorf("DeleteBucket non-empty: got %v, want BucketNotEmpty", err)
	}
	if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("beta.bucket"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: aws.String("beta.bucket")}); err != nil {
		t.Errorf("DeleteBucket: %v", err)
	}
	_, err = c.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: aws.String("beta.bucket")})
	var nsb *types.NoSuchBucket
	if apiErrorCode(err) != "NoSuchBucket" && !errors.As(err, &nsb) {
		t.Errorf("DeleteBucket twice: got %v, want NoSuchBucket", err)
	}
}

// TestSDKObjects round-trips objects of many names and sizes, over plain HTTP (where the
// SDK signs the payload hash and sends a checksum header) and over TLS (where it sends
// aws-chunked bodies with a trailing checksum).
func TestSDKObjects(t *testing.T) {
	t.Parallel()
	keys := []string{
		"plain",
		"with space and  two",
		"ünïcödé/日本語/ファイル.txt",
		"a/b/c/deep.bin",
		"trailing/",
		"double//slash",
		"/leading-slash",
		"sym!@#$&*()+=,;:'\"<>[]{}|^`~",
		"percent%2Fliteral%",
		"question?mark#hash",
		"dots/../and/./dots",
		"tab\tand\u00a0nbsp",
		strings.Repeat("k", maxKeyLen),
	}
	// One multi-MiB object per transport (the SDK sends Expect: 100-continue above 2 MiB);
	// the other sizes cycle.
	sizes := []int{0, 1, 100 << 10}
	const bigKey, bigSize = 2, 5<<20 + 3
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[useTLS], func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, newFakeBackend(), HandlerOptions{}, useTLS)
			c, ctx := ts.client, context.Background()
			bucket := aws.String("objects")
			if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: bucket}); err != nil {
				t.Fatal(err)
			}
			for i, key := range keys {
				size := sizes[i%len(sizes)]
				if i == bigKey {
					size = bigSize
				}
				data := randomBytes(uint64(i), size)
				put, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: bucket, Key: aws.String(key),
					Body: bytes.NewReader(data), ContentType: aws.String("text/x-cellar")})
				if err != nil {
					t.Fatalf("PutObject %q (%d bytes): %v", key, len(data), err)
				}
				if got, want := aws.ToString(put.ETag), `"`+md5hex(data)+`"`; got != want {
					t.Errorf("PutObject %q ETag = %s, want %s", key, got, want)
				}
				if stored, _ := ts.be.object("objects", key); !bytes.Equal(stored, data) {
					t.Errorf("backend holds %d bytes for %q, want %d", len(stored), key, len(data))
				}
				head, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: bucket, Key: aws.String(key)})
				if err != nil {
					t.Fatalf("HeadObject %q: %v", key, err)
				}
				if aws.ToInt64(head.ContentLength) != int64(len(data)) || aws.ToString(head.ETag) != `"`+md5hex(data)+`"` ||
					aws.ToString(head.ContentType) != "text/x-cellar" || head.LastModified == nil {
					t.Errorf("HeadObject %q = len %d etag %s type %s", key, aws.ToInt64(head.ContentLength),
						aws.ToString(head.ETag), aws.ToString(head.ContentType))
				}
				get, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: bucket, Key: aws.String(key)})
				if err != nil {
					t.Fatalf("GetObject %q: %v", key, err)
				}
				got, err := io.ReadAll(get.Body)
				get.Body.Close()
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("GetObject %q: %d bytes, err %v; want %d bytes", key, len(got), err, len(data))
				}
			}

			// The listing returns every key exactly as written.
			var listed []string
			p := awss3.NewListObjectsV2Paginator(c, &awss3.ListObjectsV2Input{Bucket: bucket, MaxKeys: aws.Int32(4)})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range page.Contents {
					listed = append(listed, aws.ToString(o.Key))
				}
			}
			want := slices.Clone(keys)
			slices.Sort(want)
			if !slices.Equal(listed, want) {
				t.Errorf("listed keys:\n%q\nwant\n%q", listed, want)
			}

			for _, key := range keys {
				if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: bucket, Key: aws.String(key)}); err != nil {
					t.Errorf("DeleteObject %q: %v", key, err)
				}
			}
			// Deleting a missing key succeeds; reading it is NoSuchKey.
			if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: bucket, Key: aws.String("plain")}); err != nil {
				t.Errorf("DeleteObject of a missing key: %v", err)
			}
			_, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: bucket, Key: aws.String("plain")})
			var nsk *types.NoSuchKey
			if !errors.As(err, &nsk) {
				t.Errorf("GetObject after delete: got %v, want NoSuchKey", err)
			}
			if n := ts.be.openBodies.Load(); n != 0 {
				t.Errorf("%d GetObject bodies left open", n)
			}
		})
	}
}

// TestSDKUnknownLength uploads from an io.Reader the SDK can neither seek nor measure.
// Over TLS the SDK sends it aws-chunked with Transfer-Encoding: chunked and a trailing
// checksum; over plain HTTP it can do so only with an unsigned payload.
func TestSDKUnknownLength(t *testing.T) {
	t.Parallel()
	data := randomBytes(42, 3<<20+17)
	check := func(t *testing.T, ts *testServer, c *awss3.Client, key string) sentRequest {
		t.Helper()
		ctx := context.Background()
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("stream"), Key: aws.String(key),
			Body: onlyReader{bytes.NewReader(data)}}); err != nil {
			t.Fatalf("PutObject from an io.Reader: %v", err)
		}
		if stored, _ := ts.be.object("stream", key); !bytes.Equal(stored, data) {
			t.Errorf("backend holds %d bytes, want %d", len(stored), len(data))
		}
		return ts.http.lastPut(t)
	}

	t.Run("https-aws-chunked", func(t *testing.T) {
		t.Parallel()
		ts := startServer(t, newFakeBackend(), HandlerOptions{}, true)
		ts.be.CreateBucket(context.Background(), "stream")
		sent := check(t, ts, ts.client, "chunked")
		if !sent.transferChunks || sent.header.Get("Content-Encoding") != "aws-chunked" ||
			sent.header.Get("X-Amz-Content-Sha256") != streamingUnsignedTrailer {
			t.Errorf("expected an aws-chunked upload of unknown length; the SDK sent %v", sent.header)
		}
	})
	t.Run("http-unsigned", func(t *testing.T) {
		t.Parallel()
		ts := startServer(t, newFakeBackend(), HandlerOptions{}, false)
		ts.be.CreateBucket(context.Background(), "stream")
		c := newSDKClient(ts.srv.URL, ts.http, func(o *awss3.Options) {
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
		})
		sent := check(t, ts, c, "unsigned")
		if !sent.transferChunks || sent.header.Get("X-Amz-Content-Sha256") != unsignedPayload {
			t.Errorf("expected an unsigned upload of unknown length; the SDK sent %v", sent.header)
		}
	})
}

func TestSDKListObjectsV2Paginated(t *testing.T) {
	t.Parallel()
	ts := startServer(t, newFakeBackend(), HandlerOptions{}, false)
	c, ctx := ts.client, context.Background()
	bucket := aws.String("listing")
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: bucket}); err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, d := range []string{"", "docs/", "docs/old/", "img/", "img/2024/", "ünï/", "z z/"} {
		for i := range 4 {
			all = append(all, fmt.Sprintf("%sfile %02d", d, i))
		}
	}
	for _, k := range all {
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: bucket, Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(all)

	// expected computes the listing directly from the key set.
	expected := func(prefix, delim, startAfter string) (keys, prefixes []string) {
		for _, k := range all {
			if !strings.HasPrefix(k, prefix) || k <= startAfter {
				continue
			}
			if delim != "" {
				if i := strings.Index(k[len(prefix):], delim); i >= 0 {
					cp := k[:len(prefix)+i+len(delim)]
					if cp > startAfter && !slices.Contains(prefixes, cp) {
						prefixes = append(prefixes, cp)
					}
					continue
				}
			}
			keys = append(keys, k)
		}
		return keys, prefixes
	}

	cases := []struct {
		prefix, delim, startAfter string
		maxKeys                   int32
	}{
		{"", "/", "", 2},
		{"", "/", "", 1000},
		{"", "", "", 3},
		{"docs/", "/", "", 1},
		{"img/", "", "", 2},
		{"", "/", "docs/", 2},
		{"", "", "img/2024/file 01", 5},
		{"ü", "/", "", 1},
		{"z z/", "/", "", 3},
		{"nothing", "/", "", 3},
		{"", "e", "", 2}, // a delimiter that is not a slash
	}
	for _, tc := range cases {
		name := fmt.Sprintf("prefix=%q,delim=%q,after=%q,max=%d", tc.prefix, tc.delim, tc.startAfter, tc.maxKeys)
		t.Run(name, func(t *testing.T) {
			in := &awss3.ListObjectsV2Input{Bucket: bucket, MaxKeys: aws.Int32(tc.maxKeys)}
			if tc.prefix != "" {
				in.Prefix = aws.String(tc.prefix)
			}
			if tc.delim != "" {
				in.Delimiter = aws.String(tc.delim)
			}
			if tc.startAfter != "" {
				in.StartAfter = aws.String(tc.startAfter)
			}
			var keys, prefixes []string
			pages := 0
			p := awss3.NewListObjectsV2Paginator(c, in)
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				n := len(page.Contents) + len(page.CommonPrefixes)
				if int(aws.ToInt32(page.KeyCount)) != n || n > int(tc.maxKeys) {
					t.Errorf("page %d: KeyCount %d, %d entries, max %d", pages, aws.ToInt32(page.KeyCount), n, tc.maxKeys)
				}
				if aws.ToBool(page.IsTruncated) != (page.NextContinuationToken != nil) {
					t.Errorf("page %d: IsTruncated %v with NextContinuationToken %v", pages, aws.ToBool(page.IsTruncated), page.NextContinuationToken)
				}
				if tc.startAfter != "" && aws.ToString(page.StartAfter) != tc.startAfter {
					t.Errorf("page %d: StartAfter echoed as %q", pages, aws.ToString(page.StartAfter))
				}
				for _, o := range page.Contents {
					keys = append(keys, aws.ToString(o.Key))
					if aws.ToInt64(o.Size) != int64(len(aws.ToString(o.Key))) || aws.ToString(o.ETag) != `"`+md5hex([]byte(aws.ToString(o.Key)))+`"` {
						t.Errorf("object %q: size %d etag %s", aws.ToString(o.Key), aws.ToInt64(o.Size), aws.ToString(o.ETag))
					}
				}
				for _, cp := range page.CommonPrefixes {
					prefixes = append(prefixes, aws.ToString(cp.Prefix))
				}
			}
			wantKeys, wantPrefixes := expected(tc.prefix, tc.delim, tc.startAfter)
			if !slices.Equal(keys, wantKeys) || !slices.Equal(prefixes, wantPrefixes) {
				t.Errorf("got keys %q prefixes %q\nwant keys %q prefixes %q", keys, prefixes, wantKeys, wantPrefixes)
			}
			if total := len(wantKeys) + len(wantPrefixes); pages < (total+int(tc.maxKeys)-1)/int(tc.maxKeys) {
				t.Errorf("%d entries in only %d pages of at most %d", total, pages, tc.maxKeys)
			}
		})
	}

	t.Run("encoding-type=url", func(t *testing.T) {
		out, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: bucket, Prefix: aws.String("z z/"), EncodingType: types.EncodingTypeUrl})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Contents) != 4 {
			t.Fatalf("got %d objects", len(out.Contents))
		}
		raw := aws.ToString(out.Contents[0].Key)
		dec, err := url.QueryUnescape(raw)
		if err != nil || dec != "z z/file 00" || raw == dec {
			t.Errorf("encoded key %q decodes to %q (%v)", raw, dec, err)
		}
	})

	t.Run("v1-marker", func(t *testing.T) {
		var keys, prefixes []string
		in := &awss3.ListObjectsInput{Bucket: bucket, Delimiter: aws.String("/"), MaxKeys: aws.Int32(2)}
		for range 100 {
			out, err := c.ListObjects(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(out.Marker) != aws.ToString(in.Marker) {
				t.Errorf("Marker echoed as %q, sent %q", aws.ToString(out.Marker), aws.ToString(in.Marker))
			}
			for _, o := range out.Contents {
				keys = append(keys, aws.ToString(o.Key))
			}
			for _, cp := range out.CommonPrefixes {
				prefixes = append(prefixes, aws.ToString(cp.Prefix))
			}
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			if out.NextMarker == nil {
				t.Fatal("truncated v1 listing with a delimiter has no NextMarker")
			}
			in.Marker = out.NextMarker
		}
		wantKeys, wantPrefixes := expected("", "/", "")
		if !slices.Equal(keys, wantKeys) || !slices.Equal(prefixes, wantPrefixes) {
			t.Errorf("got keys %q prefixes %q\nwant keys %q prefixes %q", keys, prefixes, wantKeys, wantPrefixes)
		}
	})
}

func TestSDKRangeAndConditional(t *testing.T) {
	t.Parallel()
	ts := startServer(t, newFakeBackend(), HandlerOptions{}, false)
	c, ctx := ts.client, context.Background()
	ts.be.CreateBucket(ctx, "ranges")
	data := randomBytes(7, 1000)
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("ranges"), Key: aws.String("r"), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rng        string
		start, end int
	}{{"bytes=0-0", 0, 0}, {"bytes=10-19", 10, 19}, {"bytes=990-", 990, 999}, {"bytes=-5", 995, 999}, {"bytes=900-5000", 900, 999}} {
		out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("ranges"), Key: aws.String("r"), Range: aws.String(tc.rng)})
		if err != nil {
			t.Fatalf("%s: %v", tc.rng, err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		wantRange := fmt.Sprintf("bytes %d-%d/1000", tc.start, tc.end)
		if !bytes.Equal(got, data[tc.start:tc.end+1]) || aws.ToString(out.ContentRange) != wantRange {
			t.Errorf("%s: %d bytes, Content-Range %q; want %d bytes, %q", tc.rng, len(got), aws.ToString(out.ContentRange), tc.end-tc.start+1, wantRange)
		}
	}
	etag := `"` + md5hex(data) + `"`
	out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("ranges"), Key: aws.String("r"), IfMatch: aws.String(etag)})
	if err != nil {
		t.Fatalf("GetObject If-Match the current ETag: %v", err)
	}
	out.Body.Close()
	_, err = c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("ranges"), Key: aws.String("r"), IfNoneMatch: aws.String(etag)})
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusNotModified {
		t.Errorf("HeadObject If-None-Match the current ETag: got %v, want 304", err)
	}
}
