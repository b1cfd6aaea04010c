package clustertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/testwait"
)

// BenchmarkRepairRefill measures how fast a cell's repair loop refills a storage node
// whose disk was lost, and what that costs foreground reads: it stores
// CELLAR_REPAIR_BENCH_OBJECTS objects (default 2000) of CELLAR_REPAIR_BENCH_SIZE bytes
// (default 16384) in a one-cell cluster, measures the p99 of GETs at 100 requests/s
// with nothing else going on (the reference), wipes one of the two storage nodes, and
// measures the refill (objects/s, MiB/s, from the node's return until it holds every
// object) and the p99 of the same GETs meanwhile. The repair runs with its defaults
// (32 MiB/s, 2 workers) but a 1 s pass interval.
//
//	go test -run '^$' -bench RepairRefill -benchtime 1x ./clustertest/
//	CELLAR_REPAIR_BENCH_OBJECTS=100000 CELLAR_REPAIR_BENCH_SIZE=4096 go test -run '^$' -bench RepairRefill -benchtime 1x -timeout 2h ./clustertest/
func BenchmarkRepairRefill(b *testing.B) {
	objects := envInt(b, "CELLAR_REPAIR_BENCH_OBJECTS", 2000)
	size := envInt(b, "CELLAR_REPAIR_BENCH_SIZE", 16<<10)
	for range b.N {
		cl := Start(b, topology(1), func(c *Cluster) { c.RepairInterval = time.Second; c.GCGrace = time.Minute })
		cellID := cell.ID(0)
		s0, s1 := cell.NodeID(cellID, cell.RoleStorage, 0), cell.NodeID(cellID, cell.RoleStorage, 1)
		cl.waitStorageReady(b, cellID, s0, s1)
		c := cl.S3()
		ctx := context.Background()
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("refill")}); err != nil {
			b.Fatal(err)
		}
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i * 7)
		}
		seedStart := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < objects; i += 8 {
					if err := put(ctx, c, "refill", fmt.Sprintf("o%07d", i), body); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		b.Logf("stored %d objects of %d bytes in %v", objects, size, time.Since(seedStart).Round(time.Millisecond))

		getP99 := func(stop <-chan struct{}, max time.Duration) (time.Duration, int, int) {
			var mu sync.Mutex
			var lat []time.Duration
			failed := 0
			tick := time.NewTicker(10 * time.Millisecond) // 100 requests/s
			defer tick.Stop()
			deadline := time.After(max)
			var g sync.WaitGroup
			for n := 0; ; n++ {
				select {
				case <-stop:
				case <-deadline:
				case due := <-tick.C:
					g.Add(1)
					go func(key string) {
						defer g.Done()
						_, err := get(ctx, c, "refill", key)
						d := time.Since(due)
						mu.Lock()
						lat = append(lat, d)
						if err != nil {
							failed++
						}
						mu.Unlock()
					}(fmt.Sprintf("o%07d", (n*7919)%objects))
					continue
				}
				break
			}
			g.Wait()
			slices.Sort(lat)
			if len(lat) == 0 {
				return 0, 0, failed
			}
			return lat[len(lat)*99/100], len(lat), failed
		}

		b.ResetTimer()
		refP99, refN, refFailed := getP99(nil, 10*time.Second)

		cl.WipeNode(s1)
		cl.waitStorageReady(b, cellID, s0, s1)
		refillStart := time.Now()
		done := make(chan struct{})
		var during time.Duration
		var duringN, duringFailed int
		var lg sync.WaitGroup
		lg.Add(1)
		go func() {
			defer lg.Done()
			during, duringN, duringFailed = getP99(done, time.Hour)
		}()
		testwait.Until(b, 2*time.Hour, "the wiped node holds every object again", func() bool {
			return len(blobFilesTB(b, cl, s1)) >= objects
		})
		took := time.Since(refillStart)
		close(done)
		lg.Wait()
		b.StopTimer()

		b.ReportMetric(float64(objects)/took.Seconds(), "objects/s")
		b.ReportMetric(float64(objects)*float64(size)/took.Seconds()/(1<<20), "MiB/s")
		b.ReportMetric(float64(refP99.Microseconds())/1000, "ref-p99-ms")
		b.ReportMetric(float64(during.Microseconds())/1000, "repair-p99-ms")
		if refP99 > 0 {
			b.ReportMetric(float64(during)/float64(refP99), "p99-ratio")
		}
		b.Logf("refill of %d objects (%d bytes each) took %v; GET p99 at 100/s: %v without repair (%d GETs, %d failed), %v during it (%d GETs, %d failed)",
			objects, size, took.Round(time.Millisecond), refP99, refN, refFailed, during, duringN, duringFailed)
	}
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// waitStorageReady waits until the gateway sees the storage nodes ready, and gives the
// placement node's view a moment to follow (a PUT needs both copies placed).
func (c *Cluster) waitStorageReady(tb testing.TB, cellID string, ids ...string) {
	tb.Helper()
	c.waitView(60*time.Second, func(view map[string]cell.Node) error {
		for _, id := range ids {
			if st := view[id].State; st != cell.StateReady {
				return fmt.Errorf("%s is %q", id, st)
			}
		}
		if st := view[cell.NodeID(cellID, cell.RolePlacement, 0)].State; st != cell.StateReady {
			return fmt.Errorf("placement is %q", st)
		}
		return nil
	})
}

func blobFilesTB(tb testing.TB, cl *Cluster, nodeID string) []string {
	files, err := filepath.Glob(filepath.Join(cl.Dir, nodeID, "blobs", "*", "*"))
	if err != nil {
		tb.Fatal(err)
	}
	return files
}
