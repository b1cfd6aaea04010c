package locmap

import (
	"bytes"
	"encoding/binary"
)

// A run is an immutable, sorted slice of entries stored in one pointer-free
// arena. Entry i occupies data[offs[i]:offs[i+1]] and is encoded as
//
//	uvarint(len(key)) | key | value
//
// so the value length is implied by the next offset. For the typical 46-byte
// key that is one header byte plus four bytes of offset per entry.
//
// A run is never modified after it is built and never empty. Slices handed out
// by entry, key and value point into data with their capacity clipped, so a
// caller that appends to them gets a fresh copy instead of overwriting the
// arena.
type run struct {
	data  []byte   // entries back to back
	offs  []uint32 // len(offs) == entries+1; offs[0] == 0, offs[len-1] == len(data)
	first []byte   // key of entry 0, cached for the run-level binary search

	// A sparse search index, so that a lookup touches a few cache lines
	// instead of two per binary-search step. All keys of the run share
	// their first cp bytes (the common prefix of its first and last key);
	// samples[j] holds the next 8 bytes of key j*sampleEvery as a
	// big-endian number (zero-padded), which orders like the keys do.
	cp      int
	samples []uint64
}

// sampleEvery is the sparse index's stride: 8 bytes per 16 entries, half a
// byte per entry.
const sampleEvery = 16

// runOverhead approximates the fixed heap cost of one run besides its
// arrays: the run struct itself and its pointer in a Map's runs slice.
const runOverhead = 80

func newRun(data []byte, offs []uint32) *run {
	r := &run{data: data, offs: offs}
	r.first = r.key(0)
	last := r.last()
	for r.cp < len(r.first) && r.cp < len(last) && r.first[r.cp] == last[r.cp] {
		r.cp++
	}
	r.samples = make([]uint64, (r.len()+sampleEvery-1)/sampleEvery)
	for j := range r.samples {
		r.samples[j] = prefix8(r.key(j * sampleEvery)[r.cp:])
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

// memBytes is the heap held by the run, counting array capacity.
func (r *run) memBytes() int64 {
	return int64(cap(r.data)) + 4*int64(cap(r.offs)) + 8*int64(cap(r.samples)) + runOverhead
}

// split decodes the header of entry i and returns the offsets where its key
// starts and ends and where the entry ends.
func (r *run) split(i int) (kstart, kend, end int) {
	start, end := int(r.offs[i]), int(r.offs[i+1])
	klen, n := int(r.data[start]), 1
	if klen >= 0x80 { // multi-byte header: keys of 128 bytes or more
		v, m := binary.Uvarint(r.data[start:end])
		klen, n = int(v), m
	}
	kstart = start + n
	return kstart, kstart + klen, end
}

func (r *run) key(i int) []byte {
	ks, ke, _ := r.split(i)
	return r.data[ks:ke:ke]
}

func (r *run) entry(i int) (key, value []byte) {
	ks, ke, end := r.split(i)
	return r.data[ks:ke:ke], r.data[ke:end:end]
}

func (r *run) last() []byte { return r.key(r.len() - 1) }

// search returns the index of the first entry whose key is >= key
// (r.len() if there is none).
func (r *run) search(key []byte) int {
	lo, hi := 0, r.len()
	if len(key) >= r.cp && bytes.Equal(key[:r.cp], r.first[:r.cp]) {
		// Narrow [lo, hi] with the samples: a sample below the target's
		// belongs to a key below key, one above it to a key above key.
		t := prefix8(key[r.cp:])
		j1 := searchUint64(r.samples, 0, func(s uint64) bool { return s >= t })
		j2 := searchUint64(r.samples, j1, func(s uint64) bool { return s > t })
		if j1 > 0 {
			lo = (j1-1)*sampleEvery + 1
		}
		if j2 < len(r.samples) {
			hi = j2 * sampleEvery
		}
	}
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if bytes.Compare(r.key(mid), key) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
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
	r := runs[ri]
	i := r.search(key)
	if i == r.len() {
		return nil, false
	}
	k, v := r.entry(i)
	if !bytes.Equal(k, key) {
		return nil, false
	}
	return v, true
}
