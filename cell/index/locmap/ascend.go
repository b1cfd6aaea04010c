package locmap

import (
	"bytes"
	"sync"

	"github.com/google/btree"
)

const (
	firstBatch = 32  // entries collected under the lock for the first callback batch
	maxBatch   = 256 // later batches double up to this
	minFetch   = 8   // overlay items fetched by a cursor's first refill
)

// Ascend calls fn for each entry with key >= from, in key order, until fn
// returns false. A nil from starts at the first key.
//
// Ascend does not hold the map's lock while fn runs: it collects a batch of
// entries under the read lock, releases it, calls fn for the batch, then
// resumes after the last key it saw. So fn may take its time without
// blocking writers, but it must not call back into m, and the scan is not a
// snapshot: every key present for the whole call is visited exactly once, in
// order, while keys written or deleted during the call may or may not be.
func (m *Map) Ascend(from []byte, fn func(key, value []byte) bool) {
	a := ascenderPool.Get().(*ascender)
	defer a.release()
	inclusive, n := true, firstBatch
	for {
		m.mu.RLock()
		resume, more := a.fill(m, from, inclusive, n)
		m.mu.RUnlock()
		for _, e := range a.out {
			if !fn(e.key, e.value) {
				return
			}
		}
		if !more {
			return
		}
		from, inclusive = resume, false // resume points into immutable storage
		n = min(2*n, maxBatch)
	}
}

type kv struct{ key, value []byte }

// ascenderPool recycles the buffers of finished scans.
var ascenderPool = sync.Pool{New: func() any { return new(ascender) }}

// release returns a to the pool, dropping its references into the map so
// that a pooled ascender does not keep dropped arenas alive.
func (a *ascender) release() {
	clear(a.out[:cap(a.out)])
	clear(a.live.buf[:cap(a.live.buf)])
	clear(a.frozen.buf[:cap(a.frozen.buf)])
	a.live.tree, a.frozen.tree, a.base.runs, a.base.c.r, a.keys = nil, nil, nil, nil, nil
	ascenderPool.Put(a)
}

// ascender merges the three layers of a Map (live overlay over frozen
// overlay over base runs) in key order.
type ascender struct {
	live, frozen treeCursor
	base         runIter
	out          []kv
	keys         []byte // copies of the base's keys in out
}

// fill collects into a.out up to n visible entries with keys >= from (> from
// unless inclusive). It returns the last key it consumed, visible or not,
// and whether entries may remain after it. Called with m.mu held.
func (a *ascender) fill(m *Map, from []byte, inclusive bool, n int) (resume []byte, more bool) {
	a.out = a.out[:0]
	a.keys = nil // made when the base yields a key: the keys handed out stay valid after the call
	a.live.seek(m.live, from, inclusive)
	a.frozen.seek(m.frozen, from, inclusive)
	a.base.seek(m.runs, from, inclusive)
	// Bound the work done under the lock when tombstones hide most keys.
	for budget := 4 * n; budget > 0 && len(a.out) < n; budget-- {
		// The next key is the smallest one at the head of any layer.
		var key []byte
		have := false
		if a.live.valid() {
			key, have = a.live.item().key(), true
		}
		if a.frozen.valid() {
			if k := a.frozen.item().key(); !have || bytes.Compare(k, key) < 0 {
				key, have = k, true
			}
		}
		if a.base.valid() {
			if k := a.base.key(); !have || bytes.Compare(k, key) < 0 {
				key, have = k, true
			}
		}
		if !have {
			return resume, false
		}
		// The top-most layer holding key decides; all layers move past it.
		decided, visible := false, false
		var value []byte
		for _, c := range [...]*treeCursor{&a.live, &a.frozen} {
			if c.valid() && bytes.Equal(c.item().key(), key) {
				if !decided {
					it := c.item()
					decided, visible, value = true, !it.del, it.value()
				}
				c.next()
			}
		}
		if a.base.valid() && bytes.Equal(a.base.key(), key) {
			if !decided {
				_, value = a.base.entry()
				visible = true
			}
			// The base rebuilds its keys in a buffer that next overwrites:
			// keep a copy, in memory no later batch writes to.
			if a.keys == nil {
				a.keys = make([]byte, 0, n*48)
			}
			a.keys = append(a.keys, key...)
			key = a.keys[len(a.keys)-len(key) : len(a.keys) : len(a.keys)]
			a.base.next()
		}
		if visible {
			a.out = append(a.out, kv{key, value})
		}
		resume = key
	}
	return resume, true
}

// treeCursor walks an overlay's B-tree in key order. The B-tree package only
// offers callback iteration, so the cursor fetches a few items at a time and
// re-seeks after the last one when it runs out. It fetches few items at
// first, since a sparse overlay may hold only a handful inside the range a
// batch covers, and more on each refill.
type treeCursor struct {
	tree  *btree.BTreeG[ovItem]
	buf   []ovItem
	i     int
	fetch int
	done  bool // no items beyond buf
}

// seek positions the cursor at the first item >= from (> from unless
// inclusive). A nil overlay yields nothing.
func (c *treeCursor) seek(o *overlay, from []byte, inclusive bool) {
	c.tree, c.fetch = nil, minFetch
	if o != nil && o.len() > 0 {
		c.tree = o.tree
	}
	c.fill(from, inclusive)
}

func (c *treeCursor) fill(from []byte, inclusive bool) {
	c.buf, c.i, c.done = c.buf[:0], 0, true
	if c.tree == nil {
		return
	}
	c.tree.AscendGreaterOrEqual(probe(from), func(it ovItem) bool {
		if !inclusive && bytes.Equal(it.key(), from) {
			return true
		}
		c.buf = append(c.buf, it)
		return len(c.buf) < c.fetch
	})
	c.done = len(c.buf) < c.fetch
}

func (c *treeCursor) valid() bool  { return c.i < len(c.buf) }
func (c *treeCursor) item() ovItem { return c.buf[c.i] }

func (c *treeCursor) next() {
	c.i++
	if c.i == len(c.buf) && !c.done {
		c.fetch = min(2*c.fetch, maxBatch)
		c.fill(c.buf[c.i-1].key(), false)
	}
}

// runIter walks a list of sorted runs in key order. The key it returns is
// rebuilt in a buffer of its own and overwritten by next; values point into
// the runs' arenas.
type runIter struct {
	runs []*run
	ri   int
	c    runCursor
}

func (it *runIter) seekStart(runs []*run) {
	it.runs, it.ri = runs, 0
	if len(runs) > 0 {
		it.c.at(runs[0], 0)
	}
}

// seek positions the iterator at the first entry >= from (> from unless
// inclusive).
func (it *runIter) seek(runs []*run, from []byte, inclusive bool) {
	if ri := findRun(runs, from); ri >= 0 {
		it.runs, it.ri = runs, ri
		it.c.seekGE(runs[ri], from)
		it.skipExhausted()
	} else {
		it.seekStart(runs) // from sorts before every run
	}
	if !inclusive && it.valid() && bytes.Equal(it.key(), from) {
		it.next()
	}
}

// skipExhausted moves past the ends of runs, to the next entry if any.
func (it *runIter) skipExhausted() {
	for it.ri < len(it.runs) && !it.c.valid() {
		it.ri++
		if it.ri < len(it.runs) {
			it.c.at(it.runs[it.ri], 0)
		}
	}
}

func (it *runIter) valid() bool { return it.ri < len(it.runs) }
func (it *runIter) key() []byte { return it.c.key }

func (it *runIter) entry() (key, value []byte) { return it.c.key, it.c.value() }

func (it *runIter) next() {
	it.c.next()
	it.skipExhausted()
}
