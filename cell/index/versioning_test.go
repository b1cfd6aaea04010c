package index

import (
	"slices"
	"testing"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

const (
	vOff       = cellarv1.BucketVersioning_BUCKET_VERSIONING_OFF
	vEnabled   = cellarv1.BucketVersioning_BUCKET_VERSIONING_ENABLED
	vSuspended = cellarv1.BucketVersioning_BUCKET_VERSIONING_SUSPENDED
)

// versionLoc is a version of bucket/key with its own blob and the version id id.
func versionLoc(bucket, key, id string, size int64) *cellarv1.Location {
	l := loc(bucket, key, size)
	l.VersionId = id
	return l
}

// idsOf lists the version ids of a record, newest first ("-" marks a delete marker).
func idsOf(rec *cellarv1.Location) []string {
	var out []string
	for _, v := range allVersions(rec) {
		id := v.VersionId
		if id == "" {
			id = "null"
		}
		if v.DeleteMarker {
			id = "-" + id
		}
		out = append(out, id)
	}
	return out
}

func mustRecord(t *testing.T, s *Store, bucket, key string) *cellarv1.Location {
	t.Helper()
	rec, err := s.LookupVersion(bucket, key, LookupOptions{Versions: true})
	if err != nil {
		t.Fatalf("record of %s/%s: %v", bucket, key, err)
	}
	return rec
}

func wantIDs(t *testing.T, s *Store, bucket, key string, want ...string) {
	t.Helper()
	if got := idsOf(mustRecord(t, s, bucket, key)); !slices.Equal(got, want) {
		t.Fatalf("versions of %s/%s: %q, want %q", bucket, key, got, want)
	}
}

func TestUnversionedBucketKeepsOneVersion(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.CreateBucket("b")
	// The gateway sends a version id with every write; a bucket never versioned drops it.
	if _, err := s.CommitVersioned(versionLoc("b", "k", "v1", 1), true, Condition{}, vOff); err != nil {
		t.Fatal(err)
	}
	res, err := s.CommitVersioned(versionLoc("b", "k", "v2", 2), true, Condition{}, vOff)
	if err != nil {
		t.Fatal(err)
	}
	if res.Previous == nil || res.Previous.Size != 1 || res.VersionID != "" || res.Versioning != vOff {
		t.Fatalf("overwrite: %+v, want the old version replaced and a null version", res)
	}
	rec := mustRecord(t, s, "b", "k")
	if rec.VersionId != "" || len(rec.Versions) != 0 || rec.Size != 2 {
		t.Fatalf("record %v, want one null version", rec)
	}
	prev, err := s.Delete("b", "k")
	if err != nil || prev == nil || prev.Size != 2 {
		t.Fatalf("delete: %v %v", prev, err)
	}
	if _, err := s.LookupVersion("b", "k", LookupOptions{Versions: true}); !errs.Is(err, errs.NoSuchKey) {
		t.Fatalf("after delete: %v, want NoSuchKey", err)
	}
}

func TestVersionsAndDeleteMarkers(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.CreateBucket("b")
	// An object written before versioning is the null version, and stays.
	if _, err := s.Commit(loc("b", "k", 1), true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetBucketVersioning("b", vOff); !errs.Is(err, errs.MalformedXML) {
		t.Fatalf("versioning back to off: %v, want refused", err)
	}
	if _, err := s.SetBucketVersioning("b", vEnabled); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"v2", "v3"} {
		res, err := s.CommitVersioned(versionLoc("b", "k", id, int64(i+2)), true, Condition{}, vOff)
		if err != nil || res.Previous != nil || res.VersionID != id || res.Versioning != vEnabled {
			t.Fatalf("versioned write %s: %+v %v", id, res, err)
		}
	}
	wantIDs(t, s, "b", "k", "v3", "v2", "null")
	if cur, err := s.Lookup("b", "k"); err != nil || cur.Size != 3 || len(cur.Versions) != 0 {
		t.Fatalf("current: %v %v", cur, err)
	}
	if v, err := s.LookupVersion("b", "k", LookupOptions{VersionID: "null"}); err != nil || v.Size != 1 || v.Key != "k" {
		t.Fatalf("null version: %v %v", v, err)
	}
	if _, err := s.LookupVersion("b", "k", LookupOptions{VersionID: "nope"}); !errs.Is(err, errs.NoSuchVersion) {
		t.Fatalf("missing version: %v", err)
	}

	// A delete makes a delete marker: the key is gone for plain reads and listings.
	dr, err := s.DeleteVersioned("b", "k", DeleteOptions{MarkerVersionID: "m4"})
	if err != nil || !dr.DeleteMarker || dr.VersionID != "m4" || dr.Previous != nil {
		t.Fatalf("delete: %+v %v", dr, err)
	}
	wantIDs(t, s, "b", "k", "-m4", "v3", "v2", "null")
	if _, err := s.Lookup("b", "k"); !errs.Is(err, errs.NoSuchKey) {
		t.Fatalf("lookup under a delete marker: %v, want NoSuchKey", err)
	}
	if m, err := s.LookupVersion("b", "k", LookupOptions{DeleteMarkers: true}); err != nil || !m.DeleteMarker || m.VersionId != "m4" {
		t.Fatalf("delete marker: %v %v", m, err)
	}
	if res, _ := s.List("b", ListOptions{}); len(res.Entries) != 0 {
		t.Fatalf("plain listing shows %v under a delete marker", res.Entries)
	}
	if res, _ := s.List("b", ListOptions{Versions: true}); len(res.Entries) != 1 || len(res.Entries[0].Versions) != 3 {
		t.Fatalf("versions listing: %v", res.Entries)
	}
	if err := s.DeleteBucket("b"); !errs.Is(err, errs.BucketNotEmpty) {
		t.Fatalf("delete a bucket with versions: %v, want BucketNotEmpty", err)
	}
	if _, err := s.CommitIf(loc("b", "k", 9), true, Condition{IfMatch: "*"}); !errs.Is(err, errs.NoSuchKey) {
		t.Fatalf("If-Match under a delete marker: %v, want NoSuchKey", err)
	}

	// The versions survive a restart: the rebuild loads them with their key.
	s.Close()
	if s, err = Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wantIDs(t, s, "b", "k", "-m4", "v3", "v2", "null")

	// Deleting the marker by its id brings v3 back; deleting v3 gives its blob back.
	if dr, err = s.DeleteVersioned("b", "k", DeleteOptions{VersionID: "m4"}); err != nil || !dr.DeleteMarker || dr.Previous != nil {
		t.Fatalf("delete the marker: %+v %v", dr, err)
	}
	if cur, err := s.Lookup("b", "k"); err != nil || cur.VersionId != "v3" {
		t.Fatalf("current after the marker went: %v %v", cur, err)
	}
	if dr, err = s.DeleteVersioned("b", "k", DeleteOptions{VersionID: "v3"}); err != nil || dr.Previous == nil || dr.Previous.Size != 3 {
		t.Fatalf("delete v3: %+v %v", dr, err)
	}
	wantIDs(t, s, "b", "k", "v2", "null")
	if dr, err = s.DeleteVersioned("b", "k", DeleteOptions{VersionID: "gone"}); err != nil || dr.Previous != nil {
		t.Fatalf("delete a version that does not exist: %+v %v", dr, err)
	}

	// Suspended: writes and deletes are the null version, replacing the null one.
	if _, err := s.SetBucketVersioning("b", vSuspended); err != nil {
		t.Fatal(err)
	}
	res, err := s.CommitVersioned(versionLoc("b", "k", "ignored", 5), true, Condition{}, vOff)
	if err != nil || res.VersionID != "" || res.Previous == nil || res.Previous.Size != 1 || res.Versioning != vSuspended {
		t.Fatalf("suspended write: %+v %v", res, err)
	}
	wantIDs(t, s, "b", "k", "null", "v2")
	if dr, err = s.DeleteVersioned("b", "k", DeleteOptions{}); err != nil || !dr.DeleteMarker || dr.Previous == nil || dr.Previous.Size != 5 {
		t.Fatalf("suspended delete: %+v %v", dr, err)
	}
	wantIDs(t, s, "b", "k", "-null", "v2")

	// The last versions deleted by id take the key with them.
	for _, id := range []string{"null", "v2"} {
		if _, err := s.DeleteVersioned("b", "k", DeleteOptions{VersionID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.LookupVersion("b", "k", LookupOptions{Versions: true}); !errs.Is(err, errs.NoSuchKey) {
		t.Fatalf("after every version went: %v, want NoSuchKey", err)
	}
	if err := s.DeleteBucket("b"); err != nil {
		t.Fatalf("delete the emptied bucket: %v", err)
	}
}

func TestRepairCommitKeepsVersions(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.CreateBucket("b")
	s.SetBucketVersioning("b", vEnabled)
	s.CommitVersioned(versionLoc("b", "k", "v1", 1), true, Condition{}, vOff)
	s.CommitVersioned(versionLoc("b", "k", "v2", 2), true, Condition{}, vOff)
	moved := versionLoc("b", "k", "", 2)
	moved.Replicas = []string{"s2", "s3"}
	if _, err := s.CommitIf(moved, true, Condition{IfObjectID: moved.ObjectId}); err != nil {
		t.Fatal(err)
	}
	rec := mustRecord(t, s, "b", "k")
	if got := idsOf(rec); !slices.Equal(got, []string{"v2", "v1"}) || !slices.Equal(rec.Replicas, moved.Replicas) {
		t.Fatalf("after a repair commit: %q on %v, want v2 (moved) then v1", got, rec.Replicas)
	}
}

func TestVersionedMultipartCompletion(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.CreateBucket("b")
	s.SetBucketVersioning("b", vEnabled)
	s.CommitVersioned(versionLoc("b", "k", "v1", 1), true, Condition{}, vOff)
	if err := s.CreateUpload(&cellarv1.Upload{Bucket: "b", Key: "k", UploadId: "u1"}, true); err != nil {
		t.Fatal(err)
	}
	part := &cellarv1.PartLocation{Number: 1, ObjectId: []byte("p1"), Size: 3, Md5: []byte{1, 2, 3}}
	if _, err := s.PutPart("b", "k", "u1", part); err != nil {
		t.Fatal(err)
	}
	got, prev, _, err := s.CompleteUpload("b", "k", "u1", []CompletedPart{{Number: 1, ETag: "010203"}}, CompleteOptions{VersionID: "v2", ModifiedUnixNano: 1})
	if err != nil || prev != nil || got.VersionId != "v2" || len(got.Versions) != 0 {
		t.Fatalf("complete: %v prev %v err %v", got, prev, err)
	}
	wantIDs(t, s, "b", "k", "v2", "v1")
}
