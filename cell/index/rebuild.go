package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell/index/locmap"
	"github.com/cellarsim/cellar/internal/errs"
)

// The rebuild of the in-memory map.
//
// OpenAsync opens Pebble, loads the (few) bucket records and returns; the rebuild is
// planned and the objects are loaded in the background. The object key space is cut into ranges at
// split keys taken from Pebble's own sstable boundaries (refined with Pebble's disk-usage
// estimates where a table is large), about one range per 128 Ki objects and never fewer
// than one per worker. Workers (one per core) take the ranges in key order; each range is
// scanned with its own iterator, every record's checksum is checked, and the good records
// are appended to a Builder pre-sized from the sstables' properties. A finished range is
// published at once and serves reads; when all are done they are joined with
// locmap.Concat and become the store's map.
//
// While a range is loading, a read of it gets what Options.Pending says. Writes must
// wait for Ready: the daemon refuses them (SlowDown) until then, which keeps Pebble
// still under the rebuild's iterators, so every range is a consistent picture of it.

// Pending says what a read of a key range that is still loading gets.
type Pending int

const (
	// PendingPebble answers such reads from Pebble directly, checking each record's
	// checksum as the rebuild does. It is the default: Pebble is the source of truth
	// and, while the rebuild holds Pebble still, it gives exactly the answer the map
	// will give, so a restarting node serves every GET and LIST from the moment
	// Pebble is open, at the cost of slower reads (a Pebble lookup, competing with the
	// rebuild for the same cores) until its range is in memory.
	PendingPebble Pending = iota
	// PendingSlowDown refuses such reads with errs.SlowDown naming the pending range
	// (the gateway answers 503 SlowDown with Retry-After), so the rebuild has the
	// cores to itself and finishes soonest; loaded ranges are served from memory.
	PendingSlowDown
)

func (p Pending) String() string {
	switch p {
	case PendingPebble:
		return "pebble"
	case PendingSlowDown:
		return "slowdown"
	}
	return fmt.Sprintf("Pending(%d)", int(p))
}

// Set parses "pebble" or "slowdown" (a pflag.Value).
func (p *Pending) Set(s string) error {
	v, err := ParsePending(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Type names the flag's values.
func (p *Pending) Type() string { return "pebble|slowdown" }

// ParsePending parses "pebble" or "slowdown".
func ParsePending(s string) (Pending, error) {
	switch s {
	case "", "pebble":
		return PendingPebble, nil
	case "slowdown":
		return PendingSlowDown, nil
	}
	return 0, fmt.Errorf("unknown pending-read policy %q (want pebble or slowdown)", s)
}

// Options configure OpenAsync. The zero value is the default.
type Options struct {
	Logger *slog.Logger
	// Pending is what a read of a range still loading gets; see PendingPebble.
	Pending Pending
	// Workers is the number of ranges loaded at once (default: GOMAXPROCS).
	Workers int
	// Ranges is the number of key ranges to aim for (default: one per 128 Ki
	// objects, at least Workers, at most 4096).
	Ranges int

	// beforeRange, when set, is called by a worker before it loads range i (tests
	// use it to hold ranges back).
	beforeRange func(i int)
}

// RebuildStats describes the rebuild of the in-memory map.
type RebuildStats struct {
	Objects    int64         // objects loaded (all of them, once done)
	Estimated  int64         // objects expected, from Pebble's table properties
	Corrupt    int64         // records that failed their checksum
	Ranges     int           // key ranges the rebuild was split into
	Loaded     int           // ranges loaded so far
	Workers    int           // ranges loaded at once
	Done       bool          // the whole map is loaded
	Open       time.Duration // opening Pebble and loading the buckets
	Plan       time.Duration // choosing the key ranges
	FirstServe time.Duration // from the start of Open to the first range that serves reads
	Duration   time.Duration // from the start of Open to the end of the rebuild (so far, if not done)
}

// rebuildState is the Store's view of the rebuild; its fields are set before the
// rebuild goroutine starts, except those that are atomic or guarded by done.
type rebuildState struct {
	pending Pending
	workers int
	hook    func(int)

	// bounds are the map keys at which ranges start: range i is [bounds[i-1],
	// bounds[i]), the first from the smallest key, the last to the largest.
	bounds [][]byte
	parts  []atomic.Pointer[locmap.Map] // a loaded range, until the whole map is
	hints  []int                        // expected objects per range

	start      time.Time
	opened     time.Duration // set before OpenAsync returns
	planned    atomic.Int64  // nanoseconds spent choosing the ranges
	havePlan   atomic.Bool   // bounds, parts, hints, estimated and avgBytes are set
	estimated  int64
	avgBytes   int // expected map bytes (key + value) per object
	ready      atomic.Bool
	done       chan struct{}
	err        error // set before done is closed
	loaded     atomic.Int64
	corrupt    atomic.Int64
	rangesDone atomic.Int64
	firstServe atomic.Int64 // nanoseconds from start
	took       atomic.Int64 // nanoseconds from start to done
	stop       atomic.Bool  // set by Close: end the rebuild early
}

// OpenAsync opens (or creates) the Pebble database in dir, loads its buckets and
// starts rebuilding the object map in the background. It returns as soon as the
// store can serve reads under o.Pending; Ready is closed when the map is complete.
// Writes must not be made before Ready is closed (WaitReady).
func OpenAsync(dir string, o Options) (*Store, error) {
	start := time.Now()
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	db, err := pebble.Open(dir, PebbleOptions(pebbleLogger{logger}))
	if err != nil {
		return nil, fmt.Errorf("open index database %s: %w", dir, err)
	}
	s := &Store{db: db, log: logger, objects: locmap.New(), buckets: map[string]*cellarv1.Bucket{}, corrupt: map[string]struct{}{}}
	s.rb.start = start
	s.rb.pending = o.Pending
	s.rb.hook = o.beforeRange
	s.rb.done = make(chan struct{})
	s.rb.workers = o.Workers
	if s.rb.workers <= 0 {
		s.rb.workers = runtime.GOMAXPROCS(0)
	}
	if err := s.loadLastChange(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadAppliedIndex(); err != nil {
		db.Close()
		return nil, err
	}
	s.noteApplied(s.AppliedIndex())
	if err := s.loadBuckets(); err != nil {
		db.Close()
		return nil, err
	}
	s.rb.opened = time.Since(start)
	if s.rb.pending == PendingPebble {
		s.rb.firstServe.Store(int64(time.Since(start)))
	}
	// The ranges are chosen in the background too: with thousands of tables, reading
	// their properties takes a while, and reads need not wait for it.
	go s.rebuild(o.Ranges)
	return s, nil
}

// Ready is closed when the rebuild has ended, successfully or not (see RebuildErr).
func (s *Store) Ready() <-chan struct{} { return s.rb.done }

// RebuildErr is the error that stopped the rebuild, once Ready is closed.
func (s *Store) RebuildErr() error {
	select {
	case <-s.rb.done:
		return s.rb.err
	default:
		return nil
	}
}

// WaitReady waits for the rebuild to end and returns its error.
func (s *Store) WaitReady(ctx context.Context) error {
	select {
	case <-s.rb.done:
		return s.rb.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Progress returns the objects loaded so far and the number expected (an estimate
// from Pebble's table properties until the rebuild ends, then the exact count).
func (s *Store) Progress() (loaded, total int64) {
	loaded = s.rb.loaded.Load()
	if s.rb.havePlan.Load() {
		total = s.rb.estimated
	}
	if s.rb.ready.Load() {
		total = loaded
	}
	return loaded, max(total, loaded)
}

// Stats returns the numbers of the rebuild, so far.
func (s *Store) Stats() RebuildStats {
	st := RebuildStats{
		Objects:    s.rb.loaded.Load(),
		Corrupt:    s.rb.corrupt.Load(),
		Loaded:     int(s.rb.rangesDone.Load()),
		Done:       s.rb.ready.Load(),
		Open:       s.rb.opened,
		Plan:       time.Duration(s.rb.planned.Load()),
		FirstServe: time.Duration(s.rb.firstServe.Load()),
		Duration:   time.Duration(s.rb.took.Load()),
	}
	if s.rb.havePlan.Load() {
		st.Estimated, st.Ranges = s.rb.estimated, len(s.rb.parts)
		st.Workers = min(s.rb.workers, st.Ranges)
	}
	if !st.Done {
		st.Duration = time.Since(s.rb.start)
	}
	return st
}

func (s *Store) loadBuckets() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixBucket}, UpperBound: []byte{prefixBucket + 1}})
	if err != nil {
		return fmt.Errorf("rebuild buckets: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		name := string(it.Key()[1:])
		b, ok := openBucket(it.Value())
		if !ok {
			s.log.Error("corrupt bucket record; bucket not served", "bucket", name)
			s.rb.corrupt.Add(1)
			continue
		}
		s.buckets[name] = b
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("rebuild buckets: %w", err)
	}
	return nil
}

const (
	objectsPerRange = 128 << 10
	maxRanges       = 4096
)

var (
	objectsLower = []byte{prefixObject}
	objectsUpper = []byte{prefixObject + 1}
)

// planRebuild picks the split keys of the rebuild and the size hints of each range.
func (s *Store) planRebuild(want int) error {
	tables, err := s.db.SSTables(pebble.WithProperties(), pebble.WithKeyRangeFilter(objectsLower, objectsUpper))
	if err != nil {
		return fmt.Errorf("plan rebuild: %w", err)
	}
	// Candidate split keys: where the tables holding objects start.
	var entries, raw, size uint64
	var cands [][]byte
	for _, level := range tables {
		for _, t := range level {
			if k := t.Smallest.UserKey; bytes.Compare(k, objectsLower) > 0 && bytes.Compare(k, objectsUpper) < 0 {
				cands = append(cands, k)
			}
			size += t.Size
			if p := t.Properties; p != nil {
				entries += p.NumEntries - p.NumDeletions
				raw += p.RawKeySize + p.RawValueSize
			}
		}
	}
	s.rb.estimated = int64(entries)
	// Map bytes per object: the raw sizes include an 8-byte trailer per key, the
	// 'o' prefix and the 4-byte checksum, which the map does not keep.
	s.rb.avgBytes = 96
	if entries > 0 {
		s.rb.avgBytes = max(int(raw/entries)-13, 8)
	}
	if want <= 0 {
		want = min(max(int(entries/objectsPerRange)+1, s.rb.workers), maxRanges)
	}
	splits := s.splitKeys(cands, want)
	s.rb.bounds = make([][]byte, len(splits))
	for i, k := range splits {
		s.rb.bounds[i] = k[1:] // map key: without the 'o'
	}
	n := len(splits) + 1
	s.rb.parts = make([]atomic.Pointer[locmap.Map], n)
	s.rb.hints = make([]int, n)
	if entries == 0 || size == 0 {
		return nil
	}
	for i := range n {
		lo, hi := s.pebbleRange(i)
		u, err := s.db.EstimateDiskUsage(lo, hi)
		if err != nil {
			return fmt.Errorf("plan rebuild: %w", err)
		}
		s.rb.hints[i] = int(float64(entries) * float64(u) / float64(size))
	}
	return nil
}

// splitKeys returns want-1 or fewer increasing Pebble keys inside the object key space
// that cut it into pieces of similar size: table boundaries where there are enough,
// and keys between boundaries, placed with Pebble's disk usage estimates, where not.
func (s *Store) splitKeys(cands [][]byte, want int) [][]byte {
	if want <= 1 {
		return nil
	}
	sort.Slice(cands, func(i, j int) bool { return bytes.Compare(cands[i], cands[j]) < 0 })
	// Pieces between consecutive candidates, with their estimated sizes.
	type piece struct {
		lo, hi []byte
		size   uint64
		whole  bool // cannot be cut further
	}
	usage := func(lo, hi []byte) uint64 {
		u, err := s.db.EstimateDiskUsage(lo, hi)
		if err != nil {
			return 0
		}
		return u
	}
	// The smallest and largest object keys bound the space to cut.
	first, last := s.edgeKeys()
	if first == nil || bytes.Equal(first, last) {
		return nil
	}
	hi := append(append([]byte(nil), last...), 0) // just past the last key
	bounds := [][]byte{first}
	for _, c := range cands {
		if bytes.Compare(c, bounds[len(bounds)-1]) > 0 && bytes.Compare(c, last) <= 0 {
			bounds = append(bounds, c)
		}
	}
	bounds = append(bounds, hi)
	var pieces []piece
	var total uint64
	for i := 0; i+1 < len(bounds); i++ {
		p := piece{lo: bounds[i], hi: bounds[i+1], size: usage(bounds[i], bounds[i+1])}
		total += p.size
		pieces = append(pieces, p)
	}
	if total == 0 {
		return nil
	}
	// Cut pieces larger than a range's share in two, largest first, until the
	// pieces are small enough (or cannot be cut further).
	share := total / uint64(want)
	for guard := 0; guard < 8*want && len(pieces) < 4*want; guard++ {
		big := -1
		for i, p := range pieces {
			if !p.whole && p.size > share && (big < 0 || p.size > pieces[big].size) {
				big = i
			}
		}
		if big < 0 {
			break
		}
		p := pieces[big]
		mid := midKey(p.lo, p.hi)
		if mid == nil {
			pieces[big].whole = true
			continue
		}
		a := piece{lo: p.lo, hi: mid, size: usage(p.lo, mid)}
		b := piece{lo: mid, hi: p.hi, size: usage(mid, p.hi)}
		if a.size == 0 && b.size == 0 { // below the estimate's resolution
			a.size, b.size = p.size/2, p.size-p.size/2
		}
		pieces = append(pieces[:big], append([]piece{a, b}, pieces[big+1:]...)...)
	}
	// Walk the pieces and cut wherever the running size passes the next share.
	// The halves of a cut piece can add up to more than the piece (Pebble's
	// estimate counts every block a bound falls in), so the shares are taken
	// of the pieces as they are now.
	total = 0
	for _, p := range pieces {
		total += p.size
	}
	var splits [][]byte
	var run uint64
	for i, p := range pieces {
		run += p.size
		if i+1 < len(pieces) && len(splits) < want-1 && run >= uint64(len(splits)+1)*total/uint64(want) {
			splits = append(splits, p.hi)
		}
	}
	return splits
}

// edgeKeys returns the smallest and largest keys in the object key space.
func (s *Store) edgeKeys() (first, last []byte) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: objectsLower, UpperBound: objectsUpper})
	if err != nil {
		return nil, nil
	}
	defer it.Close()
	if it.First() {
		first = append([]byte(nil), it.Key()...)
	}
	if it.Last() {
		last = append([]byte(nil), it.Key()...)
	}
	return first, last
}

// midKey returns a key strictly between a and b (a < b), or nil if it finds none.
// It reads the 8 bytes after the common prefix of both as numbers and halves the
// difference, so that it lands near the middle of the key space between them.
func midKey(a, b []byte) []byte {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	var ab, bb [8]byte
	copy(ab[:], a[p:])
	copy(bb[:], b[p:])
	x, y := binary.BigEndian.Uint64(ab[:]), binary.BigEndian.Uint64(bb[:])
	if y <= x || y-x < 2 {
		return nil
	}
	m := x + (y-x)/2
	out := make([]byte, p, p+8)
	copy(out, a[:p])
	out = binary.BigEndian.AppendUint64(out, m)
	for len(out) > p+1 && out[len(out)-1] == 0 {
		out = out[:len(out)-1]
	}
	if bytes.Compare(out, a) <= 0 || bytes.Compare(out, b) >= 0 {
		return nil
	}
	return out
}

// pebbleRange returns the Pebble bounds of range i.
func (s *Store) pebbleRange(i int) (lo, hi []byte) {
	lo, hi = objectsLower, objectsUpper
	if i > 0 {
		lo = objectKey(s.rb.bounds[i-1])
	}
	if i < len(s.rb.bounds) {
		hi = objectKey(s.rb.bounds[i])
	}
	return lo, hi
}

// rangeOf returns the range holding map key mk.
func (s *Store) rangeOf(mk []byte) int {
	return sort.Search(len(s.rb.bounds), func(i int) bool { return bytes.Compare(s.rb.bounds[i], mk) > 0 })
}

// rebuild plans the ranges, loads every one and then makes the joined ranges the
// store's map.
func (s *Store) rebuild(ranges int) {
	rb := &s.rb
	planStart := time.Now()
	if err := s.planRebuild(ranges); err != nil {
		rb.err = err
		s.log.Error("index rebuild failed", "err", err)
		rb.took.Store(int64(time.Since(rb.start)))
		close(rb.done)
		return
	}
	rb.planned.Store(int64(time.Since(planStart)))
	rb.havePlan.Store(true)
	var next atomic.Int64
	var failed atomic.Bool
	var errMu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range min(rb.workers, len(rb.parts)) {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(rb.parts) {
					return
				}
				if rb.hook != nil {
					rb.hook(i)
				}
				m, err := s.loadRange(i)
				if err != nil {
					errMu.Lock()
					firstErr = cmpErr(firstErr, err)
					errMu.Unlock()
					failed.Store(true)
					return
				}
				rb.parts[i].Store(m)
				rb.rangesDone.Add(1)
				rb.firstServe.CompareAndSwap(0, int64(time.Since(rb.start)))
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		parts := make([]*locmap.Map, len(rb.parts))
		for i := range rb.parts {
			parts[i] = rb.parts[i].Load()
		}
		var all *locmap.Map
		if all, firstErr = locmap.Concat(parts...); firstErr == nil {
			s.objects.Replace(all)
		}
	}
	if firstErr != nil {
		rb.err = fmt.Errorf("rebuild index: %w", firstErr)
		s.log.Error("index rebuild failed", "err", firstErr)
	} else {
		rb.ready.Store(true)
		rb.firstServe.CompareAndSwap(0, int64(time.Since(rb.start)))
	}
	rb.took.Store(int64(time.Since(rb.start)))
	// The map now holds the ranges' runs; drop the ranges so that runs rewritten
	// by later writes can be freed. (A reader still looking at a range finds it
	// gone and reads through, which is correct from here on too.)
	for i := range rb.parts {
		rb.parts[i].Store(nil)
	}
	close(rb.done)
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// loadRange scans range i of Pebble, checking every record, into a new map.
func (s *Store) loadRange(i int) (*locmap.Map, error) {
	lo, hi := s.pebbleRange(i)
	hint := s.rb.hints[i]
	b := locmap.NewBuilder(hint, hint*s.rb.avgBytes)
	defer b.Discard() // on the error paths; nothing after Finish
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	var n int64
	for it.First(); it.Valid(); it.Next() {
		payload, ok := open(it.Value())
		if !ok {
			s.markCorrupt(it.Key()[1:])
			continue
		}
		if err := b.Append(it.Key()[1:], payload); err != nil {
			it.Close()
			return nil, err
		}
		if n++; n == 4096 {
			s.rb.loaded.Add(n)
			n = 0
			if s.rb.stop.Load() {
				it.Close()
				return nil, errStopped
			}
		}
	}
	s.rb.loaded.Add(n)
	if err := it.Close(); err != nil {
		return nil, err
	}
	return b.Finish(), nil
}

var errStopped = errors.New("the store was closed")

// stopRebuild ends a running rebuild and waits for it to stop.
func (s *Store) stopRebuild() {
	s.rb.stop.Store(true)
	<-s.rb.done
}

// errPending is the answer to a read of a range still loading under PendingSlowDown;
// i < 0 while the ranges are being chosen.
func (s *Store) errPending(i int) error {
	loaded, total := s.Progress()
	if i < 0 {
		return errs.New(errs.SlowDown, "index rebuilding: choosing the key ranges to load")
	}
	return errs.New(errs.SlowDown, "index rebuilding: key range %d of %d (from %s) is loading; %d of ~%d objects loaded",
		i+1, len(s.rb.parts), describeBound(s.rb.bounds, i), loaded, total)
}

func describeBound(bounds [][]byte, i int) string {
	if i == 0 {
		return "the first key"
	}
	b, k := splitBound(bounds[i-1])
	return fmt.Sprintf("%q", b+"/"+k)
}

func splitBound(mk []byte) (bucket, key string) {
	if j := bytes.IndexByte(mk, 0); j >= 0 {
		return string(mk[:j]), string(mk[j+1:])
	}
	return string(mk), ""
}

// lookupRebuilding is Lookup while the map is not complete.
func (s *Store) lookupRebuilding(mk []byte) (*cellarv1.Location, error) {
	i := -1
	if s.rb.havePlan.Load() {
		i = s.rangeOf(mk)
		if part := s.rb.parts[i].Load(); part != nil {
			return s.lookupIn(part, mk)
		}
	}
	if s.rb.ready.Load() { // finished meanwhile
		return s.lookupIn(s.objects, mk)
	}
	if s.rb.pending == PendingSlowDown {
		return nil, s.errPending(i)
	}
	v, closer, err := s.db.Get(objectKey(mk))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, errs.New(errs.NoSuchKey, "The specified key does not exist.")
	}
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "index read failed")
	}
	defer closer.Close()
	payload, ok := open(v)
	if !ok {
		return nil, errs.New(errs.Corrupt, "the index record of this object is damaged")
	}
	return decodeLocation(mk, payload)
}

// lookupIn looks mk up in m (the store's map or a loaded range).
func (s *Store) lookupIn(m *locmap.Map, mk []byte) (*cellarv1.Location, error) {
	payload, ok := m.Get(mk)
	if !ok {
		if s.isCorrupt(mk) {
			return nil, errs.New(errs.Corrupt, "the index record of this object is damaged")
		}
		return nil, errs.New(errs.NoSuchKey, "The specified key does not exist.")
	}
	return decodeLocation(mk, payload)
}

// ascend calls fn for the entries from key from on, in order, until fn returns false,
// as locmap.Map.Ascend does, also while the map is being rebuilt.
func (s *Store) ascend(from []byte, fn func(k, v []byte) bool) error {
	if s.rb.ready.Load() {
		s.objects.Ascend(from, fn)
		return nil
	}
	stopped := false
	wrapped := func(k, v []byte) bool {
		if !fn(k, v) {
			stopped = true
		}
		return !stopped
	}
	if !s.rb.havePlan.Load() {
		if s.rb.pending == PendingSlowDown {
			return s.errPending(-1)
		}
		return s.ascendPebble(objectKey(from), objectsUpper, wrapped, &stopped)
	}
	for i := s.rangeOf(from); i < len(s.rb.parts) && !stopped; i++ {
		if part := s.rb.parts[i].Load(); part != nil {
			part.Ascend(from, wrapped)
			continue
		}
		if s.rb.ready.Load() { // finished meanwhile: the map holds range i and all after it
			s.objects.Ascend(maxKey(from, s.rb.bound(i)), wrapped)
			return nil
		}
		if s.rb.pending == PendingSlowDown {
			return s.errPending(i)
		}
		lo, hi := s.pebbleRange(i)
		if k := objectKey(from); bytes.Compare(k, lo) > 0 {
			lo = k
		}
		if err := s.ascendPebble(lo, hi, wrapped, &stopped); err != nil {
			return err
		}
	}
	return nil
}

// ascendPebble calls fn for the good object records in [lo, hi) of Pebble, in order,
// until *stopped.
func (s *Store) ascendPebble(lo, hi []byte, fn func(k, v []byte) bool, stopped *bool) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "index read failed")
	}
	for it.First(); it.Valid() && !*stopped; it.Next() {
		if payload, ok := open(it.Value()); ok {
			fn(it.Key()[1:], payload)
		}
	}
	if err := it.Close(); err != nil {
		return errs.Wrap(errs.Unavailable, err, "index read failed")
	}
	return nil
}

// bound returns the first map key of range i (nil for the first range).
func (rb *rebuildState) bound(i int) []byte {
	if i == 0 {
		return nil
	}
	return rb.bounds[i-1]
}

func maxKey(a, b []byte) []byte {
	if bytes.Compare(a, b) >= 0 {
		return a
	}
	return b
}
