package s3

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cellarsim/cellar/internal/errs"
)

func TestParseRequest(t *testing.T) {
	cases := []struct {
		method, target string
		hdr            map[string]string
		op             operation
		bucket, key    string
		kind           errs.Kind // when err
		err            bool
	}{
		{method: "GET", target: "/", op: opListBuckets},
		{method: "GET", target: "/?x-id=ListBuckets&max-buckets=5", op: opListBuckets},
		{method: "GET", target: "/bkt", op: opListObjects, bucket: "bkt"},
		{method: "GET", target: "/bkt/", op: opListObjects, bucket: "bkt"},
		{method: "GET", target: "/bkt?list-type=2&prefix=a&delimiter=%2F", op: opListObjectsV2, bucket: "bkt"},
		{method: "GET", target: "/bkt?list-type=2&fetch-owner=true&start-after=a&encoding-type=url&max-keys=3", op: opListObjectsV2, bucket: "bkt"},
		{method: "GET", target: "/bkt?location", op: opGetBucketLocation, bucket: "bkt"},
		{method: "PUT", target: "/bkt", op: opCreateBucket, bucket: "bkt"},
		{method: "HEAD", target: "/bkt", op: opHeadBucket, bucket: "bkt"},
		{method: "DELETE", target: "/bkt/", op: opDeleteBucket, bucket: "bkt"},
		{method: "PUT", target: "/bkt/a/b/c?x-id=PutObject", op: opPutObject, bucket: "bkt", key: "a/b/c"},
		{method: "GET", target: "/bkt/a%20b/%E6%97%A5%E6%9C%AC", op: opGetObject, bucket: "bkt", key: "a b/日本"},
		{method: "GET", target: "/bkt/a%2Fb", op: opGetObject, bucket: "bkt", key: "a/b"},
		{method: "GET", target: "/bkt/a+b", op: opGetObject, bucket: "bkt", key: "a+b"},
		{method: "GET", target: "/bkt//double", op: opGetObject, bucket: "bkt", key: "/double"},
		{method: "GET", target: "/bkt/../x", op: opGetObject, bucket: "bkt", key: "../x"},
		{method: "HEAD", target: "/bkt/k?response-content-type=a&X-Amz-Signature=abc", op: opHeadObject, bucket: "bkt", key: "k"},
		{method: "DELETE", target: "/bkt/k", op: opDeleteObject, bucket: "bkt", key: "k"},

		{method: "GET", target: "/bkt?policy", op: opUnknown, bucket: "bkt", err: true, kind: errs.NotImplemented},
		{method: "GET", target: "/bkt?acl", op: opGetBucketACL, bucket: "bkt"},
		{method: "PUT", target: "/bkt?acl", op: opPutBucketACL, bucket: "bkt"},
		{method: "GET", target: "/bkt/k?acl", op: opGetObjectACL, bucket: "bkt", key: "k"},
		{method: "PUT", target: "/bkt/k?acl&versionId=null", op: opPutObjectACL, bucket: "bkt", key: "k"},
		{method: "PUT", target: "/bkt/k?tagging", op: opPutObjectTagging, bucket: "bkt", key: "k"},
		{method: "DELETE", target: "/bkt/k?tagging", op: opDeleteObjectTagging, bucket: "bkt", key: "k"},
		{method: "PUT", target: "/bkt?tagging", op: opPutBucketTagging, bucket: "bkt"},
		{method: "GET", target: "/bkt?cors", op: opGetBucketCors, bucket: "bkt"},
		{method: "DELETE", target: "/bkt?lifecycle", op: opDeleteBucketLifecycle, bucket: "bkt"},
		{method: "PUT", target: "/bkt?lifecycle&x-id=PutBucketLifecycleConfiguration", op: opPutBucketLifecycle, bucket: "bkt"},
		{method: "PUT", target: "/bkt?lifecycle&prefix=a", op: opUnknown, bucket: "bkt", err: true, kind: errs.NotImplemented},
		{method: "OPTIONS", target: "/bkt/k", op: opPreflight, bucket: "bkt", key: "k"},
		{method: "OPTIONS", target: "/", op: opUnknown, err: true, kind: errs.NotImplemented},
		{method: "PUT", target: "/bkt/k", hdr: map[string]string{"X-Amz-Copy-Source": "/a/b"}, op: opCopyObject, bucket: "bkt", key: "k"},
		{method: "POST", target: "/bkt/k?uploads", op: opCreateUpload, bucket: "bkt", key: "k"},
		{method: "PUT", target: "/bkt/k?partNumber=1&uploadId=u", op: opUploadPart, bucket: "bkt", key: "k"},
		{method: "PUT", target: "/bkt/k?partNumber=1&uploadId=u", hdr: map[string]string{"X-Amz-Copy-Source": "/a/b"}, op: opUploadPartCopy, bucket: "bkt", key: "k"},
		{method: "POST", target: "/bkt/k?uploadId=u", op: opCompleteUpload, bucket: "bkt", key: "k"},
		{method: "DELETE", target: "/bkt/k?uploadId=u", op: opAbortUpload, bucket: "bkt", key: "k"},
		{method: "GET", target: "/bkt/k?uploadId=u&max-parts=3", op: opListParts, bucket: "bkt", key: "k"},
		{method: "GET", target: "/bkt?uploads&prefix=a", op: opListUploads, bucket: "bkt"},
		{method: "GET", target: "/bkt?versions&key-marker=a", op: opListObjectVersions, bucket: "bkt"},
		{method: "GET", target: "/bkt?versioning", op: opGetBucketVersioning, bucket: "bkt"},
		{method: "POST", target: "/bkt?delete", op: opDeleteObjects, bucket: "bkt"},
		{method: "GET", target: "/bkt/k?versionId=null", op: opGetObject, bucket: "bkt", key: "k"},
		{method: "GET", target: "/bkt/k?versionId=3", op: opGetObject, bucket: "bkt", key: "k"}, // refused by the handler unless the backend has versioning
		{method: "POST", target: "/bkt/k", op: opUnknown, bucket: "bkt", key: "k", err: true, kind: errs.NotImplemented},
		{method: "HEAD", target: "/", op: opUnknown, err: true, kind: errs.NotImplemented},
		{method: "GET", target: "//key", op: opUnknown, key: "key", err: true, kind: errs.InvalidBucketName},
		{method: "GET", target: "/BKT/k", op: opGetObject, bucket: "BKT", key: "k", err: true, kind: errs.InvalidBucketName},
		{method: "GET", target: "/bkt/" + strings.Repeat("x", 1025), op: opGetObject, bucket: "bkt", key: strings.Repeat("x", 1025), err: true, kind: errs.KeyTooLong},
		{method: "GET", target: "/bkt/%C0%AF", op: opGetObject, bucket: "bkt", key: "\xc0\xaf", err: true, kind: errs.InvalidArgument},
		{method: "GET", target: "/bkt?a=%", op: opUnknown, err: true, kind: errs.InvalidArgument},
		{method: "GET", target: "/bkt?list-type=3", op: opListObjectsV2, bucket: "bkt", err: true, kind: errs.InvalidArgument},
	}
	for _, tc := range cases {
		u, err := url.ParseRequestURI(tc.target)
		if err != nil {
			t.Fatalf("%s: %v", tc.target, err)
		}
		hdr := http.Header{}
		for k, v := range tc.hdr {
			hdr.Set(k, v)
		}
		req, err := parseRequest(tc.method, u, hdr)
		if req.op != tc.op || req.bucket != tc.bucket || req.key != tc.key {
			t.Errorf("%s %s: op %v bucket %q key %q; want %v %q %q", tc.method, tc.target, req.op, req.bucket, req.key, tc.op, tc.bucket, tc.key)
		}
		if (err != nil) != tc.err || err != nil && errs.KindOf(err) != tc.kind {
			t.Errorf("%s %s: error %v, want kind %v (error expected: %v)", tc.method, tc.target, err, tc.kind, tc.err)
		}
	}
}

func TestValidateBucketName(t *testing.T) {
	good := []string{"abc", "my-bucket", "my.bucket.name", "a1b", "123", strings.Repeat("a", 63), "1.2.3", "192.168.1.1a"}
	bad := []string{"", "ab", strings.Repeat("a", 64), "Abc", "a_b", "-ab", "ab-", ".ab", "ab.", "a..b", "192.168.1.1",
		"xn--abc", "sthree-x", "amzn-s3-demo-x", "abc-s3alias", "abc--ol-s3", "abc.mrap", "abc--x-s3", "abc--table-s3", "a b", "ab\x00"}
	for _, n := range good {
		if err := validateBucketName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range bad {
		if err := validateBucketName(n); !errs.Is(err, errs.InvalidBucketName) {
			t.Errorf("%q accepted (%v)", n, err)
		}
	}
}

// FuzzParseRequest checks that parsing any request line never panics, that what it
// accepts is valid, and that what it refuses is the client's fault, not an internal error.
func FuzzParseRequest(f *testing.F) {
	for _, s := range [][2]string{
		{"GET", "/"},
		{"GET", "/bkt?list-type=2&prefix=a%2F&delimiter=%2F&continuation-token=YzE6YQ"},
		{"PUT", "/bkt/some/key%20with%20space?x-id=PutObject"},
		{"HEAD", "/bkt/%E6%97%A5"},
		{"DELETE", "/bkt?policy"},
		{"POST", "/bkt/k?uploads="},
		{"GET", "/bkt/%FF?versionId=1"},
		{"GET", "//"},
		{"GET", "//0"},
		{"GET", "/a.b/c?acl&x-amz-a=b"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		req, err := parseRequest(method, u, http.Header{})
		_ = req.op.String()
		if err != nil {
			status, code, _ := errs.S3(err)
			if status >= 500 && status != http.StatusNotImplemented {
				t.Fatalf("%s %q: %d %s (%v)", method, target, status, code, err)
			}
			return
		}
		if req.op == opUnknown {
			t.Fatalf("%s %q: accepted with no operation", method, target)
		}
		if req.bucket != "" && validateBucketName(req.bucket) != nil {
			t.Fatalf("%s %q: accepted bucket %q", method, target, req.bucket)
		}
		if req.bucket == "" && req.op != opListBuckets {
			t.Fatalf("%s %q: %v without a bucket", method, target, req.op)
		}
		if len(req.key) > maxKeyLen || !utf8.ValidString(req.key) {
			t.Fatalf("%s %q: accepted key %q", method, target, req.key)
		}
		keyOps := []operation{opPutObject, opGetObject, opHeadObject, opDeleteObject, opCopyObject, opCreateUpload,
			opUploadPart, opCompleteUpload, opAbortUpload, opListParts, opUploadPartCopy, opGetObjectTagging, opGetObjectACL, opPutObjectACL,
			opPutObjectTagging, opDeleteObjectTagging}
		if (req.key != "") != slices.Contains(keyOps, req.op) && req.op != opPreflight {
			t.Fatalf("%s %q: key %q for %v", method, target, req.key, req.op)
		}
	})
}
