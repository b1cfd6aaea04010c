package index

import (
	"testing"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// A moving bucket's fence refuses writes, then everything, holds across a restart,
// and a bucket fenced ALL is dropped with its objects and nothing else.
func TestFenceAndDropBucket(t *testing.T) {
	dir := t.TempDir()
	s := twoBuckets(t, dir)
	var err error
	if _, err := s.DropBucket("a"); !errs.Is(err, errs.InvalidRequest) {
		t.Fatalf("drop of a bucket not fenced: %v, want InvalidRequest", err)
	}
	if _, _, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_WRITES, "cell-1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(loc("a", "new", 9), true); !errs.Is(err, errs.Unavailable) {
		t.Errorf("commit to a write-fenced bucket: %v, want Unavailable", err)
	}
	if _, err := s.Delete("a", "k"); !errs.Is(err, errs.Unavailable) {
		t.Errorf("delete in a write-fenced bucket: %v, want Unavailable", err)
	}
	if err := s.CheckFence("a", false); err != nil {
		t.Errorf("a read of a write-fenced bucket is refused: %v", err)
	}
	if _, err := s.Commit(loc("ab", "new", 9), true); err != nil {
		t.Errorf("commit to another bucket: %v", err)
	}
	if _, _, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_ALL, "cell-1", false); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CheckFence("a", false); !errs.Is(err, errs.Unavailable) {
		t.Errorf("after a restart, a read of a bucket fenced ALL: %v, want Unavailable", err)
	}
	n, err := s.DropBucket("a")
	if err != nil || n != 3 {
		t.Fatalf("drop = %d, %v; want 3 objects", n, err)
	}
	if got := s.ListBuckets(); len(got) != 1 || got[0].Name != "ab" {
		t.Errorf("buckets after the drop = %v, want ab", got)
	}
	if res, err := s.List("ab", ListOptions{}); err != nil || len(res.Entries) != 4 {
		t.Errorf("ab lists %d objects (%v), want 4", len(res.Entries), err)
	}
	if _, err := s.Lookup("a", "k"); !errs.Is(err, errs.NoSuchKey) {
		t.Errorf("lookup of a dropped object: %v, want NoSuchKey", err)
	}
	if err := s.CheckFence("a", false); !errs.Is(err, errs.Unavailable) {
		t.Errorf("a dropped bucket's tombstone does not refuse: %v", err)
	}
	if _, err := s.CreateBucket("a"); err != nil {
		t.Errorf("create over a moved bucket's tombstone: %v", err)
	}
	if err := s.CheckFence("a", true); err != nil {
		t.Errorf("a bucket created over a tombstone is fenced: %v", err)
	}
}

// twoBuckets opens a store in dir holding buckets "a" and "ab" (whose keys follow
// a's in the map), with objects k, l and m each.
func twoBuckets(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"a", "ab"} {
		if _, err := s.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := s.Commit(loc(b, string(rune('k'+i)), int64(i)), true); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s
}

// A dropped bucket's records are forgotten whole, those that failed their checksum
// too: a bucket made later under the name does not answer Corrupt for one of them.
func TestDropForgetsCorruptRecords(t *testing.T) {
	dir := t.TempDir()
	twoBuckets(t, dir).Close()
	corruptRecord(t, dir, "a", "l")
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Lookup("a", "l"); !errs.Is(err, errs.Corrupt) {
		t.Fatalf("lookup of the damaged record: %v, want Corrupt", err)
	}
	if _, _, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_ALL, "cell-1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DropBucket("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateBucket("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("a", "l"); !errs.Is(err, errs.NoSuchKey) {
		t.Errorf("lookup in the new bucket of a key whose old record was damaged: %v, want NoSuchKey", err)
	}
}

// A create of a bucket that is moving away, sealed in its cutover or waiting for its
// reclaim, with records or without, is refused as every request of it is and changes
// nothing: the fence holds and the records stay, across a restart too; so is a delete.
// Once the records are dropped, a new bucket of the name starts empty, and the bucket
// next to it keeps its own.
func TestCreateOverAMovingBucket(t *testing.T) {
	dir := t.TempDir()
	s := twoBuckets(t, dir)
	if _, err := s.CreateBucket("empty"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateBucket("writes"); err != nil {
		t.Fatal(err)
	}
	var err error
	for _, b := range []string{"a", "empty"} {
		if _, _, err := s.FenceBucket(b, cellarv1.BucketFence_BUCKET_FENCE_ALL, "cell-1", false); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.FenceBucket("writes", cellarv1.BucketFence_BUCKET_FENCE_WRITES, "cell-1", false); err != nil {
		t.Fatal(err)
	}
	refused := func(when string) {
		t.Helper()
		for _, b := range []string{"a", "empty"} {
			if _, err := s.CreateBucket(b); !errs.Is(err, errs.Unavailable) {
				t.Errorf("%s: create over %s, moving away: %v, want Unavailable", when, b, err)
			}
			if err := s.DeleteBucket(b); !errs.Is(err, errs.Unavailable) {
				t.Errorf("%s: delete of %s, moving away: %v, want Unavailable", when, b, err)
			}
			if err := s.CheckFence(b, false); !errs.Is(err, errs.Unavailable) {
				t.Errorf("%s: a refused create or delete lifted %s's fence: %v", when, b, err)
			}
		}
		if _, err := s.CreateBucket("writes"); !errs.Is(err, errs.BucketExists) {
			t.Errorf("%s: create over a bucket whose writes are fenced: %v, want BucketExists", when, err)
		}
		if err := s.DeleteBucket("writes"); !errs.Is(err, errs.Unavailable) {
			t.Errorf("%s: delete of a bucket whose writes are fenced: %v, want Unavailable", when, err)
		}
		if res, err := s.List("ab", ListOptions{}); err != nil || len(res.Entries) != 3 {
			t.Errorf("%s: ab lists %d objects (%v), want 3", when, len(res.Entries), err)
		}
	}
	refused("at once")
	s.Close()
	if s, err = Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	refused("after a restart")
	if _, _, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_NONE, "", false); err != nil {
		t.Fatal(err)
	}
	if res, err := s.List("a", ListOptions{}); err != nil || len(res.Entries) != 3 {
		t.Fatalf("a, unfenced after the refused creates, lists %d objects (%v), want its 3", len(res.Entries), err)
	}

	// Dropped, the tombstone may be replaced: the new bucket starts empty.
	if _, _, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_ALL, "cell-1", false); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DropBucket("a"); err != nil || n != 3 {
		t.Fatalf("drop = %d, %v; want 3 records", n, err)
	}
	empty := func(when string) {
		t.Helper()
		if res, err := s.List("a", ListOptions{}); err != nil || len(res.Entries) != 0 {
			t.Errorf("%s: the new bucket lists %d objects (%v), want none", when, len(res.Entries), err)
		}
		if _, err := s.Lookup("a", "k"); !errs.Is(err, errs.NoSuchKey) {
			t.Errorf("%s: lookup of an object of the old bucket: %v, want NoSuchKey", when, err)
		}
	}
	s.Close()
	if s, err = Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateBucket("a"); err != nil {
		t.Fatalf("create over a dropped bucket's tombstone, after a restart: %v", err)
	}
	empty("at once")
	// Unfencing a tombstone makes it a bucket again, no longer a tombstone: a later
	// fence does not let a create replace it.
	if _, _, err := s.FenceBucket("empty", cellarv1.BucketFence_BUCKET_FENCE_ALL, "cell-1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DropBucket("empty"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.FenceBucket("empty", cellarv1.BucketFence_BUCKET_FENCE_NONE, "", false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.FenceBucket("empty", cellarv1.BucketFence_BUCKET_FENCE_ALL, "cell-2", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateBucket("empty"); !errs.Is(err, errs.Unavailable) {
		t.Errorf("create over a bucket fenced again after it served: %v, want Unavailable", err)
	}
}

// A drop removes the moved bucket's uploads in progress and their parts: a new bucket
// of the name lists none, and the bucket next to it keeps its own.
func TestDropForgetsUploads(t *testing.T) {
	s := twoBuckets(t, t.TempDir())
	defer s.Close()
	for _, b := range []string{"a", "ab"} {
		if err := s.CreateUpload(&cellarv1.Upload{Bucket: b, Key: "big", UploadId: "up-" + b, InitiatedUnixNano: 1}, true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutPart(b, "big", "up-"+b, part(1, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_ALL, "cell-1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DropBucket("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateBucket("a"); err != nil {
		t.Fatal(err)
	}
	if ups, _, err := s.ListUploads(ListUploadsOptions{Bucket: "a"}); err != nil || len(ups) != 0 {
		t.Errorf("the new bucket a lists uploads %v (%v), want none", ups, err)
	}
	if _, _, _, err := s.ListParts("a", "big", "up-a", 0, 0); !errs.Is(err, errs.NoSuchUpload) {
		t.Errorf("parts of the dropped upload: %v, want NoSuchUpload", err)
	}
	if n := keysWithPrefix(t, s, partPrefix("up-a")); n != 0 {
		t.Errorf("%d part records of the dropped upload remain", n)
	}
	if ups, _, err := s.ListUploads(ListUploadsOptions{Bucket: "ab"}); err != nil || len(ups) != 1 {
		t.Errorf("ab lists uploads %v (%v), want its one", ups, err)
	}
	if _, parts, _, err := s.ListParts("ab", "big", "up-ab", 0, 0); err != nil || len(parts) != 1 {
		t.Errorf("ab's upload lists parts %v (%v), want its one", parts, err)
	}
}
