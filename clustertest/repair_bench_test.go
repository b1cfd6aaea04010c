package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cellarsim/cellar/cell"
)

// BenchmarkRepairRefill measures how fast a cell's repair loop refills a storage node
// whose disk was lost, and what that costs foreground reads. In a one-cell cluster
// (one index node, two storage nodes, two copies) it stores
// CELLAR_REPAIR_BENCH_OBJECTS objects (default 2000) of CELLAR_REPAIR_BENCH_SIZE bytes
// (default 16384) with 32 concurrent PUTs, then:
//
//  1. the reference: the p99 of GETs at 100 requests/s (open loop: each GET's latency
//     counts from when it was due) for 20 s, with the repair loop running as it
//     always does (passes, scrub) and nothing to repair;
//  2. wipes one of the two storage nodes (stop, delete its data directory, start) and,
//     from the moment it is ready again until it holds every object (its own count of
//     blobs, polled every 250 ms), the same GETs at the same rate.
//
// It reports the refill's objects/s and MiB/s and the GET p99 of both phases, and
// their ratio. The repair runs with the topology's pacing, the defaults unless
// CELLAR_REPAIR_BENCH_RATE (bytes/s, "64MiB"), CELLAR_REPAIR_BENCH_OPS (blobs/s) or
// CELLAR_REPAIR_BENCH_WINDOW (copies in flight) say otherwise; the pass interval is
// the default 30 s (the wiped node gets its pass at once when it is back).
//
//	go test -run '^$' -bench RepairRefill -benchtime 1x ./clustertest/
//	CELLAR_REPAIR_BENCH_OBJECTS=100000 CELLAR_REPAIR_BENCH_SIZE=4096 go test -run '^$' -bench RepairRefill -benchtime 1x -timeout 2h ./clustertest/
func BenchmarkRepairRefill(b *testing.B) {
	objects := envInt(b, "CELLAR_REPAIR_BENCH_OBJECTS", 2000)
	size := envInt(b, "CELLAR_REPAIR_BENCH_SIZE", 16<<10)
	topo := topology(1)
	if s := os.Getenv("CELLAR_REPAIR_BENCH_RATE"); s != "" {
		r, err := cell.ParseByteSize(s)
		if err != nil {
			b.Fatalf("CELLAR_REPAIR_BENCH_RATE: %v", err)
		}
		topo.Repair.Rate = r
	}
	if s := os.Getenv("CELLAR_REPAIR_BENCH_OPS"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n == 0 {
			b.Fatalf("CELLAR_REPAIR_BENCH_OPS=%q: want blobs per second (negative: no cap)", s)
		}
		topo.Repair.Ops = n
	}
	if os.Getenv("CELLAR_REPAIR_BENCH_WINDOW") != "" {
		topo.Repair.Window = envInt(b, "CELLAR_REPAIR_BENCH_WINDOW", 0)
	}
	for range b.N {
		cl := Start(b, topo, func(c *Cluster) { c.GCGrace = time.Minute })
		cellID := cell.ID(0)
		s0, s1 := cell.NodeID(cellID, cell.RoleStorage, 0), cell.NodeID(cellID, cell.RoleStorage, 1)
		cl.waitStorageReady(b, cellID, s0, s1)
		c := cl.S3(func(o *s3.Options) {
			o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) { t.MaxIdleConnsPerHost = 64 })
		})
		ctx := context.Background()
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("refill")}); err != nil {
			b.Fatal(err)
		}
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i * 7)
		}
		seedStart := time.Now()
		seed(b, ctx, c, objects, body)
		b.Logf("stored %d objects of %d bytes in %v (%.0f PUTs/s, 32 at once)", objects, size,
			time.Since(seedStart).Round(time.Millisecond), float64(objects)/time.Since(seedStart).Seconds())

		b.ResetTimer()
		ref := getLatencies(ctx, c, objects, nil, 20*time.Second)

		cl.WipeNode(s1)
		cl.waitStorageReady(b, cellID, s0, s1)
		refillStart := time.Now()
		stopProfile := profileRefill(b)
		done := make(chan struct{})
		var during latencies
		var lg sync.WaitGroup
		lg.Add(1)
		go func() {
			defer lg.Done()
			during = getLatencies(ctx, c, objects, done, 3*time.Hour)
		}()
		admin := cl.Node(s1).AdminAddr
		poll := time.NewTicker(250 * time.Millisecond)
		lastLog := time.Now()
		for {
			n, err := storedBlobs(admin)
			if err == nil && n >= objects {
				break
			}
			if time.Since(refillStart) > 3*time.Hour {
				b.Fatalf("the wiped node holds %d of %d objects after 3 h", n, objects)
			}
			if time.Since(lastLog) >= 30*time.Second {
				// Progress goes to stderr as it happens (a benchmark's log is printed at
				// its end, and cut after a few lines).
				fmt.Fprintf(os.Stderr, "refill: %d of %d objects after %v\n", n, objects, time.Since(refillStart).Round(time.Second))
				lastLog = time.Now()
			}
			<-poll.C
		}
		poll.Stop()
		took := time.Since(refillStart)
		stopProfile()
		close(done)
		lg.Wait()
		b.StopTimer()

		// The refill is real: with its partner stopped, the refilled node serves
		// objects from across the key range, whole.
		cl.StopNode(s0)
		for i := 0; i < objects; i += max(1, objects/200) {
			key := fmt.Sprintf("o%07d", i)
			got, err := get(ctx, c, "refill", key)
			if err != nil || !bytes.Equal(got, body) {
				b.Fatalf("GET %s from the refilled node alone: %d bytes, %v", key, len(got), err)
			}
		}

		refP99, duringP99 := ref.quantile(0.99), during.quantile(0.99)
		b.ReportMetric(float64(objects)/took.Seconds(), "objects/s")
		b.ReportMetric(float64(objects)*float64(size)/took.Seconds()/(1<<20), "MiB/s")
		b.ReportMetric(float64(refP99.Microseconds())/1000, "ref-p99-ms")
		b.ReportMetric(float64(duringP99.Microseconds())/1000, "repair-p99-ms")
		if refP99 > 0 {
			b.ReportMetric(float64(duringP99)/float64(refP99), "p99-ratio")
		}
		p := cl.Topology.Repair
		b.Logf("pacing (0: the default): rate %v/s, ops %d/s, window %d", p.Rate, p.Ops, p.Window)
		b.Logf("refill of %d objects (%d bytes each) took %v: %.0f objects/s, %.2f MiB/s",
			objects, size, took.Round(time.Millisecond), float64(objects)/took.Seconds(), float64(objects)*float64(size)/took.Seconds()/(1<<20))
		b.Logf("GET at 100/s without repair: %s", ref)
		b.Logf("GET at 100/s during the refill: %s", during)
		if refP99 > 0 {
			b.Logf("p99 ratio (during / without): %.2f", float64(duringP99)/float64(refP99))
		}
	}
}

// profileRefill writes a CPU profile of the whole process (every node of the cluster)
// during the refill to the file CELLAR_REPAIR_BENCH_CPUPROFILE names, if it names one;
// the returned function ends it.
func profileRefill(b *testing.B) func() {
	path := os.Getenv("CELLAR_REPAIR_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// seed PUTs objects keys o0000000... with body, 32 at once.
func seed(b *testing.B, ctx context.Context, c *s3.Client, objects int, body []byte) {
	const workers = 32
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= objects {
					return
				}
				if err := put(ctx, c, "refill", fmt.Sprintf("o%07d", i), body); err != nil {
					errs <- fmt.Errorf("put o%07d: %w", i, err)
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
}

// latencies are the latencies of GETs, and how many failed.
type latencies struct {
	lat    []time.Duration // sorted
	failed int
	took   time.Duration
}

func (l latencies) quantile(q float64) time.Duration {
	if len(l.lat) == 0 {
		return 0
	}
	return l.lat[min(len(l.lat)-1, int(float64(len(l.lat))*q))]
}

func (l latencies) String() string {
	return fmt.Sprintf("%d GETs in %v (%d failed): p50 %v, p99 %v, max %v", len(l.lat), l.took.Round(time.Millisecond), l.failed,
		l.quantile(0.5).Round(10*time.Microsecond), l.quantile(0.99).Round(10*time.Microsecond), l.quantile(1).Round(10*time.Microsecond))
}

// getLatencies GETs one of the objects every 10 ms (100 requests/s, open loop: the
// n-th GET is due 10n ms after the start and its latency counts from then, however
// late it could be sent) until stop is closed or limit has passed.
func getLatencies(ctx context.Context, c *s3.Client, objects int, stop <-chan struct{}, limit time.Duration) latencies {
	const every = 10 * time.Millisecond
	var mu sync.Mutex
	var l latencies
	start := time.Now()
	end := time.NewTimer(limit)
	defer end.Stop()
	var g sync.WaitGroup
	t := time.NewTimer(0)
	defer t.Stop()
loop:
	for n := 0; ; n++ {
		due := start.Add(time.Duration(n) * every)
		t.Reset(time.Until(due))
		select {
		case <-stop:
			break loop
		case <-end.C:
			break loop
		case <-t.C:
		}
		g.Add(1)
		go func(key string) {
			defer g.Done()
			_, err := get(ctx, c, "refill", key)
			d := time.Since(due)
			mu.Lock()
			l.lat = append(l.lat, d)
			if err != nil {
				l.failed++
			}
			mu.Unlock()
		}(fmt.Sprintf("o%07d", (n*7919)%objects))
	}
	g.Wait()
	l.took = time.Since(start)
	slices.Sort(l.lat)
	return l
}

// storedBlobs is how many blobs a storage node says it holds (its /status gauge).
func storedBlobs(adminAddr string) (int, error) {
	resp, err := http.Get("http://" + adminAddr + "/status")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var st struct {
		Gauges map[string]float64 `json:"gauges"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, err
	}
	return int(st.Gauges["blobs"]), nil
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
