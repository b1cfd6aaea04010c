package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
)

// S3 versioning, with aws-sdk-go-v2 against a cluster partitioned by bucket and one
// partitioned by key (where a bucket's versions and its versioning state live in
// different cells): PutBucketVersioning and GetBucketVersioning, a version per PUT,
// GET, HEAD and DELETE by version id, delete markers, ListObjectVersions with its
// markers, suspension and the null version, and the unversioned path as it was.
func TestS3Versioning(t *testing.T) {
	for _, partition := range []string{cell.PartitionByBucket, cell.PartitionByKey} {
		t.Run("partition by "+partition, func(t *testing.T) {
			topo := topology(2)
			topo.Partition = partition
			cl := Start(t, topo)
			c := cl.S3()
			t.Run("unversioned bucket", func(t *testing.T) { versioningOff(t, c) })
			t.Run("versions and delete markers", func(t *testing.T) { versioningEnabled(t, c) })
			t.Run("list object versions", func(t *testing.T) { versioningListing(t, c) })
			t.Run("suspended", func(t *testing.T) { versioningSuspended(t, c) })
		})
	}
}

func mustPut(t *testing.T, c *s3.Client, bucket, key, body string) *s3.PutObjectOutput {
	t.Helper()
	out, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
	if err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
	return out
}

func setVersioning(t *testing.T, c *s3.Client, bucket string, status types.BucketVersioningStatus) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: status}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(bucket)})
	if err != nil || got.Status != status {
		t.Fatalf("GetBucketVersioning: %v %v, want %s", got.Status, err, status)
	}
}

// getBody reads one version ("" for the current one).
func getBody(t *testing.T, c *s3.Client, bucket, key, version string) (string, *s3.GetObjectOutput) {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	out, err := c.GetObject(context.Background(), in)
	if err != nil {
		t.Fatalf("get %s/%s version %q: %v", bucket, key, version, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), out
}

// answerOf returns the status of a failed call and its x-amz-delete-marker and
// x-amz-version-id headers.
func answerOf(t *testing.T, err error) (status int, deleteMarker, versionID string) {
	t.Helper()
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not an HTTP answer", err)
	}
	h := re.Response.Header
	return re.HTTPStatusCode(), h.Get("x-amz-delete-marker"), h.Get("x-amz-version-id")
}

func versioningOff(t *testing.T, c *s3.Client) {
	ctx := context.Background()
	b := "plain-bucket"
	mustCreateBucket(t, c, b)
	got, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(b)})
	if err != nil || got.Status != "" {
		t.Fatalf("GetBucketVersioning of a bucket never versioned: %q %v, want no status", got.Status, err)
	}
	if out := mustPut(t, c, b, "k", "one"); out.VersionId != nil {
		t.Errorf("PUT in an unversioned bucket answered version %q", aws.ToString(out.VersionId))
	}
	mustPut(t, c, b, "k", "two")
	if body, out := getBody(t, c, b, "k", ""); body != "two" || out.VersionId != nil {
		t.Errorf("GET: %q version %q, want the overwrite and no version", body, aws.ToString(out.VersionId))
	}
	if body, _ := getBody(t, c, b, "k", "null"); body != "two" {
		t.Errorf("GET versionId=null: %q", body)
	}
	vs, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(b)})
	if err != nil || len(vs.Versions) != 1 || aws.ToString(vs.Versions[0].VersionId) != "null" || len(vs.DeleteMarkers) != 0 {
		t.Fatalf("ListObjectVersions: %+v %v, want one null version", vs, err)
	}
	del, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String("k")})
	if err != nil || del.DeleteMarker != nil || del.VersionId != nil {
		t.Fatalf("DELETE: %+v %v, want no marker and no version", del, err)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("k")})
	if status, dm, _ := answerOf(t, err); status != 404 || dm != "" {
		t.Fatalf("GET after DELETE: %d delete-marker %q, want 404 without a marker", status, dm)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(b)}); err != nil {
		t.Fatalf("delete the emptied bucket: %v", err)
	}
}

func versioningEnabled(t *testing.T, c *s3.Client) {
	ctx := context.Background()
	b := "versioned-bucket"
	mustCreateBucket(t, c, b)
	mustPut(t, c, b, "doc", "before") // the null version, from before versioning
	setVersioning(t, c, b, types.BucketVersioningStatusEnabled)
	v1 := aws.ToString(mustPut(t, c, b, "doc", "first").VersionId)
	v2 := aws.ToString(mustPut(t, c, b, "doc", "second").VersionId)
	if v1 == "" || v2 == "" || v1 == v2 || v1 == "null" {
		t.Fatalf("version ids %q and %q, want two new ones", v1, v2)
	}
	if body, out := getBody(t, c, b, "doc", ""); body != "second" || aws.ToString(out.VersionId) != v2 {
		t.Errorf("GET: %q version %q, want second, %s", body, aws.ToString(out.VersionId), v2)
	}
	for version, want := range map[string]string{v1: "first", v2: "second", "null": "before"} {
		if body, out := getBody(t, c, b, "doc", version); body != want || aws.ToString(out.VersionId) != version {
			t.Errorf("GET version %s: %q (version %q), want %q", version, body, aws.ToString(out.VersionId), want)
		}
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String("doc"), VersionId: aws.String(v1)})
	if err != nil || aws.ToInt64(head.ContentLength) != int64(len("first")) || aws.ToString(head.VersionId) != v1 {
		t.Errorf("HEAD version %s: %+v %v", v1, head, err)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("doc"), VersionId: aws.String("0000no0such0version")})
	if status, _, _ := answerOf(t, err); status != 404 || !strings.Contains(err.Error(), "NoSuchVersion") {
		t.Errorf("GET of a version that does not exist: %v, want 404 NoSuchVersion", err)
	}

	// DELETE without a version id adds a delete marker; the versions stay.
	del, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String("doc")})
	marker := aws.ToString(del.VersionId)
	if err != nil || !aws.ToBool(del.DeleteMarker) || marker == "" || marker == v2 {
		t.Fatalf("DELETE: %+v %v, want a new delete marker", del, err)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("doc")})
	if status, dm, vid := answerOf(t, err); status != 404 || dm != "true" || vid != marker {
		t.Errorf("GET under a delete marker: %d delete-marker %q version %q, want 404, true, %s", status, dm, vid, marker)
	}
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String("doc")})
	if status, dm, _ := answerOf(t, err); status != 404 || dm != "true" {
		t.Errorf("HEAD under a delete marker: %d delete-marker %q", status, dm)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("doc"), VersionId: aws.String(marker)})
	if status, dm, _ := answerOf(t, err); status != 405 || dm != "true" {
		t.Errorf("GET of the delete marker's version: %d delete-marker %q, want 405, true", status, dm)
	}
	if body, _ := getBody(t, c, b, "doc", v1); body != "first" {
		t.Errorf("old version under the marker: %q", body)
	}
	if l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b)}); err != nil || len(l.Contents) != 0 {
		t.Errorf("ListObjectsV2 under a delete marker: %v %v, want nothing", keysOf(l), err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(b)}); err == nil {
		t.Errorf("a bucket holding versions was deleted")
	}

	// DELETE of the marker by its id undeletes; DELETE of a version removes it for good.
	del, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String("doc"), VersionId: aws.String(marker)})
	if err != nil || !aws.ToBool(del.DeleteMarker) || aws.ToString(del.VersionId) != marker {
		t.Fatalf("DELETE of the marker: %+v %v", del, err)
	}
	if body, _ := getBody(t, c, b, "doc", ""); body != "second" {
		t.Errorf("GET after the marker went: %q, want second", body)
	}
	del, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String("doc"), VersionId: aws.String(v2)})
	if err != nil || aws.ToBool(del.DeleteMarker) || aws.ToString(del.VersionId) != v2 {
		t.Fatalf("DELETE of %s: %+v %v", v2, del, err)
	}
	if body, out := getBody(t, c, b, "doc", ""); body != "first" || aws.ToString(out.VersionId) != v1 {
		t.Errorf("GET after the current version went: %q, want first", body)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("doc"), VersionId: aws.String(v2)})
	if status, _, _ := answerOf(t, err); status != 404 {
		t.Errorf("GET of a deleted version: %v, want 404", err)
	}

	// DeleteObjects with and without version ids.
	v3 := aws.ToString(mustPut(t, c, b, "other", "x").VersionId)
	res, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(b), Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("doc"), VersionId: aws.String(v1)}, {Key: aws.String("doc"), VersionId: aws.String("null")}, {Key: aws.String("other")},
	}}})
	if err != nil || len(res.Errors) != 0 || len(res.Deleted) != 3 {
		t.Fatalf("DeleteObjects: %+v %v", res, err)
	}
	if d := res.Deleted[2]; !aws.ToBool(d.DeleteMarker) || aws.ToString(d.DeleteMarkerVersionId) == "" {
		t.Errorf("DeleteObjects without a version id: %+v, want a delete marker", d)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("doc")}); err == nil {
		t.Errorf("doc still readable after its every version was deleted")
	}
	if body, _ := getBody(t, c, b, "other", v3); body != "x" {
		t.Errorf("version under DeleteObjects' marker: %q", body)
	}
}

func keysOf(l *s3.ListObjectsV2Output) []string {
	var out []string
	if l == nil {
		return nil
	}
	for _, o := range l.Contents {
		out = append(out, aws.ToString(o.Key))
	}
	return out
}

// versionEntry is one line of a ListObjectVersions answer: key, version id, latest,
// and whether it is a delete marker.
type versionEntry struct {
	key, id        string
	latest, marker bool
}

// listAllVersions pages through ListObjectVersions with max-keys n and returns the
// entries in order and the common prefixes.
func listAllVersions(t *testing.T, c *s3.Client, in s3.ListObjectVersionsInput, n int32) ([]versionEntry, []string, int) {
	t.Helper()
	var out []versionEntry
	var prefixes []string
	pages := 0
	in.MaxKeys = aws.Int32(n)
	for {
		page, err := c.ListObjectVersions(context.Background(), &in)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		var es []versionEntry
		for _, v := range page.Versions {
			es = append(es, versionEntry{aws.ToString(v.Key), aws.ToString(v.VersionId), aws.ToBool(v.IsLatest), false})
		}
		for _, m := range page.DeleteMarkers {
			es = append(es, versionEntry{aws.ToString(m.Key), aws.ToString(m.VersionId), aws.ToBool(m.IsLatest), true})
		}
		for _, p := range page.CommonPrefixes {
			prefixes = append(prefixes, aws.ToString(p.Prefix))
		}
		if len(es)+len(page.CommonPrefixes) > int(n) {
			t.Fatalf("a page of max-keys %d holds %d entries", n, len(es)+len(page.CommonPrefixes))
		}
		out = append(out, es...)
		if !aws.ToBool(page.IsTruncated) {
			return out, prefixes, pages
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
		if pages > 100 {
			t.Fatal("listing does not end")
		}
	}
}

func versioningListing(t *testing.T, c *s3.Client) {
	b := "listed-versions"
	mustCreateBucket(t, c, b)
	setVersioning(t, c, b, types.BucketVersioningStatusEnabled)
	// a: 3 versions; b/x: 2 versions under a delete marker; c: 1 version.
	want := map[string][]string{}
	for _, kv := range [][2]string{{"a", "1"}, {"a", "2"}, {"a", "3"}, {"b/x", "1"}, {"b/x", "2"}, {"c", "1"}} {
		want[kv[0]] = append([]string{aws.ToString(mustPut(t, c, b, kv[0], kv[1]).VersionId)}, want[kv[0]]...)
	}
	del, err := c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String("b/x")})
	if err != nil {
		t.Fatal(err)
	}
	want["b/x"] = append([]string{aws.ToString(del.VersionId)}, want["b/x"]...)

	var full []versionEntry
	for _, k := range []string{"a", "b/x", "c"} {
		for i, id := range want[k] {
			full = append(full, versionEntry{k, id, i == 0, k == "b/x" && i == 0})
		}
	}
	sortEntries := func(es []versionEntry) []versionEntry {
		// The SDK splits versions and delete markers: compare as sets per key, in order.
		out := slices.Clone(es)
		slices.SortStableFunc(out, func(x, y versionEntry) int { return strings.Compare(x.key, y.key) })
		return out
	}
	for _, n := range []int32{1000, 1, 2, 4} {
		got, _, pages := listAllVersions(t, c, s3.ListObjectVersionsInput{Bucket: aws.String(b)}, n)
		if !sameEntries(got, full) {
			t.Errorf("max-keys %d: %v, want %v", n, sortEntries(got), full)
		}
		if n == 1 && pages < len(full) {
			t.Errorf("max-keys 1 took %d pages for %d versions", pages, len(full))
		}
	}
	got, prefixes, _ := listAllVersions(t, c, s3.ListObjectVersionsInput{Bucket: aws.String(b), Delimiter: aws.String("/")}, 2)
	if !slices.Equal(prefixes, []string{"b/"}) || len(got) != 4 {
		t.Errorf("with delimiter: %v prefixes %q, want a's and c's 4 versions and b/", got, prefixes)
	}
	got, _, _ = listAllVersions(t, c, s3.ListObjectVersionsInput{Bucket: aws.String(b), Prefix: aws.String("b/")}, 1000)
	if len(got) != 3 {
		t.Errorf("prefix b/: %v, want b/x's 3 versions", got)
	}
	// Starting inside a key: after a's newest version.
	got, _, _ = listAllVersions(t, c, s3.ListObjectVersionsInput{Bucket: aws.String(b), KeyMarker: aws.String("a"), VersionIdMarker: aws.String(want["a"][0])}, 1000)
	if !sameEntries(got, full[1:]) {
		t.Errorf("after a's newest version: %v, want %v", got, full[1:])
	}
	got, _, _ = listAllVersions(t, c, s3.ListObjectVersionsInput{Bucket: aws.String(b), KeyMarker: aws.String("a")}, 1000)
	if !sameEntries(got, full[3:]) {
		t.Errorf("after key a: %v, want %v", got, full[3:])
	}
}

// sameEntries compares listings key by key: the SDK hands versions and delete markers
// back in two lists, so only the order within each key's versions of one kind is kept.
func sameEntries(got, want []versionEntry) bool {
	norm := func(es []versionEntry) string {
		byKey := map[string][]string{}
		var keys []string
		for _, e := range es {
			if _, ok := byKey[e.key]; !ok {
				keys = append(keys, e.key)
			}
			byKey[e.key] = append(byKey[e.key], fmt.Sprintf("%s/%v/%v", e.id, e.latest, e.marker))
		}
		slices.Sort(keys)
		var sb strings.Builder
		for _, k := range keys {
			vs := byKey[k]
			slices.Sort(vs)
			fmt.Fprintf(&sb, "%s:%v;", k, vs)
		}
		return sb.String()
	}
	return len(got) == len(want) && norm(got) == norm(want)
}

func versioningSuspended(t *testing.T, c *s3.Client) {
	ctx := context.Background()
	b := "suspended-bucket"
	mustCreateBucket(t, c, b)
	setVersioning(t, c, b, types.BucketVersioningStatusEnabled)
	v1 := aws.ToString(mustPut(t, c, b, "k", "kept").VersionId)
	setVersioning(t, c, b, types.BucketVersioningStatusSuspended)
	if id := aws.ToString(mustPut(t, c, b, "k", "null one").VersionId); id != "null" {
		t.Errorf("PUT while suspended: version %q, want null", id)
	}
	if id := aws.ToString(mustPut(t, c, b, "k", "null two").VersionId); id != "null" {
		t.Errorf("second PUT while suspended: version %q, want null", id)
	}
	got, _, _ := listAllVersions(t, c, s3.ListObjectVersionsInput{Bucket: aws.String(b)}, 1000)
	if !sameEntries(got, []versionEntry{{"k", "null", true, false}, {"k", v1, false, false}}) {
		t.Errorf("versions while suspended: %v, want the null version (replaced in place) and %s", got, v1)
	}
	if body, _ := getBody(t, c, b, "k", "null"); body != "null two" {
		t.Errorf("null version: %q", body)
	}
	del, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String("k")})
	if err != nil || !aws.ToBool(del.DeleteMarker) || aws.ToString(del.VersionId) != "null" {
		t.Fatalf("DELETE while suspended: %+v %v, want a null delete marker", del, err)
	}
	if body, _ := getBody(t, c, b, "k", v1); body != "kept" {
		t.Errorf("version from before the suspension: %q", body)
	}
}

// TestOldVersionsSurviveGarbageCollection: the blobs of a key's older versions, and of
// the versions under a delete marker, are referenced for the repair's garbage
// collection: a collection finds no orphan among them and deletes none, and every
// version still reads whole after it.
func TestOldVersionsSurviveGarbageCollection(t *testing.T) {
	cl := Start(t, topology(1), fastRepair)
	ctx := context.Background()
	c := cl.S3()
	b := "kept-versions"
	mustCreateBucket(t, c, b)
	setVersioning(t, c, b, types.BucketVersioningStatusEnabled)
	want := map[string]string{}
	for i := range 3 {
		body := fmt.Sprintf("version %d of k", i)
		want[aws.ToString(mustPut(t, c, b, "k", body).VersionId)] = body
		body = fmt.Sprintf("version %d of gone", i)
		want[aws.ToString(mustPut(t, c, b, "gone", body).VersionId)] = body
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := cl.Repair(cell.ID(0)).CollectGarbage(rctx, &cellarv1.CollectGarbageRequest{Apply: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range resp.Nodes {
		if n.EligibleBlobs+n.PendingBlobs+n.DeletedBlobs != 0 || n.Error != "" {
			t.Errorf("garbage collection on %s counts versions as orphans: %+v", n.NodeId, n)
		}
	}
	for id, body := range want {
		key := "k"
		if strings.HasSuffix(body, "gone") {
			key = "gone"
		}
		if got, _ := getBody(t, c, b, key, id); got != body {
			t.Errorf("version %s of %s after garbage collection: %q, want %q", id, key, got, body)
		}
	}
}
