package s3

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRequestBodies sends arbitrary bodies to every operation that parses one: the
// gateway answers each with a success or a 4xx, never a 5xx or a panic, and a refused
// request commits nothing.
func FuzzRequestBodies(f *testing.F) {
	for _, s := range []string{
		"<Delete><Object><Key>a</Key></Object></Delete>",
		`<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet><Object><Key>a</Key><VersionId>null</VersionId></Object></Delete>`,
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"x\"</ETag></Part></CompleteMultipartUpload>",
		"<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>",
		"5;chunk-signature=00\r\nhello\r\n0\r\n\r\n",
		"<Delete><Object><Key>\xff</Key></Object></Delete>",
		"",
	} {
		f.Add(s)
	}
	be := newFakeBackend()
	be.CreateBucket(context.Background(), "bkt")
	h := NewHandler(be, HandlerOptions{Logger: discardLogger(), Credentials: map[string]string{}, MaxObjectSize: 1 << 20})
	f.Fuzz(func(t *testing.T, body string) {
		for _, tc := range []struct {
			method, target string
			hdr            map[string]string
		}{
			{"POST", "/bkt?delete", nil},
			{"POST", "/bkt/k?uploadId=upload-1", nil},
			{"PUT", "/fuzzbucket", nil},
			{"PUT", "/bkt/chunked", map[string]string{"Content-Encoding": "aws-chunked", "x-amz-content-sha256": streamingUnsignedTrailer,
				"x-amz-trailer": "x-amz-checksum-crc32"}},
			{"PUT", "/bkt/copy", map[string]string{"x-amz-copy-source": body}},
		} {
			before := be.committed()
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(body))
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("%s %s with %q: %d %s", tc.method, tc.target, body, w.Code, w.Body)
			}
			if w.Code >= 300 && be.committed() != before {
				t.Fatalf("%s %s with %q: refused with %d but committed", tc.method, tc.target, body, w.Code)
			}
			if w.Code < 300 && tc.method == "PUT" && tc.target == "/fuzzbucket" {
				be.DeleteBucket(context.Background(), "fuzzbucket")
			}
		}
	})
}
