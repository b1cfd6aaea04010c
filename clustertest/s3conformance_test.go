package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cellarsim/cellar/cell"
)

// The S3 behaviours of docs/s3-compatibility.md that need the real index and storage,
// checked with aws-sdk-go-v2 against a cluster partitioned by bucket and against one
// partitioned by key (where a bucket's objects, its listings and its uploads span
// cells). The rest of the table is checked against the gateway's fake backend, in
// gateway/s3/conformance_test.go.
func TestS3Conformance(t *testing.T) {
	for _, partition := range []string{cell.PartitionByBucket, cell.PartitionByKey} {
		t.Run("partition by "+partition, func(t *testing.T) {
			topo := topology(2)
			topo.Partition = partition
			cl := Start(t, topo)
			c := cl.S3()
			t.Run("bucket that does not exist", func(t *testing.T) { conformanceMissingBucket(t, c) })
			t.Run("conditional writes", func(t *testing.T) { conformanceConditionalWrites(t, c) })
			t.Run("listings", func(t *testing.T) { conformanceListings(t, c) })
			t.Run("multipart", func(t *testing.T) { conformanceMultipart(t, c) })
		})
	}
}

// conformanceMissingBucket: every object operation in a bucket that is gone answers
// 404 NoSuchBucket (HEAD: 404 without a body).
func conformanceMissingBucket(t *testing.T, c *s3.Client) {
	ctx := context.Background()
	b, k := aws.String("gone-bucket"), aws.String("k")
	mustCreateBucket(t, c, "gone-bucket")
	mustCreateBucket(t, c, "copy-source")
	for _, b := range []string{"gone-bucket", "copy-source"} {
		if err := put(ctx, c, b, "k", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: k}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gone-bucket", "never-made"} {
		b := aws.String(name)
		for _, tc := range []struct {
			op   string
			call func() error
			want string
		}{
			{"DeleteObject", func() error { _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: k}); return err }, "404 NoSuchBucket"},
			{"GetObject", func() error { _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: k}); return err }, "404 NoSuchBucket"},
			{"HeadObject", func() error { _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: k}); return err }, "404 NotFound"},
			{"PutObject", func() error { return put(ctx, c, name, "k", []byte("x")) }, "404 NoSuchBucket"},
			{"ListObjectsV2", func() error { _, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b}); return err }, "404 NoSuchBucket"},
			{"ListObjects max-keys 0", func() error {
				_, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: b, MaxKeys: aws.Int32(0)})
				return err
			}, "404 NoSuchBucket"},
			{"DeleteObjects", func() error {
				_, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: b, Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: k}}}})
				return err
			}, "404 NoSuchBucket"},
			{"CopyObject into it", func() error {
				_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: k, CopySource: aws.String("copy-source/k")})
				return err
			}, "404 NoSuchBucket"},
			{"CopyObject from it", func() error {
				_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("copy-source"), Key: aws.String("k2"), CopySource: aws.String(name + "/k")})
				return err
			}, "404 NoSuchBucket"},
			{"CreateMultipartUpload", func() error {
				_, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k})
				return err
			}, "404 NoSuchBucket"},
			{"ListMultipartUploads", func() error {
				_, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b})
				return err
			}, "404 NoSuchBucket"},
			{"HeadBucket", func() error { _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: b}); return err }, "404 NotFound"},
			{"DeleteBucket", func() error { _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: b}); return err }, "404 NoSuchBucket"},
			{"GetBucketLocation", func() error {
				_, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: b})
				return err
			}, "404 NoSuchBucket"},
		} {
			if got := codeString(tc.call()); got != tc.want {
				t.Errorf("%s in %s: %s, want %s", tc.op, name, got, tc.want)
			}
		}
	}
}

// conformanceConditionalWrites: If-None-Match: * and If-Match on PutObject,
// CopyObject and CompleteMultipartUpload, checked by the index atomically with the
// commit.
func conformanceConditionalWrites(t *testing.T, c *s3.Client) {
	ctx := context.Background()
	mustCreateBucket(t, c, "cond-writes")
	b := aws.String("cond-writes")
	putIf := func(key, body string, f func(*s3.PutObjectInput)) (*s3.PutObjectOutput, error) {
		in := &s3.PutObjectInput{Bucket: b, Key: aws.String(key), Body: strings.NewReader(body)}
		f(in)
		return c.PutObject(ctx, in)
	}
	read := func(key string) string {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key)})
		if err != nil {
			return codeString(err)
		}
		defer out.Body.Close()
		body, _ := io.ReadAll(out.Body)
		return string(body)
	}
	ifNone := func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") }

	first, err := putIf("k", "one", ifNone)
	if err != nil {
		t.Fatalf("If-None-Match: * on a new key: %v", err)
	}
	if _, err := putIf("k", "two", ifNone); codeString(err) != "412 PreconditionFailed" {
		t.Errorf("If-None-Match: * on an existing key: %s", codeString(err))
	}
	if _, err := putIf("k", "two", func(in *s3.PutObjectInput) { in.IfMatch = aws.String(`"00000000000000000000000000000000"`) }); codeString(err) != "412 PreconditionFailed" {
		t.Errorf("If-Match another ETag: %s", codeString(err))
	}
	if got := read("k"); got != "one" {
		t.Errorf("after two refused writes the object is %q", got)
	}
	if _, err := putIf("k", "three", func(in *s3.PutObjectInput) { in.IfMatch = first.ETag }); err != nil {
		t.Errorf("If-Match the current ETag: %v", err)
	}
	if got := read("k"); got != "three" {
		t.Errorf("after If-Match the object is %q", got)
	}
	if _, err := putIf("absent", "x", func(in *s3.PutObjectInput) { in.IfMatch = first.ETag }); codeString(err) != "404 NoSuchKey" {
		t.Errorf("If-Match on a missing key: %s", codeString(err))
	}
	if _, err := putIf("k", "x", func(in *s3.PutObjectInput) { in.IfNoneMatch = first.ETag }); codeString(err) != "501 NotImplemented" {
		t.Errorf("If-None-Match with an ETag: %s", codeString(err))
	}

	copyOnce := func() error {
		_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy"), CopySource: aws.String("cond-writes/k"), IfNoneMatch: aws.String("*")})
		return err
	}
	if err := copyOnce(); err != nil {
		t.Errorf("CopyObject If-None-Match: * to a new key: %v", err)
	}
	if err := copyOnce(); codeString(err) != "412 PreconditionFailed" {
		t.Errorf("CopyObject If-None-Match: * to an existing key: %s", codeString(err))
	}

	complete := func() error {
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("mpu")})
		if err != nil {
			return err
		}
		p, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("mpu"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("part")})
		if err != nil {
			return err
		}
		_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("mpu"), UploadId: up.UploadId, IfNoneMatch: aws.String("*"),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: p.ETag}}}})
		return err
	}
	if err := complete(); err != nil {
		t.Errorf("CompleteMultipartUpload If-None-Match: * to a new key: %v", err)
	}
	if err := complete(); codeString(err) != "412 PreconditionFailed" {
		t.Errorf("CompleteMultipartUpload If-None-Match: * to an existing key: %s", codeString(err))
	}
}

// conformanceListings: delimiters, prefixes, markers, continuation tokens, max-keys 0
// and encoding-type=url, over the index (and, partitioned by key, over every cell).
func conformanceListings(t *testing.T, c *s3.Client) {
	ctx := context.Background()
	mustCreateBucket(t, c, "listings")
	b := aws.String("listings")
	keys := []string{"asdf", "dir/", "dir/a", "dir/sub/b", "dir/sub/c", "foo+1/bar", "quux ab/thud", "x", "y", "z"}
	for _, k := range keys {
		if err := put(ctx, c, "listings", k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	v2 := func(in s3.ListObjectsV2Input) (objs, prefixes []string, out *s3.ListObjectsV2Output) {
		t.Helper()
		in.Bucket = b
		out, err := c.ListObjectsV2(ctx, &in)
		if err != nil {
			t.Fatal(err)
		}
		objs, prefixes = listed(out.Contents, out.CommonPrefixes)
		if n := len(out.Contents) + len(out.CommonPrefixes); int(aws.ToInt32(out.KeyCount)) != n {
			t.Errorf("KeyCount %d for %d entries", aws.ToInt32(out.KeyCount), n)
		}
		return objs, prefixes, out
	}
	check := func(name string, gotK, gotP, wantK, wantP []string) {
		t.Helper()
		if !slices.Equal(gotK, wantK) || !slices.Equal(gotP, wantP) {
			t.Errorf("%s: keys %q prefixes %q; want %q %q", name, gotK, gotP, wantK, wantP)
		}
	}

	k, p, _ := v2(s3.ListObjectsV2Input{Delimiter: aws.String("/")})
	check("delimiter /", k, p, []string{"asdf", "x", "y", "z"}, []string{"dir/", "foo+1/", "quux ab/"})
	k, p, _ = v2(s3.ListObjectsV2Input{Prefix: aws.String("dir/"), Delimiter: aws.String("/")})
	check("prefix dir/", k, p, []string{"dir/", "dir/a"}, []string{"dir/sub/"})
	k, p, _ = v2(s3.ListObjectsV2Input{Delimiter: aws.String("/"), EncodingType: types.EncodingTypeUrl})
	check("encoding-type=url", k, p, []string{"asdf", "x", "y", "z"}, []string{"dir/", "foo%2B1/", "quux%20ab/"})
	k, p, out := v2(s3.ListObjectsV2Input{MaxKeys: aws.Int32(0)})
	check("max-keys 0", k, p, nil, nil)
	if aws.ToBool(out.IsTruncated) {
		t.Error("max-keys 0 is truncated")
	}
	k, p, _ = v2(s3.ListObjectsV2Input{StartAfter: aws.String("dir/sub/b")})
	check("start-after", k, p, keys[4:], nil)

	// Paging, two entries a page, with a delimiter: v2 by continuation token and v1
	// by NextMarker, every key and prefix once and in order.
	var all []string
	in := s3.ListObjectsV2Input{Delimiter: aws.String("/"), MaxKeys: aws.Int32(2)}
	for range 20 {
		k, p, out := v2(in)
		all = append(all, k...)
		all = append(all, p...)
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.ContinuationToken = out.NextContinuationToken
	}
	slices.Sort(all)
	if want := []string{"asdf", "dir/", "foo+1/", "quux ab/", "x", "y", "z"}; !slices.Equal(all, want) {
		t.Errorf("v2 pages: %q, want %q", all, want)
	}
	all = nil
	v1 := &s3.ListObjectsInput{Bucket: b, Delimiter: aws.String("/"), MaxKeys: aws.Int32(2)}
	for range 20 {
		out, err := c.ListObjects(ctx, v1)
		if err != nil {
			t.Fatal(err)
		}
		k, p := listed(out.Contents, out.CommonPrefixes)
		all = append(append(all, k...), p...)
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		v1.Marker = out.NextMarker
	}
	slices.Sort(all)
	if want := []string{"asdf", "dir/", "foo+1/", "quux ab/", "x", "y", "z"}; !slices.Equal(all, want) {
		t.Errorf("v1 pages: %q, want %q", all, want)
	}

	// DeleteObjects names every key Deleted, those that were not there too.
	dout, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: b, Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("x")}, {Key: aws.String("y")}, {Key: aws.String("never")}}}})
	if err != nil || len(dout.Deleted) != 3 || len(dout.Errors) != 0 {
		t.Errorf("DeleteObjects: %+v %v", dout, err)
	}
	k, _, _ = v2(s3.ListObjectsV2Input{StartAfter: aws.String("quux ab/thud")})
	check("after DeleteObjects", k, nil, []string{"z"}, nil)
}

// listed returns the keys and the common prefixes of a page of a listing.
func listed(objs []types.Object, cps []types.CommonPrefix) (keys, prefixes []string) {
	for _, o := range objs {
		keys = append(keys, aws.ToString(o.Key))
	}
	for _, p := range cps {
		prefixes = append(prefixes, aws.ToString(p.Prefix))
	}
	return keys, prefixes
}

// conformanceMultipart: part size limits, part order, ListParts and
// ListMultipartUploads paging, and GET ?partNumber past the parts, over the index.
func conformanceMultipart(t *testing.T, c *s3.Client) {
	ctx := context.Background()
	mustCreateBucket(t, c, "mpu-conf")
	b := aws.String("mpu-conf")
	create := func(key string) *string {
		t.Helper()
		out, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return out.UploadId
	}
	part := func(key string, id *string, n int32, body []byte) types.CompletedPart {
		t.Helper()
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String(key), UploadId: id, PartNumber: aws.Int32(n), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		return types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag}
	}
	complete := func(key string, id *string, parts ...types.CompletedPart) error {
		_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String(key), UploadId: id,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		return err
	}

	id := create("obj")
	p1 := part("obj", id, 1, []byte("small"))
	p2 := part("obj", id, 2, []byte("last"))
	p3 := part("obj", id, 3, []byte("three"))
	if err := complete("obj", id, p1, p2); codeString(err) != "400 EntityTooSmall" {
		t.Errorf("a small part but the last: %s", codeString(err))
	}
	if err := complete("obj", id, p2, p1); codeString(err) != "400 InvalidPartOrder" {
		t.Errorf("parts out of order: %s", codeString(err))
	}
	if err := complete("obj", id, types.CompletedPart{PartNumber: aws.Int32(4), ETag: p1.ETag}); codeString(err) != "400 InvalidPart" {
		t.Errorf("a part never uploaded: %s", codeString(err))
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("obj"), UploadId: id, MaxParts: aws.Int32(2)})
	if err != nil || len(lp.Parts) != 2 || !aws.ToBool(lp.IsTruncated) || aws.ToString(lp.NextPartNumberMarker) != "2" {
		t.Fatalf("ListParts page 1: %+v %v", lp, err)
	}
	lp, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("obj"), UploadId: id, PartNumberMarker: lp.NextPartNumberMarker})
	if err != nil || len(lp.Parts) != 1 || aws.ToInt32(lp.Parts[0].PartNumber) != 3 || aws.ToBool(lp.IsTruncated) ||
		aws.ToString(lp.Parts[0].ETag) != aws.ToString(p3.ETag) || aws.ToInt64(lp.Parts[0].Size) != 5 {
		t.Errorf("ListParts page 2: %+v %v", lp, err)
	}
	if err := complete("obj", id, p1); err != nil {
		t.Fatalf("one small part: %v", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("obj"), PartNumber: aws.Int32(2)}); codeString(err) != "416 InvalidPartNumber" {
		t.Errorf("GET part 2 of 1: %s", codeString(err))
	}

	var want []string
	for i := range 5 {
		k := fmt.Sprintf("up/%d", i)
		create(k)
		want = append(want, k)
	}
	var got []string
	in := &s3.ListMultipartUploadsInput{Bucket: b, Prefix: aws.String("up/"), MaxUploads: aws.Int32(2)}
	for range 10 {
		out, err := c.ListMultipartUploads(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range out.Uploads {
			got = append(got, aws.ToString(u.Key))
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListMultipartUploads pages: %q, want %q", got, want)
	}

	// With a delimiter, a common prefix is one entry, given once across pages.
	for _, k := range []string{"dl/a/1", "dl/a/2", "dl/b"} {
		create(k)
	}
	got = nil
	in = &s3.ListMultipartUploadsInput{Bucket: b, Prefix: aws.String("dl/"), Delimiter: aws.String("/"), MaxUploads: aws.Int32(1)}
	for range 10 {
		out, err := c.ListMultipartUploads(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range out.Uploads {
			got = append(got, aws.ToString(u.Key))
		}
		for _, p := range out.CommonPrefixes {
			got = append(got, aws.ToString(p.Prefix))
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
	if want := []string{"dl/a/", "dl/b"}; !slices.Equal(got, want) {
		t.Errorf("ListMultipartUploads pages with a delimiter: %q, want %q", got, want)
	}
}
