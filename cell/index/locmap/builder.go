package locmap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

const (
	// defaultMaxRun caps the arena of one run. Runs are the unit of growth
	// (a build never reallocates and copies a large arena) and the unit of
	// rewriting when writes are merged into the base.
	defaultMaxRun = 16 << 20
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
// pre-sized arena, keeping only the part of the key that differs from the
// previous key, and records one offset, so appending costs a comparison and
// two copies and allocates nothing per entry.
//
// A Builder is not safe for concurrent use. To build on several cores, split
// the key space into ranges, run one Builder per range and join the results
// with Concat.
type Builder struct {
	runs []*run   // finished runs
	data []byte   // arena of the run being filled; never grown past its capacity
	offs []uint32 // offsets of the run being filled
	last []byte   // previous key, a copy
	n    int      // entries appended so far

	written  int64   // arena bytes written so far, over all runs
	raw      int64   // bytes the entries would take without prefix compression
	runRaw   int64   // raw bytes of the run being filled
	expected int64   // raw bytes expected in total, from the hints; 0 if unknown
	ratio    float64 // arena bytes per raw byte expected, before any entry shows it; 0 if unknown
	huge     bool    // ask for huge pages for fresh arenas (see hugepage_linux.go)
	avgEntry int     // expected encoded entry size, to pre-size offsets
	maxRun   int

	finished bool
}

// NewBuilder returns a Builder pre-sized for entriesHint entries whose keys
// and values add up to bytesHint bytes. Either hint may be 0 (unknown) or
// wrong: a low hint only means more, smaller runs; a high one is trimmed by
// Finish.
func NewBuilder(entriesHint, bytesHint int) *Builder {
	entriesHint = max(entriesHint, 0)
	var raw int64
	if bytesHint > 0 {
		// One header byte per entry covers every key shorter than 128 bytes.
		raw = int64(bytesHint) + int64(entriesHint)
	}
	b := newBuilder(entriesHint, raw, defaultMaxRun)
	b.huge = true
	return b
}

// newBuilder returns a Builder expecting about entries entries taking
// rawBytes bytes in total without prefix compression (0: unknown), cutting
// runs at maxRun.
func newBuilder(entries int, rawBytes int64, maxRun int) *Builder {
	b := &Builder{maxRun: maxRun, avgEntry: 64, expected: max(rawBytes, 0)}
	if entries > 0 && rawBytes > 0 {
		b.avgEntry = int(max(rawBytes/int64(entries), 1))
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
	shared := 0
	if b.n > 0 {
		shared = commonPrefix(key, b.last)
		if shared == len(key) || (shared < len(b.last) && key[shared] < b.last[shared]) {
			return fmt.Errorf("%w: %q after %q", ErrOutOfOrder, key, b.last)
		}
	}
	raw := uvarintLen(len(key)) + len(key) + len(value)
	if raw >= maxEntry {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, raw)
	}
	if (len(b.offs)-1)%sampleEvery == 0 { // a restart keeps the whole key
		shared = 0
	}
	size := entrySize(shared, len(key), len(value))
	if len(b.data)+size > cap(b.data) {
		b.cutRun()
		shared = 0 // the first entry of a run is a restart
		size = entrySize(0, len(key), len(value))
		b.newArena(size)
	}
	b.data = binary.AppendUvarint(b.data, uint64(shared))
	b.data = binary.AppendUvarint(b.data, uint64(len(key)-shared))
	b.data = append(b.data, key[shared:]...) // never reallocates: capacity was checked
	b.data = append(b.data, value...)
	b.offs = append(b.offs, uint32(len(b.data)))
	b.last = append(b.last[:shared], key[shared:]...)
	b.n++
	b.written += int64(size)
	b.raw += int64(raw)
	b.runRaw += int64(raw)
	return nil
}

// entrySize is the arena bytes of an entry whose key keeps shared bytes of
// the previous key.
func entrySize(shared, klen, vlen int) int {
	return uvarintLen(shared) + uvarintLen(klen-shared) + klen - shared + vlen
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// Finish returns the built Map. The Builder must not be used afterwards.
func (b *Builder) Finish() *Map {
	maxRun := b.maxRun
	return newMapFromRuns(b.finishRuns(), maxRun)
}

// Discard ends a build that will not be finished (the scan feeding it failed)
// and lets go of its memory. It does nothing after Finish.
func (b *Builder) Discard() {
	if b.finished {
		return
	}
	if b.huge && b.data != nil {
		adviseHugePages(b.data, false)
	}
	*b = Builder{finished: true}
}

// finishRuns ends the build and returns the runs.
func (b *Builder) finishRuns() []*run {
	b.cutRun()
	runs := b.runs
	*b = Builder{finished: true}
	return runs
}

// probeArena is the size of the first arena of a large build: its entries
// show how much prefix compression saves on this data, which sizes the
// arenas after it.
const probeArena = 64 << 10

// newArena starts a new run whose arena can hold at least need bytes.
func (b *Builder) newArena(need int) {
	size := max(b.nextArenaSize(), need)
	b.data = make([]byte, 0, size)
	if b.huge {
		adviseHugePages(b.data, true)
	}
	avg := b.avgEntry
	if b.n == 0 && b.ratio == 0 {
		avg = max(avg/2, 1) // a raw-size guess, before compression is known
	}
	entries := size/avg + 1
	b.offs = make([]uint32, 1, entries+entries/32+2)
}

// nextArenaSize picks the size of the next run's arena. While the hints say
// more data is coming, it splits what remains, scaled by the compression seen
// so far, into equal runs of at most maxRun bytes (with a little slack on the
// last one, which Finish trims if unused). Without a usable hint it grows
// geometrically up to maxRun.
func (b *Builder) nextArenaSize() int {
	maxRun := int64(b.maxRun)
	if remaining := b.expected - b.raw; remaining > 0 {
		ratio := b.ratio
		if b.raw > 0 {
			ratio = float64(b.written) / float64(b.raw)
		}
		if ratio == 0 {
			if remaining > 2*probeArena {
				return int(min(probeArena, maxRun))
			}
			ratio = 1
		}
		remaining = int64(float64(remaining) * ratio)
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
	if b.huge {
		adviseHugePages(data, false)
	}
	if cap(data)-len(data) > len(data)/16 {
		data = make([]byte, len(b.data))
		copy(data, b.data)
	}
	if cap(offs)-len(offs) > len(offs)/16 {
		offs = make([]uint32, len(b.offs))
		copy(offs, b.offs)
	}
	b.runs = append(b.runs, newRun(data, offs, b.last, b.runRaw))
	b.avgEntry = int(max(b.written/int64(b.n), 1))
	b.data, b.offs, b.runRaw = nil, nil, 0
}

func uvarintLen(x int) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
