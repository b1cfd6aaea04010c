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
// Run starts an index node as a daemon; Open gives the same store to tests and tools.
package index

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

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

	// keyLocks serialise writes to the same key while letting writes to different keys
	// reach Pebble together, where their syncs are committed as a group.
	keyLocks [256]sync.Mutex

	corruptMu sync.Mutex
	corrupt   map[string]struct{} // map keys whose records failed their checksum

	stats  RebuildStats
	loaded atomic.Int64 // records loaded so far by the running rebuild
}

// RebuildStats describes the last rebuild of the in-memory map.
type RebuildStats struct {
	Objects  int64
	Corrupt  int64
	Duration time.Duration
}

// Open opens (or creates) the Pebble database in dir and rebuilds the map from it.
func Open(dir string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.Default()
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{logger}})
	if err != nil {
		return nil, fmt.Errorf("open index database %s: %w", dir, err)
	}
	s := &Store{db: db, log: logger, buckets: map[string]*cellarv1.Bucket{}, corrupt: map[string]struct{}{}}
	if err := s.rebuild(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Stats returns the numbers of the last rebuild.
func (s *Store) Stats() RebuildStats {
	return s.stats
}

// Len is the number of objects indexed now.
func (s *Store) Len() int { return s.objects.Len() }

// rebuild scans Pebble and builds the bucket table and the object map.
func (s *Store) rebuild() error {
	start := time.Now()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixBucket}, UpperBound: []byte{prefixBucket + 1}})
	if err != nil {
		return fmt.Errorf("rebuild buckets: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		name := string(it.Key()[1:])
		payload, ok := open(it.Value())
		var b cellarv1.Bucket
		if ok {
			ok = proto.Unmarshal(payload, &b) == nil
		}
		if !ok {
			s.log.Error("corrupt bucket record; bucket not served", "bucket", name)
			s.stats.Corrupt++
			continue
		}
		s.buckets[name] = &b
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("rebuild buckets: %w", err)
	}

	b := locmap.NewBuilder(0, 0)
	it, err = s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixObject}, UpperBound: []byte{prefixObject + 1}})
	if err != nil {
		return fmt.Errorf("rebuild objects: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		mk := it.Key()[1:]
		payload, ok := open(it.Value())
		if !ok {
			s.markCorrupt(mk)
			continue
		}
		if err := b.Append(mk, payload); err != nil {
			it.Close()
			return fmt.Errorf("rebuild objects: %w", err)
		}
		s.loaded.Add(1)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("rebuild objects: %w", err)
	}
	s.objects = b.Finish()
	s.stats.Objects = int64(s.objects.Len())
	s.stats.Duration = time.Since(start)
	return nil
}

func (s *Store) markCorrupt(mk []byte) {
	bucket, key := splitMapKey(mk)
	s.log.Error("corrupt index record: checksum mismatch; not served", "bucket", bucket, "key", key)
	s.corruptMu.Lock()
	s.corrupt[string(mk)] = struct{}{}
	s.corruptMu.Unlock()
	s.stats.Corrupt++
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

func (s *Store) keyLock(mk []byte) *sync.Mutex {
	h := fnv.New32a()
	h.Write(mk)
	return &s.keyLocks[h.Sum32()%uint32(len(s.keyLocks))]
}

// Lookup returns the location of bucket/key.
func (s *Store) Lookup(bucket, key string) (*cellarv1.Location, error) {
	mk := mapKey(bucket, key)
	payload, ok := s.objects.Get(mk)
	if !ok {
		if s.isCorrupt(mk) {
			return nil, errs.New(errs.Corrupt, "the index record of this object is damaged")
		}
		return nil, errs.New(errs.NoSuchKey, "The specified key does not exist.")
	}
	return decodeLocation(mk, payload)
}

// Commit makes loc the location of its bucket/key, durably, and returns the location
// it replaced (nil if none). With requireBucket it fails unless this node holds the bucket.
func (s *Store) Commit(loc *cellarv1.Location, requireBucket bool) (*cellarv1.Location, error) {
	if loc.GetBucket() == "" || loc.GetKey() == "" {
		return nil, errs.New(errs.InvalidArgument, "a location needs a bucket and a key")
	}
	s.bucketMu.RLock()
	defer s.bucketMu.RUnlock()
	if _, ok := s.buckets[loc.Bucket]; requireBucket && !ok {
		return nil, errs.New(errs.NoSuchBucket, "The specified bucket does not exist.")
	}
	payload, err := encodeLocation(loc)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "encode location")
	}
	mk := mapKey(loc.Bucket, loc.Key)
	l := s.keyLock(mk)
	l.Lock()
	defer l.Unlock()
	if err := s.db.Set(objectKey(mk), seal(payload), pebble.Sync); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "index write failed")
	}
	s.clearCorrupt(mk)
	prev, existed := s.objects.Put(mk, payload)
	if !existed {
		return nil, nil
	}
	return decodeLocation(mk, prev)
}

// Delete removes bucket/key durably and returns what it removed (nil if nothing).
func (s *Store) Delete(bucket, key string) (*cellarv1.Location, error) {
	s.bucketMu.RLock()
	defer s.bucketMu.RUnlock()
	mk := mapKey(bucket, key)
	l := s.keyLock(mk)
	l.Lock()
	defer l.Unlock()
	if err := s.db.Delete(objectKey(mk), pebble.Sync); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "index write failed")
	}
	s.clearCorrupt(mk)
	prev, existed := s.objects.Delete(mk)
	if !existed {
		return nil, nil
	}
	return decodeLocation(mk, prev)
}

// ListOptions select the keys of one bucket.
type ListOptions struct {
	Prefix     string
	StartAfter string
	Delimiter  string
	Limit      int // 0 means 1000
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
		s.objects.Ascend(from, func(k, v []byte) bool {
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
			res.Entries = append(res.Entries, loc)
			res.Next = key
			count++
			return true
		})
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

// CreateBucket creates a bucket in this node's cell.
func (s *Store) CreateBucket(name string) (*cellarv1.Bucket, error) {
	s.bucketMu.Lock()
	defer s.bucketMu.Unlock()
	if _, ok := s.buckets[name]; ok {
		return nil, errs.New(errs.BucketExists, "Your previous request to create the named bucket succeeded and you already own it.")
	}
	b := &cellarv1.Bucket{Name: name, CreatedUnixNano: time.Now().UnixNano()}
	payload, err := proto.Marshal(b)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "encode bucket")
	}
	if err := s.db.Set(bucketKey(name), seal(payload), pebble.Sync); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "index write failed")
	}
	s.buckets[name] = b
	return b, nil
}

// DeleteBucket deletes an empty bucket.
func (s *Store) DeleteBucket(name string) error {
	s.bucketMu.Lock()
	defer s.bucketMu.Unlock()
	if _, ok := s.buckets[name]; !ok {
		return errs.New(errs.NoSuchBucket, "The specified bucket does not exist.")
	}
	empty := true
	prefix := mapKey(name, "")
	s.objects.Ascend(prefix, func(k, _ []byte) bool {
		empty = !bytes.HasPrefix(k, prefix)
		return false
	})
	if !empty {
		return errs.New(errs.BucketNotEmpty, "The bucket you tried to delete is not empty.")
	}
	if err := s.db.Delete(bucketKey(name), pebble.Sync); err != nil {
		return errs.Wrap(errs.Unavailable, err, "index write failed")
	}
	delete(s.buckets, name)
	return nil
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
		out = append(out, b)
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
