package locmap

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// ref is the reference model: a Go map, sorted on demand.
type ref map[string]string

func (r ref) sortedKeys() []string {
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// randKey draws keys from a small alphabet so that prefixes, duplicates and
// the empty key are common; a few are long enough for a two-byte header.
func randKey(rng *rand.Rand) string {
	if rng.IntN(50) == 0 {
		return string(bytes.Repeat([]byte{'a' + byte(rng.IntN(3))}, 128+rng.IntN(40)))
	}
	b := make([]byte, rng.IntN(7))
	for i := range b {
		b[i] = "ab\x00z"[rng.IntN(4)]
	}
	return string(b)
}

func randValue(rng *rand.Rand) string {
	return fmt.Sprintf("v%d", rng.Uint32()) + string(make([]byte, rng.IntN(60)))
}

// buildTestMap builds a map with small runs from the reference, with hints
// chosen by hintMode: 0 none, 1 exact, 2 too small, 3 too large.
func buildTestMap(t testing.TB, r ref, maxRun, hintMode int) *Map {
	t.Helper()
	entries, size := len(r), 0
	for k, v := range r {
		size += len(k) + len(v)
	}
	switch hintMode {
	case 0:
		entries, size = 0, 0
	case 2:
		entries, size = entries/3, size/3
	case 3:
		entries, size = entries*3+10, size*3+1000
	}
	b := newBuilder(entries, int64(size+entries), maxRun)
	for _, k := range r.sortedKeys() {
		if err := b.Append([]byte(k), []byte(r[k])); err != nil {
			t.Fatal(err)
		}
	}
	if b.Len() != len(r) {
		t.Fatalf("Builder.Len = %d, want %d", b.Len(), len(r))
	}
	return b.Finish()
}

// check compares m with the reference through every read method.
func check(t *testing.T, m *Map, r ref) {
	t.Helper()
	if m.Len() != len(r) {
		t.Fatalf("Len = %d, want %d", m.Len(), len(r))
	}
	keys := r.sortedKeys()
	i := 0
	m.Ascend(nil, func(k, v []byte) bool {
		if i >= len(keys) || string(k) != keys[i] || string(v) != r[keys[i]] {
			t.Fatalf("Ascend entry %d = %q:%q, want key %q", i, k, v, keys[min(i, len(keys)-1)])
		}
		i++
		return true
	})
	if i != len(keys) {
		t.Fatalf("Ascend visited %d entries, want %d", i, len(keys))
	}
	for _, k := range keys {
		if v, ok := m.Get([]byte(k)); !ok || string(v) != r[k] {
			t.Fatalf("Get(%q) = %q, %v; want %q", k, v, ok, r[k])
		}
	}
	checkInvariants(t, m)
}

// checkAscendFrom compares a partial scan from a random start.
func checkAscendFrom(t *testing.T, m *Map, r ref, keys []string, from string, limit int) {
	t.Helper()
	start, _ := slices.BinarySearch(keys, from)
	want := keys[start:min(len(keys), start+limit)]
	var got []string
	m.Ascend([]byte(from), func(k, v []byte) bool {
		if string(v) != r[string(k)] {
			t.Fatalf("Ascend(%q): value for %q = %q, want %q", from, k, v, r[string(k)])
		}
		got = append(got, string(k))
		return len(got) < limit
	})
	if !slices.Equal(got, want) {
		t.Fatalf("Ascend(%q, limit %d) = %q, want %q", from, limit, got, want)
	}
}

// checkInvariants verifies the base: non-empty, sorted, disjoint runs and
// consistent counters. It waits for any merge in progress.
func checkInvariants(t *testing.T, m *Map) {
	t.Helper()
	m.mergeMu.Lock()
	defer m.mergeMu.Unlock()
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, size, raw := 0, int64(0), int64(0)
	var prev []byte
	for ri, r := range m.runs {
		if r.len() == 0 {
			t.Fatalf("run %d is empty", ri)
		}
		if int(r.offs[len(r.offs)-1]) != len(r.data) || r.offs[0] != 0 {
			t.Fatalf("run %d offsets do not span its data", ri)
		}
		var c runCursor
		var runRaw int64
		for c.at(r, 0); c.valid(); c.next() {
			i, k := c.i, c.key
			if (ri > 0 || i > 0) && bytes.Compare(k, prev) <= 0 {
				t.Fatalf("run %d entry %d: key %q not after %q", ri, i, k, prev)
			}
			if shared, _, _, _ := r.header(i); i%sampleEvery == 0 && shared != 0 {
				t.Fatalf("run %d entry %d is a restart but shares %d bytes", ri, i, shared)
			}
			if i%sampleEvery == 0 && r.samples[i/sampleEvery] != prefix8(k[r.cp:]) {
				t.Fatalf("run %d sample %d does not match its restart key %q", ri, i/sampleEvery, k)
			}
			if !bytes.Equal(r.key(i), k) {
				t.Fatalf("run %d entry %d: key(i) %q, the cursor %q", ri, i, r.key(i), k)
			}
			runRaw += int64(uvarintLen(len(k)) + len(k) + len(c.value()))
			prev = bytes.Clone(k)
		}
		if !bytes.Equal(r.first, r.key(0)) || !bytes.Equal(r.last(), prev) {
			t.Fatalf("run %d: first %q last %q, entries from %q to %q", ri, r.first, r.last(), r.key(0), prev)
		}
		if runRaw != r.raw {
			t.Fatalf("run %d: raw %d, entries add up to %d", ri, r.raw, runRaw)
		}
		n += r.len()
		size += int64(len(r.data))
		raw += r.raw
	}
	if n != m.baseLen || size != m.baseBytes || raw != m.baseRaw {
		t.Fatalf("base counters %d/%d/%d, runs hold %d/%d/%d", m.baseLen, m.baseBytes, m.baseRaw, n, size, raw)
	}
	if m.frozen != nil {
		t.Fatalf("frozen overlay left behind")
	}
}

func TestBuilderRejectsOutOfOrder(t *testing.T) {
	b := NewBuilder(0, 0)
	for _, k := range []string{"", "a", "a\x00", "b"} {
		if err := b.Append([]byte(k), []byte("v")); err != nil {
			t.Fatalf("Append(%q): %v", k, err)
		}
	}
	for _, k := range []string{"b", "a", "", "a\x00"} {
		if err := b.Append([]byte(k), nil); !errors.Is(err, ErrOutOfOrder) {
			t.Fatalf("Append(%q) = %v, want ErrOutOfOrder", k, err)
		}
	}
	if b.Len() != 4 {
		t.Fatalf("Len = %d after rejected appends", b.Len())
	}
	m := b.Finish()
	if err := b.Append([]byte("z"), nil); !errors.Is(err, ErrFinished) {
		t.Fatalf("Append after Finish = %v", err)
	}
	check(t, m, ref{"": "v", "a": "v", "a\x00": "v", "b": "v"})
}

func TestBuilderCopies(t *testing.T) {
	b := NewBuilder(2, 10)
	k, v := []byte("key1"), []byte("val1")
	b.Append(k, v)
	k[3], v[3] = '2', '2'
	b.Append(k, v)
	check(t, b.Finish(), ref{"key1": "val1", "key2": "val2"})
}

func TestEmpty(t *testing.T) {
	for _, m := range []*Map{New(), NewBuilder(0, 0).Finish(), NewBuilder(100, 1000).Finish()} {
		check(t, m, ref{})
		if _, ok := m.Delete([]byte("x")); ok {
			t.Fatal("Delete on empty map reported a value")
		}
		m.Compact()
		check(t, m, ref{})
	}
}

func TestHints(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := ref{}
	for len(r) < 3000 {
		r[fmt.Sprintf("bucket\x00obj-%08d", rng.Uint32())] = randValue(rng)
	}
	for _, maxRun := range []int{64, 1000, defaultMaxRun} {
		for mode := 0; mode < 4; mode++ {
			m := buildTestMap(t, r, maxRun, mode)
			check(t, m, r)
			raw := 0
			for k, v := range r {
				raw += len(k) + len(v)
			}
			// Keys share "bucket\x00obj-" and often more, so prefix
			// compression keeps the arenas below the raw bytes even with two
			// header bytes and 4 offset bytes per entry; allow slack for
			// small runs and trimming thresholds.
			if mb := m.MemBytes(); mb > int64(raw)+int64(len(m.runs))*(runOverhead+100)+4096 {
				t.Errorf("maxRun %d hints %d: MemBytes %d for %d raw bytes in %d runs", maxRun, mode, mb, raw, len(m.runs))
			}
		}
	}
}

// TestRandomOps runs random writes and reads against the reference, with
// tiny runs and overlay thresholds so that background merges happen often
// and overlap the operations.
func TestRandomOps(t *testing.T) {
	ops := 20000
	if testing.Short() || raceEnabled {
		ops = 5000
	}
	for seed := uint64(0); seed < 6; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			r := ref{}
			for i := rng.IntN(500); i > 0; i-- {
				r[randKey(rng)] = randValue(rng)
			}
			maxRun := []int{50, 200, 1000, 1 << 20}[seed%4]
			var m *Map
			if seed == 5 {
				m = New()
				m.maxRun = maxRun
				for k, v := range r {
					m.Put([]byte(k), []byte(v))
				}
			} else {
				m = buildTestMap(t, r, maxRun, int(seed%4))
			}
			m.minOverlay = 4
			check(t, m, r)
			keys := r.sortedKeys() // kept sorted alongside r
			for op := 0; op < ops; op++ {
				k := randKey(rng)
				switch x := rng.IntN(100); {
				case x < 40:
					v := randValue(rng)
					prev, existed := m.Put([]byte(k), []byte(v))
					want, wantOK := r[k]
					if existed != wantOK || string(prev) != want {
						t.Fatalf("op %d Put(%q) = %q, %v; want %q, %v", op, k, prev, existed, want, wantOK)
					}
					if !wantOK {
						i, _ := slices.BinarySearch(keys, k)
						keys = slices.Insert(keys, i, k)
					}
					r[k] = v
				case x < 65:
					prev, existed := m.Delete([]byte(k))
					want, wantOK := r[k]
					if existed != wantOK || string(prev) != want {
						t.Fatalf("op %d Delete(%q) = %q, %v; want %q, %v", op, k, prev, existed, want, wantOK)
					}
					if wantOK {
						i, _ := slices.BinarySearch(keys, k)
						keys = slices.Delete(keys, i, i+1)
					}
					delete(r, k)
				case x < 90:
					v, ok := m.Get([]byte(k))
					want, wantOK := r[k]
					if ok != wantOK || string(v) != want {
						t.Fatalf("op %d Get(%q) = %q, %v; want %q, %v", op, k, v, ok, want, wantOK)
					}
				case x < 99:
					checkAscendFrom(t, m, r, keys, k, 1+rng.IntN(300))
				default:
					m.Compact()
				}
				if m.Len() != len(r) {
					t.Fatalf("op %d: Len = %d, want %d", op, m.Len(), len(r))
				}
			}
			check(t, m, r)
			m.Compact()
			check(t, m, r)
			if got := m.merges.Load(); got < 20 {
				t.Errorf("only %d merges happened", got)
			}
		})
	}
}

// sequentialMap builds a map of n keys made from keyFormat and i, all with
// value, in runs of maxRun bytes, that merges only on Compact.
func sequentialMap(t *testing.T, n int, keyFormat, value string, maxRun int) (*Map, ref) {
	t.Helper()
	r := ref{}
	for i := 0; i < n; i++ {
		r[fmt.Sprintf(keyFormat, i)] = value
	}
	m := buildTestMap(t, r, maxRun, 1)
	m.minOverlay = 1 << 30
	return m, r
}

// TestMergeCoalescesRuns checks that deletes do not leave many tiny runs and
// that inserts split runs, when runs are small.
func TestMergeCoalescesRuns(t *testing.T) {
	m, r := sequentialMap(t, 5000, "k%06d", "0123456789", 1024)
	runs0 := len(m.runs)
	for i := 0; i < 5000; i++ {
		if i%10 != 0 {
			m.Delete([]byte(fmt.Sprintf("k%06d", i)))
			delete(r, fmt.Sprintf("k%06d", i))
		}
	}
	m.Compact()
	check(t, m, r)
	if len(m.runs) > runs0/4 {
		t.Errorf("after deleting 90%%: %d runs, started with %d", len(m.runs), runs0)
	}
	for i := 0; i < 20000; i++ {
		k := fmt.Sprintf("k%06d-%d", i/4, i%4)
		m.Put([]byte(k), []byte("x"))
		r[k] = "x"
	}
	m.Compact()
	check(t, m, r)
	for ri, rn := range m.runs {
		if len(rn.data) > 1024*9/8 {
			t.Fatalf("run %d has %d bytes, over maxRun", ri, len(rn.data))
		}
	}
}

func TestValuesStayValid(t *testing.T) {
	m := buildTestMap(t, ref{"a": "one", "b": "two"}, 64, 1)
	va, _ := m.Get([]byte("a"))
	_ = append(va, "XXXX"...) // must not write into the arena
	vb, _ := m.Get([]byte("b"))
	if string(vb) != "two" {
		t.Fatalf("append to a returned value changed a neighbour: %q", vb)
	}
	m.Put([]byte("a"), []byte("uno"))
	va2, _ := m.Get([]byte("a"))
	_ = append(va2, "YYYY"...)
	prev, _ := m.Put([]byte("a"), []byte("eins"))
	m.Delete([]byte("b"))
	m.Compact()
	if string(va) != "one" || string(va2) != "uno" || string(prev) != "uno" || string(vb) != "two" {
		t.Fatalf("returned values changed: %q %q %q %q", va, va2, prev, vb)
	}
	check(t, m, ref{"a": "eins"})
}

func TestConcat(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	r := ref{}
	for i := 0; i < 20000; i++ {
		r[fmt.Sprintf("b\x00%010d", rng.Uint64()%1e10)] = randValue(rng)
	}
	keys := r.sortedKeys()
	for _, parts := range []int{1, 2, 3, 8} {
		// Build each range on its own goroutine; ranges may be empty.
		cuts := []int{0}
		for i := 1; i < parts; i++ {
			cuts = append(cuts, rng.IntN(len(keys)+1))
		}
		cuts = append(cuts, len(keys))
		slices.Sort(cuts)
		maps := make([]*Map, parts)
		var wg sync.WaitGroup
		for p := 0; p < parts; p++ {
			wg.Go(func() {
				part := keys[cuts[p]:cuts[p+1]]
				b := NewBuilder(len(part), len(part)*40)
				for _, k := range part {
					if err := b.Append([]byte(k), []byte(r[k])); err != nil {
						panic(err)
					}
				}
				maps[p] = b.Finish()
			})
		}
		wg.Wait()
		m, err := Concat(maps...)
		if err != nil {
			t.Fatal(err)
		}
		check(t, m, r)
		if parts > 1 {
			// Overlapping and out-of-order parts are refused.
			if _, err := Concat(maps[1], maps[0]); !errors.Is(err, ErrOutOfOrder) && maps[0].Len() > 0 && maps[1].Len() > 0 {
				t.Errorf("Concat of swapped parts: %v", err)
			}
		}
	}
	a := buildTestMap(t, ref{"a": "1", "c": "3"}, 64, 1)
	b := buildTestMap(t, ref{"b": "2", "d": "4"}, 64, 1)
	if _, err := Concat(a, b); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("Concat of overlapping parts: %v", err)
	}
	c := buildTestMap(t, ref{"c": "x"}, 64, 1)
	if _, err := Concat(a, c); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("Concat of parts sharing a key: %v", err)
	}
	// Parts with pending writes are folded in first; the result and the
	// parts stay independent afterwards.
	a.Put([]byte("b"), []byte("2"))
	a.Delete([]byte("c"))
	d := buildTestMap(t, ref{"d": "4", "e": "5"}, 64, 1)
	m, err := Concat(nil, a, New(), d)
	if err != nil {
		t.Fatal(err)
	}
	m.Put([]byte("f"), []byte("6"))
	a.Put([]byte("a"), []byte("changed"))
	check(t, m, ref{"a": "1", "b": "2", "d": "4", "e": "5", "f": "6"})
	check(t, a, ref{"a": "changed", "b": "2"})
	check(t, d, ref{"d": "4", "e": "5"})
}

// TestConcurrent runs writers, point readers and scanners together (run it
// with -race). Writers only touch odd-numbered keys, so even-numbered keys
// are present for the whole test and every scan must see each of them once.
func TestConcurrent(t *testing.T) {
	const n = 4000
	key := func(i int) []byte { return fmt.Appendf(nil, "k%06d", i) }
	b := NewBuilder(n, n*16)
	for i := 0; i < n; i += 2 {
		b.Append(key(i), key(i))
	}
	m := b.Finish()
	m.maxRun = 512
	m.minOverlay = 16

	writes := 8000
	if testing.Short() || raceEnabled {
		writes = 1500
	}
	var stop atomic.Bool
	var wg, readers sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; i < writes; i++ {
				k := key(2*rng.IntN(n/2) + 1)
				if rng.IntN(3) == 0 {
					m.Delete(k)
				} else {
					m.Put(k, k)
				}
			}
		})
	}
	fail := make(chan string, 1)
	report := func(format string, args ...any) {
		select {
		case fail <- fmt.Sprintf(format, args...):
		default:
		}
	}
	readers.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for !stop.Load() {
			i := 2 * rng.IntN(n/2)
			if v, ok := m.Get(key(i)); !ok || !bytes.Equal(v, key(i)) {
				report("Get(%s) = %q, %v", key(i), v, ok)
			}
			if v, ok := m.Get(key(i + 1)); ok && !bytes.Equal(v, key(i+1)) {
				report("Get(%s) = %q", key(i+1), v)
			}
		}
	})
	readers.Go(func() {
		rng := rand.New(rand.NewPCG(1, 3))
		for !stop.Load() {
			start, limit := rng.IntN(n), 1+rng.IntN(1000)
			next := start + start%2 // next even key expected
			var prev []byte
			seen := 0
			m.Ascend(key(start), func(k, v []byte) bool {
				if prev != nil && bytes.Compare(k, prev) <= 0 || !bytes.Equal(k, v) {
					report("Ascend: %q after %q (value %q)", k, prev, v)
					return false
				}
				prev = k
				i := 0
				for _, c := range k[1:] {
					i = 10*i + int(c-'0')
				}
				if i%2 == 0 {
					if i != next {
						report("Ascend from %d: saw even key %d, want %d", start, i, next)
						return false
					}
					next += 2
				}
				seen++
				return seen < limit
			})
			if seen < limit && next < n {
				report("Ascend from %d ended before even key %d", start, next)
			}
		}
	})
	wg.Wait()
	stop.Store(true)
	readers.Wait()
	close(fail)
	for msg := range fail {
		t.Error(msg)
	}
	m.Compact()
	checkInvariants(t, m)
	t.Logf("%d merges, %d runs", m.merges.Load(), len(m.runs))
	if m.merges.Load() < 2 {
		t.Errorf("only %d merges during the test", m.merges.Load())
	}
	count := 0
	m.Ascend(nil, func(k, v []byte) bool { count++; return true })
	if count != m.Len() {
		t.Errorf("Ascend saw %d entries, Len = %d", count, m.Len())
	}
}

// TestRunSearch checks the sparse-index search and the prefix-compressed keys
// against a sorted slice, with
// keys that tie on the sampled bytes, are shorter than the run's common
// prefix, or lie outside the run.
func TestRunSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for trial := 0; trial < 50; trial++ {
		prefix := strings.Repeat("p", rng.IntN(12))
		set := map[string]bool{}
		for i := rng.IntN(300) + 1; i > 0; i-- {
			tie := strings.Repeat("t", rng.IntN(12)) // often ties on the 8 sampled bytes
			set[prefix+tie+randKey(rng)] = true
		}
		keys := slices.Sorted(maps.Keys(set))
		b := newBuilder(0, 0, 1<<20)
		for _, k := range keys {
			b.Append([]byte(k), nil)
		}
		runs := b.finishRuns()
		if len(runs) != 1 {
			t.Fatalf("%d runs", len(runs))
		}
		r := runs[0]
		probes := append([]string{"", prefix, prefix[:len(prefix)/2], prefix + "\xff", "q"}, keys...)
		for i := 0; i < 200; i++ {
			probes = append(probes, prefix+strings.Repeat("t", rng.IntN(12))+randKey(rng))
		}
		for _, p := range probes {
			want, found := slices.BinarySearch(keys, p)
			var c runCursor
			if c.seekGE(r, []byte(p)); c.i != want || (c.valid() && string(c.key) != keys[want]) {
				t.Fatalf("seekGE(%q) at %d %q, want %d (cp %d, %d keys)", p, c.i, c.key, want, r.cp, len(keys))
			}
			if _, ok := r.get([]byte(p)); ok != found {
				t.Fatalf("get(%q) found %v, want %v", p, ok, found)
			}
		}
		for i, k := range keys {
			if got := r.key(i); string(got) != k {
				t.Fatalf("key(%d) = %q, want %q", i, got, k)
			}
		}
	}
}

// TestAscendKeysStayValid keeps the keys of a long Ascend, which the base
// rebuilds in a reused buffer and Ascend copies, across batches, writes and a
// merge that replaces every run they came from.
func TestAscendKeysStayValid(t *testing.T) {
	m, r := sequentialMap(t, 3000, "bucket\x00photos/%06d.jpg", "v", 4096)
	// Between batches, another goroutine rewrites what the keys came from
	// (fn itself must not call into m).
	write, written := make(chan bool), make(chan bool)
	go func() {
		for range write {
			for i := 0; i < 3000; i += 7 {
				m.Put([]byte(fmt.Sprintf("bucket\x00photos/%06d.jpg", i)), []byte("w"))
			}
			m.Compact()
			written <- true
		}
	}()
	var keys [][]byte
	var copies []string
	m.Ascend(nil, func(k, _ []byte) bool {
		keys = append(keys, k)
		copies = append(copies, string(k))
		if len(keys)%500 == 0 {
			write <- true
			<-written
		}
		return true
	})
	close(write)
	if len(keys) != len(r) {
		t.Fatalf("Ascend visited %d keys, want %d", len(keys), len(r))
	}
	for i, k := range keys {
		if string(k) != copies[i] {
			t.Fatalf("key %d changed after the scan: %q, was %q", i, k, copies[i])
		}
	}
}
