package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The conformance tests below check, with aws-sdk-go-v2, the behaviours of the S3 API
// reference that applications rely on, one subtest per row of the table in
// docs/s3-compatibility.md. They run against the fake backend; the behaviours that need
// the real index and storage are in clustertest/s3conformance_test.go.

// wantAPIError checks that err is an S3 error answer with this status and, when code is
// not "", this error code (HEAD answers carry no code).
func wantAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %d %s", status, code)
	}
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not an HTTP answer, want %d %s", err, status, code)
	}
	if re.HTTPStatusCode() != status {
		t.Errorf("status %d, want %d (%v)", re.HTTPStatusCode(), status, err)
	}
	if code != "" && apiErrorCode(err) != code {
		t.Errorf("code %q, want %q (%v)", apiErrorCode(err), code, err)
	}
}

// conformanceServer is an SDK client over the fake backend, with buckets made.
func conformanceServer(t *testing.T, buckets ...string) (*testServer, *awss3.Client) {
	t.Helper()
	ts := startServer(t, newFakeBackend(), HandlerOptions{}, false)
	for _, b := range buckets {
		if _, err := ts.client.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	return ts, ts.client
}

func putKeys(t *testing.T, c *awss3.Client, bucket string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, err := c.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
	}
}

func keysOf(objs []types.Object) []string {
	out := []string{}
	for _, o := range objs {
		out = append(out, aws.ToString(o.Key))
	}
	return out
}

func prefixesOf(cps []types.CommonPrefix) []string {
	out := []string{}
	for _, p := range cps {
		out = append(out, aws.ToString(p.Prefix))
	}
	return out
}

func TestConformanceListObjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts, c := conformanceServer(t, "delim", "alt", "enc", "four", "empty")
	putKeys(t, c, "delim", "foo/bar", "foo/bar/xyzzy", "quux/thud", "asdf", "foo/baz/xyzzy")
	putKeys(t, c, "alt", "bar", "baz", "cab", "foo")
	putKeys(t, c, "enc", "foo+1/bar", "foo/bar/xyzzy", "quux ab/thud", "asdf+b")
	putKeys(t, c, "four", "bar", "baz", "foo", "quxx")
	b := aws.String

	type listing struct {
		keys, prefixes []string
		truncated      bool
	}
	v1 := func(t *testing.T, in *awss3.ListObjectsInput) (*awss3.ListObjectsOutput, listing) {
		t.Helper()
		out, err := c.ListObjects(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return out, listing{keysOf(out.Contents), prefixesOf(out.CommonPrefixes), aws.ToBool(out.IsTruncated)}
	}
	v2 := func(t *testing.T, in *awss3.ListObjectsV2Input) (*awss3.ListObjectsV2Output, listing) {
		t.Helper()
		out, err := c.ListObjectsV2(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(out.Contents) + len(out.CommonPrefixes); int(aws.ToInt32(out.KeyCount)) != n {
			t.Errorf("KeyCount %d, %d entries", aws.ToInt32(out.KeyCount), n)
		}
		return out, listing{keysOf(out.Contents), prefixesOf(out.CommonPrefixes), aws.ToBool(out.IsTruncated)}
	}
	want := func(t *testing.T, got listing, keys, prefixes []string, truncated bool) {
		t.Helper()
		if !slices.Equal(got.keys, keys) || !slices.Equal(got.prefixes, prefixes) || got.truncated != truncated {
			t.Errorf("got keys %q prefixes %q truncated %v; want %q %q %v", got.keys, got.prefixes, got.truncated, keys, prefixes, truncated)
		}
	}

	t.Run("delimiter groups keys into CommonPrefixes (v1 and v2)", func(t *testing.T) {
		out, got := v1(t, &awss3.ListObjectsInput{Bucket: b("delim"), Delimiter: b("/")})
		want(t, got, []string{"asdf"}, []string{"foo/", "quux/"}, false)
		if aws.ToString(out.Delimiter) != "/" || out.Marker == nil || *out.Marker != "" || aws.ToString(out.Prefix) != "" {
			t.Errorf("Delimiter %q Marker %v Prefix %v", aws.ToString(out.Delimiter), out.Marker, out.Prefix)
		}
		out2, got := v2(t, &awss3.ListObjectsV2Input{Bucket: b("delim"), Delimiter: b("/")})
		want(t, got, []string{"asdf"}, []string{"foo/", "quux/"}, false)
		if aws.ToString(out2.Delimiter) != "/" || aws.ToInt32(out2.KeyCount) != 3 || out2.ContinuationToken != nil || out2.StartAfter != nil {
			t.Errorf("Delimiter %q KeyCount %d ContinuationToken %v StartAfter %v", aws.ToString(out2.Delimiter), aws.ToInt32(out2.KeyCount), out2.ContinuationToken, out2.StartAfter)
		}
	})
	t.Run("prefix and delimiter", func(t *testing.T) {
		_, got := v2(t, &awss3.ListObjectsV2Input{Bucket: b("delim"), Prefix: b("foo/"), Delimiter: b("/")})
		want(t, got, []string{"foo/bar"}, []string{"foo/bar/", "foo/baz/"}, false)
	})
	t.Run("delimiter other than slash", func(t *testing.T) {
		_, got := v1(t, &awss3.ListObjectsInput{Bucket: b("alt"), Delimiter: b("a")})
		want(t, got, []string{"foo"}, []string{"ba", "ca"}, false)
		_, got = v1(t, &awss3.ListObjectsInput{Bucket: b("alt"), Delimiter: b("ab")})
		want(t, got, []string{"bar", "baz", "foo"}, []string{"cab"}, false)
	})
	t.Run("delimiter found in no key", func(t *testing.T) {
		_, got := v1(t, &awss3.ListObjectsInput{Bucket: b("alt"), Delimiter: b("/")})
		want(t, got, []string{"bar", "baz", "cab", "foo"}, []string{}, false)
	})
	t.Run("empty delimiter is absent from the answer", func(t *testing.T) {
		out, got := v1(t, &awss3.ListObjectsInput{Bucket: b("alt"), Delimiter: b("")})
		want(t, got, []string{"bar", "baz", "cab", "foo"}, []string{}, false)
		if out.Delimiter != nil {
			t.Errorf("Delimiter %q, want none", *out.Delimiter)
		}
	})
	t.Run("prefix that matches nothing", func(t *testing.T) {
		out, got := v1(t, &awss3.ListObjectsInput{Bucket: b("alt"), Prefix: b("d"), Delimiter: b("/")})
		want(t, got, []string{}, []string{}, false)
		if aws.ToString(out.Prefix) != "d" {
			t.Errorf("Prefix echoed as %q", aws.ToString(out.Prefix))
		}
	})
	t.Run("encoding-type=url", func(t *testing.T) {
		out, got := v2(t, &awss3.ListObjectsV2Input{Bucket: b("enc"), Delimiter: b("/"), EncodingType: types.EncodingTypeUrl})
		want(t, got, []string{"asdf%2Bb"}, []string{"foo%2B1/", "foo/", "quux%20ab/"}, false)
		if aws.ToString(out.Delimiter) != "/" || out.EncodingType != types.EncodingTypeUrl {
			t.Errorf("Delimiter %q EncodingType %q", aws.ToString(out.Delimiter), out.EncodingType)
		}
		_, got = v1(t, &awss3.ListObjectsInput{Bucket: b("enc"), Prefix: b("quux "), EncodingType: types.EncodingTypeUrl})
		want(t, got, []string{"quux%20ab/thud"}, []string{}, false)
	})
	t.Run("encoding-type other than url is InvalidArgument", func(t *testing.T) {
		_, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: b("enc"), EncodingType: "base64"})
		wantAPIError(t, err, http.StatusBadRequest, "InvalidArgument")
	})
	t.Run("max-keys 0 lists nothing and is not truncated", func(t *testing.T) {
		out, got := v2(t, &awss3.ListObjectsV2Input{Bucket: b("four"), MaxKeys: aws.Int32(0)})
		want(t, got, []string{}, []string{}, false)
		if aws.ToInt32(out.MaxKeys) != 0 || aws.ToInt32(out.KeyCount) != 0 {
			t.Errorf("MaxKeys %d KeyCount %d", aws.ToInt32(out.MaxKeys), aws.ToInt32(out.KeyCount))
		}
		_, got = v1(t, &awss3.ListObjectsInput{Bucket: b("four"), MaxKeys: aws.Int32(0)})
		want(t, got, []string{}, []string{}, false)
		_, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: b("nobucket"), MaxKeys: aws.Int32(0)})
		wantAPIError(t, err, http.StatusNotFound, "NoSuchBucket")
	})
	t.Run("max-keys over 1000 is 1000", func(t *testing.T) {
		out, _ := v2(t, &awss3.ListObjectsV2Input{Bucket: b("four"), MaxKeys: aws.Int32(5000)})
		if aws.ToInt32(out.MaxKeys) != 1000 {
			t.Errorf("MaxKeys %d", aws.ToInt32(out.MaxKeys))
		}
	})
	t.Run("max-keys that is not a non-negative integer is InvalidArgument", func(t *testing.T) {
		for _, v := range []string{"blah", "-1"} {
			r := do(t, rawOver(t, ts), "GET", "/four?max-keys="+v, nil, nil)
			wantError(t, r, http.StatusBadRequest, "InvalidArgument", cellNone)
		}
	})
	t.Run("v1 paging by marker without delimiter: no NextMarker", func(t *testing.T) {
		out, got := v1(t, &awss3.ListObjectsInput{Bucket: b("four"), MaxKeys: aws.Int32(1)})
		want(t, got, []string{"bar"}, []string{}, true)
		if out.NextMarker != nil {
			t.Errorf("NextMarker %q without a delimiter", *out.NextMarker)
		}
		out, got = v1(t, &awss3.ListObjectsInput{Bucket: b("four"), Marker: b("bar")})
		want(t, got, []string{"baz", "foo", "quxx"}, []string{}, false)
		if aws.ToString(out.Marker) != "bar" {
			t.Errorf("Marker echoed as %q", aws.ToString(out.Marker))
		}
	})
	t.Run("marker not in the list, after the list, and empty", func(t *testing.T) {
		_, got := v1(t, &awss3.ListObjectsInput{Bucket: b("four"), Marker: b("blah")})
		want(t, got, []string{"foo", "quxx"}, []string{}, false)
		_, got = v1(t, &awss3.ListObjectsInput{Bucket: b("four"), Marker: b("zzz")})
		want(t, got, []string{}, []string{}, false)
		out, got := v1(t, &awss3.ListObjectsInput{Bucket: b("four"), Marker: b("")})
		want(t, got, []string{"bar", "baz", "foo", "quxx"}, []string{}, false)
		if out.Marker == nil || *out.Marker != "" {
			t.Errorf("Marker %v, want present and empty", out.Marker)
		}
	})
	t.Run("v1 with delimiter: NextMarker is the last key or prefix", func(t *testing.T) {
		out, got := v1(t, &awss3.ListObjectsInput{Bucket: b("delim"), Delimiter: b("/"), MaxKeys: aws.Int32(2)})
		want(t, got, []string{"asdf"}, []string{"foo/"}, true)
		if aws.ToString(out.NextMarker) != "foo/" {
			t.Errorf("NextMarker %q", aws.ToString(out.NextMarker))
		}
		_, got = v1(t, &awss3.ListObjectsInput{Bucket: b("delim"), Delimiter: b("/"), Marker: out.NextMarker})
		want(t, got, []string{}, []string{"quux/"}, false)
	})
	t.Run("v2 start-after", func(t *testing.T) {
		out, got := v2(t, &awss3.ListObjectsV2Input{Bucket: b("four"), StartAfter: b("blah")})
		want(t, got, []string{"foo", "quxx"}, []string{}, false)
		if aws.ToString(out.StartAfter) != "blah" {
			t.Errorf("StartAfter %q", aws.ToString(out.StartAfter))
		}
		_, got = v2(t, &awss3.ListObjectsV2Input{Bucket: b("four"), StartAfter: b("zzz")})
		want(t, got, []string{}, []string{}, false)
	})
	t.Run("v2 continuation token with start-after", func(t *testing.T) {
		out, got := v2(t, &awss3.ListObjectsV2Input{Bucket: b("four"), StartAfter: b("bar"), MaxKeys: aws.Int32(1)})
		want(t, got, []string{"baz"}, []string{}, true)
		tok := out.NextContinuationToken
		out, got = v2(t, &awss3.ListObjectsV2Input{Bucket: b("four"), StartAfter: b("bar"), ContinuationToken: tok})
		want(t, got, []string{"foo", "quxx"}, []string{}, false)
		if aws.ToString(out.ContinuationToken) != aws.ToString(tok) || aws.ToString(out.StartAfter) != "bar" || out.NextContinuationToken != nil {
			t.Errorf("ContinuationToken %v StartAfter %v NextContinuationToken %v", out.ContinuationToken, out.StartAfter, out.NextContinuationToken)
		}
	})
	t.Run("v2 empty or foreign continuation token is InvalidArgument", func(t *testing.T) {
		for _, tok := range []string{"", "bm90LWEtdG9rZW4"} {
			_, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: b("four"), ContinuationToken: b(tok)})
			wantAPIError(t, err, http.StatusBadRequest, "InvalidArgument")
		}
	})
	t.Run("v2 fetch-owner", func(t *testing.T) {
		for _, tc := range []struct {
			fetch *bool
			owner bool
		}{{nil, false}, {aws.Bool(false), false}, {aws.Bool(true), true}} {
			out, _ := v2(t, &awss3.ListObjectsV2Input{Bucket: b("four"), FetchOwner: tc.fetch})
			if got := out.Contents[0].Owner != nil; got != tc.owner {
				t.Errorf("fetch-owner %v: owner given %v", tc.fetch, got)
			}
			if tc.owner && (aws.ToString(out.Contents[0].Owner.ID) == "" || aws.ToString(out.Contents[0].Owner.DisplayName) == "") {
				t.Errorf("owner %+v", *out.Contents[0].Owner)
			}
		}
		out, _ := v1(t, &awss3.ListObjectsInput{Bucket: b("four")})
		if out.Contents[0].Owner == nil {
			t.Error("v1 lists no Owner")
		}
	})
	t.Run("object fields", func(t *testing.T) {
		out, _ := v2(t, &awss3.ListObjectsV2Input{Bucket: b("four"), Prefix: b("foo")})
		o := out.Contents[0]
		if aws.ToString(o.ETag) != `"`+md5hex([]byte("foo"))+`"` || aws.ToInt64(o.Size) != 3 || o.StorageClass != types.ObjectStorageClassStandard ||
			o.LastModified == nil || time.Since(*o.LastModified) > time.Hour {
			t.Errorf("object %+v", o)
		}
		if aws.ToString(out.Name) != "four" || aws.ToString(out.Prefix) != "foo" || aws.ToInt32(out.MaxKeys) != 1000 {
			t.Errorf("Name %q Prefix %q MaxKeys %d", aws.ToString(out.Name), aws.ToString(out.Prefix), aws.ToInt32(out.MaxKeys))
		}
	})
	t.Run("listing a bucket that does not exist is NoSuchBucket", func(t *testing.T) {
		_, err := c.ListObjects(ctx, &awss3.ListObjectsInput{Bucket: b("nobucket")})
		wantAPIError(t, err, http.StatusNotFound, "NoSuchBucket")
	})
}

// rawOver returns a server over the same backend that takes unsigned requests, for
// what an SDK cannot send.
func rawOver(t *testing.T, ts *testServer) *testServer {
	t.Helper()
	return startServer(t, ts.be, HandlerOptions{Credentials: map[string]string{}}, false)
}

func TestConformanceGetAndHead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts, c := conformanceServer(t, "objs")
	b := aws.String
	const data = "testcontent" // 11 bytes, as in the S3 examples
	put, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b("objs"), Key: b("obj"), Body: strings.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	etag := aws.ToString(put.ETag)
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b("objs"), Key: b("empty"), Body: bytes.NewReader(nil)}); err != nil {
		t.Fatal(err)
	}
	head, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b("objs"), Key: b("obj")})
	if err != nil {
		t.Fatal(err)
	}
	lastModified := *head.LastModified
	past, future := lastModified.Add(-24*time.Hour), lastModified.Add(24*time.Hour)

	get := func(in *awss3.GetObjectInput) (*awss3.GetObjectOutput, string, error) {
		in.Bucket, in.Key = b("objs"), aws.String(aws.ToString(in.Key))
		if in.Key == nil || *in.Key == "" {
			in.Key = b("obj")
		}
		out, err := c.GetObject(ctx, in)
		if err != nil {
			return nil, "", err
		}
		defer out.Body.Close()
		body, err := io.ReadAll(out.Body)
		return out, string(body), err
	}

	t.Run("ranges", func(t *testing.T) {
		for _, tc := range []struct{ rng, body, contentRange string }{
			{"bytes=4-7", "cont", "bytes 4-7/11"},
			{"bytes=4-", "content", "bytes 4-10/11"},
			{"bytes=-7", "content", "bytes 4-10/11"},
			{"bytes=-100", data, "bytes 0-10/11"},
			{"bytes=8-100", "ent", "bytes 8-10/11"},
		} {
			out, body, err := get(&awss3.GetObjectInput{Range: b(tc.rng)})
			if err != nil {
				t.Fatalf("%s: %v", tc.rng, err)
			}
			if body != tc.body || aws.ToString(out.ContentRange) != tc.contentRange || aws.ToInt64(out.ContentLength) != int64(len(tc.body)) ||
				aws.ToString(out.AcceptRanges) != "bytes" {
				t.Errorf("%s: body %q Content-Range %q Content-Length %d", tc.rng, body, aws.ToString(out.ContentRange), aws.ToInt64(out.ContentLength))
			}
		}
	})
	t.Run("range past the end is 416 InvalidRange", func(t *testing.T) {
		_, _, err := get(&awss3.GetObjectInput{Range: b("bytes=40-50")})
		wantAPIError(t, err, http.StatusRequestedRangeNotSatisfiable, "InvalidRange")
		_, _, err = get(&awss3.GetObjectInput{Key: b("empty"), Range: b("bytes=0-")})
		wantAPIError(t, err, http.StatusRequestedRangeNotSatisfiable, "InvalidRange")
		r := do(t, rawOver(t, ts), "GET", "/objs/obj", nil, map[string]string{"Range": "bytes=40-50"})
		if r.header.Get("Content-Range") != "bytes */11" {
			t.Errorf("416 Content-Range %q", r.header.Get("Content-Range"))
		}
	})
	t.Run("malformed or multiple ranges are ignored", func(t *testing.T) {
		for _, rng := range []string{"bytes=abc", "bytes=7-4", "bytes=0-1,3-4", "items=0-1"} {
			out, body, err := get(&awss3.GetObjectInput{Range: b(rng)})
			if err != nil || body != data || out.ContentRange != nil {
				t.Errorf("%s: %q %v %v", rng, body, out, err)
			}
		}
	})
	t.Run("response-* overrides", func(t *testing.T) {
		exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		out, _, err := get(&awss3.GetObjectInput{ResponseContentType: b("text/x-test"), ResponseContentDisposition: b("attachment; filename=x.txt"),
			ResponseContentLanguage: b("de"), ResponseCacheControl: b("no-cache"), ResponseContentEncoding: b("identity"), ResponseExpires: &exp})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.ContentType) != "text/x-test" || aws.ToString(out.ContentDisposition) != "attachment; filename=x.txt" ||
			aws.ToString(out.ContentLanguage) != "de" || aws.ToString(out.CacheControl) != "no-cache" || aws.ToString(out.ContentEncoding) != "identity" ||
			aws.ToString(out.ExpiresString) != exp.Format(http.TimeFormat) {
			t.Errorf("overrides: %q %q %q %q %q %q", aws.ToString(out.ContentType), aws.ToString(out.ContentDisposition), aws.ToString(out.ContentLanguage),
				aws.ToString(out.CacheControl), aws.ToString(out.ContentEncoding), aws.ToString(out.ExpiresString))
		}
	})
	t.Run("conditions and their precedence", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			in     awss3.GetObjectInput
			status int // 200, 304 or 412
		}{
			{"If-Match current", awss3.GetObjectInput{IfMatch: b(etag)}, 200},
			{"If-Match other", awss3.GetObjectInput{IfMatch: b(`"0123"`)}, 412},
			{"If-Match *", awss3.GetObjectInput{IfMatch: b("*")}, 200},
			{"If-None-Match current", awss3.GetObjectInput{IfNoneMatch: b(etag)}, 304},
			{"If-None-Match other", awss3.GetObjectInput{IfNoneMatch: b(`"0123"`)}, 200},
			{"If-Modified-Since past", awss3.GetObjectInput{IfModifiedSince: &past}, 200},
			{"If-Modified-Since future", awss3.GetObjectInput{IfModifiedSince: &future}, 304},
			{"If-Unmodified-Since past", awss3.GetObjectInput{IfUnmodifiedSince: &past}, 412},
			{"If-Unmodified-Since future", awss3.GetObjectInput{IfUnmodifiedSince: &future}, 200},
			// If-Match true and If-Unmodified-Since false: 200.
			{"If-Match wins over If-Unmodified-Since", awss3.GetObjectInput{IfMatch: b(etag), IfUnmodifiedSince: &past}, 200},
			// If-None-Match false and If-Modified-Since true: 304.
			{"If-None-Match wins over If-Modified-Since", awss3.GetObjectInput{IfNoneMatch: b(etag), IfModifiedSince: &past}, 304},
			{"If-None-Match other ignores If-Modified-Since", awss3.GetObjectInput{IfNoneMatch: b(`"0123"`), IfModifiedSince: &future}, 200},
			{"412 before 304", awss3.GetObjectInput{IfMatch: b(`"0123"`), IfNoneMatch: b(etag)}, 412},
		} {
			t.Run(tc.name, func(t *testing.T) {
				in := tc.in
				out, body, err := get(&in)
				hin := &awss3.HeadObjectInput{Bucket: b("objs"), Key: b("obj"), IfMatch: tc.in.IfMatch, IfNoneMatch: tc.in.IfNoneMatch,
					IfModifiedSince: tc.in.IfModifiedSince, IfUnmodifiedSince: tc.in.IfUnmodifiedSince}
				_, herr := c.HeadObject(ctx, hin)
				switch tc.status {
				case 200:
					if err != nil || body != data || aws.ToString(out.ETag) != etag {
						t.Errorf("GET: %v %q", err, body)
					}
					if herr != nil {
						t.Errorf("HEAD: %v", herr)
					}
				case 304:
					wantAPIError(t, err, http.StatusNotModified, "")
					wantAPIError(t, herr, http.StatusNotModified, "")
				case 412:
					wantAPIError(t, err, http.StatusPreconditionFailed, "PreconditionFailed")
					wantAPIError(t, herr, http.StatusPreconditionFailed, "")
				}
			})
		}
	})
	t.Run("304 carries ETag and Last-Modified, no body", func(t *testing.T) {
		r := do(t, rawOver(t, ts), "GET", "/objs/obj", nil, map[string]string{"If-None-Match": etag})
		if r.status != http.StatusNotModified || r.header.Get("ETag") != etag || r.header.Get("Last-Modified") != lastModified.UTC().Format(http.TimeFormat) || len(r.body) != 0 {
			t.Errorf("%d ETag %q Last-Modified %q body %q", r.status, r.header.Get("ETag"), r.header.Get("Last-Modified"), r.body)
		}
	})
	t.Run("missing key and missing bucket", func(t *testing.T) {
		_, _, err := get(&awss3.GetObjectInput{Key: b("nokey")})
		wantAPIError(t, err, http.StatusNotFound, "NoSuchKey")
		_, err = c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b("objs"), Key: b("nokey")})
		wantAPIError(t, err, http.StatusNotFound, "")
		_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: b("nobucket"), Key: b("obj")})
		wantAPIError(t, err, http.StatusNotFound, "NoSuchBucket")
		_, err = c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b("nobucket"), Key: b("obj")})
		wantAPIError(t, err, http.StatusNotFound, "")
		_, err = c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: b("nobucket"), Key: b("obj")})
		wantAPIError(t, err, http.StatusNotFound, "NoSuchBucket")
		if _, err = c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: b("objs"), Key: b("nokey")}); err != nil {
			t.Errorf("DeleteObject of a missing key: %v", err)
		}
	})
	t.Run("partNumber past the parts is 416 InvalidPartNumber", func(t *testing.T) {
		out, body, err := get(&awss3.GetObjectInput{PartNumber: aws.Int32(1)})
		if err != nil || body != data || aws.ToInt32(out.PartsCount) != 1 {
			t.Errorf("part 1 of a single-part object: %v %q", err, body)
		}
		_, _, err = get(&awss3.GetObjectInput{PartNumber: aws.Int32(2)})
		wantAPIError(t, err, http.StatusRequestedRangeNotSatisfiable, "InvalidPartNumber")
	})
	t.Run("zero-byte object", func(t *testing.T) {
		out, body, err := get(&awss3.GetObjectInput{Key: b("empty")})
		if err != nil || body != "" || aws.ToInt64(out.ContentLength) != 0 || aws.ToString(out.ETag) != `"d41d8cd98f00b204e9800998ecf8427e"` {
			t.Errorf("%v %q %+v", err, body, out)
		}
	})
}

func TestConformancePutObject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts, c := conformanceServer(t, "puts")
	b := aws.String
	put := func(key, body string, f func(*awss3.PutObjectInput)) (*awss3.PutObjectOutput, error) {
		in := &awss3.PutObjectInput{Bucket: b("puts"), Key: b(key), Body: strings.NewReader(body)}
		if f != nil {
			f(in)
		}
		return c.PutObject(ctx, in)
	}
	read := func(key string) string {
		out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: b("puts"), Key: b(key)})
		if err != nil {
			return "error: " + apiErrorCode(err)
		}
		defer out.Body.Close()
		body, _ := io.ReadAll(out.Body)
		return string(body)
	}

	t.Run("If-None-Match: * writes only a new key", func(t *testing.T) {
		ifNone := func(in *awss3.PutObjectInput) { in.IfNoneMatch = b("*") }
		if _, err := put("create", "one", ifNone); err != nil {
			t.Fatal(err)
		}
		_, err := put("create", "two", ifNone)
		wantAPIError(t, err, http.StatusPreconditionFailed, "PreconditionFailed")
		if got := read("create"); got != "one" {
			t.Errorf("after a refused write the object is %q", got)
		}
	})
	t.Run("If-Match writes only over that ETag", func(t *testing.T) {
		first, err := put("swap", "one", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = put("swap", "two", func(in *awss3.PutObjectInput) { in.IfMatch = b(`"00000000000000000000000000000000"`) })
		wantAPIError(t, err, http.StatusPreconditionFailed, "PreconditionFailed")
		if _, err := put("swap", "three", func(in *awss3.PutObjectInput) { in.IfMatch = first.ETag }); err != nil {
			t.Fatal(err)
		}
		if got := read("swap"); got != "three" {
			t.Errorf("object is %q", got)
		}
		_, err = put("nokey", "x", func(in *awss3.PutObjectInput) { in.IfMatch = first.ETag })
		wantAPIError(t, err, http.StatusNotFound, "NoSuchKey")
	})
	t.Run("If-None-Match with an ETag, or with If-Match, is NotImplemented", func(t *testing.T) {
		_, err := put("etagnone", "x", func(in *awss3.PutObjectInput) { in.IfNoneMatch = b(`"abc"`) })
		wantAPIError(t, err, http.StatusNotImplemented, "NotImplemented")
		_, err = put("etagnone", "x", func(in *awss3.PutObjectInput) { in.IfNoneMatch, in.IfMatch = b("*"), b(`"abc"`) })
		wantAPIError(t, err, http.StatusNotImplemented, "NotImplemented")
	})
	t.Run("Content-MD5", func(t *testing.T) {
		sum := md5.Sum([]byte("right"))
		good := base64.StdEncoding.EncodeToString(sum[:])
		if _, err := put("md5", "right", func(in *awss3.PutObjectInput) { in.ContentMD5 = b(good) }); err != nil {
			t.Fatal(err)
		}
		_, err := put("md5", "wrong", func(in *awss3.PutObjectInput) { in.ContentMD5 = b(good) })
		wantAPIError(t, err, http.StatusBadRequest, "BadDigest")
		_, err = put("md5", "wrong", func(in *awss3.PutObjectInput) { in.ContentMD5 = b("not-base64!") })
		wantAPIError(t, err, http.StatusBadRequest, "InvalidDigest")
		if got := read("md5"); got != "right" {
			t.Errorf("object is %q", got)
		}
	})
	t.Run("key of 1024 bytes, not 1025", func(t *testing.T) {
		k := strings.Repeat("k", 1024)
		if _, err := put(k, "x", nil); err != nil {
			t.Fatal(err)
		}
		_, err := put(k+"k", "x", nil)
		wantAPIError(t, err, http.StatusBadRequest, "KeyTooLongError")
		k = strings.Repeat("é", 512) // 1024 bytes
		if _, err := put(k, "x", nil); err != nil {
			t.Fatal(err)
		}
		_, err = put(k+"k", "x", nil)
		wantAPIError(t, err, http.StatusBadRequest, "KeyTooLongError")
	})
	t.Run("keys with special characters round-trip", func(t *testing.T) {
		for _, k := range []string{"a b", "a+b", "a%20b", "a?b#c", "dir/", "ünïcødé", "~!@$&*()=:,;'[]", "a//b", "/lead"} {
			if _, err := put(k, k, nil); err != nil {
				t.Fatalf("%q: %v", k, err)
			}
			if got := read(k); got != k {
				t.Errorf("%q reads %q", k, got)
			}
		}
	})
	t.Run("metadata is replaced by the next PUT", func(t *testing.T) {
		if _, err := put("meta", "x", func(in *awss3.PutObjectInput) { in.Metadata = map[string]string{"one": "1"} }); err != nil {
			t.Fatal(err)
		}
		if _, err := put("meta", "y", func(in *awss3.PutObjectInput) { in.Metadata = map[string]string{"two": "2"} }); err != nil {
			t.Fatal(err)
		}
		out, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b("puts"), Key: b("meta")})
		if err != nil || len(out.Metadata) != 1 || out.Metadata["two"] != "2" {
			t.Errorf("metadata %v (%v)", out.Metadata, err)
		}
	})
	t.Run("headers of features cellar lacks are refused, not ignored", func(t *testing.T) {
		if _, err := put("classy", "x", func(in *awss3.PutObjectInput) { in.StorageClass = types.StorageClassStandard }); err != nil {
			t.Errorf("STANDARD: %v", err)
		}
		for _, tc := range []struct {
			name   string
			f      func(*awss3.PutObjectInput)
			status int
			code   string
		}{
			{"GLACIER", func(in *awss3.PutObjectInput) { in.StorageClass = types.StorageClassGlacier }, 501, "NotImplemented"},
			{"unknown class", func(in *awss3.PutObjectInput) { in.StorageClass = "FAST_AND_CHEAP" }, 400, "InvalidStorageClass"},
			{"eleven tags", func(in *awss3.PutObjectInput) { in.Tagging = b("a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1&j=1&k=1") }, 400, "BadRequest"},
			{"object lock", func(in *awss3.PutObjectInput) { in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn }, 501, "NotImplemented"},
			{"website redirect", func(in *awss3.PutObjectInput) { in.WebsiteRedirectLocation = b("/other") }, 501, "NotImplemented"},
		} {
			_, err := put("refused", "x", tc.f)
			wantAPIError(t, err, tc.status, tc.code)
		}
		_, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: b("puts"), Key: b("refused"), WebsiteRedirectLocation: b("/other")})
		wantAPIError(t, err, http.StatusNotImplemented, "NotImplemented")
		_, err = c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: b("puts"), Key: b("refused"), CopySource: b("puts/classy"), StorageClass: types.StorageClassDeepArchive})
		wantAPIError(t, err, http.StatusNotImplemented, "NotImplemented")
		if _, ok := ts.be.object("puts", "refused"); ok {
			t.Error("a refused write stored an object")
		}
	})
	t.Run("PUT into a bucket that does not exist is NoSuchBucket", func(t *testing.T) {
		_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b("nobucket"), Key: b("k"), Body: strings.NewReader("x")})
		wantAPIError(t, err, http.StatusNotFound, "NoSuchBucket")
	})
}

func TestConformanceCopyObject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, c := conformanceServer(t, "src", "dst")
	b := aws.String
	src, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b("src"), Key: b("obj"), Body: strings.NewReader("source"),
		ContentType: b("text/x-src"), Metadata: map[string]string{"origin": "src"}})
	if err != nil {
		t.Fatal(err)
	}
	head, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b("src"), Key: b("obj")})
	if err != nil {
		t.Fatal(err)
	}
	past, future := head.LastModified.Add(-time.Hour), head.LastModified.Add(time.Hour)
	copyTo := func(key string, f func(*awss3.CopyObjectInput)) (*awss3.CopyObjectOutput, error) {
		in := &awss3.CopyObjectInput{Bucket: b("dst"), Key: b(key), CopySource: b("src/obj")}
		if f != nil {
			f(in)
		}
		return c.CopyObject(ctx, in)
	}

	t.Run("COPY keeps content type and metadata", func(t *testing.T) {
		out, err := copyTo("copy", nil)
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.CopyObjectResult.ETag) != aws.ToString(src.ETag) || out.CopyObjectResult.LastModified == nil {
			t.Errorf("result %+v", out.CopyObjectResult)
		}
		h, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b("dst"), Key: b("copy")})
		if err != nil || aws.ToString(h.ContentType) != "text/x-src" || h.Metadata["origin"] != "src" || aws.ToInt64(h.ContentLength) != 6 {
			t.Errorf("copy: %+v %v", h, err)
		}
	})
	t.Run("REPLACE takes the request's", func(t *testing.T) {
		if _, err := copyTo("replaced", func(in *awss3.CopyObjectInput) {
			in.MetadataDirective = types.MetadataDirectiveReplace
			in.ContentType = b("text/x-new")
			in.Metadata = map[string]string{"new": "yes"}
		}); err != nil {
			t.Fatal(err)
		}
		h, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b("dst"), Key: b("replaced")})
		if err != nil || aws.ToString(h.ContentType) != "text/x-new" || len(h.Metadata) != 1 || h.Metadata["new"] != "yes" {
			t.Errorf("replaced: %+v %v", h, err)
		}
	})
	t.Run("onto itself only with REPLACE", func(t *testing.T) {
		_, err := c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: b("src"), Key: b("obj"), CopySource: b("src/obj")})
		wantAPIError(t, err, http.StatusBadRequest, "InvalidRequest")
		if _, err := c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: b("src"), Key: b("obj"), CopySource: b("src/obj"),
			MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"origin": "src"}, ContentType: b("text/x-src")}); err != nil {
			t.Errorf("copy onto itself with REPLACE: %v", err)
		}
	})
	t.Run("unknown metadata directive is InvalidArgument", func(t *testing.T) {
		_, err := copyTo("bad", func(in *awss3.CopyObjectInput) { in.MetadataDirective = "MERGE" })
		wantAPIError(t, err, http.StatusBadRequest, "InvalidArgument")
	})
	t.Run("x-amz-copy-source-if-* conditions", func(t *testing.T) {
		etag := src.ETag
		for _, tc := range []struct {
			name string
			f    func(*awss3.CopyObjectInput)
			ok   bool
		}{
			{"if-match current", func(in *awss3.CopyObjectInput) { in.CopySourceIfMatch = etag }, true},
			{"if-match other", func(in *awss3.CopyObjectInput) { in.CopySourceIfMatch = b(`"0123"`) }, false},
			{"if-none-match current", func(in *awss3.CopyObjectInput) { in.CopySourceIfNoneMatch = etag }, false},
			{"if-none-match other", func(in *awss3.CopyObjectInput) { in.CopySourceIfNoneMatch = b(`"0123"`) }, true},
			{"if-modified-since past", func(in *awss3.CopyObjectInput) { in.CopySourceIfModifiedSince = &past }, true},
			{"if-modified-since future", func(in *awss3.CopyObjectInput) { in.CopySourceIfModifiedSince = &future }, false},
			{"if-unmodified-since past", func(in *awss3.CopyObjectInput) { in.CopySourceIfUnmodifiedSince = &past }, false},
			{"if-unmodified-since future", func(in *awss3.CopyObjectInput) { in.CopySourceIfUnmodifiedSince = &future }, true},
			{"if-match wins over if-unmodified-since", func(in *awss3.CopyObjectInput) {
				in.CopySourceIfMatch, in.CopySourceIfUnmodifiedSince = etag, &past
			}, true},
			{"if-none-match fails despite if-modified-since", func(in *awss3.CopyObjectInput) {
				in.CopySourceIfNoneMatch, in.CopySourceIfModifiedSince = etag, &past
			}, false},
		} {
			_, err := copyTo("cond", tc.f)
			if tc.ok && err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			if !tc.ok {
				wantAPIError(t, err, http.StatusPreconditionFailed, "PreconditionFailed")
			}
		}
	})
	t.Run("If-None-Match: * on the destination", func(t *testing.T) {
		if _, err := copyTo("once", func(in *awss3.CopyObjectInput) { in.IfNoneMatch = b("*") }); err != nil {
			t.Fatal(err)
		}
		_, err := copyTo("once", func(in *awss3.CopyObjectInput) { in.IfNoneMatch = b("*") })
		wantAPIError(t, err, http.StatusPreconditionFailed, "PreconditionFailed")
	})
	t.Run("missing source key or bucket", func(t *testing.T) {
		_, err := copyTo("x", func(in *awss3.CopyObjectInput) { in.CopySource = b("src/nokey") })
		wantAPIError(t, err, http.StatusNotFound, "NoSuchKey")
		_, err = copyTo("x", func(in *awss3.CopyObjectInput) { in.CopySource = b("nobucket/obj") })
		wantAPIError(t, err, http.StatusNotFound, "NoSuchBucket")
		_, err = c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: b("nobucket"), Key: b("x"), CopySource: b("src/obj")})
		wantAPIError(t, err, http.StatusNotFound, "NoSuchBucket")
	})
	t.Run("source key with special characters", func(t *testing.T) {
		k := "a b+c/ü?#"
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b("src"), Key: b(k), Body: strings.NewReader("special")}); err != nil {
			t.Fatal(err)
		}
		if _, err := copyTo("special", func(in *awss3.CopyObjectInput) { in.CopySource = b("src/" + uriEncode(k, false)) }); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConformanceDeleteObjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts, c := conformanceServer(t, "dels")
	b := aws.String
	ids := func(keys ...string) []types.ObjectIdentifier {
		var out []types.ObjectIdentifier
		for _, k := range keys {
			out = append(out, types.ObjectIdentifier{Key: b(k)})
		}
		return out
	}
	deleted := func(out *awss3.DeleteObjectsOutput) []string {
		var ks []string
		for _, d := range out.Deleted {
			ks = append(ks, aws.ToString(d.Key))
		}
		slices.Sort(ks)
		return ks
	}

	t.Run("every key is Deleted, missing ones too", func(t *testing.T) {
		putKeys(t, c, "dels", "a", "b")
		out, err := c.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: b("dels"), Delete: &types.Delete{Objects: ids("a", "b", "missing")}})
		if err != nil {
			t.Fatal(err)
		}
		if got := deleted(out); !slices.Equal(got, []string{"a", "b", "missing"}) || len(out.Errors) != 0 {
			t.Errorf("Deleted %q Errors %+v", got, out.Errors)
		}
		if _, ok := ts.be.object("dels", "a"); ok {
			t.Error("a is still there")
		}
	})
	t.Run("quiet lists only errors", func(t *testing.T) {
		putKeys(t, c, "dels", "c")
		out, err := c.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: b("dels"), Delete: &types.Delete{Objects: ids("c", "missing"), Quiet: aws.Bool(true)}})
		if err != nil || len(out.Deleted) != 0 || len(out.Errors) != 0 {
			t.Errorf("%+v %v", out, err)
		}
	})
	t.Run("a key that fails is an Error entry", func(t *testing.T) {
		putKeys(t, c, "dels", "d")
		out, err := c.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: b("dels"), Delete: &types.Delete{Objects: append(ids("d"),
			types.ObjectIdentifier{Key: b("e"), VersionId: b("3HL4kqtJlcpXroDTDmJ")})}})
		if err != nil {
			t.Fatal(err)
		}
		if got := deleted(out); !slices.Equal(got, []string{"d"}) || len(out.Errors) != 1 || aws.ToString(out.Errors[0].Key) != "e" ||
			aws.ToString(out.Errors[0].Code) == "" || aws.ToString(out.Errors[0].Message) == "" {
			t.Errorf("Deleted %q Errors %+v", got, out.Errors)
		}
	})
	t.Run("more than 1000 keys is MalformedXML", func(t *testing.T) {
		var keys []string
		for i := range 1001 {
			keys = append(keys, fmt.Sprint(i))
		}
		_, err := c.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: b("dels"), Delete: &types.Delete{Objects: ids(keys...)}})
		wantAPIError(t, err, http.StatusBadRequest, "MalformedXML")
	})
	t.Run("no Content-MD5 or checksum is accepted (S3 requires one)", func(t *testing.T) {
		putKeys(t, c, "dels", "f")
		r := do(t, rawOver(t, ts), "POST", "/dels?delete", strings.NewReader("<Delete><Object><Key>f</Key></Object></Delete>"), nil)
		if r.status != http.StatusOK || !bytes.Contains(r.body, []byte("<Deleted><Key>f</Key></Deleted>")) {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("bucket that does not exist is NoSuchBucket", func(t *testing.T) {
		_, err := c.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: b("nobucket"), Delete: &types.Delete{Objects: ids("a")}})
		wantAPIError(t, err, http.StatusNotFound, "NoSuchBucket")
	})
}

func TestConformanceMultipart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts, c := conformanceServer(t, "mpu")
	b := aws.String
	create := func(key string) string {
		t.Helper()
		out, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: b("mpu"), Key: b(key)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.UploadId)
	}
	part := func(key, id string, n int32, body []byte) types.CompletedPart {
		t.Helper()
		out, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: b("mpu"), Key: b(key), UploadId: b(id), PartNumber: aws.Int32(n), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		return types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag}
	}
	complete := func(key, id string, parts ...types.CompletedPart) error {
		_, err := c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: b("mpu"), Key: b(key), UploadId: b(id),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		return err
	}

	t.Run("ListParts pages by part-number-marker", func(t *testing.T) {
		id := create("parts")
		for n := int32(1); n <= 3; n++ {
			part("parts", id, n, []byte{byte(n)})
		}
		out, err := c.ListParts(ctx, &awss3.ListPartsInput{Bucket: b("mpu"), Key: b("parts"), UploadId: b(id), MaxParts: aws.Int32(2)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Parts) != 2 || !aws.ToBool(out.IsTruncated) || aws.ToString(out.NextPartNumberMarker) != "2" || aws.ToInt32(out.MaxParts) != 2 {
			t.Errorf("page 1: %d parts truncated %v next %q", len(out.Parts), aws.ToBool(out.IsTruncated), aws.ToString(out.NextPartNumberMarker))
		}
		out, err = c.ListParts(ctx, &awss3.ListPartsInput{Bucket: b("mpu"), Key: b("parts"), UploadId: b(id), PartNumberMarker: out.NextPartNumberMarker})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Parts) != 1 || aws.ToInt32(out.Parts[0].PartNumber) != 3 || aws.ToBool(out.IsTruncated) || aws.ToString(out.PartNumberMarker) != "2" {
			t.Errorf("page 2: %+v", out)
		}
		if p := out.Parts[0]; aws.ToInt64(p.Size) != 1 || aws.ToString(p.ETag) != `"`+md5hex([]byte{3})+`"` || p.LastModified == nil {
			t.Errorf("part %+v", p)
		}
	})
	t.Run("ListParts with encoding-type=url encodes the key", func(t *testing.T) {
		id := create("a b+c")
		// The SDK has no EncodingType for ListParts: the request is made by hand.
		r := do(t, rawOver(t, ts), "GET", "/mpu/a%20b%2Bc?encoding-type=url&uploadId="+id, nil, nil)
		if r.status != http.StatusOK || !bytes.Contains(r.body, []byte("<Key>a%20b%2Bc</Key>")) || !bytes.Contains(r.body, []byte("<EncodingType>url</EncodingType>")) {
			t.Errorf("%d %s", r.status, r.body)
		}
		out, err := c.ListParts(ctx, &awss3.ListPartsInput{Bucket: b("mpu"), Key: b("a b+c"), UploadId: b(id)})
		if err != nil || aws.ToString(out.Key) != "a b+c" {
			t.Errorf("Key %q (%v)", aws.ToString(out.Key), err)
		}
	})
	t.Run("ListMultipartUploads pages by key and upload id markers", func(t *testing.T) {
		for _, k := range []string{"up/a", "up/b", "up/c"} {
			create(k)
		}
		var keys []string
		in := &awss3.ListMultipartUploadsInput{Bucket: b("mpu"), Prefix: b("up/"), MaxUploads: aws.Int32(2)}
		for range 10 {
			out, err := c.ListMultipartUploads(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range out.Uploads {
				keys = append(keys, aws.ToString(u.Key))
			}
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
		}
		if !slices.Equal(keys, []string{"up/a", "up/b", "up/c"}) {
			t.Errorf("uploads %q", keys)
		}
	})
	t.Run("ListMultipartUploads with a delimiter counts a common prefix once", func(t *testing.T) {
		for _, k := range []string{"del/a/1", "del/a/2", "del/a/3", "del/b", "del/c/1", "del/d"} {
			create(k)
		}
		var got []string
		in := &awss3.ListMultipartUploadsInput{Bucket: b("mpu"), Prefix: b("del/"), Delimiter: b("/"), MaxUploads: aws.Int32(1)}
		for range 20 {
			out, err := c.ListMultipartUploads(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(out.Uploads) + len(out.CommonPrefixes); n > 1 {
				t.Errorf("%d entries on a page of max-uploads 1", n)
			}
			for _, u := range out.Uploads {
				got = append(got, aws.ToString(u.Key))
			}
			got = append(got, prefixesOf(out.CommonPrefixes)...)
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
		}
		if want := []string{"del/a/", "del/b", "del/c/", "del/d"}; !slices.Equal(got, want) {
			t.Errorf("pages gave %q, want %q", got, want)
		}
	})
	t.Run("part numbers 1 to 10000", func(t *testing.T) {
		id := create("numbers")
		for _, n := range []int32{0, 10001} {
			_, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: b("mpu"), Key: b("numbers"), UploadId: b(id), PartNumber: aws.Int32(n), Body: strings.NewReader("x")})
			wantAPIError(t, err, http.StatusBadRequest, "InvalidArgument")
		}
		part("numbers", id, 10000, []byte("x"))
	})
	t.Run("parts but the last under 5 MiB are EntityTooSmall", func(t *testing.T) {
		id := create("small")
		p1, p2 := part("small", id, 1, []byte("small")), part("small", id, 2, []byte("last"))
		wantAPIError(t, complete("small", id, p1, p2), http.StatusBadRequest, "EntityTooSmall")
		if err := complete("small", id, p1); err != nil {
			t.Errorf("one small part: %v", err)
		}
	})
	t.Run("completion errors", func(t *testing.T) {
		id := create("bad")
		p1 := part("bad", id, 1, bytes.Repeat([]byte("x"), 5<<20))
		p2 := part("bad", id, 2, []byte("y"))
		wantAPIError(t, complete("bad", id), http.StatusBadRequest, "MalformedXML")
		wantAPIError(t, complete("bad", id, p1, types.CompletedPart{PartNumber: aws.Int32(3), ETag: p2.ETag}), http.StatusBadRequest, "InvalidPart")
		wantAPIError(t, complete("bad", id, p1, types.CompletedPart{PartNumber: aws.Int32(2), ETag: p1.ETag}), http.StatusBadRequest, "InvalidPart")
		wantAPIError(t, complete("bad", id, p2, p1), http.StatusBadRequest, "InvalidPartOrder")
		wantAPIError(t, complete("bad", "no-such-upload", p1), http.StatusNotFound, "NoSuchUpload")
		if err := complete("bad", id, p1, p2); err != nil {
			t.Fatal(err)
		}
		out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: b("mpu"), Key: b("bad"), PartNumber: aws.Int32(2)})
		if err != nil {
			t.Fatal(err)
		}
		out.Body.Close()
		if aws.ToInt32(out.PartsCount) != 2 || aws.ToInt64(out.ContentLength) != 1 {
			t.Errorf("part 2: parts %d length %d", aws.ToInt32(out.PartsCount), aws.ToInt64(out.ContentLength))
		}
		_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: b("mpu"), Key: b("bad"), PartNumber: aws.Int32(3)})
		wantAPIError(t, err, http.StatusRequestedRangeNotSatisfiable, "InvalidPartNumber")
	})
	t.Run("abort, list or upload to an unknown upload is NoSuchUpload", func(t *testing.T) {
		_, err := c.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: b("mpu"), Key: b("k"), UploadId: b("no-such-upload")})
		wantAPIError(t, err, http.StatusNotFound, "NoSuchUpload")
		_, err = c.ListParts(ctx, &awss3.ListPartsInput{Bucket: b("mpu"), Key: b("k"), UploadId: b("no-such-upload")})
		wantAPIError(t, err, http.StatusNotFound, "NoSuchUpload")
		_, err = c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: b("mpu"), Key: b("k"), UploadId: b("no-such-upload"), PartNumber: aws.Int32(1), Body: strings.NewReader("x")})
		wantAPIError(t, err, http.StatusNotFound, "NoSuchUpload")
	})
	t.Run("UploadPartCopy range past the source is InvalidArgument", func(t *testing.T) {
		putKeys(t, c, "mpu", "five!")
		id := create("copied")
		_, err := c.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{Bucket: b("mpu"), Key: b("copied"), UploadId: b(id), PartNumber: aws.Int32(1),
			CopySource: b("mpu/five!"), CopySourceRange: b("bytes=0-21")})
		wantAPIError(t, err, http.StatusBadRequest, "InvalidArgument")
		if !strings.Contains(err.Error(), "Range specified is not valid for source object of size: 5") {
			t.Errorf("message: %v", err)
		}
		_, err = c.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{Bucket: b("mpu"), Key: b("copied"), UploadId: b(id), PartNumber: aws.Int32(1),
			CopySource: b("mpu/five!"), CopySourceRange: b("bytes=3-1")})
		wantAPIError(t, err, http.StatusBadRequest, "InvalidArgument")
		if _, err := c.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{Bucket: b("mpu"), Key: b("copied"), UploadId: b(id), PartNumber: aws.Int32(1),
			CopySource: b("mpu/five!"), CopySourceRange: b("bytes=1-4")}); err != nil {
			t.Error(err)
		}
	})
	t.Run("upload in a bucket that does not exist is NoSuchBucket", func(t *testing.T) {
		_, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: b("nobucket"), Key: b("k")})
		wantAPIError(t, err, http.StatusNotFound, "NoSuchBucket")
	})
}

func TestConformanceBuckets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts, c := conformanceServer(t, "full")
	b := aws.String
	t.Run("bucket names", func(t *testing.T) {
		for _, name := range []string{"ab", strings.Repeat("a", 64), "Upper", "under_score", "-dash", "dash-", "dot..dot", "192.168.5.4",
			"xn--punycode", "sthree-x", "name-s3alias", "name--ol-s3", ".dot", "dot."} {
			_, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: b(name)})
			wantAPIError(t, err, http.StatusBadRequest, "InvalidBucketName")
		}
		for _, name := range []string{"abc", strings.Repeat("a", 63), "a.b-c.1", "1234", "192.168.5.x"} {
			if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: b(name)}); err != nil {
				t.Errorf("%q: %v", name, err)
			}
		}
	})
	t.Run("GetBucketLocation", func(t *testing.T) {
		out, err := c.GetBucketLocation(ctx, &awss3.GetBucketLocationInput{Bucket: b("full")})
		if err != nil || out.LocationConstraint != "" {
			t.Errorf("us-east-1: %q %v", out.LocationConstraint, err)
		}
		ts := startServer(t, newFakeBackend(), HandlerOptions{Region: "eu-west-1"}, false)
		ts.be.CreateBucket(ctx, "full")
		out, err = ts.client.GetBucketLocation(ctx, &awss3.GetBucketLocationInput{Bucket: b("full")})
		if err != nil || out.LocationConstraint != "eu-west-1" {
			t.Errorf("eu-west-1: %q %v", out.LocationConstraint, err)
		}
		_, err = c.GetBucketLocation(ctx, &awss3.GetBucketLocationInput{Bucket: b("nobucket")})
		wantAPIError(t, err, http.StatusNotFound, "NoSuchBucket")
	})
	t.Run("CreateBucket in another region is IllegalLocationConstraintException", func(t *testing.T) {
		_, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: b("elsewhere"),
			CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraintEuWest1}})
		wantAPIError(t, err, http.StatusBadRequest, "IllegalLocationConstraintException")
	})
	t.Run("an unsigned request is AccessDenied, even for a bucket that does not exist", func(t *testing.T) {
		for _, target := range []string{"/nobucket/k", "/full/k"} {
			r := do(t, ts, "DELETE", target, nil, nil)
			wantError(t, r, http.StatusForbidden, "AccessDenied", cellNone)
		}
	})
	t.Run("HeadBucket and DeleteBucket", func(t *testing.T) {
		_, err := c.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: b("nobucket")})
		wantAPIError(t, err, http.StatusNotFound, "")
		_, err = c.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: b("nobucket")})
		wantAPIError(t, err, http.StatusNotFound, "NoSuchBucket")
		putKeys(t, c, "full", "k")
		_, err = c.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: b("full")})
		wantAPIError(t, err, http.StatusConflict, "BucketNotEmpty")
	})
}
