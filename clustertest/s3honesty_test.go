package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/cellarsim/cellar/internal/testwait"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// What the gateway must not pretend to do, against a whole cluster: serve requests
// for encryption it does not do, store a full-object checksum as a composite one,
// hand non-ASCII metadata to clients in a form they misread, or blame a cell for a
// client that hung up.

func TestS3NeverPretends(t *testing.T) {
	cl := Start(t, topology(2))
	t.Run("encryption refused", func(t *testing.T) { encryptionRefused(t, cl) })
	t.Run("full-object checksums", func(t *testing.T) { fullObjectChecksums(t, cl) })
	t.Run("metadata and content encoding", func(t *testing.T) { metadataAsStored(t, cl) })
	t.Run("client cancellation", func(t *testing.T) { clientCancellation(t, cl) })
}

// wantCode fails the test unless err is the S3 error "<status> <code>".
func wantCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := codeString(err); got != want {
		t.Errorf("%s: %s (%v), want %s", what, got, err, want)
	}
}

func encryptionRefused(t *testing.T, cl *Cluster) {
	ctx := context.Background()
	c := cl.S3()
	const bucket = "sse-bucket"
	mustCreateBucket(t, c, bucket)
	if err := put(ctx, c, bucket, "plain", []byte("stored unencrypted")); err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{7}, 32)
	keyMD5 := md5.Sum(key)
	sseC := struct{ alg, key, md5 *string }{aws.String("AES256"), aws.String(base64.StdEncoding.EncodeToString(key)),
		aws.String(base64.StdEncoding.EncodeToString(keyMD5[:]))}
	b, k := aws.String(bucket), aws.String("secret")
	const notImplemented = "501 NotImplemented"

	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("x"), ServerSideEncryption: types.ServerSideEncryptionAes256})
	wantCode(t, "PutObject SSE-S3", err, notImplemented)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("x"), ServerSideEncryption: types.ServerSideEncryptionAwsKms,
		SSEKMSKeyId: aws.String("alias/cellar"), BucketKeyEnabled: aws.Bool(true)})
	wantCode(t, "PutObject SSE-KMS", err, notImplemented)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("x"),
		SSECustomerAlgorithm: sseC.alg, SSECustomerKey: sseC.key, SSECustomerKeyMD5: sseC.md5})
	wantCode(t, "PutObject SSE-C", err, notImplemented)
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("plain"),
		SSECustomerAlgorithm: sseC.alg, SSECustomerKey: sseC.key, SSECustomerKeyMD5: sseC.md5})
	wantCode(t, "GetObject SSE-C", err, notImplemented)
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("plain"),
		SSECustomerAlgorithm: sseC.alg, SSECustomerKey: sseC.key, SSECustomerKeyMD5: sseC.md5})
	wantCode(t, "HeadObject SSE-C", err, notImplemented)
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: k, CopySource: aws.String(bucket + "/plain"), ServerSideEncryption: types.ServerSideEncryptionAes256})
	wantCode(t, "CopyObject SSE-S3", err, notImplemented)
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: k, CopySource: aws.String(bucket + "/plain"),
		CopySourceSSECustomerAlgorithm: sseC.alg, CopySourceSSECustomerKey: sseC.key, CopySourceSSECustomerKeyMD5: sseC.md5})
	wantCode(t, "CopyObject with a copy-source SSE-C key", err, notImplemented)
	_, err = c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k, ServerSideEncryption: types.ServerSideEncryptionAwsKms})
	wantCode(t, "CreateMultipartUpload SSE-KMS", err, notImplemented)
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(1),
		Body: strings.NewReader("part"), SSECustomerAlgorithm: sseC.alg, SSECustomerKey: sseC.key, SSECustomerKeyMD5: sseC.md5})
	wantCode(t, "UploadPart SSE-C", err, notImplemented)
	_, err = c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: b, ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{
		Rules: []types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAes256}}}}})
	wantCode(t, "PutBucketEncryption", err, notImplemented)
	_, err = c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: b})
	wantCode(t, "GetBucketEncryption", err, notImplemented)
	_, err = c.DeleteBucketEncryption(ctx, &s3.DeleteBucketEncryptionInput{Bucket: b})
	wantCode(t, "DeleteBucketEncryption", err, notImplemented)

	// Nothing was stored for any of them.
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: k}); codeString(err) != "404 NotFound" {
		t.Errorf("an object refused for its encryption exists: %s", codeString(err))
	}
	parts, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("mp"), UploadId: up.UploadId})
	if err != nil || len(parts.Parts) != 0 {
		t.Errorf("a part refused for its encryption was stored: %v %v", parts, err)
	}
	uploads, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b})
	if err != nil || len(uploads.Uploads) != 1 || aws.ToString(uploads.Uploads[0].Key) != "mp" {
		t.Errorf("uploads after the refusals: %v %v", uploads, err)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String("mp"), UploadId: up.UploadId}); err != nil {
		t.Error(err)
	}
	// Without the headers, the object is served as it is.
	if data, err := get(ctx, c, bucket, "plain"); err != nil || string(data) != "stored unencrypted" {
		t.Errorf("plain GET: %q %v", data, err)
	}
}

var crcOf = map[types.ChecksumAlgorithm]func() hash.Hash{
	types.ChecksumAlgorithmCrc32:     func() hash.Hash { return crc32.NewIEEE() },
	types.ChecksumAlgorithmCrc32c:    func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) },
	types.ChecksumAlgorithmCrc64nvme: func() hash.Hash { return crc64.New(crc64.MakeTable(0x9a6c9329ac4bc9b5)) },
}

func crcBase64(alg types.ChecksumAlgorithm, data []byte) string {
	h := crcOf[alg]()
	h.Write(data)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// checksumIn returns the field of alg among a response's checksums.
func checksumIn(alg types.ChecksumAlgorithm, crc32, crc32c, crc64nvme *string) string {
	switch alg {
	case types.ChecksumAlgorithmCrc32:
		return aws.ToString(crc32)
	case types.ChecksumAlgorithmCrc32c:
		return aws.ToString(crc32c)
	}
	return aws.ToString(crc64nvme)
}

func fullObjectChecksums(t *testing.T, cl *Cluster) {
	ctx := context.Background()
	c := cl.S3()
	const bucket = "full-object"
	mustCreateBucket(t, c, bucket)
	b := aws.String(bucket)
	source := randomBytes(t, 5<<20)
	if err := put(ctx, c, bucket, "source", source); err != nil {
		t.Fatal(err)
	}
	for _, alg := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmCrc64nvme} {
		t.Run(string(alg), func(t *testing.T) {
			key := aws.String("obj-" + string(alg))
			up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: key,
				ChecksumAlgorithm: alg, ChecksumType: types.ChecksumTypeFullObject})
			if err != nil {
				t.Fatal(err)
			}
			if up.ChecksumType != types.ChecksumTypeFullObject {
				t.Errorf("CreateMultipartUpload answered checksum type %q", up.ChecksumType)
			}
			// Part 1 and 3 come with their CRC from the SDK; part 2 is copied from
			// another object, and the gateway computes its CRC.
			part1, part3 := randomBytes(t, 5<<20), []byte("the short last part")
			whole := bytes.Join([][]byte{part1, source, part3}, nil)
			var parts []types.CompletedPart
			upload := func(n int32, data []byte) {
				t.Helper()
				p, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(n),
					Body: bytes.NewReader(data), ChecksumAlgorithm: alg})
				if err != nil {
					t.Fatalf("UploadPart %d: %v", n, err)
				}
				parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: p.ETag,
					ChecksumCRC32: p.ChecksumCRC32, ChecksumCRC32C: p.ChecksumCRC32C, ChecksumCRC64NVME: p.ChecksumCRC64NVME})
			}
			upload(1, part1)
			cp, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b, Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(2),
				CopySource: aws.String(bucket + "/source")})
			if err != nil {
				t.Fatalf("UploadPartCopy: %v", err)
			}
			r := cp.CopyPartResult
			if got := checksumIn(alg, r.ChecksumCRC32, r.ChecksumCRC32C, r.ChecksumCRC64NVME); got != crcBase64(alg, source) {
				t.Errorf("UploadPartCopy: part checksum %q, want %q", got, crcBase64(alg, source))
			}
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(2), ETag: r.ETag,
				ChecksumCRC32: r.ChecksumCRC32, ChecksumCRC32C: r.ChecksumCRC32C, ChecksumCRC64NVME: r.ChecksumCRC64NVME})
			upload(3, part3)

			listed, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: key, UploadId: up.UploadId})
			if err != nil || len(listed.Parts) != 3 || listed.ChecksumType != types.ChecksumTypeFullObject ||
				checksumIn(alg, listed.Parts[1].ChecksumCRC32, listed.Parts[1].ChecksumCRC32C, listed.Parts[1].ChecksumCRC64NVME) != crcBase64(alg, source) {
				t.Fatalf("ListParts: %v %+v", err, listed)
			}

			complete := func(value string) (*s3.CompleteMultipartUploadOutput, error) {
				in := &s3.CompleteMultipartUploadInput{Bucket: b, Key: key, UploadId: up.UploadId, ChecksumType: types.ChecksumTypeFullObject,
					MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
				switch alg {
				case types.ChecksumAlgorithmCrc32:
					in.ChecksumCRC32 = aws.String(value)
				case types.ChecksumAlgorithmCrc32c:
					in.ChecksumCRC32C = aws.String(value)
				default:
					in.ChecksumCRC64NVME = aws.String(value)
				}
				return c.CompleteMultipartUpload(ctx, in)
			}
			want := crcBase64(alg, whole)
			_, err = complete(crcBase64(alg, whole[1:]))
			wantCode(t, "completing with a wrong full-object checksum", err, "400 BadDigest")
			if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: key}); codeString(err) != "404 NotFound" {
				t.Fatalf("a completion refused for its checksum stored the object: %s", codeString(err))
			}
			out, err := complete(want)
			if err != nil {
				t.Fatalf("completing with the object's CRC: %v", err)
			}
			if got := checksumIn(alg, out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64NVME); out.ChecksumType != types.ChecksumTypeFullObject || got != want {
				t.Errorf("CompleteMultipartUpload: %s %s, want FULL_OBJECT %s", out.ChecksumType, got, want)
			}
			head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: key, ChecksumMode: types.ChecksumModeEnabled})
			if err != nil || head.ChecksumType != types.ChecksumTypeFullObject || checksumIn(alg, head.ChecksumCRC32, head.ChecksumCRC32C, head.ChecksumCRC64NVME) != want {
				t.Errorf("HeadObject: %v, %s", err, head.ChecksumType)
			}
			// The SDK checks what it reads against the full-object checksum.
			obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: key, ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(obj.Body)
			obj.Body.Close()
			if err != nil || !bytes.Equal(got, whole) || obj.ChecksumType != types.ChecksumTypeFullObject {
				t.Errorf("GetObject: %d bytes, %v, type %s", len(got), err, obj.ChecksumType)
			}
		})
	}

	t.Run("composite stays the default", func(t *testing.T) {
		key := aws.String("composite")
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: key, ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
		if err != nil || up.ChecksumType != types.ChecksumTypeComposite {
			t.Fatalf("CreateMultipartUpload: %v, type %q", err, up.ChecksumType)
		}
		p, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(1),
			Body: strings.NewReader("one part"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: key, UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: p.ETag, ChecksumCRC32: p.ChecksumCRC32}}}})
		if err != nil || out.ChecksumType != types.ChecksumTypeComposite || !strings.HasSuffix(aws.ToString(out.ChecksumCRC32), "-1") {
			t.Errorf("CompleteMultipartUpload: %v, %s %s", err, out.ChecksumType, aws.ToString(out.ChecksumCRC32))
		}
	})
}

func metadataAsStored(t *testing.T, cl *Cluster) {
	ctx := context.Background()
	c := cl.S3()
	const bucket = "meta-bucket"
	mustCreateBucket(t, c, bucket)
	const greeting = "Hello Worldé"
	// The SDK sends the body aws-chunked (its default checksums), so the request's
	// Content-Encoding is "deflate, gzip" plus aws-chunked.
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("payload"),
		ContentEncoding: aws.String("deflate, gzip"), Metadata: map[string]string{"greeting": greeting, "plain": "ascii"}})
	if err != nil {
		t.Fatal(err)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(head.ContentEncoding); got != "deflate, gzip" {
		t.Errorf("Content-Encoding %q, want %q", got, "deflate, gzip")
	}
	if head.Metadata["plain"] != "ascii" {
		t.Errorf("ASCII metadata %q", head.Metadata["plain"])
	}
	// Non-ASCII comes back RFC 2047-encoded, as from S3; decoded, it is what was sent.
	enc := head.Metadata["greeting"]
	if dec, err := new(mime.WordDecoder).DecodeHeader(enc); err != nil || dec != greeting || !strings.HasPrefix(enc, "=?UTF-8?B?") {
		t.Errorf("metadata came back as %q, decoding to %q (%v); want an encoded-word of %q", enc, dec, err, greeting)
	}
	// minio-go decodes encoded-words itself: its users get the text back as it was.
	mc, err := minio.New(strings.TrimPrefix(cl.S3Endpoint(), "http://"), &minio.Options{
		Creds: miniocreds.NewStaticV4(cl.Topology.AccessKey, cl.Topology.SecretKey, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	st, err := mc.StatObject(ctx, bucket, "k", minio.StatObjectOptions{})
	if err != nil || st.UserMetadata["Greeting"] != greeting {
		t.Errorf("minio-go StatObject: %q %v", st.UserMetadata["Greeting"], err)
	}
	// An encoded-word a client sends is stored decoded, and so comes back as S3 writes it.
	if _, err := mc.PutObject(ctx, bucket, "from-minio", strings.NewReader("x"), 1,
		minio.PutObjectOptions{UserMetadata: map[string]string{"note": "=?utf-8?q?caf=C3=A9?="}}); err != nil {
		t.Fatal(err)
	}
	h2, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("from-minio")})
	if err != nil || h2.Metadata["note"] != "=?UTF-8?B?Y2Fmw6k=?=" {
		t.Errorf("encoded-word metadata came back as %q (%v)", h2.Metadata["note"], err)
	}
}

// gatewayOutcomes scrapes the gateway's request counter: requests by
// "operation outcome", summed over cells.
func gatewayOutcomes(t *testing.T, cl *Cluster) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + cl.Gateway().AdminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, m := range fams["cellar_gateway_requests_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		out[labels["operation"]+" "+labels["outcome"]] += m.GetCounter().GetValue()
	}
	return out
}

// gatewayLog is what the gateway logged lately.
func gatewayLog(cl *Cluster) string {
	cl.logs.mu.Lock()
	r := cl.logs.rings[cl.Gateway().Spec.ID]
	cl.logs.mu.Unlock()
	lines, _ := r.tail(logLines)
	return strings.Join(lines, "")
}

// clientCancellation has a client hang up on a large GET after its first bytes, and
// checks that the gateway does not hold the cell responsible.
func clientCancellation(t *testing.T, cl *Cluster) {
	ctx := context.Background()
	c := cl.S3()
	const bucket = "cancel-bucket"
	mustCreateBucket(t, c, bucket)
	if err := put(ctx, c, bucket, "big", randomBytes(t, 32<<20)); err != nil {
		t.Fatal(err)
	}
	before := gatewayOutcomes(t, cl)
	const hangUps = 5
	var ids []string
	for range hangUps {
		ids = append(ids, getAndHangUp(t, cl, bucket, "big"))
	}
	// The gateway records a request when it is done with it: wait for all of them.
	testwait.Until(t, 30*time.Second, fmt.Sprintf("%d more GetObject ClientClosedRequest than %v", hangUps, before), func() bool {
		return gatewayOutcomes(t, cl)["GetObject ClientClosedRequest"]-before["GetObject ClientClosedRequest"] >= hangUps
	})
	after := gatewayOutcomes(t, cl)
	for _, outcome := range []string{"ServiceUnavailable", "SlowDown", "InternalError"} {
		if n := after["GetObject "+outcome] - before["GetObject "+outcome]; n != 0 {
			t.Errorf("%v GetObject hang-ups counted as %s, an error of the cell", n, outcome)
		}
	}
	log := gatewayLog(cl)
	for _, line := range strings.Split(log, "\n") {
		for _, id := range ids {
			if strings.Contains(line, id) && (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) {
				t.Errorf("a hang-up is logged as a failure: %s", line)
			}
		}
	}
}

// getAndHangUp sends a signed GET on a connection of its own, reads the response's
// headers and first bytes, and closes the connection. It returns the request id.
func getAndHangUp(t *testing.T, cl *Cluster, bucket, key string) string {
	t.Helper()
	req, err := http.NewRequest("GET", cl.S3Endpoint()+"/"+bucket+"/"+key, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
	creds := aws.Credentials{AccessKeyID: cl.Topology.AccessKey, SecretAccessKey: cl.Topology.SecretKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", cl.Gateway().S3Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s/%s: %s", bucket, key, resp.Status)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	id := resp.Header.Get("x-amz-request-id")
	if id == "" {
		t.Fatal("no x-amz-request-id")
	}
	return id
}
