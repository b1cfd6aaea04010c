package locmap

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Benchmark data: n sorted 46-byte keys shaped like the index's
// bucket + "\x00" + object key, and 48-byte values standing in for encoded
// location records, stored flat so the data set adds no per-entry heap
// objects of its own.
const (
	benchKeyLen = 46
	benchValLen = 48
)

var benchSizes = []int{100_000, 1_000_000}

type benchData struct {
	n          int
	keys, vals []byte
}

func (d *benchData) key(i int) []byte { return d.keys[i*benchKeyLen : (i+1)*benchKeyLen] }
func (d *benchData) val(i int) []byte { return d.vals[i*benchValLen : (i+1)*benchValLen] }

var (
	benchMu    sync.Mutex
	benchCache = map[int]*benchData{}
)

func getBenchData(n int) *benchData {
	benchMu.Lock()
	defer benchMu.Unlock()
	if d := benchCache[n]; d != nil {
		return d
	}
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	d := &benchData{n: n, keys: make([]byte, 0, n*benchKeyLen), vals: make([]byte, n*benchValLen)}
	for i := 0; i < n; i++ {
		// 15 + 1 + 4 + 10 + 1 + 15 = 46 bytes, increasing with i.
		d.keys = fmt.Appendf(d.keys, "cellar-bench-01\x00obj/%010d/", i)
		for j := 0; j < 15; j++ {
			d.keys = append(d.keys, 'a'+byte(rng.IntN(26)))
		}
	}
	for i := range d.vals {
		d.vals[i] = byte(rng.Uint32())
	}
	benchCache[n] = d
	return d
}

// heapInUse returns the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func buildRange(d *benchData, lo, hi int) *Map {
	b := NewBuilder(hi-lo, (hi-lo)*(benchKeyLen+benchValLen))
	for i := lo; i < hi; i++ {
		if err := b.Append(d.key(i), d.val(i)); err != nil {
			panic(err)
		}
	}
	return b.Finish()
}

// buildParallel builds parts key ranges concurrently and joins them.
func buildParallel(d *benchData, parts int) *Map {
	maps := make([]*Map, parts)
	var wg sync.WaitGroup
	for p := range maps {
		wg.Go(func() { maps[p] = buildRange(d, p*d.n/parts, (p+1)*d.n/parts) })
	}
	wg.Wait()
	m, err := Concat(maps...)
	if err != nil {
		panic(err)
	}
	return m
}

// cpuClock measures the process CPU time spent in a benchmark's timed
// loop. Start it after setup; it is only meaningful for loops that run
// nothing else, since it counts every goroutine (including the GC).
type cpuClock struct{ start time.Duration }

func startCPU(b *testing.B) cpuClock {
	b.ResetTimer()
	return cpuClock{processCPU()}
}

// report adds a per-CPU-second rate for items processed per op.
func (c cpuClock) report(b *testing.B, perOp int, unit string) {
	if cpu := processCPU() - c.start; cpu > 0 {
		b.ReportMetric(float64(perOp)*float64(b.N)/cpu.Seconds(), unit)
	}
}

// reportBuild reports the build rate and the memory the last result holds.
func reportBuild(b *testing.B, n int, clock cpuClock, heapBefore int64, mem func() int64) {
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	clock.report(b, n, "entries/cpu-s")
	b.ReportMetric(float64(heapInUse()-heapBefore)/float64(n), "heapB/entry")
	if mem != nil {
		b.ReportMetric(float64(mem())/float64(n), "memB/entry")
	}
}

// BenchmarkBuild appends n sorted entries on one core, as a start-up scan
// of one key range would.
func BenchmarkBuild(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			d := getBenchData(n)
			before := heapInUse()
			var m *Map
			clock := startCPU(b)
			for i := 0; i < b.N; i++ {
				m = nil
				m = buildRange(d, 0, n)
			}
			b.StopTimer()
			reportBuild(b, n, clock, before, m.MemBytes)
			runtime.KeepAlive(m)
		})
	}
}

// BenchmarkBuildParallel builds two halves on two goroutines and Concats.
func BenchmarkBuildParallel(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("n=%d/parts=2", n), func(b *testing.B) {
			d := getBenchData(n)
			before := heapInUse()
			var m *Map
			clock := startCPU(b)
			for i := 0; i < b.N; i++ {
				m = nil
				m = buildParallel(d, 2)
			}
			b.StopTimer()
			reportBuild(b, n, clock, before, m.MemBytes)
			runtime.KeepAlive(m)
		})
	}
}

// BenchmarkGoMapInsert is the reference: the same entries inserted one by
// one into a Go map that owns copies of them, as the old index did.
func BenchmarkGoMapInsert(b *testing.B) {
	for _, n := range benchSizes {
		for _, presize := range []bool{false, true} {
			b.Run(fmt.Sprintf("n=%d/presized=%v", n, presize), func(b *testing.B) {
				d := getBenchData(n)
				before := heapInUse()
				var m map[string][]byte
				clock := startCPU(b)
				for i := 0; i < b.N; i++ {
					m = nil
					if presize {
						m = make(map[string][]byte, n)
					} else {
						m = make(map[string][]byte)
					}
					for j := 0; j < n; j++ {
						m[string(d.key(j))] = bytes.Clone(d.val(j))
					}
				}
				b.StopTimer()
				reportBuild(b, n, clock, before, nil)
				runtime.KeepAlive(m)
			})
		}
	}
}

// BenchmarkGet looks up random present keys in a freshly built map.
func BenchmarkGet(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			d := getBenchData(n)
			m := buildRange(d, 0, n)
			rng := rand.New(rand.NewPCG(1, 1))
			clock := startCPU(b)
			for i := 0; i < b.N; i++ {
				if _, ok := m.Get(d.key(rng.IntN(n))); !ok {
					b.Fatal("missing key")
				}
			}
			b.StopTimer()
			clock.report(b, 1, "gets/cpu-s")
		})
		b.Run(fmt.Sprintf("n=%d/parallel", n), func(b *testing.B) {
			d := getBenchData(n)
			m := buildRange(d, 0, n)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
				for pb.Next() {
					if _, ok := m.Get(d.key(rng.IntN(n))); !ok {
						panic("missing key")
					}
				}
			})
		})
	}
}

// BenchmarkGoMapGet is the reference for BenchmarkGet.
func BenchmarkGoMapGet(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			d := getBenchData(n)
			m := make(map[string][]byte, n)
			for j := 0; j < n; j++ {
				m[string(d.key(j))] = bytes.Clone(d.val(j))
			}
			rng := rand.New(rand.NewPCG(1, 1))
			clock := startCPU(b)
			for i := 0; i < b.N; i++ {
				if _, ok := m[string(d.key(rng.IntN(n)))]; !ok {
					b.Fatal("missing key")
				}
			}
			b.StopTimer()
			clock.report(b, 1, "gets/cpu-s")
		})
	}
}

// BenchmarkAscend scans the whole map.
func BenchmarkAscend(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			m := buildRange(getBenchData(n), 0, n)
			clock := startCPU(b)
			for i := 0; i < b.N; i++ {
				count := 0
				m.Ascend(nil, func(k, v []byte) bool { count++; return true })
				if count != n {
					b.Fatal(count)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			clock.report(b, n, "entries/cpu-s")
		})
	}
}

// BenchmarkAscendShort lists 100 entries from a random key, like a
// ListObjects page, with some writes pending in the overlay.
func BenchmarkAscendShort(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			d := getBenchData(n)
			m := buildRange(d, 0, n)
			m.minOverlay = n // keep the writes below in the overlay
			rng := rand.New(rand.NewPCG(3, 3))
			for i := 0; i < n/32; i++ {
				k := d.key(rng.IntN(n))
				if i%2 == 0 {
					m.Delete(k)
				} else {
					m.Put(k, []byte("new"))
				}
			}
			b.ReportAllocs()
			clock := startCPU(b)
			for i := 0; i < b.N; i++ {
				count := 0
				m.Ascend(d.key(rng.IntN(n)), func(k, v []byte) bool { count++; return count < 100 })
			}
			b.StopTimer()
			clock.report(b, 1, "scans/cpu-s")
		})
	}
}

// BenchmarkPutAfterBuild builds a map, then times b.N writes to it: half
// overwrite a random existing key, half insert a new key. Background merges
// run as the overlay fills. Afterwards it reports the memory held per entry,
// including whatever overlay is pending (after letting a running merge end).
// For the memory figure to mean something, run enough writes, e.g.
// -benchtime=2000000x (see the writes/entry metric).
func BenchmarkPutAfterBuild(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			d := getBenchData(n)
			// Writes are generated up front so the timed loop only writes.
			rng := rand.New(rand.NewPCG(2, 2))
			writes := min(b.N, 4_000_000)
			keys := make([]byte, writes*benchKeyLen)
			for w := 0; w < writes; w++ {
				k := keys[w*benchKeyLen : (w+1)*benchKeyLen]
				copy(k, d.key(rng.IntN(n)))
				if w%2 == 1 { // new key: upper-case suffix, never in the build
					for j := benchKeyLen - 15; j < benchKeyLen; j++ {
						k[j] = 'A' + byte(rng.IntN(26))
					}
				}
			}
			val := make([]byte, benchValLen)
			before := heapInUse()
			m := buildRange(d, 0, n)
			clock := startCPU(b)
			for i := 0; i < b.N; i++ {
				w := i % writes
				val[0], val[1] = byte(i), byte(i>>8)
				m.Put(keys[w*benchKeyLen:(w+1)*benchKeyLen], val)
			}
			b.StopTimer()
			m.mergeMu.Lock() // wait for a running background merge
			m.mergeMu.Unlock()
			clock.report(b, 1, "puts/cpu-s") // includes background merges
			entries := float64(m.Len())
			b.ReportMetric(float64(m.MemBytes())/entries, "memB/entry")
			b.ReportMetric(float64(heapInUse()-before)/entries, "heapB/entry")
			b.ReportMetric(float64(m.merges.Load()), "merges")
			b.ReportMetric(float64(b.N)/float64(n), "writes/entry")
			runtime.KeepAlive(m)
			runtime.KeepAlive(keys)
		})
	}
}
