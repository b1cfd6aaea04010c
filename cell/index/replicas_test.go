package index

import (
	"slices"
	"testing"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// TestRepairCommitMovesAnOlderVersion: a repair commit names a version by its blob id,
// current or older, and changes only that version's replica lists: the other versions,
// the order, and the version's tags stay. A version deleted meanwhile is refused, and
// a location whose blobs are not the version's too.
func TestRepairCommitMovesAnOlderVersion(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	s.CreateBucket("b")
	s.SetBucketVersioning("b", vEnabled)
	for i, id := range []string{"v1", "v2", "v3"} {
		if _, err := s.CommitVersioned(versionLoc("b", "k", id, int64(i+1)), true, Condition{}, vOff); err != nil {
			t.Fatal(err)
		}
	}
	replicasOf := func(id string) []string {
		t.Helper()
		v, err := s.LookupVersion("b", "k", LookupOptions{VersionID: id})
		if err != nil {
			t.Fatal(err)
		}
		return v.Replicas
	}

	moved := versionLoc("b", "k", "v2", 2) // as the repair read it, before the tagging
	moved.Replicas = []string{"s0", "s2"}
	if _, err := s.CommitIf(moved, true, Condition{IfObjectID: moved.ObjectId}); err != nil {
		t.Fatalf("repair commit of an older version: %v", err)
	}
	wantIDs(t, s, "b", "k", "v3", "v2", "v1")
	if got := replicasOf("v2"); !slices.Equal(got, moved.Replicas) {
		t.Errorf("v2 on %v, want %v", got, moved.Replicas)
	}
	if got := replicasOf("v3"); !slices.Equal(got, []string{"s0", "s1"}) {
		t.Errorf("the current version moved too: %v", got)
	}
	if got := replicasOf("v1"); !slices.Equal(got, []string{"s0", "s1"}) {
		t.Errorf("v1 moved too: %v", got)
	}

	// The current version is tagged after the repair read it: the repair's stale
	// copy has no tags, and its commit must not remove them.
	cur := versionLoc("b", "k", "v3", 3)
	if _, err := s.PutObjectTags(&cellarv1.PutObjectTagsRequest{Bucket: "b", Key: "k", Tags: []*cellarv1.Tag{{Key: "t", Value: "x"}}}); err != nil {
		t.Fatal(err)
	}
	cur.Replicas = []string{"s1", "s2"}
	if _, err := s.CommitIf(cur, true, Condition{IfObjectID: cur.ObjectId}); err != nil {
		t.Fatalf("repair commit of the current version: %v", err)
	}
	v3, err := s.Lookup("b", "k")
	if err != nil || len(v3.Tags) != 1 || !slices.Equal(v3.Replicas, cur.Replicas) {
		t.Errorf("current version after a repair commit: %v %v; want its tag kept, on %v", v3, err, cur.Replicas)
	}

	// The version is deleted after the repair read it: the commit must not bring it back.
	gone := versionLoc("b", "k", "v1", 1)
	gone.Replicas = []string{"s0", "s2"}
	if _, err := s.DeleteVersioned("b", "k", DeleteOptions{VersionID: "v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitIf(gone, true, Condition{IfObjectID: gone.ObjectId}); !errs.Is(err, errs.PreconditionFailed) {
		t.Fatalf("repair commit of a deleted version: %v, want PreconditionFailed", err)
	}
	wantIDs(t, s, "b", "k", "v3", "v2")

	// A location whose blob is not the version it names.
	wrong := versionLoc("b", "k", "v3", 99)
	if _, err := s.CommitIf(wrong, true, Condition{IfObjectID: versionLoc("b", "k", "v3", 3).ObjectId}); !errs.Is(err, errs.InvalidArgument) {
		t.Fatalf("repair commit with other blobs: %v, want InvalidArgument", err)
	}

	// A key that is gone.
	other := versionLoc("b", "nokey", "", 5)
	if _, err := s.CommitIf(other, true, Condition{IfObjectID: other.ObjectId}); !errs.Is(err, errs.NoSuchKey) {
		t.Fatalf("repair commit of a missing key: %v, want NoSuchKey", err)
	}

	// The move is in Pebble, not only in memory: a reopened store has it.
	s.Close()
	if s, err = Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, s, "b", "k", "v3", "v2")
	if got := replicasOf("v2"); !slices.Equal(got, moved.Replicas) {
		t.Errorf("after a reopen v2 is on %v, want %v", got, moved.Replicas)
	}
}

// TestRepairCommitMovesAPartOfAnOlderVersion: a multipart version is named by its
// first part's blob, and each part's replica list is the location's.
func TestRepairCommitMovesAPartOfAnOlderVersion(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.CreateBucket("b")
	s.SetBucketVersioning("b", vEnabled)
	multi := func() *cellarv1.Location {
		return &cellarv1.Location{Bucket: "b", Key: "k", VersionId: "m1", Size: 6, Parts: []*cellarv1.PartLocation{
			{Number: 1, ObjectId: []byte("part-one-0000000"), Size: 3, Replicas: []string{"s0"}},
			{Number: 2, ObjectId: []byte("part-two-0000000"), Size: 3, Replicas: []string{"s0", "s1"}},
		}}
	}
	if _, err := s.CommitVersioned(multi(), true, Condition{}, vOff); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitVersioned(versionLoc("b", "k", "v2", 2), true, Condition{}, vOff); err != nil {
		t.Fatal(err)
	}
	moved := multi()
	moved.Parts[0].Replicas = []string{"s0", "s2"}
	if _, err := s.CommitIf(moved, true, Condition{IfObjectID: moved.Parts[0].ObjectId}); err != nil {
		t.Fatalf("repair commit of a multipart older version: %v", err)
	}
	wantIDs(t, s, "b", "k", "v2", "m1")
	got, err := s.LookupVersion("b", "k", LookupOptions{VersionID: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Parts[0].Replicas, []string{"s0", "s2"}) || !slices.Equal(got.Parts[1].Replicas, []string{"s0", "s1"}) {
		t.Errorf("parts on %v and %v, want [s0 s2] and [s0 s1]", got.Parts[0].Replicas, got.Parts[1].Replicas)
	}
	// Parts that are not the version's are refused.
	bad := multi()
	bad.Parts = bad.Parts[:1]
	if _, err := s.CommitIf(bad, true, Condition{IfObjectID: bad.Parts[0].ObjectId}); !errs.Is(err, errs.InvalidArgument) {
		t.Errorf("a location with a part missing: %v, want InvalidArgument", err)
	}
}
