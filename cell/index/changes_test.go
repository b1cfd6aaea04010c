package index

import (
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// changedKeys lists the keys bucket's log holds after seq, reading it a page of limit
// at a time, and the last sequence it saw.
func changedKeys(t *testing.T, s *Store, bucket string, after uint64, limit int) ([]string, uint64) {
	t.Helper()
	var keys []string
	for {
		cs, more, err := s.Changes(bucket, after, limit)
		if err != nil {
			t.Fatalf("changes of %s after %d: %v", bucket, after, err)
		}
		for _, c := range cs {
			if c.Seq <= after {
				t.Fatalf("change %+v listed after %d", c, after)
			}
			after = c.Seq
			keys = append(keys, c.Key)
		}
		if !more {
			return keys, after
		}
	}
}

// changeLogKeys counts the change-log keys of bucket in Pebble.
func changeLogKeys(t *testing.T, s *Store, bucket string) int {
	t.Helper()
	return keysWithPrefix(t, s, changePrefix(bucket))
}

// keysWithPrefix counts the keys of Pebble that start with p.
func keysWithPrefix(t *testing.T, s *Store, p []byte) int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixSuccessor(p)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n
}

// A tracked bucket logs every change to its object records, in order, across a
// restart; an untracked one logs nothing; lifting the fence without tracking ends the
// log, and a drop removes it.
func TestChangeLogOfAMovingBucket(t *testing.T) {
	dir := t.TempDir()
	s := twoBuckets(t, dir) // buckets a and ab, keys k, l, m in each
	if _, _, err := s.Changes("a", 0, 0); !errs.Is(err, errs.InvalidRequest) {
		t.Fatalf("changes of an untracked bucket: %v, want InvalidRequest", err)
	}
	if _, _, err := s.Changes("nope", 0, 0); !errs.Is(err, errs.NoSuchBucket) {
		t.Fatalf("changes of a missing bucket: %v, want NoSuchBucket", err)
	}
	bk, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_NONE, "", true)
	if err != nil || !bk.TrackChanges {
		t.Fatalf("track a: %v, %v", bk, err)
	}
	from := s.currentSeq()
	if keys, _ := changedKeys(t, s, "a", from, 0); len(keys) != 0 {
		t.Fatalf("a fresh log lists %v", keys)
	}
	// Writes of every kind to a, and writes to ab, which is not tracked.
	if _, err := s.Commit(loc("a", "n", 1), true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete("a", "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete("a", "never"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutObjectTags(&cellarv1.PutObjectTagsRequest{Bucket: "a", Key: "l", Tags: []*cellarv1.Tag{{Key: "t", Value: "v"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(loc("ab", "z", 1), true); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUpload(&cellarv1.Upload{Bucket: "a", Key: "up", UploadId: "u1", InitiatedUnixNano: 1}, true); err != nil {
		t.Fatal(err)
	}
	p := part(1, 10)
	if _, err := s.PutPart("a", "up", "u1", p); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.CompleteUpload("a", "up", "u1", []CompletedPart{{Number: 1, ETag: etagOf(p)}}, CompleteOptions{ModifiedUnixNano: 5}); err != nil {
		t.Fatal(err)
	}
	want := []string{"n", "k", "l", "up"} // the delete of a key that was never there changes nothing
	keys, last := changedKeys(t, s, "a", from, 0)
	if !slices.Equal(keys, want) {
		t.Fatalf("changes of a = %v, want %v", keys, want)
	}
	if paged, _ := changedKeys(t, s, "a", from, 1); !slices.Equal(paged, want) {
		t.Fatalf("changes of a a page of 1 at a time = %v, want %v", paged, want)
	}
	if keys, _ := changedKeys(t, s, "a", last, 0); len(keys) != 0 {
		t.Fatalf("changes after the last = %v, want none", keys)
	}

	// A restart keeps the log, and the changes after it sort after those before.
	s.Close()
	if s, err = Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Commit(loc("a", "after-restart", 1), true); err != nil {
		t.Fatal(err)
	}
	if keys, _ := changedKeys(t, s, "a", from, 0); !slices.Equal(keys, append(want, "after-restart")) {
		t.Fatalf("changes of a after a restart = %v", keys)
	}

	// The write fence keeps the log (the move's last pass reads it).
	if _, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_WRITES, "cell-1", false); err != nil {
		t.Fatal(err)
	}
	if keys, _ := changedKeys(t, s, "a", last, 0); !slices.Equal(keys, []string{"after-restart"}) {
		t.Fatalf("changes after %d behind the write fence = %v", last, keys)
	}
	// Lifted without tracking (a move undone), the log ends and is gone.
	if bk, err = s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_NONE, "", false); err != nil || bk.TrackChanges {
		t.Fatalf("lift a's fence: %v, %v", bk, err)
	}
	if _, _, err := s.Changes("a", 0, 0); !errs.Is(err, errs.InvalidRequest) {
		t.Fatalf("changes of a bucket no longer tracked: %v, want InvalidRequest", err)
	}
	if n := changeLogKeys(t, s, "a"); n != 0 {
		t.Fatalf("a's log holds %d keys after tracking ended", n)
	}
	if _, err := s.Commit(loc("a", "untracked", 1), true); err != nil {
		t.Fatal(err)
	}
	if n := changeLogKeys(t, s, "a"); n != 0 {
		t.Fatalf("a write to an untracked bucket was logged")
	}

	// Tracked again, then moved away and dropped: the log goes with the records.
	if _, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_NONE, "", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(loc("a", "again", 1), true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_ALL, "cell-1", false); err != nil {
		t.Fatal(err)
	}
	if n := changeLogKeys(t, s, "a"); n != 1 {
		t.Fatalf("a's log holds %d keys, want 1", n)
	}
	if _, err := s.DropBucket("a"); err != nil {
		t.Fatal(err)
	}
	if n := changeLogKeys(t, s, "a"); n != 0 {
		t.Fatalf("a's log holds %d keys after the drop", n)
	}
	if n := changeLogKeys(t, s, "ab"); n != 0 {
		t.Fatalf("ab, never tracked, has a log of %d keys", n)
	}
}
