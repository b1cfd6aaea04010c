package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

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
// without a group (kept in the same batches). Changes(after) lists the keys changed
// since, so a pass reads only what changed.
//
// Log keys: 'c' bucket 0x00 seq(8 bytes, big-endian) key -> nothing. They are state
// like the records (in snapshots, on every node), removed when tracking ends (a fence
// lifted without it) and when the bucket is dropped or deleted.

const prefixChange = 'c'

// lastChangeKey holds the last sequence a node without a group gave a change, so
// that the changes after a restart sort after those before it, whatever logs were
// dropped meanwhile. (A group's sequences are its raft log indexes.)
var lastChangeKey = []byte("m/last-change")

// changeState is how a Store numbers changes and knows which are visible. A change
// is numbered as its batch is made and is in flight until the in-memory map holds it
// too; Changes lists only what comes before the first change in flight, and nothing
// numbered after the moment it looks, so a reader that looks a listed key up finds
// the change (and, without a group, where writes run at once, a change numbered later
// but committed sooner waits for those before).
type changeState struct {
	mu       sync.Mutex
	last     uint64         // the last sequence given
	inflight map[uint64]int // sequences given to changes not yet in the map
}

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

// logChange adds to b, which changes bucket/key's record, the change's log entry if
// the bucket's changes are tracked. The caller holds bucketMu, and calls done once
// the change is in the in-memory map, or has failed.
func (s *Store) logChange(b *pebble.Batch, bucket, key string) (done func(), err error) {
	if bk, ok := s.buckets[bucket]; !ok || !bk.TrackChanges {
		return func() {}, nil
	}
	c := &s.changes
	c.mu.Lock()
	seq := s.applying // in a group, the command's log index: the same on every node
	if seq == 0 {
		seq = c.last + 1
		if err := setLastChange(b, seq); err != nil {
			c.mu.Unlock()
			return nil, err
		}
	}
	c.last = max(c.last, seq)
	c.inflight[seq]++
	c.mu.Unlock()
	done = func() {
		c.mu.Lock()
		if c.inflight[seq]--; c.inflight[seq] == 0 {
			delete(c.inflight, seq)
		}
		c.mu.Unlock()
	}
	if err := b.Set(changeKey(bucket, seq, key), nil, nil); err != nil {
		done()
		return nil, errs.Wrap(errs.Internal, err, "index batch")
	}
	return done, nil
}

// changesFrom is the sequence a change made from now on comes after. The caller
// holds bucketMu for writing, so no change is being made. With start (a log begins),
// a node without a group uses up a sequence of its own, kept in b: the log's start
// then differs from every sequence given before, so a reader of an earlier log of
// the bucket is told apart.
func (s *Store) changesFrom(b *pebble.Batch, start bool) (uint64, error) {
	if s.applying != 0 {
		return s.applying, nil // the command's own log index: no change has it
	}
	c := &s.changes
	c.mu.Lock()
	defer c.mu.Unlock()
	if start {
		c.last++
		if err := setLastChange(b, c.last); err != nil {
			return 0, err
		}
	}
	return c.last, nil
}

// setLastChange adds to b the count a node without a group keeps.
func setLastChange(b *pebble.Batch, seq uint64) error {
	if err := b.Set(lastChangeKey, binary.BigEndian.AppendUint64(nil, seq), nil); err != nil {
		return errs.Wrap(errs.Internal, err, "index batch")
	}
	return nil
}

// keepLastChange adds to b, on a node without a group, the last sequence given: a
// batch that drops a log (whose entries loadLastChange would have read) keeps it.
// The caller holds bucketMu for writing, so no change is in flight and the count
// is exact.
func (s *Store) keepLastChange(b *pebble.Batch) error {
	if s.applying != 0 {
		return nil
	}
	s.changes.mu.Lock()
	last := s.changes.last
	s.changes.mu.Unlock()
	return setLastChange(b, last)
}

// visibleUpTo is the last sequence whose changes, and every one before, are in the
// in-memory map (and in Pebble): no later than the last given, and before the first
// in flight.
func (s *Store) visibleUpTo() uint64 {
	c := &s.changes
	c.mu.Lock()
	defer c.mu.Unlock()
	upTo := c.last
	for seq := range c.inflight {
		upTo = min(upTo, seq-1)
	}
	return upTo
}

// noteApplied raises the count to a group's applied index (at open, after a
// snapshot's restore): the logs it holds may have entries up to there.
func (s *Store) noteApplied(index uint64) {
	s.changes.mu.Lock()
	s.changes.last = max(s.changes.last, index)
	s.changes.mu.Unlock()
}

// dropChanges adds to b the removal of bucket's change log.
func dropChanges(b *pebble.Batch, bucket string) error {
	if err := deletePrefix(b, changePrefix(bucket)); err != nil {
		return errs.Wrap(errs.Internal, err, "index batch")
	}
	return nil
}

// Change is one entry of a bucket's change log.
type Change struct {
	Seq uint64
	Key string
}

// errNotLogged is the refusal of Changes for a bucket whose log does not hold every
// change after the sequence asked for.
func errNotLogged(bucket string, after uint64) error {
	return errs.New(errs.InvalidRequest, "the changes of bucket %s after %d are not logged", bucket, after)
}

// Changes lists, in order, up to limit (at most 1000) changes of bucket logged after
// seq after, and whether more follow. The bucket's record and its log are read from
// one snapshot. A bucket whose changes are not tracked, or whose log began after
// after (it ended and began again since), is an InvalidRequest: its log would not
// be complete.
func (s *Store) Changes(bucket string, after uint64, limit int) ([]Change, bool, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	upTo := s.visibleUpTo()
	snap := s.db.NewSnapshot()
	defer snap.Close()
	v, closer, err := snap.Get(bucketKey(bucket))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, errs.New(errs.NoSuchBucket, "The specified bucket does not exist.")
	}
	if err != nil {
		return nil, false, errs.Wrap(errs.Unavailable, err, "read the bucket")
	}
	bk, ok := openBucket(v)
	closer.Close()
	if !ok {
		return nil, false, errs.New(errs.Corrupt, "the record of bucket %s is damaged", bucket)
	}
	if !bk.TrackChanges || after < bk.ChangesSince {
		return nil, false, errNotLogged(bucket, after)
	}
	p := changePrefix(bucket)
	from := binary.BigEndian.AppendUint64(bytes.Clone(p), after+1)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: prefixSuccessor(p)})
	if err != nil {
		return nil, false, errs.Wrap(errs.Unavailable, err, "read the change log")
	}
	defer it.Close()
	var out []Change
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()[len(p):]
		if len(k) < 8 {
			continue
		}
		seq := binary.BigEndian.Uint64(k)
		if seq > upTo {
			break // not in the map yet: listed by the next call
		}
		if len(out) == limit {
			return out, true, nil
		}
		out = append(out, Change{Seq: seq, Key: string(k[8:])})
	}
	if err := it.Error(); err != nil {
		return nil, false, errs.Wrap(errs.Unavailable, err, "read the change log")
	}
	return out, false, nil
}

// loadLastChange reads the last sequence a node without a group gave a change: the
// kept count, or the last sequence a log holds if that is later (batches numbered
// N and N+1 may commit in the other order, and the count kept is then N).
func (s *Store) loadLastChange() error {
	s.changes.inflight = map[uint64]int{}
	v, closer, err := s.db.Get(lastChangeKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read the last change sequence: %w", err)
	default:
		if len(v) == 8 {
			s.changes.last = binary.BigEndian.Uint64(v)
		}
		closer.Close()
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixChange}, UpperBound: []byte{prefixChange + 1}})
	if err != nil {
		return fmt.Errorf("read the change logs: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()[1:]
		if i := bytes.IndexByte(k, 0); i >= 0 && len(k) >= i+9 {
			s.changes.last = max(s.changes.last, binary.BigEndian.Uint64(k[i+1:]))
		}
	}
	return it.Error()
}

// changesResponse is Changes as the Index API answers it.
func changesResponse(cs []Change, truncated bool) *cellarv1.ChangesResponse {
	out := &cellarv1.ChangesResponse{Truncated: truncated, Changes: make([]*cellarv1.ChangesResponse_Change, len(cs))}
	for i, c := range cs {
		out.Changes[i] = &cellarv1.ChangesResponse_Change{Seq: c.Seq, Key: c.Key}
	}
	return out
}
