package locmap

import (
	"bytes"
	"unsafe"

	"github.com/google/btree"
)

// ovItem is one write recorded in an overlay: a put (key and value) or a
// tombstone (key only, del set). kv points into the overlay's append-only
// arena, so an item costs no allocation of its own.
type ovItem struct {
	kv    []byte // key bytes followed by value bytes; capacity clipped
	klen  uint32
	del   bool
	below bool // the layers beneath the overlay hold the key (always, for a tombstone)
}

func (it ovItem) key() []byte   { return it.kv[:it.klen:it.klen] }
func (it ovItem) value() []byte { return it.kv[it.klen:] }

// probe returns an item usable only as a search key; it does not copy key.
func probe(key []byte) ovItem { return ovItem{kv: key, klen: uint32(len(key))} }

func itemLess(a, b ovItem) bool { return bytes.Compare(a.key(), b.key()) < 0 }

const (
	btreeDegree     = 32
	minOverlayChunk = 4 << 10
	maxOverlayChunk = 256 << 10
	// itemCost approximates the heap cost of one item in a B-tree node:
	// the item itself, times the slack of half-full nodes, plus a share of
	// node headers and child pointers.
	itemCost = int64(unsafe.Sizeof(ovItem{}))*3/2 + 8
)

// overlay holds writes made since the base runs were built, ordered by key.
// The live overlay is written under Map.mu; once frozen for a merge it is
// never written again and may be read without locks.
type overlay struct {
	tree      *btree.BTreeG[ovItem]
	chunk     []byte // current arena chunk; bytes in it are never rewritten
	arenaCap  int64  // capacity of all chunks allocated
	arenaUsed int64  // bytes copied in, including overwritten versions
}

func newOverlay() *overlay {
	return &overlay{tree: btree.NewG(btreeDegree, itemLess)}
}

func (o *overlay) len() int { return o.tree.Len() }

func (o *overlay) get(key []byte) (ovItem, bool) { return o.tree.Get(probe(key)) }

// copyIn copies key and value into the arena and returns the item for them.
// Earlier versions of the key stay in the arena untouched (readers may hold
// them) until the whole overlay is dropped after a merge.
func (o *overlay) copyIn(key, value []byte, del, below bool) ovItem {
	n := len(key) + len(value)
	if cap(o.chunk)-len(o.chunk) < n {
		size := min(max(2*cap(o.chunk), minOverlayChunk), maxOverlayChunk)
		o.chunk = make([]byte, 0, max(size, n))
		o.arenaCap += int64(cap(o.chunk))
	}
	start := len(o.chunk)
	o.chunk = append(o.chunk, key...)
	o.chunk = append(o.chunk, value...)
	o.arenaUsed += int64(n)
	kv := o.chunk[start:len(o.chunk):len(o.chunk)]
	return ovItem{kv: kv, klen: uint32(len(key)), del: del, below: below}
}

func (o *overlay) memBytes() int64 {
	return o.arenaCap + int64(o.tree.Len())*itemCost
}

// items returns all items in key order.
func (o *overlay) items() []ovItem {
	out := make([]ovItem, 0, o.tree.Len())
	o.tree.Ascend(func(it ovItem) bool {
		out = append(out, it)
		return true
	})
	return out
}
