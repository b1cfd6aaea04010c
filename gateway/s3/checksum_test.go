package s3

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestChecksumAlgorithms: for every algorithm the SDK sends, the gateway verifies the
// checksum, stores it and returns it, and the SDK validates what it gets back.
func TestChecksumAlgorithms(t *testing.T) {
	t.Parallel()
	for _, useTLS := range []bool{false, true} { // headers over http, aws-chunked trailers over https
		ts := startServer(t, newFakeBackend(), HandlerOptions{}, useTLS)
		ctx := context.Background()
		ts.be.CreateBucket(ctx, "sums")
		data := randomBytes(3, 300<<10)
		for _, alg := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c,
			types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256} {
			key := string(alg)
			if _, err := ts.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("sums"), Key: aws.String(key),
				Body: bytes.NewReader(data), ChecksumAlgorithm: alg}); err != nil {
				t.Fatalf("tls=%v %s: PutObject: %v", useTLS, alg, err)
			}
			out, err := ts.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("sums"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(out.Body) // fails if the returned checksum is wrong
			out.Body.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("tls=%v %s: GetObject: %d bytes, %v", useTLS, alg, len(got), err)
			}
			stored := map[types.ChecksumAlgorithm]*string{types.ChecksumAlgorithmCrc32: out.ChecksumCRC32, types.ChecksumAlgorithmCrc32c: out.ChecksumCRC32C,
				types.ChecksumAlgorithmCrc64nvme: out.ChecksumCRC64NVME, types.ChecksumAlgorithmSha1: out.ChecksumSHA1, types.ChecksumAlgorithmSha256: out.ChecksumSHA256}
			if aws.ToString(stored[alg]) == "" {
				t.Errorf("tls=%v %s: no checksum returned", useTLS, alg)
			}
		}
	}
}
