package s3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cellarsim/cellar/internal/errs"
	"github.com/prometheus/client_golang/prometheus"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// rawResponse is a response read in full.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request with net/http and reads the whole response; every response must
// carry the standard headers.
func do(t *testing.T, ts *testServer, method, target string, body io.Reader, hdr map[string]string) rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, ts.srv.URL+target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Content-Length" {
			fmt.Sscan(v, &req.ContentLength)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := ts.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, target, err)
	}
	checkStandardHeaders(t, method+" "+target, resp)
	return rawResponse{resp.StatusCode, resp.Header, b}
}

// wantError checks an S3 error response: status, code, the request id in the body and
// the headers, the cell, and that no Go error text leaked.
func wantError(t *testing.T, r rawResponse, status int, code, cell string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d (body %s)", r.status, status, r.body)
	}
	if got := r.header.Get(hdrCell); got != cell {
		t.Errorf("%s = %q, want %q", hdrCell, got, cell)
	}
	if len(r.body) == 0 { // HEAD
		return
	}
	var e errorResponse
	if err := xml.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body is not S3 error XML: %v\n%s", err, r.body)
	}
	if e.Code != code {
		t.Errorf("Code %q, want %q (message %q)", e.Code, code, e.Message)
	}
	if e.RequestID == "" || e.RequestID != r.header.Get(hdrRequestID) {
		t.Errorf("RequestId %q, header %q", e.RequestID, r.header.Get(hdrRequestID))
	}
	if e.Message == "" || e.Resource == "" {
		t.Errorf("Message %q Resource %q: both should be set", e.Message, e.Resource)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/xml" {
		t.Errorf("Content-Type %q", ct)
	}
	if bytes.Contains(r.body, []byte("secret")) {
		t.Errorf("error body leaks an internal cause: %s", r.body)
	}
}

func newRawServer(t *testing.T, opts HandlerOptions) *testServer {
	t.Helper()
	if opts.Credentials == nil {
		opts.Credentials = map[string]string{} // raw requests are not signed
	}
	ts := startServer(t, newFakeBackend(), opts, false)
	for _, b := range []string{"bkt", "empty"} {
		if _, err := ts.be.CreateBucket(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if r := do(t, ts, "PUT", "/bkt/obj", strings.NewReader("hello"), nil); r.status != 200 {
		t.Fatalf("seeding: %d %s", r.status, r.body)
	}
	return ts
}

func TestErrorResponses(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, HandlerOptions{})
	cell := ts.be.cellOf("bkt")
	secret := fmt.Errorf("secret: dial tcp 10.9.9.9:7000: connection refused")

	cases := []struct {
		name           string
		method, target string
		body           string
		hdr            map[string]string
		fail           map[string]error // injected backend failures
		status         int
		code           string
		cell           string
	}{
		{name: "NoSuchKey", method: "GET", target: "/bkt/missing", status: 404, code: "NoSuchKey", cell: cell},
		{name: "NoSuchKey HEAD", method: "HEAD", target: "/bkt/missing", status: 404, cell: cell},
		{name: "NoSuchBucket", method: "GET", target: "/nobucket/k", status: 404, code: "NoSuchBucket", cell: ts.be.cellOf("nobucket")},
		{name: "NoSuchBucket list", method: "GET", target: "/nobucket?list-type=2", status: 404, code: "NoSuchBucket", cell: ts.be.cellOf("nobucket")},
		{name: "NoSuchBucket HEAD", method: "HEAD", target: "/nobucket", status: 404, cell: ts.be.cellOf("nobucket")},
		{name: "BucketNotEmpty", method: "DELETE", target: "/bkt", status: 409, code: "BucketNotEmpty", cell: cell},
		{name: "BucketExists us-east-1", method: "PUT", target: "/bkt", status: 200, cell: cell},
		{name: "Unavailable GET", method: "GET", target: "/bkt/obj", fail: map[string]error{"GetObject": errs.Wrap(errs.Unavailable, secret, "The index of %s is unavailable.", cell)},
			status: 503, code: "ServiceUnavailable", cell: cell},
		{name: "Unavailable HEAD", method: "HEAD", target: "/bkt/obj", fail: map[string]error{"HeadObject": errs.Wrap(errs.Unavailable, secret, "down")},
			status: 503, cell: cell},
		{name: "SlowDown PUT", method: "PUT", target: "/bkt/new", body: "x", fail: map[string]error{"PutObject": errs.New(errs.SlowDown, "")},
			status: 503, code: "SlowDown", cell: cell},
		{name: "context deadline", method: "GET", target: "/bkt?list-type=2", fail: map[string]error{"ListObjects": fmt.Errorf("secret: %w", context.DeadlineExceeded)},
			status: 503, code: "ServiceUnavailable", cell: cell},
		{name: "Internal with cause", method: "DELETE", target: "/bkt/obj", fail: map[string]error{"DeleteObject": errs.Wrap(errs.Internal, secret, "secret detail")},
			status: 500, code: "InternalError", cell: cell},
		{name: "plain Go error", method: "GET", target: "/", fail: map[string]error{"ListBuckets": secret},
			status: 500, code: "InternalError", cell: "cell-1,cell-2,cell-3"},
		{name: "InvalidBucketName upper", method: "GET", target: "/Bucket/k", status: 400, code: "InvalidBucketName", cell: cellNone},
		{name: "InvalidBucketName short", method: "PUT", target: "/ab", status: 400, code: "InvalidBucketName", cell: cellNone},
		{name: "InvalidBucketName IP", method: "PUT", target: "/192.168.1.1", status: 400, code: "InvalidBucketName", cell: cellNone},
		{name: "InvalidBucketName underscore", method: "PUT", target: "/my_bucket/k", body: "x", status: 400, code: "InvalidBucketName", cell: cellNone},
		{name: "InvalidBucketName HEAD", method: "HEAD", target: "/-x-", status: 400, cell: cellNone},
		{name: "KeyTooLong", method: "PUT", target: "/bkt/" + strings.Repeat("k", 1025), body: "x", status: 400, code: "KeyTooLongError", cell: cellNone},
		{name: "KeyTooLong multibyte", method: "GET", target: "/bkt/" + strings.Repeat("é", 513), status: 400, code: "KeyTooLongError", cell: cellNone},
		{name: "non-UTF-8 key", method: "PUT", target: "/bkt/bad%FF%FEkey", body: "x", status: 400, code: "InvalidArgument", cell: cellNone},
		{name: "non-UTF-8 prefix", method: "GET", target: "/bkt?list-type=2&prefix=%C3", status: 400, code: "InvalidArgument", cell: cellNone},
		{name: "bad query escape", method: "GET", target: "/bkt?prefix=%zz", status: 400, code: "InvalidArgument", cell: cellNone},
		{name: "policy", method: "GET", target: "/bkt?policy", status: 501, code: "NotImplemented", cell: cellNone},
		{name: "versioning", method: "PUT", target: "/bkt?versioning", body: "<VersioningConfiguration/>", status: 501, code: "NotImplemented", cell: cellNone},
		{name: "uploads in a missing bucket", method: "POST", target: "/nobucket/k?uploads", status: 404, code: "NoSuchBucket", cell: ts.be.cellOf("nobucket")},
		{name: "multi-delete of nothing", method: "POST", target: "/bkt?delete", body: "<Delete/>", status: 400, code: "MalformedXML", cell: cellNone},
		{name: "multi-delete malformed", method: "POST", target: "/bkt?delete", body: "<Delete><Object>", status: 400, code: "MalformedXML", cell: cellNone},
		{name: "complete malformed", method: "POST", target: "/bkt/k?uploadId=x", body: "<CompleteMultipartUpload><Part>", status: 400, code: "MalformedXML", cell: cellNone},
		{name: "complete no parts", method: "POST", target: "/bkt/k?uploadId=x", body: "<CompleteMultipartUpload></CompleteMultipartUpload>", status: 400, code: "MalformedXML", cell: cellNone},
		{name: "NoSuchUpload", method: "POST", target: "/bkt/k?uploadId=x", body: "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>", status: 404, code: "NoSuchUpload", cell: cell},
		{name: "NoSuchUpload part", method: "PUT", target: "/bkt/k?uploadId=x&partNumber=1", body: "x", status: 404, code: "NoSuchUpload", cell: cell},
		{name: "bad part number", method: "PUT", target: "/bkt/k?uploadId=x&partNumber=10001", body: "x", status: 400, code: "InvalidArgument", cell: cellNone},
		{name: "UploadPartCopy NoSuchUpload", method: "PUT", target: "/bkt/k?uploadId=x&partNumber=1", hdr: map[string]string{"x-amz-copy-source": "/bkt/obj"}, status: 404, code: "NoSuchUpload", cell: cell},
		{name: "UploadPartCopy bad range", method: "PUT", target: "/bkt/k?uploadId=x&partNumber=1", hdr: map[string]string{"x-amz-copy-source": "/bkt/obj", "x-amz-copy-source-range": "bytes=3-99"}, status: 400, code: "InvalidArgument", cell: cell},
		{name: "UploadPartCopy malformed range", method: "PUT", target: "/bkt/k?uploadId=x&partNumber=1", hdr: map[string]string{"x-amz-copy-source": "/bkt/obj", "x-amz-copy-source-range": "bytes=3-1"}, status: 400, code: "InvalidArgument", cell: cell},
		{name: "tagging", method: "PUT", target: "/bkt/obj?tagging", body: "<Tagging/>", status: 501, code: "NotImplemented", cell: cellNone},
		{name: "tagging of a missing key", method: "GET", target: "/bkt/missing?tagging", status: 404, code: "NoSuchKey", cell: cell},
		{name: "policy", method: "DELETE", target: "/bkt?policy", status: 501, code: "NotImplemented", cell: cellNone},
		{name: "object acl PUT granting nothing", method: "PUT", target: "/bkt/obj?acl", body: "<AccessControlPolicy/>", status: 400, code: "MalformedXML", cell: cellNone},
		{name: "versionId", method: "GET", target: "/bkt/obj?versionId=3", status: 400, code: "InvalidArgument", cell: cellNone},
		{name: "unknown param", method: "GET", target: "/bkt?list-type=2&frobnicate=1", status: 501, code: "NotImplemented", cell: cellNone},
		{name: "CopyObject missing source", method: "PUT", target: "/bkt/copy", hdr: map[string]string{"x-amz-copy-source": "/bkt/missing"}, status: 404, code: "NoSuchKey", cell: cell},
		{name: "CopyObject bad source", method: "PUT", target: "/bkt/copy", hdr: map[string]string{"x-amz-copy-source": "/bkt"}, status: 400, code: "InvalidArgument", cell: cellNone},
		{name: "CopyObject onto itself", method: "PUT", target: "/bkt/obj", hdr: map[string]string{"x-amz-copy-source": "/bkt/obj"}, status: 400, code: "InvalidRequest", cell: cellNone},
		{name: "CopyObject failed precondition", method: "PUT", target: "/bkt/copy", hdr: map[string]string{"x-amz-copy-source": "/bkt/obj", "x-amz-copy-source-if-match": `"nope"`}, status: 412, code: "PreconditionFailed", cell: cell},
		{name: "conditional PUT exists", method: "PUT", target: "/bkt/obj", body: "y", hdr: map[string]string{"If-None-Match": "*"}, status: 412, code: "PreconditionFailed", cell: cell},
		{name: "conditional PUT If-Match", method: "PUT", target: "/bkt/obj", body: "y", hdr: map[string]string{"If-Match": `"abc"`}, status: 412, code: "PreconditionFailed", cell: cell},
		{name: "conditional PUT If-Match missing", method: "PUT", target: "/bkt/nokey", body: "y", hdr: map[string]string{"If-Match": `"abc"`}, status: 404, code: "NoSuchKey", cell: cell},
		{name: "conditional PUT etag", method: "PUT", target: "/bkt/obj", body: "y", hdr: map[string]string{"If-None-Match": `"abc"`}, status: 501, code: "NotImplemented", cell: cellNone},
		{name: "metadata too large", method: "PUT", target: "/bkt/k", body: "y", hdr: map[string]string{"x-amz-meta-big": strings.Repeat("m", 2100)}, status: 400, code: "MetadataTooLarge", cell: cellNone},
		{name: "headers too large", method: "GET", target: "/bkt/obj", hdr: map[string]string{"x-junk": strings.Repeat("h", 17000)}, status: 400, code: "RequestHeaderSectionTooLarge", cell: cellNone},
		{name: "bad checksum header", method: "PUT", target: "/bkt/k", body: "x", hdr: map[string]string{"x-amz-checksum-crc32": "!!"}, status: 400, code: "InvalidDigest", cell: cellNone},
		{name: "two checksum headers", method: "PUT", target: "/bkt/k", body: "x", hdr: map[string]string{"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha1": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}, status: 400, code: "InvalidRequest", cell: cellNone},
		{name: "checksum mismatch", method: "PUT", target: "/bkt/k", body: "x", hdr: map[string]string{"x-amz-checksum-crc32": "AAAAAA=="}, status: 400, code: "BadDigest", cell: cell},
		{name: "InvalidRange", method: "GET", target: "/bkt/obj", hdr: map[string]string{"Range": "bytes=5-"}, status: 416, code: "InvalidRange", cell: cell},
		{name: "PATCH", method: "PATCH", target: "/bkt/obj", status: 501, code: "NotImplemented", cell: cellNone},
		{name: "POST service", method: "POST", target: "/", status: 501, code: "NotImplemented", cell: cellNone},
		{name: "list-type=1", method: "GET", target: "/bkt?list-type=1", status: 400, code: "InvalidArgument", cell: cellNone},
		{name: "max-keys", method: "GET", target: "/bkt?list-type=2&max-keys=abc", status: 400, code: "InvalidArgument", cell: cellNone},
		{name: "negative max-keys", method: "GET", target: "/bkt?max-keys=-1", status: 400, code: "InvalidArgument", cell: cellNone},
		{name: "continuation-token", method: "GET", target: "/bkt?list-type=2&continuation-token=bm90LWEtdG9rZW4", status: 400, code: "InvalidArgument", cell: cellNone},
		{name: "encoding-type", method: "GET", target: "/bkt?list-type=2&encoding-type=base64", status: 400, code: "InvalidArgument", cell: cellNone},
		{name: "max-buckets", method: "GET", target: "/?max-buckets=0", status: 400, code: "InvalidArgument", cell: cellNone},
		{name: "malformed CreateBucket XML", method: "PUT", target: "/newbucket", body: "<CreateBucketConfiguration><Loc", status: 400, code: "MalformedXML", cell: cellNone},
		{name: "bad Content-MD5", method: "PUT", target: "/bkt/k", body: "x", hdr: map[string]string{"Content-MD5": "not base64!"}, status: 400, code: "InvalidDigest", cell: cellNone},
		{name: "bad x-amz-content-sha256", method: "PUT", target: "/bkt/k", body: "x", hdr: map[string]string{"x-amz-content-sha256": "abc"}, status: 400, code: "InvalidArgument", cell: cellNone},
		{name: "bad decoded length", method: "PUT", target: "/bkt/k", body: "0\r\n\r\n", hdr: map[string]string{"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "-4"}, status: 400, code: "InvalidArgument", cell: cellNone},
		{name: "failed If-Match", method: "GET", target: "/bkt/obj", hdr: map[string]string{"If-Match": `"0123"`}, status: 412, code: "PreconditionFailed", cell: cell},
		{name: "failed If-Unmodified-Since", method: "HEAD", target: "/bkt/obj", hdr: map[string]string{"If-Unmodified-Since": "Mon, 02 Jan 2006 15:04:05 GMT"}, status: 412, cell: cell},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for op, err := range tc.fail {
				ts.be.setFail(op, err)
				defer ts.be.setFail(op, nil)
			}
			before := ts.be.committed()
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r := do(t, ts, tc.method, tc.target, body, tc.hdr)
			wantError(t, r, tc.status, tc.code, tc.cell)
			if tc.method == "HEAD" && len(r.body) != 0 {
				t.Errorf("HEAD error has a body: %s", r.body)
			}
			if wantRetry := tc.status == 503; (r.header.Get("Retry-After") == "1") != wantRetry {
				t.Errorf("Retry-After %q for status %d", r.header.Get("Retry-After"), tc.status)
			}
			if ts.be.committed() != before {
				t.Errorf("a failed request committed an object")
			}
		})
	}
	// Subtests run sequentially (injected failures are shared), so this is safe.
	if data, _ := ts.be.object("bkt", "obj"); string(data) != "hello" {
		t.Errorf("bkt/obj changed to %q", data)
	}
}

func TestRequestIDsUnique(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, HandlerOptions{})
	seen := map[string]bool{}
	for i := range 50 {
		target := "/bkt/obj"
		if i%2 == 1 {
			target = "/bkt/missing"
		}
		r := do(t, ts, "GET", target, nil, nil)
		id := r.header.Get(hdrRequestID)
		if seen[id] || len(id) != 16 {
			t.Fatalf("request id %q repeated or malformed", id)
		}
		seen[id] = true
	}
}

func TestPutBodyChecks(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, HandlerOptions{MaxObjectSize: 4096})
	cell := ts.be.cellOf("bkt")
	payload := []byte("The quick brown fox jumps over the lazy dog")
	md5sum := md5.Sum(payload)
	goodMD5 := base64.StdEncoding.EncodeToString(md5sum[:])
	shaSum := sha256.Sum256(payload)
	wrongSHA := sha256.Sum256([]byte("something else"))
	chunked := func(chunks ...string) string {
		var b strings.Builder
		for _, c := range chunks {
			fmt.Fprintf(&b, "%x;chunk-signature=%064d\r\n%s\r\n", len(c), 0, c)
		}
		fmt.Fprintf(&b, "0;chunk-signature=%064d\r\n\r\n", 0)
		return b.String()
	}
	streaming := func(decoded int) map[string]string {
		return map[string]string{"Content-Encoding": "aws-chunked", "x-amz-content-sha256": streamingSigned,
			"x-amz-decoded-content-length": fmt.Sprint(decoded)}
	}

	cases := []struct {
		name   string
		body   string
		hdr    map[string]string
		status int
		code   string
		cell   string
	}{
		{name: "good Content-MD5", body: string(payload), hdr: map[string]string{"Content-MD5": goodMD5}, status: 200, cell: cell},
		{name: "wrong Content-MD5", body: string(payload), hdr: map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(make([]byte, 16))},
			status: 400, code: "BadDigest", cell: cell},
		{name: "good sha256", body: string(payload), hdr: map[string]string{"x-amz-content-sha256": hex.EncodeToString(shaSum[:])}, status: 200, cell: cell},
		{name: "wrong sha256", body: string(payload), hdr: map[string]string{"x-amz-content-sha256": hex.EncodeToString(wrongSHA[:])},
			status: 400, code: "XAmzContentSHA256Mismatch", cell: cell},
		{name: "unsigned payload", body: string(payload), hdr: map[string]string{"x-amz-content-sha256": unsignedPayload}, status: 200, cell: cell},
		{name: "aws-chunked", body: chunked("The quick brown fox ", "jumps over the lazy dog"), hdr: streaming(len(payload)), status: 200, cell: cell},
		{name: "aws-chunked with MD5", body: chunked(string(payload)), hdr: map[string]string{"Content-Encoding": "aws-chunked",
			"x-amz-decoded-content-length": fmt.Sprint(len(payload)), "Content-MD5": goodMD5}, status: 200, cell: cell},
		{name: "aws-chunked wrong MD5", body: chunked(string(payload)), hdr: map[string]string{"Content-Encoding": "aws-chunked",
			"x-amz-decoded-content-length": fmt.Sprint(len(payload)), "Content-MD5": base64.StdEncoding.EncodeToString(make([]byte, 16))},
			status: 400, code: "BadDigest", cell: cell},
		{name: "aws-chunked shorter than declared", body: chunked("The quick brown fox "), hdr: streaming(len(payload)), status: 400, code: "IncompleteBody", cell: cell},
		{name: "aws-chunked longer than declared", body: chunked(string(payload), "more"), hdr: streaming(len(payload)), status: 400, code: "InvalidArgument", cell: cell},
		{name: "aws-chunked malformed", body: "5\r\nhello\r\nzz\r\n", hdr: streaming(5), status: 400, code: "InvalidArgument", cell: cell},
		{name: "aws-chunked truncated", body: "5\r\nhel", hdr: streaming(5), status: 400, code: "IncompleteBody", cell: cell},
		{name: "aws-chunked over max", body: chunked("x"), hdr: streaming(4097), status: 400, code: "EntityTooLarge", cell: cellNone},
		{name: "Content-Length over max", body: strings.Repeat("x", 4097), status: 400, code: "EntityTooLarge", cell: cellNone},
		{name: "at max", body: strings.Repeat("x", 4096), status: 200, cell: cell},
		{name: "unknown length over max", body: strings.Repeat("x", 5000), hdr: map[string]string{"Content-Length": "-1"}, status: 400, code: "EntityTooLarge", cell: cell},
		{name: "unknown length aws-chunked over max", body: chunked(strings.Repeat("y", 3000), strings.Repeat("y", 3000)),
			hdr: map[string]string{"Content-Encoding": "aws-chunked", "Content-Length": "-1"}, status: 400, code: "EntityTooLarge", cell: cell},
		{name: "unknown length", body: string(payload), hdr: map[string]string{"Content-Length": "-1"}, status: 200, cell: cell},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := "put-" + strings.ReplaceAll(tc.name, " ", "-")
			before := ts.be.committed()
			r := do(t, ts, "PUT", "/bkt/"+key, strings.NewReader(tc.body), tc.hdr)
			if tc.status != 200 {
				wantError(t, r, tc.status, tc.code, tc.cell)
				if ts.be.committed() != before {
					t.Error("a rejected upload was committed")
				}
				if _, ok := ts.be.object("bkt", key); ok {
					t.Error("the object exists after a rejected upload")
				}
				return
			}
			if r.status != 200 || r.header.Get(hdrCell) != tc.cell {
				t.Fatalf("status %d cell %q: %s", r.status, r.header.Get(hdrCell), r.body)
			}
			data, _ := ts.be.object("bkt", key)
			if wantLen := len(tc.body); !strings.Contains(tc.name, "aws-chunked") && len(data) != wantLen {
				t.Errorf("stored %d bytes, want %d", len(data), wantLen)
			}
			if r.header.Get("ETag") != `"`+md5hex(data)+`"` {
				t.Errorf("ETag %s for %d stored bytes", r.header.Get("ETag"), len(data))
			}
			if strings.Contains(tc.name, "aws-chunked") && !bytes.Equal(data, payload) {
				t.Errorf("stored %q", data)
			}
		})
	}
}

// rawExchange writes a request on a fresh TCP connection, optionally half-closes it,
// and reads one response.
func rawExchange(t *testing.T, ts *testServer, request string, closeWrite bool) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", ts.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	if closeWrite {
		conn.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	checkStandardHeaders(t, "raw request", resp)
	return resp, body
}

func TestIncompleteBodyContentLength(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, HandlerOptions{})
	before := ts.be.committed()
	resp, body := rawExchange(t, ts, "PUT /bkt/short HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("a", 50), true)
	wantError(t, rawResponse{resp.StatusCode, resp.Header, body}, 400, "IncompleteBody", ts.be.cellOf("bkt"))
	if ts.be.committed() != before {
		t.Error("a short upload was committed")
	}
	if _, ok := ts.be.object("bkt", "short"); ok {
		t.Error("the object exists after a short upload")
	}
}

// TestExpectContinue checks that an upload refused up front is refused before the client
// sends its body, and that an accepted one gets 100 Continue.
func TestExpectContinue(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, HandlerOptions{MaxObjectSize: 1 << 20})
	resp, body := rawExchange(t, ts, "PUT /bkt/big HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n", false)
	wantError(t, rawResponse{resp.StatusCode, resp.Header, body}, 400, "EntityTooLarge", cellNone)

	resp, body = rawExchange(t, ts, "PUT /nobucket/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", false)
	wantError(t, rawResponse{resp.StatusCode, resp.Header, body}, 404, "NoSuchBucket", ts.be.cellOf("nobucket"))

	conn, err := net.Dial("tcp", ts.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "PUT /bkt/cont HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("before the body: got %q, %v; want 100 Continue", line, err)
	}
	br.ReadString('\n') // the blank line ending the interim response
	io.WriteString(conn, "hello")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the body: %v %v", resp, err)
	}
	if data, _ := ts.be.object("bkt", "cont"); string(data) != "hello" {
		t.Errorf("stored %q", data)
	}
}

func TestGetAndHeadHeaders(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, HandlerOptions{})
	cell := ts.be.cellOf("bkt")
	if r := do(t, ts, "PUT", "/bkt/typed", strings.NewReader("<p>hi</p>"), map[string]string{"Content-Type": "text/html"}); r.status != 200 {
		t.Fatal(r.status)
	}
	for _, method := range []string{"GET", "HEAD"} {
		r := do(t, ts, method, "/bkt/obj", nil, nil)
		if r.status != 200 || r.header.Get(hdrCell) != cell {
			t.Fatalf("%s: %d cell %q", method, r.status, r.header.Get(hdrCell))
		}
		want := map[string]string{
			"ETag":           `"` + md5hex([]byte("hello")) + `"`,
			"Content-Length": "5",
			"Content-Type":   defaultContentType,
			"Accept-Ranges":  "bytes",
		}
		for k, v := range want {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s %s = %q, want %q", method, k, got, v)
			}
		}
		if _, err := time.Parse(http.TimeFormat, r.header.Get("Last-Modified")); err != nil {
			t.Errorf("%s Last-Modified %q: %v", method, r.header.Get("Last-Modified"), err)
		}
		if method == "GET" && string(r.body) != "hello" {
			t.Errorf("GET body %q", r.body)
		}
		if method == "HEAD" && len(r.body) != 0 {
			t.Errorf("HEAD body %q", r.body)
		}
	}
	r := do(t, ts, "GET", "/bkt/typed?response-content-disposition=attachment&x-id=GetObject", nil, nil)
	if r.header.Get("Content-Type") != "text/html" || r.header.Get("Content-Disposition") != "attachment" {
		t.Errorf("headers %v", r.header)
	}
	r = do(t, ts, "GET", "/bkt/typed?response-content-type=text/plain", nil, nil)
	if r.header.Get("Content-Type") != "text/plain" {
		t.Errorf("response-content-type ignored: %v", r.header)
	}
	// Conditional and range requests.
	etag := `"` + md5hex([]byte("hello")) + `"`
	if r := do(t, ts, "GET", "/bkt/obj", nil, map[string]string{"If-None-Match": etag}); r.status != 304 || len(r.body) != 0 {
		t.Errorf("If-None-Match: %d %q", r.status, r.body)
	}
	if r := do(t, ts, "GET", "/bkt/obj", nil, map[string]string{"If-None-Match": `"other"`}); r.status != 200 {
		t.Errorf("If-None-Match other: %d", r.status)
	}
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	if r := do(t, ts, "HEAD", "/bkt/obj", nil, map[string]string{"If-Modified-Since": future}); r.status != 304 {
		t.Errorf("If-Modified-Since the future: %d", r.status)
	}
	for rng, want := range map[string]string{"bytes=1-3": "ell", "bytes=-2": "lo", "bytes=3-": "lo"} {
		r := do(t, ts, "GET", "/bkt/obj", nil, map[string]string{"Range": rng})
		if r.status != 206 || string(r.body) != want || r.header.Get("Content-Length") != fmt.Sprint(len(want)) {
			t.Errorf("Range %s: %d %q", rng, r.status, r.body)
		}
	}
	for _, rng := range []string{"bytes=3-1", "bytes=0-1,3-4", "items=0-1", "bytes=x-y"} {
		r := do(t, ts, "GET", "/bkt/obj", nil, map[string]string{"Range": rng})
		if r.status != 200 || string(r.body) != "hello" {
			t.Errorf("Range %s: %d %q; want the whole object", rng, r.status, r.body)
		}
	}
	if n := ts.be.openBodies.Load(); n != 0 {
		t.Errorf("%d GetObject bodies left open", n)
	}
}

func TestDeleteIdempotent(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, HandlerOptions{})
	for range 2 {
		if r := do(t, ts, "DELETE", "/bkt/obj", nil, nil); r.status != 204 || r.header.Get(hdrCell) != ts.be.cellOf("bkt") {
			t.Errorf("DELETE: %d %s", r.status, r.body)
		}
	}
	if r := do(t, ts, "DELETE", "/empty", nil, nil); r.status != 204 {
		t.Errorf("DELETE bucket: %d %s", r.status, r.body)
	}
}

func TestListRaw(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, HandlerOptions{})
	for _, k := range []string{"a/1", "a/2", "b", "c d", "e/1"} {
		do(t, ts, "PUT", "/empty/"+k, strings.NewReader("x"), nil)
	}
	var res listBucketResult
	r := do(t, ts, "GET", "/empty?max-keys=0&list-type=2", nil, nil)
	if err := xml.Unmarshal(r.body, &res); err != nil || r.status != 200 || res.KeyCount == nil || *res.KeyCount != 0 || res.IsTruncated {
		t.Errorf("max-keys=0: %d %s", r.status, r.body)
	}
	// v1 with a delimiter: NextMarker is the last entry; Marker is echoed.
	r = do(t, ts, "GET", "/empty?delimiter=/&max-keys=2&marker=a", nil, nil)
	res = listBucketResult{}
	if err := xml.Unmarshal(r.body, &res); err != nil {
		t.Fatal(err)
	}
	if res.Marker == nil || *res.Marker != "a" || !res.IsTruncated || res.NextMarker != "b" || res.KeyCount != nil ||
		len(res.CommonPrefixes) != 1 || res.CommonPrefixes[0].Prefix != "a/" || len(res.Contents) != 1 {
		t.Errorf("v1 listing: %s", r.body)
	}
	// v1 without a delimiter has no NextMarker.
	r = do(t, ts, "GET", "/empty?max-keys=1", nil, nil)
	if bytes.Contains(r.body, []byte("NextMarker")) || !bytes.Contains(r.body, []byte("<IsTruncated>true</IsTruncated>")) {
		t.Errorf("v1 listing without delimiter: %s", r.body)
	}
	// encoding-type=url encodes keys, prefixes and the delimiter.
	r = do(t, ts, "GET", "/empty?list-type=2&encoding-type=url&prefix=c%20&start-after=b", nil, nil)
	if !bytes.Contains(r.body, []byte("<Key>c%20d</Key>")) || !bytes.Contains(r.body, []byte("<Prefix>c%20</Prefix>")) ||
		!bytes.Contains(r.body, []byte("<EncodingType>url</EncodingType>")) || !bytes.Contains(r.body, []byte("<StartAfter>b</StartAfter>")) {
		t.Errorf("url-encoded listing: %s", r.body)
	}
	// A continuation token round-trips and is echoed.
	r = do(t, ts, "GET", "/empty?list-type=2&max-keys=2", nil, nil)
	res = listBucketResult{}
	xml.Unmarshal(r.body, &res)
	if !res.IsTruncated || res.NextContToken == "" {
		t.Fatalf("first page: %s", r.body)
	}
	r = do(t, ts, "GET", "/empty?list-type=2&max-keys=2&continuation-token="+res.NextContToken, nil, nil)
	res2 := listBucketResult{}
	xml.Unmarshal(r.body, &res2)
	if res2.ContToken != res.NextContToken || len(res2.Contents) != 2 || res2.Contents[0].Key != "b" {
		t.Errorf("second page: %s", r.body)
	}
	// GetBucketLocation.
	r = do(t, ts, "GET", "/empty?location", nil, nil)
	if r.status != 200 || !bytes.Contains(r.body, []byte("<LocationConstraint")) {
		t.Errorf("location: %d %s", r.status, r.body)
	}
}

// failingBody returns some bytes, then an error, as a storage node dying mid-read would.
type failingBody struct {
	data []byte
	err  error
}

func (f *failingBody) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func (f *failingBody) Close() error { return nil }

type midStreamBackend struct{ *fakeBackend }

func (m midStreamBackend) GetObject(ctx context.Context, in GetInput) (string, ObjectInfo, io.ReadCloser, error) {
	cell, info, body, err := m.fakeBackend.GetObject(ctx, in)
	if err != nil {
		return cell, info, nil, err
	}
	body.Close()
	return cell, info, &failingBody{data: make([]byte, info.Size/2), err: errs.New(errs.Unavailable, "storage node gone")}, nil
}

func TestGetFailsMidStream(t *testing.T) {
	t.Parallel()
	fb := newFakeBackend()
	reg := prometheus.NewRegistry()
	ts := startServerOn(t, midStreamBackend{fb}, fb, HandlerOptions{Registerer: reg, Credentials: map[string]string{}}, false)
	fb.CreateBucket(context.Background(), "bkt")
	fb.PutObject(context.Background(), PutInput{Bucket: "bkt", Key: "big", Size: 1 << 20, Body: bytes.NewReader(make([]byte, 1<<20))})

	resp, err := ts.srv.Client().Get(ts.srv.URL + "/bkt/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n >= 1<<20 {
		t.Errorf("client read %d bytes with err %v; want a truncated body", n, err)
	}
	// A failure before the response starts is a clean S3 error without the headers
	// of the success that did not happen.
	fb.setFail("GetObject", errs.New(errs.Unavailable, "storage node gone"))
	r := do(t, ts, "GET", "/bkt/big", nil, map[string]string{"Range": "bytes=800000-"})
	wantError(t, r, 503, "ServiceUnavailable", fb.cellOf("bkt"))
	for _, h := range []string{"ETag", "Content-Range", "Last-Modified", "Accept-Ranges"} {
		if v := r.header.Get(h); v != "" {
			t.Errorf("error response has %s: %s", h, v)
		}
	}
	got := gatherCounts(t, reg, "cellar_gateway_requests_total")
	if want := map[string]float64{fb.cellOf("bkt") + " GetObject ServiceUnavailable": 2}; !maps.Equal(got, want) {
		t.Errorf("requests_total = %v, want %v", got, want)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	ts := newRawServer(t, HandlerOptions{Registerer: reg})
	// A second handler on the same registry shares the collectors.
	NewHandler(ts.be, HandlerOptions{Registerer: reg})
	cell := ts.be.cellOf("bkt")
	do(t, ts, "GET", "/bkt/obj", nil, nil)
	do(t, ts, "GET", "/bkt/missing", nil, nil)
	do(t, ts, "GET", "/BAD/x", nil, nil)
	do(t, ts, "GET", "/bkt?policy", nil, nil)
	got := gatherCounts(t, reg, "cellar_gateway_requests_total")
	want := map[string]float64{
		cell + " GetObject NoSuchKey":      1,
		cell + " GetObject ok":             1,
		cell + " PutObject ok":             1,
		"none GetObject InvalidBucketName": 1,
		"none Unknown NotImplemented":      1,
	}
	if !maps.Equal(got, want) {
		t.Errorf("requests_total = %v, want %v", got, want)
	}
	durations := gatherCounts(t, reg, "cellar_gateway_request_duration_seconds")
	if want := map[string]float64{cell + " GetObject": 2, cell + " PutObject": 1, "none GetObject": 1, "none Unknown": 1}; !maps.Equal(durations, want) {
		t.Errorf("request_duration_seconds counts = %v, want %v", durations, want)
	}
}

// gatherCounts returns, for each series of a counter or histogram, its value or sample
// count, keyed by its label values joined with spaces in label-name order.
func gatherCounts(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() { // sorted by name: cell, operation, outcome
				labels = append(labels, l.GetValue())
			}
			v := m.GetCounter().GetValue()
			if h := m.GetHistogram(); h != nil {
				v = float64(h.GetSampleCount())
			}
			out[strings.Join(labels, " ")] = v
		}
	}
	return out
}

type panickingBackend struct{ *fakeBackend }

func (panickingBackend) HeadObject(context.Context, string, string) (string, ObjectInfo, error) {
	panic("secret: nil map in backend")
}

func TestBackendPanic(t *testing.T) {
	t.Parallel()
	fb := newFakeBackend()
	ts := startServerOn(t, panickingBackend{fb}, fb, HandlerOptions{Credentials: map[string]string{}}, false)
	r := do(t, ts, "HEAD", "/bkt/k", nil, nil)
	wantError(t, r, 500, "", cellNone)
	r = do(t, ts, "GET", "/bkt/k?response-content-type=x", nil, nil)
	wantError(t, r, 404, "NoSuchBucket", fb.cellOf("bkt"))
}
