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

// TestUploadPartCopy builds an object from ranges of another, as the aws CLI copies
// large objects, and reads one of its parts back by number.
func TestUploadPartCopy(t *testing.T) {
	t.Parallel()
	ts := startServer(t, newFakeBackend(), HandlerOptions{}, false)
	c, ctx := ts.client, context.Background()
	ts.be.CreateBucket(ctx, "src")
	ts.be.CreateBucket(ctx, "dst")
	data := randomBytes(9, 6<<20+100)
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("big"), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	up, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("dst"), Key: aws.String("copy")})
	if err != nil {
		t.Fatal(err)
	}
	var parts []types.CompletedPart
	for i, rng := range []string{"bytes=0-5242879", "bytes=5242880-6291555"} {
		out, err := c.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{Bucket: aws.String("dst"), Key: aws.String("copy"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), CopySource: aws.String("src/big"), CopySourceRange: aws.String(rng)})
		if err != nil {
			t.Fatalf("UploadPartCopy %s: %v", rng, err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.CopyPartResult.ETag})
	}
	if _, err := c.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{Bucket: aws.String("dst"), Key: aws.String("copy"), UploadId: up.UploadId,
		PartNumber: aws.Int32(3), CopySource: aws.String("src/big"), CopySourceRange: aws.String("bytes=0-99999999")}); apiErrorCode(err) != "InvalidArgument" {
		t.Errorf("a range past the source's end: %v", err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("dst"), Key: aws.String("copy"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatal(err)
	}
	got, ok := ts.be.object("dst", "copy")
	if !ok || !bytes.Equal(got, data) {
		t.Fatalf("copied object: %d bytes", len(got))
	}
	out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("dst"), Key: aws.String("copy"), PartNumber: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(p2, data[5<<20:]) || aws.ToInt32(out.PartsCount) != 2 {
		t.Errorf("part 2: %d bytes, parts count %d", len(p2), aws.ToInt32(out.PartsCount))
	}
}
