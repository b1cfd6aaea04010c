package locmap

import (
	"bytes"
	"sort"
)

// Compact merges every write made before the call into the base runs, and
// returns when that is done. Maps merge on their own in the background as
// writes accumulate; Compact is for callers that want the overlay folded in
// now, e.g. after a bulk load or before measuring memory.
//
// A merge works like a memtable flush: under the lock, the live overlay is
// frozen and a fresh one takes new writes. Then, without the lock, each run
// that the frozen writes touch is rewritten together with them, and the new
// runs are swapped in one at a time under a short lock. Until the merge
// ends, readers still consult the frozen overlay; for the runs already
// swapped that answer is redundant but identical. Untouched runs are kept
// as they are.
func (m *Map) Compact() {
	m.mergeMu.Lock()
	defer m.mergeMu.Unlock()

	m.mu.Lock()
	if m.live.len() == 0 {
		m.mu.Unlock()
		return
	}
	frozen := m.live
	m.frozen, m.live = frozen, newOverlay()
	old := m.runs // only this goroutine replaces m.runs until the merge ends
	m.mu.Unlock()

	items := frozen.items()
	if len(old) == 0 {
		m.swapRuns(0, 0, m.rewrite(nil, items))
	}
	pos := 0 // index in m.runs of old[i]
	for i, p := 0, 0; i < len(old); {
		q := itemsBelow(items, p, old, i+1)
		if q == p { // no writes for this run: keep it
			i++
			pos++
			continue
		}
		// Rewrite run i with its writes. While the result would be small,
		// take the following runs into the same rewrite, as long as they
		// fit, so that runs shrunk by deletes get coalesced.
		size := arenaEstimate(old[i], items[p:q])
		j := i + 1
		for j < len(old) && size < int64(m.maxRun/2) {
			r := itemsBelow(items, q, old, j+1)
			s := arenaEstimate(old[j], items[q:r])
			if size+s > int64(m.maxRun) {
				break
			}
			size, q, j = size+s, r, j+1
		}
		repl := m.rewrite(old[i:j], items[p:q])
		m.swapRuns(pos, pos+j-i, repl)
		pos += len(repl)
		i, p = j, q
	}

	m.mu.Lock()
	m.frozen = nil
	m.mu.Unlock()
	m.merges.Add(1)
}

// itemsBelow returns the end of the items, from p on, that belong before
// runs[j], i.e. whose keys are less than runs[j].first. Items below the first
// run belong to it, and items past the last run's first key to the last run.
func itemsBelow(items []ovItem, p int, runs []*run, j int) int {
	if j >= len(runs) {
		return len(items)
	}
	bound := runs[j].first
	return p + sort.Search(len(items)-p, func(k int) bool {
		return bytes.Compare(items[p+k].key(), bound) >= 0
	})
}

// swapRuns replaces m.runs[lo:hi] with repl.
func (m *Map) swapRuns(lo, hi int, repl []*run) {
	m.mu.Lock()
	defer m.mu.Unlock()
	runs := make([]*run, 0, len(m.runs)-(hi-lo)+len(repl))
	runs = append(runs, m.runs[:lo]...)
	runs = append(runs, repl...)
	runs = append(runs, m.runs[hi:]...)
	for _, r := range m.runs[lo:hi] {
		m.baseLen -= r.len()
		m.baseBytes -= int64(len(r.data))
		m.baseRaw -= r.raw
	}
	for _, r := range repl {
		m.baseLen += r.len()
		m.baseBytes += int64(len(r.data))
		m.baseRaw += r.raw
	}
	m.runs = runs
}

// estimate predicts the raw bytes (before prefix compression) of run r
// (which may be nil) after applying items to it: exact for new keys, and
// assuming entries of the run's average size are replaced or deleted by
// overwrites and deletes.
func estimate(r *run, items []ovItem) int64 {
	var size, avg int64
	if r != nil {
		size = r.raw
		avg = size / int64(r.len())
	}
	for _, it := range items {
		switch {
		case it.del:
			size -= avg
		case it.below:
			size += itemSize(it) - avg
		default:
			size += itemSize(it)
		}
	}
	return max(size, 0)
}

// arenaEstimate is estimate in arena bytes: scaled by how well r's keys
// compress.
func arenaEstimate(r *run, items []ovItem) int64 {
	raw := estimate(r, items)
	if r == nil || r.raw == 0 {
		return raw
	}
	return raw * int64(len(r.data)) / r.raw
}

// itemSize is the raw bytes of an item's entry.
func itemSize(it ovItem) int64 { return int64(uvarintLen(int(it.klen)) + len(it.kv)) }

// rewrite returns the runs holding the contents of group (consecutive runs,
// possibly none) with the sorted writes in items applied. Tombstones drop
// entries and are dropped themselves.
func (m *Map) rewrite(group []*run, items []ovItem) []*run {
	// Size the builder's arenas from the estimate, so that it neither
	// reallocates nor, usually, trims.
	var size, entries int64
	p := 0
	for k, r := range group {
		q := itemsBelow(items, p, group, k+1)
		size += estimate(r, items[p:q])
		entries += int64(r.len())
		p = q
	}
	if len(group) == 0 {
		size = estimate(nil, items)
		entries = int64(len(items))
	}
	b := newBuilder(int(entries), size, m.maxRun)
	// The runs being rewritten show how well their keys compress, so the
	// builder needs no small first arena to find out.
	var data, raw int64
	for _, r := range group {
		data, raw = data+int64(len(r.data)), raw+r.raw
	}
	if raw > 0 {
		b.ratio = float64(data) / float64(raw)
		b.avgEntry = int(max(data/max(entries, 1), 1))
	}

	var base runIter
	base.seekStart(group)
	for p := 0; p < len(items) || base.valid(); {
		c := 1 // which comes next: -1 item, 0 both (item wins), 1 base
		switch {
		case !base.valid():
			c = -1
		case p < len(items):
			c = bytes.Compare(items[p].key(), base.key())
		}
		if c > 0 {
			k, v := base.entry()
			mustAppend(b, k, v)
			base.next()
			continue
		}
		if it := items[p]; !it.del {
			mustAppend(b, it.key(), it.value())
		}
		p++
		if c == 0 {
			base.next()
		}
	}
	return b.finishRuns()
}

func mustAppend(b *Builder, key, value []byte) {
	if err := b.Append(key, value); err != nil {
		panic("locmap: merge produced unsorted keys: " + err.Error())
	}
}
