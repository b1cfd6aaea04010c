package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway/mover"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/internal/linearkv"
	"github.com/cellarsim/cellar/internal/testwait"
	"github.com/cellarsim/cellar/router"
)

// The move fault tests move a bucket from cell-0 to cell-1 under a small load of
// PUTs, DELETEs and GETs through both gateways, and fault the move at one point:
// part way through the copy (after a few objects), or as the cutover begins (the
// write fence is up and the final pass done; the seal of the source and the map's
// flip come next). Afterwards:
//
//   - the history of the moved bucket, final reads through every gateway included,
//     is linearizable (internal/linearkv, as in the crash test), and every object
//     written before the move reads back whole, from the target cell;
//   - the source holds no live copy: it refuses the bucket, and a drop of the bucket
//     there finds no record left;
//   - the map entry is normal in the target, and every gateway is at the map group's
//     version.
//
// TestMoveSurvivesNodeFaults crashes a node while the move runs, and starts it again
// a moment later: the mover rides over it. TestMoveResumesAfterTheMoverDies ends the
// mover itself at a point of its work, as a crash of the process that runs it does,
// and runs the same move again with a new mover: it resumes.

// moveFaultKeys are the keys the load on a moved bucket writes and reads.
const moveFaultKeys = 8

// moveSeeds is how many objects a bucket holds before its move.
const moveSeeds = 24

// moveCase is one bucket's move under load, with what the test checks after it.
type moveCase struct {
	cl       *Cluster
	rt       *router.Router // the mover's router: the supervisor's certificate
	bucket   string
	src, dst string
	seed     int64
	h        *linearkv.History
	stop     atomic.Bool
	wg       sync.WaitGroup
	failed   atomic.Int64
}

// newMoveCase creates bucket in src with its seed objects.
func newMoveCase(t *testing.T, cl *Cluster, rt *router.Router, bucket, src, dst string) *moveCase {
	t.Helper()
	mc := &moveCase{cl: cl, rt: rt, bucket: bucket, src: src, dst: dst, seed: time.Now().UnixNano(), h: linearkv.NewHistory()}
	if s := os.Getenv("CELLAR_MOVE_SEED"); s != "" {
		mc.seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("%s: seed %d (replay the clients' choices with CELLAR_MOVE_SEED=%d)", bucket, mc.seed, mc.seed)
	ctx := context.Background()
	c := cl.S3()
	// A cell or the map group just back from a fault may answer 503 for a moment: a
	// client asks again.
	testwait.Succeeds(t, patience, "CreateBucket "+bucket+" succeeds", func() error {
		_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
		if _, s3code := code(err); s3code == "BucketAlreadyOwnedByYou" {
			return nil
		}
		return err
	})
	for i := range moveSeeds {
		if err := retryPut(ctx, c, bucket, seedKey(i), seedBody(bucket, i)); err != nil {
			t.Fatal(err)
		}
	}
	return mc
}

func seedKey(i int) string                 { return fmt.Sprintf("seed-%02d", i) }
func seedBody(bucket string, i int) []byte { return []byte(fmt.Sprintf("%s seed %d", bucket, i)) }

// load runs one client per gateway on the bucket until stopLoad, bounded in count.
func (mc *moveCase) load(t *testing.T) {
	for g := range mc.cl.Topology.Gateways {
		c := mc.cl.gatewayS3(cell.NodeID("", cell.RoleGateway, g))
		rng := rand.New(rand.NewPCG(uint64(mc.seed), uint64(g)))
		mc.wg.Add(1)
		go func() {
			defer mc.wg.Done()
			for n := 0; n < 600 && !mc.stop.Load(); n++ {
				key := fmt.Sprintf("k%d", rng.IntN(moveFaultKeys))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				call := mc.h.Now()
				switch p := rng.IntN(10); {
				case p < 4:
					in := linearkv.Input{Op: linearkv.Put, Key: key, Value: fmt.Sprintf("g%d-%d", g, n)}
					crashWrite(mc.h, g, in, put(ctx, c, mc.bucket, key, crashBody(in.Value)), call)
				case p < 5:
					_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(mc.bucket), Key: aws.String(key)})
					crashWrite(mc.h, g, linearkv.Input{Op: linearkv.Delete, Key: key}, err, call)
				default:
					got, err := get(ctx, c, mc.bucket, key)
					ret := mc.h.Now()
					in := linearkv.Input{Op: linearkv.Get, Key: key}
					switch status, _ := code(err); {
					case err == nil:
						v, ok := crashValue(got)
						if !ok {
							t.Errorf("%s: GET %s returned %d bytes that no PUT wrote", mc.bucket, key, len(got))
						}
						mc.h.Add(g, in, linearkv.Output{Value: v}, call, ret)
					case status == 404:
						mc.h.Add(g, in, linearkv.Output{}, call, ret)
					default:
						mc.failed.Add(1) // says nothing
					}
				}
				cancel()
				hold(time.Duration(5+rng.IntN(25)) * time.Millisecond)
			}
		}()
	}
}

func (mc *moveCase) stopLoad() {
	mc.stop.Store(true)
	mc.wg.Wait()
}

// check checks what is left after the move: see the comment at the top of the file.
func (mc *moveCase) check(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	// The map: the bucket normal in the target, every gateway at the group's version.
	var version uint64
	testwait.Succeeds(t, patience, "the map group names "+mc.dst+" for "+mc.bucket+" and every gateway has its map", func() error {
		mg, err := mc.rt.MapGroup(true)
		if err != nil {
			return err
		}
		cm, err := mg.Get(ctx, &cellarv1.GetMapRequest{})
		if err != nil {
			return err
		}
		if e := cm.GetBuckets()[mc.bucket]; e.GetCell() != mc.dst || e.GetState() != cellarv1.BucketState_BUCKET_STATE_NORMAL {
			return fmt.Errorf("the map entry of %s is %v", mc.bucket, e)
		}
		version = cm.GetVersion()
		for g := range mc.cl.Topology.Gateways {
			id := cell.NodeID("", cell.RoleGateway, g)
			if v, err := mc.cl.mapVersion(id); err != nil || v != strconv.FormatUint(version, 10) {
				return fmt.Errorf("%s is at map version %s (%v), the group at %d", id, v, err, version)
			}
		}
		return nil
	})

	// Final reads through every gateway join the history; each is served by the target.
	for g := range mc.cl.Topology.Gateways {
		var servedBy string
		c := mc.cl.S3(cellHeader(&servedBy), func(o *s3.Options) {
			o.BaseEndpoint = aws.String("http://" + mc.cl.Node(cell.NodeID("", cell.RoleGateway, g)).S3Addr)
		})
		read := func(key string) ([]byte, error) {
			var got []byte
			var err error
			testwait.Until(t, time.Minute, "GET "+mc.bucket+"/"+key+" answers other than 503", func() bool {
				got, err = get(ctx, c, mc.bucket, key)
				status, _ := code(err)
				return status != 503
			})
			return got, err
		}
		for k := range moveFaultKeys {
			key := fmt.Sprintf("k%d", k)
			call := mc.h.Now()
			got, err := read(key)
			in := linearkv.Input{Op: linearkv.Get, Key: key}
			switch status, _ := code(err); {
			case err == nil:
				v, ok := crashValue(got)
				if !ok {
					t.Errorf("%s: final GET %s returned %d bytes that no PUT wrote", mc.bucket, key, len(got))
				}
				mc.h.Add(10+g, in, linearkv.Output{Value: v}, call, mc.h.Now())
			case status == 404:
				mc.h.Add(10+g, in, linearkv.Output{}, call, mc.h.Now())
			default:
				t.Fatalf("%s: final GET %s: %v", mc.bucket, key, err)
			}
			if servedBy != mc.dst {
				t.Errorf("%s/%s served by %q after the move, want %s", mc.bucket, key, servedBy, mc.dst)
			}
		}
		for i := range moveSeeds {
			if got, err := read(seedKey(i)); err != nil || !bytes.Equal(got, seedBody(mc.bucket, i)) {
				t.Errorf("%s/%s through gateway-%d after the move: %q, %v", mc.bucket, seedKey(i), g, got, err)
			} else if servedBy != mc.dst {
				t.Errorf("%s/%s served by %q after the move, want %s", mc.bucket, seedKey(i), servedBy, mc.dst)
			}
		}
	}
	ops := mc.h.Ops()
	st := linearkv.Count(ops)
	res := linearkv.Check(ops, crashCheckTimeout)
	t.Logf("%s: history %s; %d failed reads left out; porcupine: %v", mc.bucket, st, mc.failed.Load(), res)
	switch res {
	case porcupine.Illegal:
		t.Errorf("%s (seed %d): the history is not linearizable; %s", mc.bucket, mc.seed,
			linearkv.Save(os.Getenv("CELLAR_ARTIFACTS"), fmt.Sprintf("move-%s-%d", mc.bucket, mc.seed), ops, crashCheckTimeout))
	case porcupine.Unknown:
		t.Errorf("%s (seed %d): porcupine gave no answer within %v", mc.bucket, mc.seed, crashCheckTimeout)
	}
	if st.Acked == 0 || st.Reads == 0 {
		t.Errorf("%s: too little of the load got through to check anything: %s", mc.bucket, st)
	}

	// The source keeps no live copy: it refuses the bucket, and holds none of its records.
	testwait.Succeeds(t, patience, "the source "+mc.src+" refuses "+mc.bucket+" and holds none of its records", func() error {
		ix, err := mc.rt.Index(mc.src)
		if err != nil {
			return err
		}
		if _, err := ix.Lookup(ctx, &cellarv1.LookupRequest{Bucket: mc.bucket, Key: seedKey(0)}); !errs.Is(err, errs.Unavailable) {
			return fmt.Errorf("the source answers a lookup of the moved bucket: %v, want Unavailable", err)
		}
		resp, err := ix.DropBucket(ctx, &cellarv1.DropBucketRequest{Name: mc.bucket})
		if err != nil {
			return err
		}
		if resp.Objects != 0 {
			t.Errorf("%s: the source still held %d records of the moved bucket", mc.bucket, resp.Objects)
		}
		return nil
	})
}

// crashHook returns a Progress that calls fault once, the first time the move reaches
// at: "copy" once a few objects are copied, any other step as it begins.
func crashHook(at string, fault func()) func(mover.Progress) {
	var once sync.Once
	return func(p mover.Progress) {
		if p.Step == at && (at != "copy" || p.Objects >= 5) {
			once.Do(fault)
		}
	}
}

// indexLeader is the id of cellID's index leader, as the gateway sees it.
func (c *Cluster) indexLeader(t *testing.T, cellID string) string {
	t.Helper()
	var leader string
	testwait.Succeeds(t, patience, "the index leader of "+cellID+" is known", func() error {
		view, err := c.GatewayView()
		if err != nil {
			return err
		}
		if leader = c.Leader(view, cellID); leader == "" {
			return errors.New("no leader")
		}
		return nil
	})
	return leader
}

func TestMoveSurvivesNodeFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster with faults")
	}
	topo := withMapGroup()
	cl := Start(t, topo)
	cl.waitMap()
	src, dst := cell.ID(0), cell.ID(1)
	cases := []struct {
		name, at string
		victim   func() string
	}{
		{"source index leader mid-copy", "copy", func() string { return cl.indexLeader(t, src) }},
		{"target index leader mid-copy", "copy", func() string { return cl.indexLeader(t, dst) }},
		{"source storage node mid-copy", "copy", func() string { return cell.NodeID(src, cell.RoleStorage, 0) }},
		{"source index leader in the cutover", "cutover", func() string { return cl.indexLeader(t, src) }},
		{"target index leader in the cutover", "cutover", func() string { return cl.indexLeader(t, dst) }},
		{"target storage node in the cutover", "cutover", func() string { return cell.NodeID(dst, cell.RoleStorage, 0) }},
	}
	buckets := BucketsPerCell(topo, cellOf(topo), len(cases))[src]
	reg := prometheus.NewRegistry()
	metrics, err := mover.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, rt := newMover(t, cl)
			m.Metrics, m.ProgressEvery = metrics, time.Nanosecond
			mc := newMoveCase(t, cl, rt, buckets[i], src, dst)
			// The victim is found before the move starts: the hook runs in the
			// mover's goroutine, where a test may not fail.
			victim := tc.victim()
			crashed := make(chan struct{})
			m.Progress = crashHook(tc.at, func() {
				cl.crash(victim)
				close(crashed)
			})
			mc.load(t)
			done := make(chan error, 1)
			var st mover.Stats
			go func() {
				var err error
				st, err = m.MoveBucket(context.Background(), mc.bucket, src, dst)
				done <- err
			}()
			select {
			case <-crashed:
				hold(1500 * time.Millisecond) // down a while, under load and the mover's retries
				cl.StartNode(victim)
			case err := <-done:
				done <- err
				t.Errorf("the move ended before its fault at %s", tc.at)
			}
			if err := <-done; err != nil {
				t.Fatalf("the move of %s with %s crashed at %s: %v", mc.bucket, victim, tc.at, err)
			}
			cl.WaitReady(victim)
			mc.stopLoad()
			t.Logf("%s moved with %s crashed at %s: %d objects copied in %d passes, %v, writes paused %v (a busy machine under -race: not a measurement)",
				mc.bucket, victim, tc.at, st.Objects, st.Passes, st.Took.Round(time.Millisecond), st.WritePause.Round(time.Millisecond))
			if st.Objects < moveSeeds {
				t.Errorf("%d objects copied, fewer than the %d the bucket held", st.Objects, moveSeeds)
			}
			mc.check(t)
		})
	}
	// The metrics count every move, its copies and its pause.
	families := gather(t, reg)
	if got := families["cellar_moves_in_progress"].GetMetric()[0].GetGauge().GetValue(); got != 0 {
		t.Errorf("cellar_moves_in_progress %v after every move ended", got)
	}
	if got := families["cellar_move_objects_copied_total"].GetMetric()[0].GetCounter().GetValue(); got < float64(len(cases)*moveSeeds) {
		t.Errorf("cellar_move_objects_copied_total %v, fewer than the %d objects the buckets held", got, len(cases)*moveSeeds)
	}
	if f := families["cellar_move_cutover_pause_seconds"]; f.GetMetric()[0].GetHistogram().GetSampleCount() != uint64(len(cases)) {
		t.Errorf("cellar_move_cutover_pause_seconds counts %d pauses, want %d", f.GetMetric()[0].GetHistogram().GetSampleCount(), len(cases))
	}
	if f := families["cellar_move_duration_seconds"]; len(f.GetMetric()) != 1 || f.GetMetric()[0].GetLabel()[0].GetValue() != "done" ||
		f.GetMetric()[0].GetHistogram().GetSampleCount() != uint64(len(cases)) {
		t.Errorf("cellar_move_duration_seconds is %v, want %d moves done", f, len(cases))
	}
}

// gather is what reg holds, by metric name; every name the movers register is there.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range families {
		out[f.GetName()] = f
	}
	for _, name := range []string{"cellar_moves_in_progress", "cellar_move_objects_copied_total", "cellar_move_bytes_copied_total",
		"cellar_move_cutover_pause_seconds", "cellar_move_duration_seconds"} {
		if len(out[name].GetMetric()) == 0 {
			t.Fatalf("no %s among the movers' metrics", name)
		}
	}
	return out
}

func TestMoveResumesAfterTheMoverDies(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster with faults")
	}
	topo := withMapGroup()
	cl := Start(t, topo)
	cl.waitMap()
	src, dst := cell.ID(0), cell.ID(1)
	cases := []struct {
		name, at string
		// sealed: the mover died right after it sealed the source (FENCE_ALL),
		// before the map's flip.
		sealed bool
		// reclaimed: the resumed run drops records the first one left in the source.
		reclaimed bool
	}{
		{name: "mid-copy", at: "copy"},
		{name: "at the write fence", at: "fence"},
		{name: "in the cutover, before the seal", at: "cutover"},
		{name: "in the cutover, after the seal", at: "cutover", sealed: true},
		{name: "after the flip, before the reclaim", at: "reclaim", reclaimed: true},
	}
	buckets := BucketsPerCell(topo, cellOf(topo), len(cases))[src]
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, rt := newMover(t, cl)
			m.ProgressEvery = time.Nanosecond
			mc := newMoveCase(t, cl, rt, buckets[i], src, dst)
			mc.load(t)
			// The mover's goroutine ends where it stands, as its process would:
			// nothing of the move is undone.
			died := make(chan struct{})
			m.Progress = crashHook(tc.at, runtime.Goexit)
			go func() {
				defer close(died)
				if _, err := m.MoveBucket(context.Background(), mc.bucket, src, dst); err != nil {
					t.Errorf("the first run ended with %v before its crash", err)
				}
			}()
			<-died
			ctx := context.Background()
			if tc.sealed {
				ix, err := rt.Index(src)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ix.FenceBucket(ctx, &cellarv1.FenceBucketRequest{Name: mc.bucket, Fence: cellarv1.BucketFence_BUCKET_FENCE_ALL, MovedTo: dst}); err != nil {
					t.Fatal(err)
				}
			}
			hold(500 * time.Millisecond) // the load runs on against a bucket left mid-move
			// A new mover runs the same move again.
			again, _ := newMover(t, cl)
			st, err := again.MoveBucket(ctx, mc.bucket, src, dst)
			if err != nil {
				t.Fatalf("the move run again after a crash at %s: %v", tc.at, err)
			}
			mc.stopLoad()
			t.Logf("%s: the resumed run kept %d objects the first had copied, copied %d, dropped %d records in the source, writes paused %v",
				mc.bucket, st.Kept, st.Objects, st.Reclaimed, st.WritePause.Round(time.Millisecond))
			if tc.reclaimed && st.Reclaimed == 0 {
				t.Errorf("the resumed run dropped no record in the source, which the first run left")
			}
			// The first run had copied the whole bucket before it reached its write
			// fence: the resumed run keeps those copies where they are current, the
			// seeds at least (the load never writes them), rather than starting over.
			if (tc.at == "fence" || tc.at == "cutover") && st.Kept < moveSeeds {
				t.Errorf("the resumed run kept %d of the first run's copies (and copied %d objects); the %d seeds, which nothing changed, should all be kept", st.Kept, st.Objects, moveSeeds)
			}
			mc.check(t)
		})
	}
}

// A move whose process stopped right after the map's flip, before the source dropped
// the bucket's records, is finished by the plan of the same move: the map names the
// source until then, the dry run plans no copy but the drop in the source, and the
// confirmed plan, run through the guardrail workflow and audited, leaves no record of
// the bucket in the source and the map naming no source any more.
func TestMoveStoppedAfterTheFlipIsFinishedByItsPlan(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster with faults")
	}
	topo := withMapGroup()
	cl := Start(t, topo)
	cl.waitMap()
	src, dst := cell.ID(0), cell.ID(1)
	bucket := BucketsPerCell(topo, cellOf(topo), 1)[src][0]
	ctx := context.Background()
	m, rt := newMover(t, cl)
	m.ProgressEvery = time.Nanosecond
	mc := newMoveCase(t, cl, rt, bucket, src, dst)
	mc.load(t)
	died := make(chan struct{})
	m.Progress = crashHook("reclaim", runtime.Goexit)
	go func() {
		defer close(died)
		if _, err := m.MoveBucket(ctx, bucket, src, dst); err != nil {
			t.Errorf("the first run ended with %v before its crash", err)
		}
	}()
	<-died
	entry := func() *cellarv1.BucketEntry {
		t.Helper()
		var e *cellarv1.BucketEntry
		testwait.Succeeds(t, patience, "read the cell map", func() error {
			mg, err := rt.MapGroup(true)
			if err != nil {
				return err
			}
			cm, err := mg.Get(ctx, &cellarv1.GetMapRequest{})
			e = cm.GetBuckets()[bucket]
			return err
		})
		return e
	}
	if e := entry(); e.GetCell() != dst || e.GetMovedFrom() != src {
		t.Fatalf("after the flip the entry of %s is %v, want in %s, moved from %s", bucket, e, dst, src)
	}
	// Until the source's copy is dropped, the bucket cannot be deleted: its entry is
	// the only trace of that copy. (The gateway refuses once its map shows the flip.)
	s3c := cl.S3(func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	testwait.Succeeds(t, patience, "the gateway refuses to delete a bucket whose move is not finished", func() error {
		_, err := s3c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
		if err == nil || !strings.Contains(err.Error(), "still holds its old copy until the move is finished") {
			return fmt.Errorf("delete: %v", err)
		}
		return nil
	})

	again, _ := newMover(t, cl)
	x := &guard.Executor{Dir: t.TempDir()}
	x.Audit = guard.OpenAudit(x.Dir)
	req := mover.Request{Bucket: bucket, Slot: -1, To: dst}
	op := guard.Op{Command: "move --bucket " + bucket + " --to " + dst, Reason: "finish the move",
		Plan:    func(ctx context.Context) (*guard.Plan, error) { return again.Plan(ctx, req) },
		Execute: again.Execute}
	preview, err := x.Run(ctx, guard.Op{Command: op.Command, Plan: op.Plan})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if d := preview.Plan.MoveDetail; d.Source != src || d.Target != dst || d.Objects != 0 || len(d.Buckets) != 1 || !slices.Equal(d.Finish, d.Buckets) || !preview.Plan.Allowed() {
		t.Fatalf("the plan of the stopped move: %+v (allowed %v), want %s to %s with nothing to copy and the bucket to finish", d, preview.Plan.Allowed(), src, dst)
	}
	if preview.Executed {
		t.Fatal("a dry run ran")
	}
	op.Confirm = preview.Plan.ID
	res, err := x.Run(ctx, op)
	if err != nil {
		t.Fatalf("finish the move: %v", err)
	}
	mc.stopLoad()
	if !res.Executed || len(again.Moved) != 1 {
		t.Fatalf("result %+v, moved %+v", res, again.Moved)
	}
	st := again.Moved[0]
	t.Logf("%s: the finishing run dropped %d records in %s", bucket, st.Reclaimed, src)
	if !st.ReclaimOnly || st.Objects != 0 || st.Reclaimed < moveSeeds {
		t.Errorf("the finishing run: %+v, want only a drop of at least the %d records seeded", st, moveSeeds)
	}
	if e := entry(); e.GetCell() != dst || e.GetMovedFrom() != "" {
		t.Errorf("after the reclaim the entry of %s is %v, want in %s, moved from nowhere", bucket, e, dst)
	}
	entries, err := guard.ReadAudit(x.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var decisions []string
	for _, e := range entries {
		decisions = append(decisions, e.Decision)
	}
	if want := []string{guard.DecisionPlanned, guard.DecisionConfirmed, guard.DecisionDone}; !slices.Equal(decisions, want) {
		t.Errorf("audit %v, want %v", decisions, want)
	}
	mc.check(t) // the source refuses the bucket, and a drop there finds no record left
	// Nothing is left to finish: the same request now plans a move to where the bucket is.
	if p, err := again.Plan(ctx, req); err == nil && p.Allowed() {
		t.Errorf("after the reclaim a move of %s to %s is planned: %+v", bucket, dst, p.MoveDetail)
	}
}
