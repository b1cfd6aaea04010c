package clustertest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// The S3 API as real clients use it, against a whole cluster: aws-sdk-go-v2 with its
// default checksums and with when_required, its transfer manager, minio-go over plain
// HTTP (streaming signatures), presigned URLs, and what a wrong signature gets.

func mustCreateBucket(t *testing.T, c *s3.Client, name string) {
	t.Helper()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestS3Clients(t *testing.T) {
	topo := topology(2)
	cl := Start(t, topo)
	ctx := context.Background()

	t.Run("sdk default checksums", func(t *testing.T) {
		sdkObjects(t, cl.S3(), "sdk-default")
	})
	t.Run("sdk when_required", func(t *testing.T) {
		sdkObjects(t, cl.S3(func(o *s3.Options) {
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}), "sdk-required")
	})
	t.Run("sdk multipart", func(t *testing.T) { sdkMultipart(t, cl.S3()) })
	t.Run("transfer manager 64 MiB", func(t *testing.T) { transferManager(t, cl.S3()) })
	t.Run("minio-go over http", func(t *testing.T) { minioClient(t, cl) })
	t.Run("presigned", func(t *testing.T) { presigned(t, cl) })
	t.Run("authentication", func(t *testing.T) {
		c := cl.S3()
		mustCreateBucket(t, c, "auth-bucket")
		bad := cl.S3(func(o *s3.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider(cl.Topology.AccessKey, "wrong-secret", "")
		})
		if _, err := bad.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("auth-bucket")}); codeString(err) != "403 Forbidden" {
			t.Errorf("HEAD with a wrong secret: %v", err)
		}
		if err := put(ctx, bad, "auth-bucket", "k", []byte("x")); codeString(err) != "403 SignatureDoesNotMatch" {
			t.Errorf("PUT with a wrong secret: %s (%v)", codeString(err), err)
		}
		unknown := cl.S3(func(o *s3.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider("NOSUCHKEY", cl.Topology.SecretKey, "")
		})
		if _, err := unknown.ListBuckets(ctx, &s3.ListBucketsInput{}); codeString(err) != "403 InvalidAccessKeyId" {
			t.Errorf("unknown access key: %s", codeString(err))
		}
		resp, err := http.Get(cl.S3Endpoint() + "/auth-bucket/k")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(body), "<Code>AccessDenied</Code>") {
			t.Errorf("anonymous GET: %d %s", resp.StatusCode, body)
		}
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("auth-bucket"), Key: aws.String("k")}); codeString(err) != "404 NotFound" {
			t.Errorf("a refused PUT left an object: %s", codeString(err))
		}
	})
}

// sdkObjects exercises the object API with one client configuration.
func sdkObjects(t *testing.T, c *s3.Client, bucket string) {
	ctx := context.Background()
	mustCreateBucket(t, c, bucket)
	data := bytes.Repeat([]byte("0123456789"), 1000)

	_, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("dir/meta.txt"), Body: bytes.NewReader(data),
		ContentType: aws.String("text/plain"), ContentEncoding: aws.String("identity"), CacheControl: aws.String("max-age=60"),
		ContentDisposition: aws.String(`attachment; filename="meta.txt"`), Metadata: map[string]string{"colour": "blue", "Mixed-Case": "v"},
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	})
	if err != nil {
		t.Fatalf("PutObject with metadata and a SHA256 checksum: %v", err)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/meta.txt"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(head.ContentType) != "text/plain" || aws.ToString(head.CacheControl) != "max-age=60" ||
		aws.ToString(head.ContentEncoding) != "identity" || !strings.Contains(aws.ToString(head.ContentDisposition), "meta.txt") ||
		head.Metadata["colour"] != "blue" || head.Metadata["mixed-case"] != "v" || aws.ToString(head.ETag) != `"`+md5Hex(data)+`"` ||
		aws.ToString(head.ChecksumSHA256) == "" {
		t.Errorf("HeadObject: type %q cache %q encoding %q disposition %q meta %v etag %s sha256 %q",
			aws.ToString(head.ContentType), aws.ToString(head.CacheControl), aws.ToString(head.ContentEncoding),
			aws.ToString(head.ContentDisposition), head.Metadata, aws.ToString(head.ETag), aws.ToString(head.ChecksumSHA256))
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/meta.txt"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body) // the SDK validates the checksum as it reads
	out.Body.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetObject: %d bytes, %v", len(got), err)
	}

	// Ranges.
	for rng, want := range map[string][]byte{"bytes=10-19": data[10:20], "bytes=-5": data[len(data)-5:], "bytes=9995-": data[9995:]} {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/meta.txt"), Range: aws.String(rng)})
		if err != nil {
			t.Fatalf("%s: %v", rng, err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got %q", rng, got)
		}
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/meta.txt"), Range: aws.String("bytes=20000-")}); codeString(err) != "416 InvalidRange" {
		t.Errorf("range past the end: %s", codeString(err))
	}

	// Conditional requests.
	etag := aws.ToString(head.ETag)
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/meta.txt"), IfMatch: aws.String(`"nope"`)}); codeString(err) != "412 PreconditionFailed" {
		t.Errorf("GET If-Match another ETag: %s", codeString(err))
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/meta.txt"), IfNoneMatch: aws.String(etag)}); codeString(err) != "304 NotModified" {
		t.Errorf("HEAD If-None-Match its ETag: %s", codeString(err))
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/meta.txt"), Body: strings.NewReader("x"), IfNoneMatch: aws.String("*")}); codeString(err) != "412 PreconditionFailed" {
		t.Errorf("PUT If-None-Match * over an object: %s", codeString(err))
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("new"), Body: strings.NewReader("x"), IfNoneMatch: aws.String("*")}); err != nil {
		t.Errorf("PUT If-None-Match * of a new key: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("new"), Body: strings.NewReader("y"), IfMatch: aws.String(`"` + md5Hex([]byte("x")) + `"`)}); err != nil {
		t.Errorf("PUT If-Match the current ETag: %v", err)
	}

	// Copy, across buckets (and so, here, perhaps across cells), keeping or replacing metadata.
	dst := bucket + "-copy"
	mustCreateBucket(t, c, dst)
	src := bucket + "/dir/meta.txt"
	cp, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(dst), Key: aws.String("copied"), CopySource: aws.String(url.PathEscape(src))})
	if err != nil {
		t.Fatalf("CopyObject: %v", err)
	}
	if aws.ToString(cp.CopyObjectResult.ETag) != etag {
		t.Errorf("copy ETag %s, want %s", aws.ToString(cp.CopyObjectResult.ETag), etag)
	}
	ch, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(dst), Key: aws.String("copied")})
	if err != nil || ch.Metadata["colour"] != "blue" || aws.ToString(ch.ContentType) != "text/plain" {
		t.Errorf("copied object: %v %v", ch, err)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/meta.txt"), CopySource: aws.String(src),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"colour": "red"}, ContentType: aws.String("text/csv")}); err != nil {
		t.Fatalf("CopyObject onto itself with REPLACE: %v", err)
	}
	if h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/meta.txt")}); err != nil || h.Metadata["colour"] != "red" || aws.ToString(h.ContentType) != "text/csv" {
		t.Errorf("after REPLACE: %v %v", h, err)
	}

	// Listings: v2 with a delimiter, v1 with a marker, versions, location.
	for i := range 5 {
		if err := put(ctx, c, bucket, fmt.Sprintf("list/%d", i), []byte("l")); err != nil {
			t.Fatal(err)
		}
	}
	l2, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Delimiter: aws.String("/"), FetchOwner: aws.Bool(true)})
	if err != nil || len(l2.CommonPrefixes) != 2 || len(l2.Contents) != 1 || l2.Contents[0].Owner == nil {
		t.Errorf("ListObjectsV2 with a delimiter: %+v %v", l2, err)
	}
	var keys []string
	marker := ""
	for {
		l1, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String(bucket), Prefix: aws.String("list/"), Marker: aws.String(marker), MaxKeys: aws.Int32(2)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(l1.Marker) != marker {
			t.Errorf("Marker %q echoed as %q", marker, aws.ToString(l1.Marker))
		}
		for _, o := range l1.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		if !aws.ToBool(l1.IsTruncated) {
			break
		}
		marker = keys[len(keys)-1]
	}
	if !slices.Equal(keys, []string{"list/0", "list/1", "list/2", "list/3", "list/4"}) {
		t.Errorf("ListObjects v1 pages: %v", keys)
	}
	lv, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("list/")})
	if err != nil || len(lv.Versions) != 5 || aws.ToString(lv.Versions[0].VersionId) != "null" || !aws.ToBool(lv.Versions[0].IsLatest) {
		t.Errorf("ListObjectVersions: %+v %v", lv, err)
	}
	if _, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(bucket)}); err != nil {
		t.Errorf("GetBucketLocation: %v", err)
	}

	// DeleteObjects, loud then quiet.
	del, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("list/0")}, {Key: aws.String("list/1")}, {Key: aws.String("never-there")},
	}}})
	if err != nil || len(del.Deleted) != 3 || len(del.Errors) != 0 {
		t.Fatalf("DeleteObjects: %+v %v", del, err)
	}
	del, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{Quiet: aws.Bool(true), Objects: []types.ObjectIdentifier{
		{Key: aws.String("list/2")}, {Key: aws.String("list/3")}, {Key: aws.String("list/4")},
	}}})
	if err != nil || len(del.Deleted) != 0 || len(del.Errors) != 0 {
		t.Fatalf("quiet DeleteObjects: %+v %v", del, err)
	}
	if l, _ := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("list/")}); len(l.Contents) != 0 {
		t.Errorf("%d keys left after DeleteObjects", len(l.Contents))
	}
}

func sdkMultipart(t *testing.T, c *s3.Client) {
	ctx := context.Background()
	const bucket = "mpu-errors"
	mustCreateBucket(t, c, bucket)
	create := func(key string) string {
		out, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
			ContentType: aws.String("application/x-test"), Metadata: map[string]string{"m": "1"}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.UploadId)
	}
	uploadPart := func(key, id string, n int32, body []byte) string {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(id),
			PartNumber: aws.Int32(n), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
		return aws.ToString(out.ETag)
	}
	complete := func(key, id string, parts ...types.CompletedPart) error {
		_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
			UploadId: aws.String(id), MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		return err
	}
	part := func(n int32, etag string) types.CompletedPart {
		return types.CompletedPart{PartNumber: aws.Int32(n), ETag: aws.String(etag)}
	}

	id := create("obj")
	big, small := randomBytes(t, 5<<20), []byte("tail")
	e1, e2 := uploadPart("obj", id, 1, small), uploadPart("obj", id, 2, small)
	if err := complete("obj", id, part(1, e1), part(2, e2)); codeString(err) != "400 EntityTooSmall" {
		t.Errorf("small first part: %s", codeString(err))
	}
	e1 = uploadPart("obj", id, 1, big) // replaces the small part 1
	if err := complete("obj", id, part(2, e2), part(1, e1)); codeString(err) != "400 InvalidPartOrder" {
		t.Errorf("parts out of order: %s", codeString(err))
	}
	if err := complete("obj", id, part(1, e1), part(2, `"00000000000000000000000000000000"`)); codeString(err) != "400 InvalidPart" {
		t.Errorf("wrong ETag: %s", codeString(err))
	}
	if err := complete("obj", id, part(1, e1), part(3, e2)); codeString(err) != "400 InvalidPart" {
		t.Errorf("missing part: %s", codeString(err))
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String("obj"), UploadId: aws.String(id)})
	if err != nil || len(lp.Parts) != 2 || aws.ToInt64(lp.Parts[0].Size) != 5<<20 {
		t.Fatalf("ListParts: %+v %v", lp, err)
	}
	other := create("other")
	lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil || len(lu.Uploads) != 2 || aws.ToString(lu.Uploads[0].Key) != "obj" {
		t.Fatalf("ListMultipartUploads: %+v %v", lu, err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj")}); codeString(err) != "404 NotFound" {
		t.Fatalf("an object is visible before its upload completed: %s", codeString(err))
	}
	// Unquoted ETags are accepted too.
	if err := complete("obj", id, part(1, strings.Trim(e1, `"`)), part(2, e2)); err != nil {
		t.Fatalf("complete: %v", err)
	}
	want := append(append([]byte(nil), big...), small...)
	got, err := get(ctx, c, bucket, "obj")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("completed object: %d bytes, %v", len(got), err)
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj")})
	if err != nil || !strings.HasSuffix(aws.ToString(h.ETag), `-2"`) || aws.ToString(h.ContentType) != "application/x-test" || h.Metadata["m"] != "1" || aws.ToInt32(h.PartsCount) != 2 {
		t.Errorf("completed object head: %+v %v", h, err)
	}
	// A range across the part boundary.
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj"), Range: aws.String(fmt.Sprintf("bytes=%d-%d", 5<<20-3, 5<<20+1))})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(r, want[5<<20-3:5<<20+2]) {
		t.Errorf("range across parts: %q", r)
	}
	// Parts by number, as the newer transfer managers read them.
	pout, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj"), PartNumber: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := io.ReadAll(pout.Body)
	pout.Body.Close()
	if string(p2) != "tail" || aws.ToInt32(pout.PartsCount) != 2 || aws.ToString(pout.ContentRange) != fmt.Sprintf("bytes %d-%d/%d", 5<<20, 5<<20+3, 5<<20+4) {
		t.Errorf("GET part 2: %q, parts %d, range %s", p2, aws.ToInt32(pout.PartsCount), aws.ToString(pout.ContentRange))
	}
	if ph, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj"), PartNumber: aws.Int32(1)}); err != nil || aws.ToInt64(ph.ContentLength) != 5<<20 {
		t.Errorf("HEAD part 1: %+v %v", ph, err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj"), PartNumber: aws.Int32(3)}); codeString(err) != "416 InvalidPartNumber" {
		t.Errorf("GET part 3 of 2: %s", codeString(err))
	}
	if err := complete("obj", id, part(1, e1)); codeString(err) != "404 NoSuchUpload" {
		t.Errorf("completing twice: %s", codeString(err))
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("other"), UploadId: aws.String(other)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String("other"), UploadId: aws.String(other)}); codeString(err) != "404 NoSuchUpload" {
		t.Errorf("ListParts of an aborted upload: %s", codeString(err))
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("other"), UploadId: aws.String(other),
		PartNumber: aws.Int32(1), Body: bytes.NewReader(small)}); codeString(err) != "404 NoSuchUpload" {
		t.Errorf("UploadPart to an aborted upload: %s", codeString(err))
	}
}

func transferManager(t *testing.T, c *s3.Client) {
	ctx := context.Background()
	const bucket = "manager"
	mustCreateBucket(t, c, bucket)
	data := randomBytes(t, 64<<20)
	up := manager.NewUploader(c)
	res, err := up.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("big"), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if !strings.Contains(aws.ToString(res.ETag), "-") {
		t.Errorf("a 64 MiB upload was not multipart: ETag %s", aws.ToString(res.ETag))
	}
	buf := manager.NewWriteAtBuffer(make([]byte, 0, len(data)))
	n, err := manager.NewDownloader(c).Download(ctx, buf, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("big")})
	if err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
}

func minioClient(t *testing.T, cl *Cluster) {
	ctx := context.Background()
	mc, err := minio.New(strings.TrimPrefix(cl.S3Endpoint(), "http://"), &minio.Options{
		Creds: miniocreds.NewStaticV4(cl.Topology.AccessKey, cl.Topology.SecretKey, ""), Secure: false, Region: "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	const bucket = "minio-bucket"
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("MakeBucket: %v", err)
	}
	for name, size := range map[string]int{"small": 100 << 10, "multipart": 12 << 20} {
		data := randomBytes(t, size)
		info, err := mc.PutObject(ctx, bucket, name, bytes.NewReader(data), int64(size), minio.PutObjectOptions{
			ContentType: "application/octet-stream", UserMetadata: map[string]string{"origin": "minio"}, PartSize: 5 << 20,
		})
		if err != nil {
			t.Fatalf("PutObject %s: %v", name, err)
		}
		if info.Size != int64(size) {
			t.Errorf("PutObject %s: size %d", name, info.Size)
		}
		obj, err := mc.GetObject(ctx, bucket, name, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("GetObject %s: %d bytes, %v", name, len(got), err)
		}
		st, err := mc.StatObject(ctx, bucket, name, minio.StatObjectOptions{})
		if err != nil || st.UserMetadata["Origin"] != "minio" {
			t.Errorf("StatObject %s: %+v %v", name, st.UserMetadata, err)
		}
	}
	var listed []string
	for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		listed = append(listed, o.Key)
	}
	if !slices.Equal(listed, []string{"multipart", "small"}) {
		t.Errorf("ListObjects: %v", listed)
	}
	// A signature that does not verify aborts the upload and stores nothing.
	bad, _ := minio.New(strings.TrimPrefix(cl.S3Endpoint(), "http://"), &minio.Options{
		Creds: miniocreds.NewStaticV4(cl.Topology.AccessKey, "wrong", ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath,
	})
	if _, err := bad.PutObject(ctx, bucket, "forged", bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{}); minio.ToErrorResponse(err).Code != "SignatureDoesNotMatch" {
		t.Errorf("minio-go with a wrong secret: %v", err)
	}
}

func presigned(t *testing.T, cl *Cluster) {
	ctx := context.Background()
	c := cl.S3()
	const bucket = "presigned"
	mustCreateBucket(t, c, bucket)
	ps := s3.NewPresignClient(c, s3.WithPresignExpires(10*time.Minute))
	data := []byte("uploaded through a presigned URL")
	req, err := ps.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("via url")})
	if err != nil {
		t.Fatal(err)
	}
	hreq, _ := http.NewRequest(req.Method, req.URL, bytes.NewReader(data))
	for k, vs := range req.SignedHeader {
		if k != "Host" {
			hreq.Header[k] = vs
		}
	}
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("presigned PUT: %d %s", resp.StatusCode, body)
	}
	greq, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("via url")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(greq.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("presigned GET: %d %q", resp.StatusCode, body)
	}
	// Tampering with the URL breaks its signature.
	resp, err = http.Get(strings.Replace(greq.URL, "via%20url", "other", 1))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "SignatureDoesNotMatch") {
		t.Errorf("tampered presigned URL: %d %s", resp.StatusCode, body)
	}
	// An expired URL is refused.
	r, _ := http.NewRequest("GET", cl.S3Endpoint()+"/"+bucket+"/via%20url?X-Amz-Expires=60", nil)
	oldURL, _, err := v4.NewSigner().PresignHTTP(ctx, aws.Credentials{AccessKeyID: cl.Topology.AccessKey, SecretAccessKey: cl.Topology.SecretKey},
		r, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(oldURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "expired") {
		t.Errorf("expired presigned URL: %d %s", resp.StatusCode, body)
	}
}

// blobCount is the number of blobs on every storage node of the cluster.
func blobCount(t *testing.T, cl *Cluster) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(cl.Dir, "*storage*", "blobs", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

// waitBlobs waits until the cluster holds want blobs.
func waitBlobs(t *testing.T, cl *Cluster, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for blobCount(t, cl) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d blobs after 30s, want %d", what, blobCount(t, cl), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAbandonedUploadsAreReclaimed: an upload older than the topology's upload_max_age
// is aborted by the gateway, its parts with it; the parts a completed upload does not
// use, and those of an aborted one, are reclaimed too.
func TestAbandonedUploadsAreReclaimed(t *testing.T) {
	topo := topology(1)
	topo.UploadMaxAge = 3 * time.Second
	replicas := topo.StorageNodes
	cl := Start(t, topo)
	ctx := context.Background()
	c := cl.S3()
	mustCreateBucket(t, c, "abandoned")
	base := blobCount(t, cl)
	part := func(key string, id *string, n int32) {
		t.Helper()
		if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("abandoned"), Key: aws.String(key), UploadId: id,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(randomBytes(t, 1<<20))}); err != nil {
			t.Fatal(err)
		}
	}
	create := func(key string) *string {
		t.Helper()
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("abandoned"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return up.UploadId
	}

	// Completed with part 1 only: part 2 is reclaimed.
	done := create("done")
	part("done", done, 1)
	part("done", done, 2)
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("abandoned"), Key: aws.String("done"), UploadId: done})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("abandoned"), Key: aws.String("done"), UploadId: done,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: lp.Parts[0].ETag}}}}); err != nil {
		t.Fatal(err)
	}
	waitBlobs(t, cl, base+replicas, "after completing with one of two parts")

	// Aborted: its part is reclaimed.
	aborted := create("aborted")
	part("aborted", aborted, 1)
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("abandoned"), Key: aws.String("aborted"), UploadId: aborted}); err != nil {
		t.Fatal(err)
	}
	waitBlobs(t, cl, base+replicas, "after an abort")

	// Abandoned: the gateway aborts it once it is older than upload_max_age.
	left := create("left")
	part("left", left, 1)
	if n := blobCount(t, cl); n != base+2*replicas {
		t.Fatalf("%d blobs with an upload in progress, want %d", n, base+2*replicas)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("abandoned"), Key: aws.String("left"), UploadId: left})
		if codeString(err) == "404 NoSuchUpload" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upload is still there after 30s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("abandoned")})
	if err != nil || len(lu.Uploads) != 0 {
		t.Fatalf("uploads left: %+v %v", lu, err)
	}
	waitBlobs(t, cl, base+replicas, "after the abandoned upload was reaped")
	if got, err := get(ctx, c, "abandoned", "done"); err != nil || len(got) != 1<<20 {
		t.Fatalf("the completed object: %d bytes, %v", len(got), err)
	}
}
