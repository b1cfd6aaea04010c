// Package index is the index tier of a cell: it maps every object of the cell, by
// bucket and key, to its location on the cell's storage nodes. GET, HEAD, LIST, PUT and
// DELETE all need it, which is why losing it takes a whole cell down.
//
// Pebble is the source of truth: every record is written with a checksum and synced
// before the write is acknowledged. At start the node rebuilds its in-memory, ordered
// location map (package locmap) by scanning Pebble and checking every record; lookups
// and lists are then served from memory. Records that fail their checksum are counted,
// logged and never served as good data.
//
// # Rebuild and readiness by key range
//
// The rebuild splits the object key space into ranges at Pebble's own sstable
// boundaries (about one per 128 Ki objects), loads them on one worker per core, each
// into its own pre-sized locmap.Builder, and joins them with locmap.Concat. A loaded
// range serves reads at once. What a read of a range still loading gets is
// Options.Pending:
//
//   - PendingPebble (the default): the answer is read from Pebble directly, checksum
//     checked. A standalone node holds Pebble still during the rebuild (writes wait for
//     it), so this is exactly the answer the map will give: every GET, HEAD and LIST is
//     served from the moment Pebble is open, only slower until its range is loaded. The
//     point of restarting a cell fast is to give its objects back fast; a right answer
//     a little late is better than a 503 that every client has to retry.
//   - PendingSlowDown: such reads are refused with errs.SlowDown naming the range (the
//     gateway answers 503 SlowDown with Retry-After), so that the rebuild has the cores
//     to itself and ends soonest. Choose it (indexd --rebuild-pending=slowdown) when
//     clients retry well and the full rebuild time matters more than early answers.
//
// Writes wait for the end of the rebuild: the daemon refuses them with SlowDown until
// then. A member of a replication group serves nothing until it has rebuilt and joined
// its group, since its Pebble may be behind the group's.
//
// Run starts an index node as a daemon; Open gives the same store to tests and tools,
// rebuilt; OpenAsync returns while it rebuilds (Ready, Progress, Stats).
package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell/index/locmap"
	"github.com/cellarsim/cellar/internal/errs"
)

// Store is one index node's data: Pebble on disk and the location map in memory.
type Store struct {
	db  *pebble.DB
	log *slog.Logger

	objects *locmap.Map

	// bucketMu is held for reading by object writes and for writing by bucket
	// creation and deletion, so that a bucket is never deleted under a commit.
	bucketMu sync.RWMutex
	buckets  map[string]*cellarv1.Bucket

	// keyLocks serialise writes to the same key. (In a replication group every
	// write comes from the one goroutine that applies the log, in log order.)
	keyLocks [256]sync.Mutex

	corruptMu sync.Mutex
	corrupt   map[string]struct{} // map keys whose records failed their checksum

	// uploadsMu serialises the writes of multipart uploads and their parts (uploads.go).
	// It is taken after a key lock, never before.
	uploadsMu sync.Mutex

	// applying is the log index of the command being applied (0 outside a
	// replication group); applied is the last log index applied.
	applying   uint64
	applyingAt int64
	applied    atomic.Uint64
	// changes numbers the changes of tracked buckets (changes.go).
	changes changeState

	rb rebuildState // the rebuild of objects from Pebble (rebuild.go)

	pill *pill // the index pill, in a cluster that allows faults (pill.go)
}

// Open opens (or creates) the Pebble database in dir and rebuilds the map from it,
// returning when the map is complete. OpenAsync returns before.
func Open(dir string, logger *slog.Logger) (*Store, error) {
	s, err := OpenAsync(dir, Options{Logger: logger})
	if err != nil {
		return nil, err
	}
	<-s.Ready()
	if err := s.RebuildErr(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close ends the rebuild if it is still running and closes the database.
func (s *Store) Close() error {
	s.stopRebuild()
	return s.db.Close()
}

// Len is the number of objects indexed now.
func (s *Store) Len() int { return s.objects.Len() }

func (s *Store) markCorrupt(mk []byte) {
	bucket, key := splitMapKey(mk)
	s.log.Error("corrupt index record: checksum mismatch; not served", "bucket", bucket, "key", key)
	s.corruptMu.Lock()
	s.corrupt[string(mk)] = struct{}{}
	s.corruptMu.Unlock()
	s.rb.corrupt.Add(1)
}

func (s *Store) keyLock(mk []byte) *sync.Mutex {
	h := fnv.New32a()
	h.Write(mk)
	return &s.keyLocks[h.Sum32()%uint32(len(s.keyLocks))]
}

func (s *Store) isCorrupt(mk []byte) bool {
	s.corruptMu.Lock()
	defer s.corruptMu.Unlock()
	_, ok := s.corrupt[string(mk)]
	return ok
}

func (s *Store) clearCorrupt(mk []byte) {
	s.corruptMu.Lock()
	delete(s.corrupt, string(mk))
	s.corruptMu.Unlock()
}

// lookupRecord returns the whole record of bucket/key: its current version (a delete
// marker perhaps) with its older versions.
func (s *Store) lookupRecord(bucket, key string) (*cellarv1.Location, error) {
	mk := mapKey(bucket, key)
	if !s.rb.ready.Load() {
		return s.lookupRebuilding(mk)
	}
	return s.lookupIn(s.objects, mk)
}

// ListOptions select the keys of one bucket.
type ListOptions struct {
	Prefix     string
	StartAfter string
	Delimiter  string
	Limit      int // 0 means 1000
	// Versions lists whole records: keys whose current version is a delete marker
	// too, each with its older versions. Otherwise such keys are left out and the
	// locations carry no older versions.
	Versions bool
}

// ListResult is one page of keys and common prefixes, in key order.
type ListResult struct {
	Entries        []*cellarv1.Location
	CommonPrefixes []string
	Truncated      bool
	Next           string // the last key or common prefix returned, when truncated
}

// List returns the keys of bucket in order, as S3's ListObjects does: keys that
// contain the delimiter after the prefix are rolled up into common prefixes.
func (s *Store) List(bucket string, o ListOptions) (ListResult, error) {
	if o.Limit <= 0 || o.Limit > 1000 {
		o.Limit = 1000
	}
	var res ListResult
	bucketPrefix := mapKey(bucket, "")
	from := mapKey(bucket, o.Prefix)
	if o.StartAfter != "" {
		if after := append(mapKey(bucket, o.StartAfter), 0); bytes.Compare(after, from) > 0 {
			from = after
		}
	}
	count := 0
	var decodeErr error
	for from != nil {
		var next []byte
		err := s.ascend(from, func(k, v []byte) bool {
			if !bytes.HasPrefix(k, bucketPrefix) {
				return false
			}
			key := string(k[len(bucketPrefix):])
			if len(key) < len(o.Prefix) || key[:len(o.Prefix)] != o.Prefix {
				return false
			}
			if count == o.Limit {
				res.Truncated = true
				return false
			}
			if o.Delimiter != "" {
				if i := indexAfter(key, o.Delimiter, len(o.Prefix)); i >= 0 {
					cp := key[:i+len(o.Delimiter)]
					if o.StartAfter == "" || cp > o.StartAfter {
						res.CommonPrefixes = append(res.CommonPrefixes, cp)
						res.Next = cp
						count++
					}
					// Skip every other key under this common prefix.
					next = prefixSuccessor(mapKey(bucket, cp))
					return false
				}
			}
			loc, err := decodeLocation(k, v)
			if err != nil {
				decodeErr = err
				return false
			}
			if !o.Versions {
				if loc.DeleteMarker {
					return true // deleted in a versioned bucket: not listed
				}
				loc.Versions = nil
			}
			res.Entries = append(res.Entries, loc)
			res.Next = key
			count++
			return true
		})
		if err != nil {
			return ListResult{}, err
		}
		if decodeErr != nil {
			return ListResult{}, decodeErr
		}
		from = next
	}
	if !res.Truncated {
		res.Next = ""
	}
	return res, nil
}

func indexAfter(s, sep string, from int) int {
	i := bytes.Index([]byte(s[from:]), []byte(sep))
	if i < 0 {
		return -1
	}
	return from + i
}

// prefixSuccessor returns the smallest key greater than every key with prefix p.
func prefixSuccessor(p []byte) []byte {
	out := append([]byte(nil), p...)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] < 0xff {
			out[i]++
			return out[:i+1]
		}
	}
	return nil // p is all 0xff: nothing comes after
}

// GetBucket returns a bucket of this node's cell.
func (s *Store) GetBucket(name string) (*cellarv1.Bucket, error) {
	s.bucketMu.RLock()
	defer s.bucketMu.RUnlock()
	b, ok := s.buckets[name]
	if !ok {
		return nil, errs.New(errs.NoSuchBucket, "The specified bucket does not exist.")
	}
	return b, nil
}

// ListBuckets returns this node's buckets sorted by name.
func (s *Store) ListBuckets() []*cellarv1.Bucket {
	s.bucketMu.RLock()
	defer s.bucketMu.RUnlock()
	out := make([]*cellarv1.Bucket, 0, len(s.buckets))
	for _, b := range s.buckets {
		if b.Fence != cellarv1.BucketFence_BUCKET_FENCE_ALL { // moved away: not this cell's
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// pebbleLogger sends Pebble's log lines to slog.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
	panic(errors.New(fmt.Sprintf(format, args...)))
}

// atomicStore holds the Store once the rebuild has finished.
type atomicStore = atomic.Pointer[Store]

// appliedKey holds the last applied log index (8 bytes, big-endian).
var appliedKey = []byte("m/applied")

// AppliedIndex is the last log index applied to this store.
func (s *Store) AppliedIndex() uint64 { return s.applied.Load() }

func (s *Store) loadAppliedIndex() error {
	v, closer, err := s.db.Get(appliedKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read applied index: %w", err)
	}
	defer closer.Close()
	if len(v) == 8 {
		s.applied.Store(binary.BigEndian.Uint64(v))
	}
	return nil
}
