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

// BenchmarkRebuildVersions measures what S3 versioning costs the rebuild: the same
// objects seeded without versions and with 3 older versions each (every version in
// its key's record, as the index keeps them). Each iteration scans the database raw
// and rebuilds it, as BenchmarkRebuild does; it reports the rebuild time per object,
// the record bytes per object that the scan reads (key and value, as Pebble holds
// them), the Go heap per object of the rebuilt map, and the rebuild's ratio to the raw
// scan of the same data.
func BenchmarkRebuildVersions(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		for _, versions := range []int{0, 3} {
			b.Run(fmt.Sprintf("objects=%d/versions=%d", n, versions), func(b *testing.B) {
				dir := b.TempDir()
				if err := seed.Seed(dir, seed.Options{Objects: n, Versions: versions}); err != nil {
					b.Fatal(err)
				}
				var recordBytes int64
				got, err := index.ScanObjects(dir, func(k, v []byte) bool {
					recordBytes += int64(len(k) + len(v))
					return true
				})
				if err != nil || got != n {
					b.Fatalf("scan saw %d objects (%v), seeded %d", got, err, n)
				}
				var scanWall, buildWall time.Duration
				var heapPerObject float64
				first := true
				for b.Loop() {
					w, _ := now()
					scan(b, dir)
					w2, _ := now()
					s, err := index.OpenAsync(dir, index.Options{})
					if err != nil {
						b.Fatal(err)
					}
					<-s.Ready()
					w3, _ := now()
					if err := s.RebuildErr(); err != nil || s.Len() != n {
						b.Fatalf("rebuilt %d objects (%v), want %d", s.Len(), err, n)
					}
					if first {
						first = false
						heapPerObject = heapAfter(s, n)
						if versions > 0 {
							rec, err := s.LookupVersion(seed.Bucket(0), seed.Key(n/2), index.LookupOptions{Versions: true})
							if err != nil || len(rec.Versions) != versions {
								b.Fatalf("object %d rebuilt with %d older versions (%v), want %d", n/2, len(rec.GetVersions()), err, versions)
							}
						}
					}
					scanWall, buildWall = scanWall+w2-w, buildWall+w3-w2
					s.Close()
				}
				perObject := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) / float64(b.N) }
				b.ReportMetric(perObject(buildWall), "rebuild-ns/object")
				b.ReportMetric(perObject(scanWall), "scan-ns/object")
				b.ReportMetric(perObject(buildWall)/perObject(scanWall), "rebuild/scan-time")
				b.ReportMetric(float64(recordBytes)/float64(n), "record-B/object")
				b.ReportMetric(heapPerObject, "heap-B/object")
			})
		}
	}
}
