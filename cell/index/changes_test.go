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
	bk, from, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_NONE, "", true)
	if err != nil || !bk.TrackChanges {
		t.Fatalf("track a: %v, %v", bk, err)
	}
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
	if _, _, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_WRITES, "cell-1", false); err != nil {
		t.Fatal(err)
	}
	if keys, _ := changedKeys(t, s, "a", last, 0); !slices.Equal(keys, []string{"after-restart"}) {
		t.Fatalf("changes after %d behind the write fence = %v", last, keys)
	}
	// Lifted without tracking (a move undone), the log ends and is gone.
	if bk, _, err = s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_NONE, "", false); err != nil || bk.TrackChanges {
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

	// Tracked again: a reader of the old log is told its log is not complete (the
	// untracked write above is in neither), a reader of the new one is not.
	_, again, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_NONE, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Changes("a", last, 0); !errs.Is(err, errs.InvalidRequest) {
		t.Fatalf("changes after %d, from before the log began again at %d: %v, want InvalidRequest", last, again, err)
	}
	if keys, _ := changedKeys(t, s, "a", again, 0); len(keys) != 0 {
		t.Fatalf("the new log lists %v", keys)
	}
	// Then moved away and dropped: the log goes with the records.
	if _, err := s.Commit(loc("a", "again", 1), true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_ALL, "cell-1", false); err != nil {
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

// A node without a group numbers changes past a restart even when the logs that held
// the last numbers were dropped, and lists a change only once it is in the map.
func TestChangeSequenceOfANodeWithoutAGroup(t *testing.T) {
	dir := t.TempDir()
	s := twoBuckets(t, dir)
	if _, _, err := s.FenceBucket("ab", cellarv1.BucketFence_BUCKET_FENCE_NONE, "", true); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"x", "y", "z"} {
		if _, err := s.Commit(loc("ab", k, 1), true); err != nil {
			t.Fatal(err)
		}
	}
	// ab's log ends and is dropped; a is tracked from here.
	if _, _, err := s.FenceBucket("ab", cellarv1.BucketFence_BUCKET_FENCE_NONE, "", false); err != nil {
		t.Fatal(err)
	}
	_, from, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_NONE, "", true)
	if err != nil || from < 3 {
		t.Fatalf("track a: from %d, %v; want at least the 3 changes numbered before", from, err)
	}
	s.Close()
	if s, err = Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Commit(loc("a", "after", 1), true); err != nil {
		t.Fatal(err)
	}
	if keys, _ := changedKeys(t, s, "a", from, 0); !slices.Equal(keys, []string{"after"}) {
		t.Fatalf("changes of a after %d, across a restart = %v, want [after]", from, keys)
	}

	// A change numbered but not yet in the map is not listed, nor any after it.
	b := s.db.NewBatch()
	defer b.Close()
	s.bucketMu.RLock()
	done, err := s.logChange(b, "a", "in-flight")
	s.bucketMu.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(loc("a", "later", 1), true); err != nil {
		t.Fatal(err)
	}
	if keys, _ := changedKeys(t, s, "a", from, 0); !slices.Equal(keys, []string{"after"}) {
		t.Fatalf("with a change in flight, the log lists %v, want [after]", keys)
	}
	done()
	if keys, _ := changedKeys(t, s, "a", from, 0); !slices.Equal(keys, []string{"after", "in-flight", "later"}) {
		t.Fatalf("once the change is in, the log lists %v", keys)
	}
}

// On a node without a group: batches numbered N and N+1 that commit in the other
// order leave the count right across a restart, and a log begun again starts after
// every sequence given, so a reader of the earlier log is refused even when no
// logged change came in between.
func TestChangeCountOfANodeWithoutAGroupHoldsUp(t *testing.T) {
	dir := t.TempDir()
	s := twoBuckets(t, dir)
	_, from, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_NONE, "", true)
	if err != nil {
		t.Fatal(err)
	}
	first, second := s.db.NewBatch(), s.db.NewBatch()
	s.bucketMu.RLock()
	doneFirst, err1 := s.logChange(first, "a", "first")
	doneSecond, err2 := s.logChange(second, "a", "second")
	s.bucketMu.RUnlock()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	for _, b := range []*pebble.Batch{second, first} { // the later number commits first
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	doneFirst()
	doneSecond()
	cs, _, err := s.Changes("a", from, 0)
	if err != nil || len(cs) != 2 {
		t.Fatalf("changes = %v, %v; want first and second", cs, err)
	}
	last := cs[1].Seq
	s.Close()
	if s, err = Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Commit(loc("a", "third", 1), true); err != nil {
		t.Fatal(err)
	}
	if keys, _ := changedKeys(t, s, "a", last, 0); !slices.Equal(keys, []string{"third"}) {
		t.Fatalf("changes after %d across a restart = %v, want [third]", last, keys)
	}

	// A reader that saw up to the last change; the log ends, an untracked write, and
	// the log begins again.
	_, upTo := changedKeys(t, s, "a", last, 0)
	if _, _, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_NONE, "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(loc("a", "untracked", 1), true); err != nil {
		t.Fatal(err)
	}
	_, again, err := s.FenceBucket("a", cellarv1.BucketFence_BUCKET_FENCE_NONE, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if again <= upTo {
		t.Errorf("the log began again at %d, not after the last sequence given, %d", again, upTo)
	}
	if _, _, err := s.Changes("a", upTo, 0); !errs.Is(err, errs.InvalidRequest) {
		t.Errorf("a reader of the earlier log (after %d) is not refused: %v", upTo, err)
	}
}
