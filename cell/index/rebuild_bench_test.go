package index_test

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell/index"
	"github.com/cellarsim/cellar/cell/index/seed"
)

// BenchmarkRebuild measures the rebuild of the in-memory map against its reference,
// a raw single-threaded Pebble scan of the same data, measured in the same run: each
// iteration scans, then rebuilds. It reports both rates per second of wall time and
// per CPU-second, their ratios, and the Go heap per object that the rebuilt map holds.
// On a shared machine the per-CPU-second ratio is the steadier number.
func BenchmarkRebuild(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			if err := seed.Seed(dir, seed.Options{Objects: n}); err != nil {
				b.Fatal(err)
			}
			if got := scan(b, dir); got != n { // warms the page cache for both
				b.Fatalf("scan saw %d objects, seeded %d", got, n)
			}
			var scanWall, scanCPU, buildWall, buildCPU time.Duration
			var heapPerObject float64
			first := true
			for b.Loop() {
				w, c := now()
				scan(b, dir)
				w2, c2 := now()
				s, err := index.OpenAsync(dir, index.Options{})
				if err != nil {
					b.Fatal(err)
				}
				<-s.Ready()
				w3, c3 := now()
				if err := s.RebuildErr(); err != nil || s.Len() != n {
					b.Fatalf("rebuilt %d objects (%v), want %d", s.Len(), err, n)
				}
				scanWall, scanCPU = scanWall+w2-w, scanCPU+c2-c
				buildWall, buildCPU = buildWall+w3-w2, buildCPU+c3-c2
				if first {
					first = false
					heapPerObject = heapAfter(s, n)
				}
				s.Close()
			}
			rate := func(d time.Duration) float64 { return float64(n) * float64(b.N) / d.Seconds() }
			b.ReportMetric(rate(buildWall), "rebuild-objects/s")
			b.ReportMetric(rate(scanWall), "scan-objects/s")
			b.ReportMetric(rate(buildWall)/rate(scanWall), "ratio")
			b.ReportMetric(rate(buildCPU), "rebuild-objects/cpu-s")
			b.ReportMetric(rate(scanCPU), "scan-objects/cpu-s")
			b.ReportMetric(rate(buildCPU)/rate(scanCPU), "cpu-ratio")
			b.ReportMetric(heapPerObject, "heap-B/object")
		})
	}
}

// scan is the reference: read every object record of the database, in order, on
// one goroutine.
func scan(b *testing.B, dir string) int {
	n, err := index.ScanObjects(dir, func(k, v []byte) bool { return true })
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// heapAfter returns the Go heap in use per object with s open, after a collection.
func heapAfter(s *index.Store, n int) float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(s)
	return float64(ms.HeapAlloc) / float64(n)
}

// now returns the wall clock and the CPU time this process has used.
func now() (wall, cpu time.Duration) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return time.Duration(time.Now().UnixNano()), cpu
}
