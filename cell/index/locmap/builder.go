package locmap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	// defaultMaxRun caps the arena of one run. Runs are the unit of growth
	// (a build never reallocates and copies a large arena) and the unit of
	// rewriting when writes are merged into the base.
	defaultMaxRun = 8 << 20
	// minChunk is the first arena size when no size hint is usable.
	minChunk = 16 << 10
	// maxEntry bounds one encoded entry so that offsets fit in uint32.
	maxEntry = 1 << 30
)

var (
	// ErrOutOfOrder is returned by Builder.Append for a key that is not
	// strictly greater than the previous one, and by Concat for parts whose
	// key ranges overlap or are out of order.
	ErrOutOfOrder = errors.New("locmap: keys out of order")
	// ErrFinished is returned by Builder.Append after Finish.
	ErrFinished = errors.New("locmap: builder already finished")
	// ErrTooLarge is returned by Builder.Append for an entry of 1 GiB or more.
	ErrTooLarge = errors.New("locmap: entry too large")
)

// Builder builds a Map from keys appended in strictly increasing order, the
// order in which a Pebble scan returns them. It copies each entry into a
// pre-sized arena and records one offset, so appending costs a comparison and
// two copies and allocates nothing per entry.
//
// A Builder is not safe for concurrent use. To build on several cores, split
// the key space into ranges, run one Builder per range and join the results
// with Concat.
type Builder struct {
	runs []*run   // finished runs
	data []byte   // arena of the run being filled; never grown past its capacity
	offs []uint32 // offsets of the run being filled
	last []byte   // previous key (points into an arena)
	n    int      // entries appended so far

	written  int64 // arena bytes written so far, over all runs
	expected int64 // arena bytes expected in total, from the hints; 0 if unknown
	avgEntry int   // expected encoded entry size, to pre-size offsets
	maxRun   int

	finished bool
}

// NewBuilder returns a Builder pre-sized for entriesHint entries whose keys
// and values add up to bytesHint bytes. Either hint may be 0 (unknown) or
// wrong: a low hint only means more, smaller runs; a high one is trimmed by
// Finish.
func NewBuilder(entriesHint, bytesHint int) *Builder {
	entriesHint = max(entriesHint, 0)
	var arena int64
	if bytesHint > 0 {
		// One header byte per entry covers every key shorter than 128 bytes.
		arena = int64(bytesHint) + int64(entriesHint)
	}
	return newBuilder(entriesHint, arena, defaultMaxRun)
}

// newBuilder returns a Builder expecting about entries entries taking
// arenaBytes encoded bytes in total (0: unknown), cutting runs at maxRun.
func newBuilder(entries int, arenaBytes int64, maxRun int) *Builder {
	b := &Builder{maxRun: maxRun, avgEntry: 64, expected: max(arenaBytes, 0)}
	if entries > 0 && arenaBytes > 0 {
		b.avgEntry = int(max(arenaBytes/int64(entries), 1))
	}
	return b
}

// Len returns the number of entries appended so far.
func (b *Builder) Len() int { return b.n }

// Append adds an entry. key must be strictly greater than the previously
// appended key. Append copies key and value; the caller may reuse them.
func (b *Builder) Append(key, value []byte) error {
	if b.finished {
		return ErrFinished
	}
	if b.n > 0 && bytes.Compare(key, b.last) <= 0 {
		return fmt.Errorf("%w: %q after %q", ErrOutOfOrder, key, b.last)
	}
	size := uvarintLen(len(key)) + len(key) + len(value)
	if size >= maxEntry {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	if len(b.data)+size > cap(b.data) {
		b.cutRun()
		b.newArena(size)
	}
	b.data = binary.AppendUvarint(b.data, uint64(len(key)))
	ks := len(b.data)
	b.data = append(b.data, key...) // never reallocates: capacity was checked
	b.data = append(b.data, value...)
	b.offs = append(b.offs, uint32(len(b.data)))
	b.last = b.data[ks : ks+len(key) : ks+len(key)]
	b.n++
	b.written += int64(size)
	return nil
}

// Finish returns the built Map. The Builder must not be used afterwards.
func (b *Builder) Finish() *Map {
	maxRun := b.maxRun
	return newMapFromRuns(b.finishRuns(), maxRun)
}

// finishRuns ends the build and returns the runs.
func (b *Builder) finishRuns() []*run {
	b.cutRun()
	runs := b.runs
	*b = Builder{finished: true}
	return runs
}

// newArena starts a new run whose arena can hold at least need bytes.
func (b *Builder) newArena(need int) {
	size := b.nextArenaSize()
	if size < need {
		size = need
	}
	b.data = make([]byte, 0, size)
	adviseHugePages(b.data)
	entries := size/b.avgEntry + 1
	b.offs = make([]uint32, 1, entries+entries/32+2)
}

// nextArenaSize picks the size of the next run's arena. While the hints say
// more data is coming, it splits what remains into equal runs of at most
// maxRun bytes (with a little slack on the last one, which Finish trims
// if unused). Without a usable hint it grows geometrically up to maxRun.
func (b *Builder) nextArenaSize() int {
	maxRun := int64(b.maxRun)
	if remaining := b.expected - b.written; remaining > 0 {
		if remaining <= maxRun {
			return int(remaining + remaining/32 + 64)
		}
		k := (remaining + maxRun - 1) / maxRun
		return int((remaining + k - 1) / k)
	}
	return int(min(max(minChunk, b.written/2), maxRun))
}

// cutRun closes the run being filled, if it has entries, trimming arrays
// that ended up much larger than their contents.
func (b *Builder) cutRun() {
	if len(b.offs) <= 1 {
		return
	}
	data, offs := b.data, b.offs
	if cap(data)-len(data) > len(data)/16 {
		data = make([]byte, len(b.data))
		copy(data, b.data)
	}
	if cap(offs)-len(offs) > len(offs)/16 {
		offs = make([]uint32, len(b.offs))
		copy(offs, b.offs)
	}
	r := newRun(data, offs)
	b.runs = append(b.runs, r)
	b.last = r.last() // the copy above may have moved it
	b.avgEntry = int(max(b.written/int64(b.n), 1))
	b.data, b.offs = nil, nil
}

func uvarintLen(x int) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
