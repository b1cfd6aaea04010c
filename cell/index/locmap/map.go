package locmap

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"
)

const (
	// overlayFraction: a background merge starts once the live overlay holds
	// more than 1/overlayFraction of the base's entries or arena bytes.
	overlayFraction = 16
	// defaultMinOverlay keeps small maps from merging after every few writes.
	defaultMinOverlay = 1024
)

// Map is an ordered map from keys to values: an immutable base of sorted
// runs plus overlays of later writes. It is safe for concurrent use by many
// readers and writers.
//
// Keys and values returned by Map methods point into immutable storage: they
// stay valid and unchanged however the map is modified later, and must not be
// written to. (Appending to them is safe: their capacity is clipped.)
type Map struct {
	mu        sync.RWMutex
	runs      []*run // base: sorted, disjoint runs; the slice is replaced, never modified
	baseLen   int    // entries in runs
	baseBytes int64  // arena bytes in runs
	baseRaw   int64  // the same entries' bytes without prefix compression
	frozen    *overlay
	live      *overlay
	n         int // visible entries

	mergeMu      sync.Mutex // held for a whole merge; merges run one at a time
	mergePending bool       // a background merge goroutine is running; under mu
	merges       atomic.Int64

	// Tuning, fixed at construction (tests shrink them).
	maxRun     int
	minOverlay int
}

// New returns an empty Map.
func New() *Map { return newMapFromRuns(nil, defaultMaxRun) }

func newMapFromRuns(runs []*run, maxRun int) *Map {
	m := &Map{runs: runs, live: newOverlay(), maxRun: maxRun, minOverlay: defaultMinOverlay}
	for _, r := range runs {
		m.baseLen += r.len()
		m.baseBytes += int64(len(r.data))
		m.baseRaw += r.raw
	}
	m.n = m.baseLen
	return m
}

// Len returns the number of entries.
func (m *Map) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.n
}

// Get returns the value stored for key.
func (m *Map) Get(key []byte) (value []byte, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if it, ok := m.live.get(key); ok {
		if it.del {
			return nil, false
		}
		return it.value(), true
	}
	return m.lowerGet(key)
}

// lowerGet looks key up below the live overlay. Called with mu held.
func (m *Map) lowerGet(key []byte) ([]byte, bool) {
	if m.frozen != nil {
		if it, ok := m.frozen.get(key); ok {
			if it.del {
				return nil, false
			}
			return it.value(), true
		}
	}
	return runsGet(m.runs, key)
}

// Put stores value under key and returns the value it replaced, if any.
// Put copies key and value.
func (m *Map) Put(key, value []byte) (prev []byte, existed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	lowerVal, below := m.lowerGet(key)
	old, replaced := m.live.tree.ReplaceOrInsert(m.live.copyIn(key, value, false, below))
	switch {
	case replaced && !old.del:
		prev, existed = old.value(), true
	case !replaced:
		prev, existed = lowerVal, below
	}
	if !existed {
		m.n++
	}
	m.maybeMerge()
	return prev, existed
}

// Delete removes key and returns the value it had, if any.
func (m *Map) Delete(key []byte) (prev []byte, existed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, inLive := m.live.get(key)
	var lowerVal []byte
	below := it.below // an item knows whether the layers beneath hold its key
	if !inLive {
		lowerVal, below = m.lowerGet(key)
	}
	switch {
	case inLive && !it.del:
		prev = it.value()
	case !inLive && below:
		prev = lowerVal
	default:
		return nil, false
	}
	m.n--
	if below {
		m.live.tree.ReplaceOrInsert(m.live.copyIn(key, nil, true, true))
		m.maybeMerge()
	} else {
		// Only the live overlay ever had the key: forget it outright.
		m.live.tree.Delete(probe(key))
	}
	return prev, true
}

// maybeMerge starts a background merge if the live overlay has grown past
// its share of the base. Called with mu held for writing.
func (m *Map) maybeMerge() {
	if !m.mergePending && m.overlayFull() {
		m.mergePending = true
		go m.backgroundMerge()
	}
}

func (m *Map) overlayFull() bool {
	maxLen := max(m.minOverlay, m.baseLen/overlayFraction)
	// The overlay stores keys whole, so it is measured against the base's
	// uncompressed size.
	maxBytes := max(int64(m.minOverlay)*64, m.baseRaw/overlayFraction)
	return m.live.len() > maxLen || m.live.arenaUsed > maxBytes
}

func (m *Map) backgroundMerge() {
	for {
		m.Compact()
		m.mu.Lock()
		if !m.overlayFull() {
			m.mergePending = false
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
	}
}

// MemBytes returns the approximate heap held by the map: run arenas and
// offsets, overlay arenas and B-tree items.
func (m *Map) MemBytes() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	total := int64(unsafe.Sizeof(*m)) + 8*int64(cap(m.runs))
	for _, r := range m.runs {
		total += r.memBytes()
	}
	total += m.live.memBytes()
	if m.frozen != nil {
		total += m.frozen.memBytes()
	}
	return total
}

// Concat joins maps whose key ranges are disjoint and increasing (every key
// of parts[i] is less than every key of parts[i+1]) into one Map, typically
// after building ranges in parallel. Entries are not copied: the result
// shares the parts' immutable runs, so the parts remain valid, independent
// maps. Parts that received writes are compacted first; they must not be
// written while Concat runs. Nil and empty parts are skipped.
func Concat(parts ...*Map) (*Map, error) {
	var runs []*run
	var prevLast []byte
	havePrev := false
	maxRun := defaultMaxRun
	for i, p := range parts {
		if p == nil {
			continue
		}
		pr := p.compactedRuns()
		if len(pr) == 0 {
			continue
		}
		if havePrev && bytes.Compare(pr[0].first, prevLast) <= 0 {
			return nil, fmt.Errorf("%w: part %d starts at %q, not after %q", ErrOutOfOrder, i, pr[0].first, prevLast)
		}
		prevLast, havePrev = pr[len(pr)-1].last(), true
		runs = append(runs, pr...)
		maxRun = p.maxRun
	}
	return newMapFromRuns(runs, maxRun), nil
}

// compactedRuns merges any overlay into the base and returns the runs.
func (m *Map) compactedRuns() []*run {
	for {
		m.mu.RLock()
		if m.live.len() == 0 && m.frozen == nil {
			runs := m.runs
			m.mu.RUnlock()
			return runs
		}
		m.mu.RUnlock()
		m.Compact()
	}
}

// Replace makes m hold exactly the entries of src, discarding m's own, in
// time proportional to src's number of runs rather than its entries: m takes
// over src's immutable runs (compacting src first if it received writes).
// Readers of m see either the old or the new contents, never a mix. src
// remains a valid, independent map; it must not be written while Replace runs.
// Writes to m that race with Replace may land before it (and be discarded) or
// after it.
func (m *Map) Replace(src *Map) {
	runs := src.compactedRuns()
	// Wait for a merge of m's old contents to finish, so it cannot swap old
	// runs back in.
	m.mergeMu.Lock()
	defer m.mergeMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs = runs
	m.baseLen, m.baseBytes, m.baseRaw = 0, 0, 0
	for _, r := range runs {
		m.baseLen += r.len()
		m.baseBytes += int64(len(r.data))
		m.baseRaw += r.raw
	}
	m.n = m.baseLen
	m.frozen = nil
	m.live = newOverlay()
}
