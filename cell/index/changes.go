package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// The change log of a moving bucket. A move copies its bucket once by listing it,
// then copies what changed since, a pass at a time, until it fences the bucket's
// writes and copies the last changes. Listing the whole bucket again for each of
// those passes would make the write fence as long as a listing of the bucket (some
// 350 ms per 100 000 objects); instead the source index logs, for a bucket whose
// record says track_changes, the key of every change to its object records, in the
// batch that makes the change, under the change's sequence: the raft log index of
// the command (every node of the group logs the same), or a counter on a node
// without a group. Changes(after) lists the keys changed since, so a pass reads only
// what changed.
//
// Log keys: 'c' bucket 0x00 seq(8 bytes, big-endian) key -> nothing. They are state
// like the records (in snapshots, on every node), removed when tracking ends (a fence
// lifted without it) and when the bucket is dropped or deleted.

const prefixChange = 'c'

// changePrefix is where bucket's log starts.
func changePrefix(bucket string) []byte {
	k := make([]byte, 0, len(bucket)+2)
	k = append(k, prefixChange)
	k = append(k, bucket...)
	return append(k, 0)
}

func changeKey(bucket string, seq uint64, key string) []byte {
	k := binary.BigEndian.AppendUint64(changePrefix(bucket), seq)
	return append(k, key...)
}

// changeSeq is the sequence of the change being made: the command's log index in a
// group, or the node's next counter value without one.
func (s *Store) changeSeq() uint64 {
	if s.applying != 0 {
		return s.applying
	}
	return s.lastChange.Add(1)
}

// currentSeq is the sequence a change made now would follow.
func (s *Store) currentSeq() uint64 {
	if s.applying != 0 {
		return s.applying
	}
	return s.lastChange.Load()
}

// logChange adds to b, which changes bucket/key's record, the change's log entry if
// the bucket's changes are tracked. The caller holds bucketMu.
//
// On a node without a group, writes are not serialised with the fence that starts
// the log: a completed multipart upload checks the bucket just before its batch
// commits, so a tracking that starts in between misses it. A moved bucket's index is
// a group in every cluster cellar starts.
func (s *Store) logChange(b *pebble.Batch, bucket, key string) error {
	if bk, ok := s.buckets[bucket]; !ok || !bk.TrackChanges {
		return nil
	}
	if err := b.Set(changeKey(bucket, s.changeSeq(), key), nil, nil); err != nil {
		return errs.Wrap(errs.Internal, err, "index batch")
	}
	return nil
}

// logChangeUnlocked is logChange for a caller that does not hold bucketMu.
func (s *Store) logChangeUnlocked(b *pebble.Batch, bucket, key string) error {
	s.bucketMu.RLock()
	defer s.bucketMu.RUnlock()
	return s.logChange(b, bucket, key)
}

// dropChanges adds to b the removal of bucket's change log.
func dropChanges(b *pebble.Batch, bucket string) error {
	p := changePrefix(bucket)
	if err := b.DeleteRange(p, prefixSuccessor(p), nil); err != nil {
		return errs.Wrap(errs.Internal, err, "index batch")
	}
	return nil
}

// Change is one entry of a bucket's change log.
type Change struct {
	Seq uint64
	Key string
}

// Changes lists, in order, up to limit (at most 1000) changes of bucket logged after
// seq after, and whether more follow. A bucket whose changes are not tracked is an
// InvalidRequest: its log would be empty, not complete.
func (s *Store) Changes(bucket string, after uint64, limit int) ([]Change, bool, error) {
	s.bucketMu.RLock()
	bk, ok := s.buckets[bucket]
	s.bucketMu.RUnlock()
	if !ok {
		return nil, false, errs.New(errs.NoSuchBucket, "The specified bucket does not exist.")
	}
	if !bk.TrackChanges {
		return nil, false, errs.New(errs.InvalidRequest, "the changes of bucket %s are not tracked", bucket)
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	p := changePrefix(bucket)
	from := binary.BigEndian.AppendUint64(bytes.Clone(p), after+1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: prefixSuccessor(p)})
	if err != nil {
		return nil, false, errs.Wrap(errs.Unavailable, err, "read the change log")
	}
	defer it.Close()
	var out []Change
	for ok := it.First(); ok; ok = it.Next() {
		if len(out) == limit {
			return out, true, nil
		}
		k := it.Key()[len(p):]
		if len(k) < 8 {
			continue
		}
		out = append(out, Change{Seq: binary.BigEndian.Uint64(k), Key: string(k[8:])})
	}
	if err := it.Error(); err != nil {
		return nil, false, errs.Wrap(errs.Unavailable, err, "read the change log")
	}
	return out, false, nil
}

// loadLastChange sets the counter of a node without a group past every sequence its
// logs hold, so that changes after a restart sort after those before it.
func (s *Store) loadLastChange() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixChange}, UpperBound: []byte{prefixChange + 1}})
	if err != nil {
		return fmt.Errorf("read the change logs: %w", err)
	}
	defer it.Close()
	var last uint64
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()[1:]
		i := bytes.IndexByte(k, 0)
		if i < 0 || len(k) < i+9 {
			continue
		}
		last = max(last, binary.BigEndian.Uint64(k[i+1:]))
	}
	s.lastChange.Store(last)
	return errors.Join(it.Error())
}

// changesResponse is Changes as the Index API answers it.
func changesResponse(cs []Change, truncated bool) *cellarv1.ChangesResponse {
	out := &cellarv1.ChangesResponse{Truncated: truncated, Changes: make([]*cellarv1.ChangesResponse_Change, len(cs))}
	for i, c := range cs {
		out.Changes[i] = &cellarv1.ChangesResponse_Change{Seq: c.Seq, Key: c.Key}
	}
	return out
}
