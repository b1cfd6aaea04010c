package s3

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestEncryptionRefused(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, HandlerOptions{})
	sseC := map[string]string{
		"x-amz-server-side-encryption-customer-algorithm": "AES256",
		"x-amz-server-side-encryption-customer-key":       "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=",
		"x-amz-server-side-encryption-customer-key-MD5":   "VLr4qdHAn4TRfBBL9dCqdA==",
	}
	for _, tc := range []struct {
		name, method, target string
		hdr                  map[string]string
		says                 string // what the message must name
	}{
		{"PUT SSE-S3", "PUT", "/bkt/new", map[string]string{"x-amz-server-side-encryption": "AES256"}, "SSE-S3"},
		{"PUT SSE-KMS", "PUT", "/bkt/new", map[string]string{"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": "k"}, "SSE-KMS"},
		{"PUT SSE-KMS context", "PUT", "/bkt/new", map[string]string{"x-amz-server-side-encryption-context": "e30="}, "SSE-KMS"},
		{"PUT DSSE-KMS", "PUT", "/bkt/new", map[string]string{"x-amz-server-side-encryption": "aws:kms:dsse"}, "SSE-KMS"},
		{"PUT bucket key", "PUT", "/bkt/new", map[string]string{"x-amz-server-side-encryption-bucket-key-enabled": "true"}, "Bucket Keys"},
		{"PUT SSE-C", "PUT", "/bkt/new", sseC, "SSE-C"},
		{"GET SSE-C", "GET", "/bkt/obj", sseC, "SSE-C"},
		{"HEAD SSE-C", "HEAD", "/bkt/obj", sseC, ""},
		{"CopyObject SSE-S3", "PUT", "/bkt/copy", map[string]string{"x-amz-copy-source": "/bkt/obj", "x-amz-server-side-encryption": "AES256"}, "SSE-S3"},
		{"CopyObject source SSE-C", "PUT", "/bkt/copy", map[string]string{"x-amz-copy-source": "/bkt/obj",
			"x-amz-copy-source-server-side-encryption-customer-algorithm": "AES256"}, "SSE-C"},
		{"CreateMultipartUpload SSE-KMS", "POST", "/bkt/mp?uploads", map[string]string{"x-amz-server-side-encryption": "aws:kms"}, "SSE-KMS"},
		{"UploadPart SSE-C", "PUT", "/bkt/mp?partNumber=1&uploadId=upload-1", sseC, "SSE-C"},
		{"UploadPartCopy source SSE-C", "PUT", "/bkt/mp?partNumber=1&uploadId=upload-1", map[string]string{"x-amz-copy-source": "/bkt/obj",
			"x-amz-copy-source-server-side-encryption-customer-key": "a2V5"}, "SSE-C"},
		{"presigned PUT with SSE in the query", "PUT", "/bkt/new?X-Amz-Server-Side-Encryption=AES256", nil, "SSE-S3"},
		{"PutBucketEncryption", "PUT", "/bkt?encryption", nil, "PutBucketEncryption"},
		{"GetBucketEncryption", "GET", "/bkt?encryption", nil, "GetBucketEncryption"},
		{"DeleteBucketEncryption", "DELETE", "/bkt?encryption", nil, "DeleteBucketEncryption"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.be.committed()
			r := do(t, ts, tc.method, tc.target, strings.NewReader("payload"), tc.hdr)
			wantError(t, r, 501, "NotImplemented", cellNone)
			if tc.method != "HEAD" {
				var e errorResponse
				if err := xml.Unmarshal(r.body, &e); err != nil || !strings.Contains(e.Message, tc.says) {
					t.Errorf("message %q (%v) should name %q", e.Message, err, tc.says)
				}
			}
			if ts.be.committed() != before {
				t.Error("a refused request stored an object")
			}
		})
	}
	if _, ok := ts.be.object("bkt", "new"); ok {
		t.Error("an object refused for its encryption exists")
	}
	if _, ok := ts.be.object("bkt", "copy"); ok {
		t.Error("a copy refused for its encryption exists")
	}
	if _, ups, _, _ := ts.be.ListUploads(t.Context(), "bkt", ListUploadsOptions{MaxUploads: 10}); len(ups) != 0 {
		t.Errorf("a multipart upload refused for its encryption was created: %v", ups)
	}
	// Without the encryption headers the same requests are served.
	if r := do(t, ts, "GET", "/bkt/obj", nil, nil); r.status != 200 || string(r.body) != "hello" {
		t.Errorf("plain GET: %d %s", r.status, r.body)
	}
}
