package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway/mover"
	"github.com/cellarsim/cellar/internal/testwait"
)

// BenchmarkMoveBucket moves a bucket of small objects from one cell to another while
// a client sends it 200 requests a second (GETs of the objects, and PUTs of new
// keys), and another bucket of the same source cell gets a load of its own. It
// reports:
//
//   - objects/s: objects copied per second of the whole move (copy, catch-up, fence,
//     final pass, cutover, reclaim);
//   - cutover_p50_ms, cutover_max_ms: the latency of the moved bucket's requests due
//     from the write fence to 0.5 s after the map flipped (the cutover pause a client
//     sees), and write_pause_ms, the mover's own figure;
//   - moved_errors: requests to the moved bucket that failed during the move (the
//     client does not retry: a 503 of the write fence counts);
//   - other_errors: requests to the other bucket that failed (want 0);
//   - lost_writes: PUTs acknowledged during the move that do not read back from the
//     target afterwards (want 0).
//
// The size is set by the environment (defaults: a quick run):
//
//	CELLAR_MOVE_BENCH_OBJECTS  objects in the moved bucket (default 2000)
//	CELLAR_MOVE_BENCH_SIZE     bytes per object (default 1024)
//	CELLAR_MOVE_BENCH_RATE     requests/s to the moved bucket (default 200)
//	CELLAR_MOVE_BENCH_INDEX_NODES, CELLAR_MOVE_BENCH_MAP_NODES  group sizes (default 1)
//	CELLAR_MOVE_BENCH_COPIES   the mover's CopyConcurrency (default 0: the mover's
//	                           default, 16; 1 copies one object at a time)
//
//	go test -run '^$' -bench BenchmarkMoveBucket -benchtime 1x ./clustertest/
//	CELLAR_MOVE_BENCH_OBJECTS=100000 go test -run '^$' -bench BenchmarkMoveBucket -benchtime 1x -timeout 2h ./clustertest/
//	CELLAR_MOVE_BENCH_OBJECTS=1000000 go test -run '^$' -bench BenchmarkMoveBucket -benchtime 1x -timeout 12h ./clustertest/
func BenchmarkMoveBucket(b *testing.B) {
	objects := envInt(b, "CELLAR_MOVE_BENCH_OBJECTS", 2000)
	size := envInt(b, "CELLAR_MOVE_BENCH_SIZE", 1024)
	rate := envInt(b, "CELLAR_MOVE_BENCH_RATE", 200)
	copies := envInt(b, "CELLAR_MOVE_BENCH_COPIES", 0)
	// One index node per cell and one map node by default: on a busy two-core machine
	// a group of three loses its leader now and then, which is not what this measures.
	topo := withMapGroup()
	topo.IndexNodes = envInt(b, "CELLAR_MOVE_BENCH_INDEX_NODES", 1)
	topo.MapNodes = envInt(b, "CELLAR_MOVE_BENCH_MAP_NODES", 1)
	topo.Gateways = 1
	for range b.N {
		b.StopTimer()
		cl := Start(b, topo)
		ctx := context.Background()
		c := cl.S3(func(o *s3.Options) {
			o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) { t.MaxIdleConnsPerHost = 128 })
		})
		src, dst := cell.ID(0), cell.ID(1)
		names := BucketsPerCell(topo, cellOf(topo), 2)[src]
		moved, other := names[0], names[1]
		createBuckets(b, ctx, c, moved, other)
		body := bytes.Repeat([]byte("m"), size)
		seedStart := time.Now()
		putMany(b, ctx, c, moved, objects, body)
		putMany(b, ctx, c, other, 100, body)
		b.Logf("seeded %d objects of %d bytes in %v (%.0f PUTs/s, %d at once)", objects, size,
			time.Since(seedStart).Round(time.Millisecond), float64(objects)/time.Since(seedStart).Seconds(), seedWorkers)

		m := cl.Mover(b)
		m.CopyConcurrency = copies
		var phaseMu sync.Mutex
		phases := map[string]time.Time{}
		m.ProgressEvery = 5 * time.Second
		m.Progress = func(p mover.Progress) {
			phaseMu.Lock()
			if _, ok := phases[p.Step]; !ok {
				phases[p.Step] = time.Now()
			}
			phaseMu.Unlock()
			// On stderr as it goes: a benchmark's log keeps its first lines only.
			if p.Step == "copy" || p.Step == "catch-up" {
				fmt.Fprintf(os.Stderr, "%s %d/%d objects, %.0f objects/s\n", p.Step, p.Objects, p.Total, p.ObjectsPerSec)
			}
		}
		x := &guard.Executor{Dir: b.TempDir()}
		x.Audit = guard.OpenAudit(x.Dir)
		op := guard.Op{Command: "move --bucket " + moved + " --to " + dst, Reason: "benchmark",
			Plan: func(ctx context.Context) (*guard.Plan, error) {
				return m.Plan(ctx, mover.Request{Bucket: moved, Slot: -1, To: dst})
			},
			Execute: m.Execute}
		preview, err := x.Run(ctx, guard.Op{Command: op.Command, Plan: op.Plan})
		if err != nil {
			b.Fatalf("dry run: %v", err)
		}
		op.Confirm = preview.Plan.ID

		// The clients: open loop, bounded in time by the move.
		loadCtx, stopLoad := context.WithCancel(ctx)
		movedLoad := &benchLoad{c: c, bucket: moved, keys: objects, body: body}
		otherLoad := &benchLoad{c: c, bucket: other, keys: 100, body: body}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); movedLoad.run(loadCtx, rate) }()
		go func() { defer wg.Done(); otherLoad.run(loadCtx, 50) }()

		b.StartTimer()
		start := time.Now()
		res, err := x.Run(ctx, op)
		took := time.Since(start)
		b.StopTimer()
		// A second more of load, on the target, then the clients stop.
		<-time.After(time.Second)
		stopLoad()
		wg.Wait()
		if err != nil || !res.Executed || len(m.Moved) != 1 {
			b.Fatalf("move: %v (%+v)", err, res)
		}
		st := m.Moved[0]

		phaseMu.Lock()
		fence, flipped := phases["fence"], phases["reclaim"]
		var steps []string
		from, fromStep := start, "copy"
		for _, step := range []string{"catch-up", "fence", "cutover", "reclaim", "done"} {
			if at, ok := phases[step]; ok {
				steps = append(steps, fmt.Sprintf("%s %v", fromStep, at.Sub(from).Round(time.Millisecond)))
				from, fromStep = at, step
			}
		}
		phaseMu.Unlock()
		b.Logf("steps: %s (fence: the final pass)", strings.Join(steps, ", "))
		var cut []time.Duration
		for _, s := range movedLoad.samples() {
			if !s.due.Before(fence) && s.due.Before(flipped.Add(500*time.Millisecond)) {
				cut = append(cut, s.took)
			}
		}
		slices.Sort(cut)
		var p50, worst time.Duration
		if len(cut) > 0 {
			p50, worst = cut[len(cut)/2], cut[len(cut)-1]
		}
		during := func(l *benchLoad) (n, failed int, codes map[string]int) {
			codes = map[string]int{}
			for _, s := range l.samples() {
				if s.due.Before(start) || s.due.After(start.Add(took)) {
					continue
				}
				n++
				if s.code != "" {
					failed++
					codes[s.code]++
				}
			}
			return n, failed, codes
		}
		mn, mf, mcodes := during(movedLoad)
		on, of, ocodes := during(otherLoad)
		lost := movedLoad.lost(b, ctx)
		// The target holds every seeded object and every acknowledged write (and
		// perhaps writes whose answer did not come).
		listed := 0
		testwait.Succeeds(b, patience, "list the moved bucket in the target", func() error {
			listed = 0
			p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(moved)})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					return err
				}
				listed += len(page.Contents)
			}
			return nil
		})
		if want := objects + len(movedLoad.acked()); listed < want {
			b.Errorf("the target lists %d objects of %s, fewer than the %d seeded and acknowledged", listed, moved, want)
		}
		b.Logf("the target lists %d objects (%d seeded, %d acknowledged writes)", listed, objects, len(movedLoad.acked()))
		b.ReportMetric(float64(st.Objects)/took.Seconds(), "objects/s")
		b.ReportMetric(ms(p50), "cutover_p50_ms")
		b.ReportMetric(ms(worst), "cutover_max_ms")
		b.ReportMetric(ms(st.WritePause), "write_pause_ms")
		b.ReportMetric(float64(mf), "moved_errors")
		b.ReportMetric(float64(of), "other_errors")
		b.ReportMetric(float64(lost), "lost_writes")
		b.Logf("moved %d objects (%d copies in %d passes, CopyConcurrency %d) in %v: %.0f objects/s; writes paused %v; cutover: %d requests, p50 %v, max %v; "+
			"moved bucket %d of %d failed %v; other bucket %d of %d failed %v; %d acknowledged writes, %d lost",
			objects, st.Objects, st.Passes, copies, took.Round(time.Millisecond), float64(st.Objects)/took.Seconds(), st.WritePause.Round(time.Millisecond),
			len(cut), p50.Round(time.Millisecond), worst.Round(time.Millisecond), mf, mn, mcodes, of, on, ocodes, len(movedLoad.acked()), lost)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// createBuckets creates the buckets, again while the map group settles.
func createBuckets(b testing.TB, ctx context.Context, c *s3.Client, names ...string) {
	b.Helper()
	for _, name := range names {
		testwait.Succeeds(b, patience, "create "+name, func() error {
			_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
			if _, s3code := code(err); s3code == "BucketAlreadyOwnedByYou" {
				return nil // an earlier try made it
			}
			return err
		})
	}
}

// putMany PUTs keys o0000000... of bucket with body, 64 at once, each again while
// the cluster answers 503.
func putMany(b testing.TB, ctx context.Context, c *s3.Client, bucket string, n int, body []byte) {
	b.Helper()
	const workers = seedWorkers
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := retryPut(ctx, c, bucket, benchKey(i), body); err != nil {
					errs <- fmt.Errorf("put %s/%s: %w", bucket, benchKey(i), err)
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

// seedWorkers is how many PUTs putMany has under way at once.
const seedWorkers = 64

func benchKey(i int) string { return fmt.Sprintf("o%07d", i) }

// benchLoad sends a bucket an open-loop load: request i is due at start + i/rate,
// four GETs of seeded objects for every PUT of a new key, and its latency counts from
// when it was due.
type benchLoad struct {
	c      *s3.Client
	bucket string
	keys   int
	body   []byte

	mu    sync.Mutex
	done  []benchSample
	wrote map[string]bool // PUTs acknowledged
}

type benchSample struct {
	due  time.Time
	took time.Duration
	code string
}

// maxInFlight bounds the requests a benchLoad has outstanding.
const maxInFlight = 256

func (l *benchLoad) run(ctx context.Context, rate int) {
	l.wrote = map[string]bool{}
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	slots := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(due)):
		}
		select {
		case <-ctx.Done():
			return
		case slots <- struct{}{}:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			var err error
			key := ""
			if i%5 == 4 {
				key = fmt.Sprintf("w%07d", i)
				err = put(rctx, l.c, l.bucket, key, l.body)
			} else {
				var out *s3.GetObjectOutput
				if out, err = l.c.GetObject(rctx, &s3.GetObjectInput{Bucket: aws.String(l.bucket), Key: aws.String(benchKey(i % l.keys))}); err == nil {
					_, err = io.Copy(io.Discard, out.Body)
					out.Body.Close()
				}
			}
			s := benchSample{due: due, took: time.Since(due)}
			if err != nil {
				s.code = codeString(err)
			}
			l.mu.Lock()
			l.done = append(l.done, s)
			if key != "" && err == nil {
				l.wrote[key] = true
			}
			l.mu.Unlock()
		}()
	}
}

func (l *benchLoad) samples() []benchSample {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.done)
}

func (l *benchLoad) acked() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for k := range l.wrote {
		out = append(out, k)
	}
	return out
}

// lost reads back every acknowledged PUT and counts those that do not come back
// whole.
func (l *benchLoad) lost(b *testing.B, ctx context.Context) int {
	keys := l.acked()
	var lost atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) {
					return
				}
				got, err := get(ctx, l.c, l.bucket, keys[i])
				if err != nil || !bytes.Equal(got, l.body) {
					lost.Add(1)
					b.Logf("acknowledged %s/%s does not read back: %v", l.bucket, keys[i], err)
				}
			}
		}()
	}
	wg.Wait()
	return int(lost.Load())
}
