package index

import (
	"bytes"
	"strings"

	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cockroachdb/pebble/v2"
)

// A bucket that moves to another cell is fenced in its source cell's index: first its
// writes (the cutover's final copy reads a bucket nobody changes), then everything
// (the target serves it now). The fence is part of the bucket's record, so it holds
// across restarts and on every node of the group. A gateway that still routes the
// bucket here, by an older cell map, gets Unavailable and never a stale answer; the
// map it fetches next sends it to the target.

// fenceErr is the refusal of a request on bucket by its fence; write says whether
// the request writes. The caller holds bucketMu.
func (s *Store) fenceErr(bucket string, write bool) error {
	b, ok := s.buckets[bucket]
	if !ok {
		return nil
	}
	switch {
	case b.Fence == cellarv1.BucketFence_BUCKET_FENCE_ALL:
		return errs.New(errs.Unavailable, "Bucket %s has moved to %s; retry, and the gateway's next cell map routes it there.", bucket, b.MovedTo)
	case b.Fence == cellarv1.BucketFence_BUCKET_FENCE_WRITES && write:
		return errs.New(errs.Unavailable, "Bucket %s is moving to %s and its writes are fenced for a moment; retry.", bucket, b.MovedTo)
	}
	return nil
}

// CheckFence refuses a request on bucket that its fence does not let through.
func (s *Store) CheckFence(bucket string, write bool) error {
	s.bucketMu.RLock()
	defer s.bucketMu.RUnlock()
	return s.fenceErr(bucket, write)
}

// FenceBucket sets the fence of a bucket that moves to movedTo (NONE lifts it). With
// track, the bucket's changes are logged from now on (changes.go), or still are;
// without it, NONE ends the log and drops it, and the other fences keep it as it is.
//
// It also returns the change sequence of this moment: with the bucket's changes
// tracked, Changes after it lists every change made from now on.
func (s *Store) FenceBucket(name string, fence cellarv1.BucketFence, movedTo string, track bool) (*cellarv1.Bucket, uint64, error) {
	s.bucketMu.Lock()
	defer s.bucketMu.Unlock()
	old, ok := s.buckets[name]
	if !ok {
		return nil, 0, errs.New(errs.NoSuchBucket, "The specified bucket does not exist.")
	}
	bk := proto.Clone(old).(*cellarv1.Bucket)
	bk.Fence, bk.MovedTo = fence, movedTo
	if fence == cellarv1.BucketFence_BUCKET_FENCE_NONE {
		bk.MovedTo = ""
	}
	if fence != cellarv1.BucketFence_BUCKET_FENCE_ALL {
		bk.Dropped = false // it serves (or takes writes) again: no longer a tombstone
	}
	b := s.db.NewBatch()
	defer b.Close()
	start := track && !old.TrackChanges
	from, err := s.changesFrom(b, start)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case start:
		bk.TrackChanges, bk.ChangesSince = true, from
	case !track && fence == cellarv1.BucketFence_BUCKET_FENCE_NONE && old.TrackChanges:
		bk.TrackChanges, bk.ChangesSince = false, 0
		if err := dropChanges(b, name); err != nil {
			return nil, 0, err
		}
		if err := s.keepLastChange(b); err != nil {
			return nil, 0, err
		}
	}
	if err := s.putBucketIn(b, bk); err != nil {
		return nil, 0, err
	}
	return bk, from, nil
}

// putBucket writes a bucket's record. The caller holds bucketMu for writing.
func (s *Store) putBucket(bk *cellarv1.Bucket) error {
	b := s.db.NewBatch()
	defer b.Close()
	return s.putBucketIn(b, bk)
}

// putBucketIn adds a bucket's record to b, which holds what else goes with it, and
// commits b. The caller holds bucketMu for writing.
func (s *Store) putBucketIn(b *pebble.Batch, bk *cellarv1.Bucket) error {
	payload, err := proto.Marshal(bk)
	if err != nil {
		return errs.Wrap(errs.Internal, err, "encode bucket")
	}
	if err := b.Set(bucketKey(bk.Name), seal(payload), nil); err != nil {
		return errs.Wrap(errs.Internal, err, "index batch")
	}
	if err := s.commitBatch(b); err != nil {
		return errs.Wrap(errs.Unavailable, err, "index write failed")
	}
	s.buckets[bk.Name] = bk
	return nil
}

// DropBucket removes every object record of a bucket that has moved away (fenced
// ALL), and its multipart uploads in progress with their parts, in one batch, and
// returns how many object records it removed. The bucket's record stays,
// fenced, as a tombstone: a gateway with an older map is refused (Unavailable) rather
// than told the bucket does not exist. It is marked dropped, and only then may
// CreateBucket replace it. The blobs the records pointed to are the caller's to delete.
func (s *Store) DropBucket(name string) (int64, error) {
	s.bucketMu.Lock()
	defer s.bucketMu.Unlock()
	bk, ok := s.buckets[name]
	if !ok {
		return 0, nil
	}
	if bk.Fence != cellarv1.BucketFence_BUCKET_FENCE_ALL {
		return 0, errs.New(errs.InvalidRequest, "bucket %s has not moved away (it is not fenced); only a moved bucket is dropped", name)
	}
	// The records go, and the record says so, in one batch: from then on it is a
	// tombstone that a new bucket of the name may replace.
	tomb := proto.Clone(bk).(*cellarv1.Bucket)
	tomb.Dropped, tomb.TrackChanges, tomb.ChangesSince = true, false, 0
	payload, err := proto.Marshal(tomb)
	if err != nil {
		return 0, errs.Wrap(errs.Internal, err, "encode bucket")
	}
	b := s.db.NewBatch()
	defer b.Close()
	keys, err := s.dropRecords(b, name)
	if err != nil {
		return 0, err
	}
	if err := dropChanges(b, name); err != nil {
		return 0, err
	}
	if err := s.keepLastChange(b); err != nil {
		return 0, err
	}
	if err := s.dropUploads(b, name); err != nil {
		return 0, err
	}
	if err := b.Set(bucketKey(name), seal(payload), nil); err != nil {
		return 0, errs.Wrap(errs.Internal, err, "index batch")
	}
	if err := s.commitBatch(b); err != nil {
		return 0, errs.Wrap(errs.Unavailable, err, "index write failed")
	}
	s.forget(name, keys)
	s.buckets[name] = tomb
	return int64(len(keys)), nil
}

// dropRecords adds to b the removal of every object record of a bucket and returns
// their map keys, for forget once b is committed. The caller holds bucketMu.
func (s *Store) dropRecords(b *pebble.Batch, name string) ([][]byte, error) {
	prefix := mapKey(name, "")
	var keys [][]byte
	s.objects.Ascend(prefix, func(k, _ []byte) bool {
		if !bytes.HasPrefix(k, prefix) {
			return false
		}
		keys = append(keys, bytes.Clone(k))
		return true
	})
	end := append(mapKey(name, "")[:len(name)], 1)
	if err := b.DeleteRange(objectKey(prefix), objectKey(end), nil); err != nil {
		return nil, errs.Wrap(errs.Internal, err, "index batch")
	}
	return keys, nil
}

// dropUploads adds to b the removal of the multipart uploads in progress in a bucket
// and of their parts. Their blobs, named by no record any more, are left to the cell's
// garbage collection. (A bucket fenced ALL takes no upload writes, so nothing adds
// to them meanwhile.)
func (s *Store) dropUploads(b *pebble.Batch, name string) error {
	lower := uploadKey(name, "")
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixSuccessor(lower)})
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "read the bucket's uploads")
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := deletePrefix(b, partPrefix(string(it.Key()[len(lower):]))); err != nil {
			return errs.Wrap(errs.Internal, err, "index batch")
		}
	}
	if err := it.Error(); err != nil {
		return errs.Wrap(errs.Unavailable, err, "read the bucket's uploads")
	}
	if err := deletePrefix(b, lower); err != nil {
		return errs.Wrap(errs.Internal, err, "index batch")
	}
	return nil
}

// forget removes from the in-memory map the records dropRecords removed from bucket
// name, and forgets which of its records failed their checksum (those are not in the
// map, but the range removed them too).
func (s *Store) forget(name string, keys [][]byte) {
	for _, k := range keys {
		s.objects.Delete(k)
	}
	prefix := string(mapKey(name, ""))
	s.corruptMu.Lock()
	for k := range s.corrupt {
		if strings.HasPrefix(k, prefix) {
			delete(s.corrupt, k)
		}
	}
	s.corruptMu.Unlock()
}

// commandBucket is the bucket a write command changes ("" for none).
func commandBucket(cmd *cellarv1.IndexCommand) string {
	switch op := cmd.GetOp().(type) {
	case *cellarv1.IndexCommand_CreateUpload:
		return op.CreateUpload.GetUpload().GetBucket()
	case *cellarv1.IndexCommand_PutPart:
		return op.PutPart.GetBucket()
	case *cellarv1.IndexCommand_CompleteUpload:
		return op.CompleteUpload.GetBucket()
	case *cellarv1.IndexCommand_AbortUpload:
		return op.AbortUpload.GetBucket()
	}
	return ""
}
