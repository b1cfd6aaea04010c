package locmap

import (
	"bytes"
	"encoding/binary"
)

// A run is an immutable, sorted slice of entries stored in one pointer-free
// arena. Entry i occupies data[offs[i]:offs[i+1]] and is encoded as
//
//	uvarint(shared) | uvarint(len(suffix)) | suffix | value
//
// where the entry's key is the first shared bytes of the previous entry's key
// followed by suffix, and the value length is implied by the next offset.
// Every sampleEvery-th entry is a restart: its shared is 0, so its key is
// whole in the arena. Sorted keys share long prefixes (a bucket, then the
// "directories" of the object keys), so the typical 46-byte key takes a
// restart's full length once per 16 entries and a few bytes otherwise, plus
// two header bytes and four bytes of offset per entry.
//
// A key other than a restart's is rebuilt by walking from its restart:
// lookups and scans do that with a runCursor, which keeps the key it is at in
// a buffer of its own. Values, and the keys of restarts, are slices of data
// with their capacity clipped, so a caller that appends to them gets a fresh
// copy instead of overwriting the arena. A run is never modified after it is
// built and never empty.
type run struct {
	data    []byte   // entries back to back
	offs    []uint32 // len(offs) == entries+1; offs[0] == 0, offs[len-1] == len(data)
	first   []byte   // key of entry 0 (a restart, so in data), for the run-level binary search
	lastKey []byte   // key of the last entry, a copy
	raw     int64    // bytes the entries would take without prefix compression

	// A sparse search index over the restarts, so that a lookup touches a
	// few cache lines instead of two per binary-search step. All keys of the
	// run share their first cp bytes (the common prefix of its first and last
	// key); samples[j] holds the next 8 bytes of restart j's key as a
	// big-endian number (zero-padded), which orders like the keys do.
	cp      int
	samples []uint64
}

// sampleEvery is the distance between restarts, and the sparse index's
// stride: 8 bytes per 16 entries, half a byte per entry.
const sampleEvery = 16

// runOverhead approximates the fixed heap cost of one run besides its
// arrays: the run struct itself and its pointer in a Map's runs slice.
const runOverhead = 112

// newRun wraps a finished arena; last is the key of its last entry (copied).
func newRun(data []byte, offs []uint32, last []byte, raw int64) *run {
	r := &run{data: data, offs: offs, lastKey: bytes.Clone(last), raw: raw}
	r.first = r.restartKey(0)
	for r.cp < len(r.first) && r.cp < len(r.lastKey) && r.first[r.cp] == r.lastKey[r.cp] {
		r.cp++
	}
	r.samples = make([]uint64, (r.len()+sampleEvery-1)/sampleEvery)
	for j := range r.samples {
		r.samples[j] = prefix8(r.restartKey(j)[r.cp:])
	}
	return r
}

// prefix8 returns the first 8 bytes of b, zero-padded, as a big-endian
// number. If a <= b bytewise then prefix8(a) <= prefix8(b).
func prefix8(b []byte) uint64 {
	var buf [8]byte
	copy(buf[:], b)
	return binary.BigEndian.Uint64(buf[:])
}

func (r *run) len() int { return len(r.offs) - 1 }

func (r *run) last() []byte { return r.lastKey }

// memBytes is the heap held by the run, counting array capacity.
func (r *run) memBytes() int64 {
	return int64(cap(r.data)) + 4*int64(cap(r.offs)) + 8*int64(cap(r.samples)) + int64(cap(r.lastKey)) + runOverhead
}

// header decodes the header of entry i: how many bytes of the previous key
// it keeps, where its suffix starts and ends, and where the entry ends.
func (r *run) header(i int) (shared, sstart, send, end int) {
	p, end := int(r.offs[i]), int(r.offs[i+1])
	shared, p = r.uvarint(p, end)
	slen, p := r.uvarint(p, end)
	return shared, p, p + slen, end
}

// uvarint decodes the uvarint at data[p:end] and returns it and the offset
// after it; a one-byte value (every length under 128) takes the short path.
func (r *run) uvarint(p, end int) (v, next int) {
	if b := r.data[p]; b < 0x80 {
		return int(b), p + 1
	}
	x, n := binary.Uvarint(r.data[p:end])
	return int(x), p + n
}

// restartKey returns the key of restart j (entry j*sampleEvery), which is
// whole in the arena.
func (r *run) restartKey(j int) []byte {
	_, ss, se, _ := r.header(j * sampleEvery)
	return r.data[ss:se:se]
}

// key returns a copy of the key of entry i (tests and error messages; scans
// use a runCursor).
func (r *run) key(i int) []byte {
	var c runCursor
	c.at(r, i)
	return bytes.Clone(c.key)
}

// lastRestartAtOrBelow returns the last restart whose key is <= key, or -1 if
// key sorts before the run's first key.
func (r *run) lastRestartAtOrBelow(key []byte) int {
	lo, hi := 0, len(r.samples) // the answer is in [lo-1, hi-1]
	if len(key) >= r.cp && bytes.Equal(key[:r.cp], r.first[:r.cp]) {
		// Narrow with the samples: a sample below the target's belongs to a
		// restart below key, one above it to a restart above key.
		t := prefix8(key[r.cp:])
		j1 := searchUint64(r.samples, 0, func(s uint64) bool { return s >= t })
		j2 := searchUint64(r.samples, j1, func(s uint64) bool { return s > t })
		lo, hi = j1, j2
	}
	// First restart in [lo, hi) whose key is > key; the one before it is the answer.
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if bytes.Compare(r.restartKey(mid), key) <= 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

// get returns the value stored under key in the run.
func (r *run) get(key []byte) ([]byte, bool) {
	j := r.lastRestartAtOrBelow(key)
	if j < 0 {
		return nil, false
	}
	// Walk the restart's group, rebuilding each key in a buffer on the stack
	// (a runCursor would put it on the heap).
	var buf [128]byte
	k := buf[:0]
	for i, end := j*sampleEvery, min((j+1)*sampleEvery, r.len()); i < end; i++ {
		shared, ss, se, e := r.header(i)
		k = append(k[:shared], r.data[ss:se]...)
		switch bytes.Compare(k, key) {
		case 0:
			return r.data[se:e:e], true
		case 1:
			return nil, false
		}
	}
	return nil, false
}

// runCursor walks the entries of one run in order, rebuilding each key from
// the previous one in a buffer of its own.
type runCursor struct {
	r   *run
	i   int    // entry the cursor is at; r.len() when past the end
	key []byte // key of entry i; overwritten by next
	vs  int    // where entry i's value starts
}

// at positions the cursor at entry i (r.len(): past the end), decoding from
// the restart at or before i.
func (c *runCursor) at(r *run, i int) {
	c.r, c.i = r, i
	if i >= r.len() {
		return
	}
	c.i = i &^ (sampleEvery - 1)
	c.load()
	for c.i < i {
		c.next()
	}
}

// load decodes entry c.i on top of the key of entry c.i-1.
func (c *runCursor) load() {
	shared, ss, se, _ := c.r.header(c.i)
	c.key = append(c.key[:shared], c.r.data[ss:se]...)
	c.vs = se
}

// seekGE positions the cursor at the first entry of r whose key is >= key
// (past the end if there is none).
func (c *runCursor) seekGE(r *run, key []byte) {
	j := max(r.lastRestartAtOrBelow(key), 0)
	c.at(r, j*sampleEvery)
	for c.valid() && bytes.Compare(c.key, key) < 0 {
		c.next()
	}
}

func (c *runCursor) valid() bool { return c.i < c.r.len() }

func (c *runCursor) next() {
	c.i++
	if c.i < c.r.len() {
		c.load()
	}
}

// value returns the value of the entry the cursor is at.
func (c *runCursor) value() []byte {
	end := int(c.r.offs[c.i+1])
	return c.r.data[c.vs:end:end]
}

// searchUint64 returns the first index i >= from with f(s[i]) true, for f
// false then true along s (len(s) if none).
func searchUint64(s []uint64, from int, f func(uint64) bool) int {
	lo, hi := from, len(s)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if !f(s[mid]) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// findRun returns the index of the last run whose first key is <= key, or -1
// if key sorts before every run (or there are no runs). Runs are sorted and
// disjoint, so that is the only run that can hold key.
func findRun(runs []*run, key []byte) int {
	lo, hi := 0, len(runs)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if bytes.Compare(runs[mid].first, key) <= 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

// runsGet looks key up in a sorted list of runs.
func runsGet(runs []*run, key []byte) ([]byte, bool) {
	ri := findRun(runs, key)
	if ri < 0 {
		return nil, false
	}
	return runs[ri].get(key)
}
