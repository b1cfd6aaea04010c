package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/cellmap"
	"github.com/cellarsim/cellar/cell/repair"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway/mover"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/internal/testwait"
	"github.com/cellarsim/cellar/router"
)

// newMover returns a mover that reaches the cluster as a 'cellctl up' supervisor's
// does (see Cluster.Mover), and the router it reaches the cluster through.
func newMover(t *testing.T, c *Cluster) (*mover.Mover, *router.Router) {
	t.Helper()
	return c.moverAs(t, "mover")
}

// retryPut puts until the cluster acknowledges it (a fenced bucket answers 503 for a
// moment), at most a bounded number of times.
func retryPut(ctx context.Context, c *s3.Client, bucket, key string, body []byte) error {
	var err error
	for range 200 {
		if err = put(ctx, c, bucket, key, body); err == nil {
			return nil
		}
		if status, _ := code(err); status != 503 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond): // a client's retry backoff
		}
	}
	return err
}

// A bucket moves to another cell under a small load, through the guardrail workflow:
// every acknowledged write reads back from the target, the other bucket of the source
// cell sees no error, the source keeps no copy, and a gateway that was down during the
// cutover (it comes back with the old map, and the map group away) neither reads stale
// data nor writes to the old cell.
//
// The bucket's configuration (tags, CORS, lifecycle) moves with it, and the target
// cell's repair, passing all along the move, never judges a copied object missing or
// lost: a copy's record keeps its object's old modification time, so the repair cannot
// tell it from an old object by its time.
func TestMoveBucketUnderLoad(t *testing.T) {
	topo := withMapGroup()
	cl := Start(t, topo, func(c *Cluster) { c.RepairInterval, c.GCGrace = 200*time.Millisecond, time.Minute })
	cl.waitMap()
	ctx := context.Background()
	gw1 := cell.NodeID("", cell.RoleGateway, 1)
	var servedBy string
	c0 := cl.S3(cellHeader(&servedBy))
	src, dst := cell.ID(0), cell.ID(1)
	names := BucketsPerCell(topo, cellOf(topo), 2)[src]
	moved, other := names[0], names[1]
	acked := map[string][]byte{}
	for _, b := range names {
		if _, err := c0.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		key, body := fmt.Sprintf("before-%02d", i), []byte(fmt.Sprintf("before %d", i))
		if err := put(ctx, c0, moved, key, body); err != nil {
			t.Fatal(err)
		}
		acked[key] = body
	}
	written := time.Now()
	configure(t, c0, moved)
	testwait.Succeeds(t, patience, "gateway-1 has the map with both buckets", func() error {
		got, err := listNames(ctx, cl.gatewayS3(gw1))
		if err != nil || len(got) != 2 {
			return fmt.Errorf("gateway-1 lists %v (%v)", got, err)
		}
		return nil
	})
	// gateway-1 is down from here until after the cutover: it keeps the old map.
	cl.StopNode(gw1)

	m, _ := newMover(t, cl)
	// The copies of the objects written above carry their times: once these are older
	// than the repair's margin for recent writes, the repair judges every copy it sees.
	testwait.Until(t, patience, "the objects are older than the repair's margin for recent writes", func() bool {
		return time.Since(written) > repair.RecentMargin
	})
	repairCtx, stopRepairWatch := context.WithCancel(ctx)
	repairSeen := watchRepair(repairCtx, cl, dst)
	var progress []mover.Progress
	var pmu sync.Mutex
	m.Progress = func(p mover.Progress) { pmu.Lock(); progress = append(progress, p); pmu.Unlock() }

	// A small load on both buckets while the move runs, bounded in count and time.
	loadCtx, stopLoad := context.WithTimeout(ctx, 2*time.Minute)
	defer stopLoad()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var otherErrs []error
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 500 && loadCtx.Err() == nil; i++ {
			key, body := fmt.Sprintf("during-%03d", i%60), []byte(fmt.Sprintf("during %d", i))
			if err := retryPut(loadCtx, cl.S3(), moved, key, body); err == nil {
				mu.Lock()
				acked[key] = body
				mu.Unlock()
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 500 && loadCtx.Err() == nil; i++ {
			if err := put(loadCtx, cl.S3(), other, fmt.Sprintf("k-%d", i%20), []byte("x")); err != nil && loadCtx.Err() == nil {
				mu.Lock()
				otherErrs = append(otherErrs, err)
				mu.Unlock()
			}
		}
	}()

	x := &guard.Executor{Dir: t.TempDir()}
	x.Audit = guard.OpenAudit(x.Dir)
	op := guard.Op{Command: "move --bucket " + moved + " --to " + dst, Reason: "test",
		Plan: func(ctx context.Context) (*guard.Plan, error) {
			return m.Plan(ctx, mover.Request{Bucket: moved, Slot: -1, To: dst})
		},
		Execute: m.Execute}
	preview, err := x.Run(ctx, guard.Op{Command: op.Command, Plan: op.Plan})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if d := preview.Plan.MoveDetail; d.Source != src || d.Target != dst || d.Objects < 40 || !d.TargetHealthy || d.TargetWritableNodes < 1 {
		t.Fatalf("plan %+v", d)
	}
	if preview.Executed {
		t.Fatal("a dry run moved the bucket")
	}
	op.Confirm = preview.Plan.ID
	res, err := x.Run(ctx, op)
	if err != nil {
		t.Fatalf("move: %v", err)
	}
	if !res.Executed || len(res.Steps) != 1 || len(m.Moved) != 1 {
		t.Fatalf("move result %+v", res)
	}
	t.Logf("moved %d objects in %v, %d passes, writes paused %v (under -race and other tests: not a measurement)",
		m.Moved[0].Objects, m.Moved[0].Took, m.Moved[0].Passes, m.Moved[0].WritePause)
	stopLoad()
	wg.Wait()
	moveEnded := time.Now()
	stopRepairWatch()
	if w := <-repairSeen; w.lost > 0 || w.underReplicated > 0 {
		t.Errorf("during the move the target's repair judged %d objects lost and %d under-replicated (most in one pass), over %d passes; want none",
			w.lost, w.underReplicated, w.passes)
	} else if w.passes == 0 {
		t.Errorf("the target's repair made no pass during the move")
	}
	// A pass that began after the move finds every object of the target whole.
	var after *cellarv1.RepairStatusResponse
	testwait.Succeeds(t, patience, "a pass of the target's repair that judges every object the move copied", func() (err error) {
		after, err = cl.Repair(dst).Status(ctx, &cellarv1.RepairStatusRequest{})
		if err == nil && after.LastPassUnixNano < moveEnded.Add(repair.RecentMargin).UnixNano() {
			return errors.New("no pass yet that judges the objects the move's end copied")
		}
		return err
	})
	if after.Lost > 0 || after.UnderReplicated > 0 {
		t.Errorf("after the move the target's repair finds %d objects lost and %d under-replicated; want none", after.Lost, after.UnderReplicated)
	}
	if len(otherErrs) > 0 {
		t.Errorf("%d writes to %s, a bucket that did not move, failed during the move; first: %v", len(otherErrs), other, otherErrs[0])
	}
	pmu.Lock()
	if len(progress) == 0 || progress[len(progress)-1].Step != "done" {
		t.Errorf("progress reports %+v, want the last one done", progress)
	}
	pmu.Unlock()

	// Every acknowledged write reads back, from the target.
	for key, body := range acked {
		got, err := get(ctx, c0, moved, key)
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("%s/%s after the move: %q, %v; want %q", moved, key, got, err, body)
			continue
		}
		if servedBy != dst {
			t.Errorf("%s/%s served by %s, want %s", moved, key, servedBy, dst)
		}
	}
	// The bucket's configuration moved with it.
	checkConfigured(t, c0, moved)
	if servedBy != dst {
		t.Errorf("the moved bucket's configuration served by %s, want %s", servedBy, dst)
	}
	// The source holds no live copy: its records are gone, its bucket a refusing tombstone.
	ops := cl.OperatorConns()
	leader := ""
	testwait.Succeeds(t, patience, "the source cell's index leader is known", func() error {
		view, err := cl.GatewayView()
		if err != nil {
			return err
		}
		if leader = cl.Leader(view, src); leader == "" {
			return errors.New("no leader")
		}
		return nil
	})
	cc, err := ops.Get(cl.Node(leader).GRPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	ix := cellarv1.NewIndexClient(cc)
	if _, err := ix.Lookup(ctx, &cellarv1.LookupRequest{Bucket: moved, Key: "before-00"}); !errs.Is(err, errs.Unavailable) {
		t.Errorf("the source index answers a lookup of the moved bucket: %v, want Unavailable", err)
	}
	// The operator's certificate may not fence a bucket or change the map: a move
	// runs only behind the guardrails of the supervisor's control endpoint.
	if cl.PKIDir() != "" {
		if _, err := ix.FenceBucket(ctx, &cellarv1.FenceBucketRequest{Name: other}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("the operator fences a bucket: %v, want PermissionDenied", err)
		}
		mc, err := ops.Get(cl.Node(cell.NodeID("", cell.RoleMap, 0)).GRPCAddr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cellarv1.NewCellMapClient(mc).Apply(ctx, &cellarv1.MapCommand{}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("the operator changes the cell map: %v, want PermissionDenied", err)
		}
	}

	// gateway-1 comes back with the old map while the map group is away.
	for i := range topo.MapNodes {
		cl.StopNode(cell.NodeID("", cell.RoleMap, i))
	}
	cl.StartNode(gw1)
	cl.WaitReady(gw1)
	c1 := cl.gatewayS3(gw1)
	if got, err := get(ctx, c1, moved, "before-00"); err == nil {
		t.Errorf("a gateway with the old map read %q from the old cell", got)
	} else if status, _ := code(err); status != 503 {
		t.Errorf("a gateway with the old map: GET answers %v, want 503", err)
	}
	if err := put(ctx, c1, moved, "stale", []byte("stale")); err == nil {
		t.Errorf("a gateway with the old map wrote to the old cell")
	}
	// With the map group back, it routes to the target.
	for i := range topo.MapNodes {
		cl.StartNode(cell.NodeID("", cell.RoleMap, i))
	}
	testwait.Succeeds(t, patience, "gateway-1 reads the moved bucket from the target", func() error {
		got, err := get(ctx, c1, moved, "before-00")
		if err != nil {
			return err
		}
		if !bytes.Equal(got, acked["before-00"]) {
			return fmt.Errorf("read %q", got)
		}
		return nil
	})
}

// A move cancelled part way is undone: the bucket stays served by the source, with
// every object, its writes go on there, and the map says so. A bucket with S3
// versioning is refused by the plan, and a move whose bucket gets versioning while it
// copies is undone the same way: a move carries current versions only.
func TestMoveCancelledLeavesTheSource(t *testing.T) {
	topo := withMapGroup()
	topo.IndexNodes = 1
	cl := Start(t, topo)
	cl.waitMap()
	ctx := context.Background()
	var servedBy string
	c := cl.S3(cellHeader(&servedBy))
	src, dst := cell.ID(0), cell.ID(1)
	names := BucketsPerCell(topo, cellOf(topo), 2)[src]
	b := names[0]
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if err := put(ctx, c, b, fmt.Sprintf("k-%02d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	m, rt := newMover(t, cl)
	moveCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.ProgressEvery = time.Nanosecond
	m.Progress = func(p mover.Progress) {
		if p.Objects >= 5 {
			cancel() // the operator's Ctrl-C, part way through the copy
		}
	}
	if _, err := m.MoveBucket(moveCtx, b, src, dst); err == nil {
		t.Fatal("a cancelled move reports success")
	}
	mc, err := rt.MapGroup(true)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := mc.Get(ctx, &cellarv1.GetMapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if e := cm.GetBuckets()[b]; e.GetCell() != src || e.GetState() != cellarv1.BucketState_BUCKET_STATE_NORMAL {
		t.Errorf("after the cancel the map entry is %v, want normal in %s", e, src)
	}
	for i := range 30 {
		got, err := get(ctx, c, b, fmt.Sprintf("k-%02d", i))
		if err != nil || string(got) != fmt.Sprint(i) || servedBy != src {
			t.Errorf("k-%02d after the cancel: %q from %s, %v", i, got, servedBy, err)
		}
	}
	if err := put(ctx, c, b, "after", []byte("x")); err != nil || servedBy != src {
		t.Errorf("a write after the cancel: %v (served by %s)", err, servedBy)
	}
	// The target keeps nothing of it.
	ix, err := rt.Index(dst)
	if err != nil {
		t.Fatal(err)
	}
	page, err := ix.ListBuckets(ctx, &cellarv1.ListBucketsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, bk := range page.Buckets {
		if bk.Name == b {
			t.Errorf("the target still lists %s after the cancel", b)
		}
	}
	if res, err := ix.List(ctx, &cellarv1.ListRequest{Bucket: b}); err == nil && len(res.Entries) > 0 {
		t.Errorf("the target still holds %d objects of %s", len(res.Entries), b)
	}
	// A versioned bucket: refused by the dry run, with a plain sentence.
	vb := names[1]
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(vb)}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := put(ctx, c, vb, fmt.Sprintf("v-%02d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	setVersioning := func(status types.BucketVersioningStatus) {
		if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(vb),
			VersioningConfiguration: &types.VersioningConfiguration{Status: status}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, status := range []types.BucketVersioningStatus{types.BucketVersioningStatusEnabled, types.BucketVersioningStatusSuspended} {
		setVersioning(status)
		_, err := m.Plan(ctx, mover.Request{Bucket: vb, Slot: -1, To: dst})
		if err == nil || !errors.Is(err, guard.ErrBadRequest) || !strings.Contains(err.Error(), "versioning") {
			t.Errorf("the plan of a move of a bucket with versioning %s: %v, want a refusal that names versioning", status, err)
		}
		if _, err := m.Plan(ctx, mover.Request{Slot: cellmapSlot(t, rt, vb), To: dst}); err == nil || !strings.Contains(err.Error(), vb) {
			t.Errorf("the plan of a move of the slot of a versioned bucket: %v, want a refusal that names %s", err, vb)
		}
	}

	// A bucket whose versioning is turned on while it copies: the move is undone.
	ub := names[0]
	m.Progress = func(p mover.Progress) {
		if p.Objects >= 5 && p.Step == "copy" {
			m.Progress = nil
			if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(ub),
				VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
				t.Error(err)
			}
		}
	}
	if _, err := m.MoveBucket(ctx, ub, src, dst); err == nil || !strings.Contains(err.Error(), "versioning") {
		t.Errorf("a move whose bucket got versioning while it copied: %v, want a refusal that names versioning", err)
	}
	cm, err = mc.Get(ctx, &cellarv1.GetMapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if e := cm.GetBuckets()[ub]; e.GetCell() != src || e.GetState() != cellarv1.BucketState_BUCKET_STATE_NORMAL {
		t.Errorf("after the refused move the map entry is %v, want normal in %s", e, src)
	}
	if got, err := get(ctx, c, ub, "k-07"); err != nil || string(got) != "7" || servedBy != src {
		t.Errorf("k-07 after the refused move: %q from %s, %v", got, servedBy, err)
	}
	if res, err := ix.List(ctx, &cellarv1.ListRequest{Bucket: ub}); err == nil && len(res.Entries) > 0 {
		t.Errorf("the target still holds %d objects of %s after the refused move", len(res.Entries), ub)
	}
}

// repairWatch is the most a cell's repair judged lost and under-replicated in one
// pass, over the passes it made while watched.
type repairWatch struct {
	lost, underReplicated, passes int64
}

// watchRepair polls the repair status of cellID until ctx is done, then sends what
// the passes it saw reported.
func watchRepair(ctx context.Context, cl *Cluster, cellID string) <-chan repairWatch {
	out := make(chan repairWatch, 1)
	rc := cl.Repair(cellID)
	go func() {
		var w repairWatch
		first := int64(-1)
		for ctx.Err() == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			st, err := rc.Status(cctx, &cellarv1.RepairStatusRequest{})
			cancel()
			if err == nil {
				if first < 0 {
					first = st.Passes
				}
				w.passes = st.Passes - first
				w.lost = max(w.lost, st.Lost)
				w.underReplicated = max(w.underReplicated, st.UnderReplicated)
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond): // polling: a pass every 200 ms
			}
		}
		out <- w
	}()
	return out
}

// configure gives bucket tags, a CORS rule and a lifecycle rule (checkConfigured
// checks them).
func configure(t *testing.T, c *s3.Client, bucket string) {
	t.Helper()
	ctx := context.Background()
	b := aws.String(bucket)
	if _, err := c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: b, Tagging: &types.Tagging{
		TagSet: []types.Tag{{Key: aws.String("team"), Value: aws.String("noisy")}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: b, CORSConfiguration: &types.CORSConfiguration{
		CORSRules: []types.CORSRule{{ID: aws.String("app"), AllowedOrigins: []string{"https://app.example"}, AllowedMethods: []string{"GET"}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: b,
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{ID: aws.String("tmp"),
			Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("tmp/")},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(7)}}}}}); err != nil {
		t.Fatal(err)
	}
}

func checkConfigured(t *testing.T, c *s3.Client, bucket string) {
	t.Helper()
	ctx := context.Background()
	b := aws.String(bucket)
	tags, err := c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: b})
	if err != nil || len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Key) != "team" || aws.ToString(tags.TagSet[0].Value) != "noisy" {
		t.Errorf("bucket tags of %s: %v, %v; want team=noisy", bucket, tags, err)
	}
	cors, err := c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: b})
	if err != nil || len(cors.CORSRules) != 1 || aws.ToString(cors.CORSRules[0].ID) != "app" || len(cors.CORSRules[0].AllowedOrigins) != 1 ||
		cors.CORSRules[0].AllowedOrigins[0] != "https://app.example" {
		t.Errorf("CORS rules of %s: %v, %v; want the rule app", bucket, cors, err)
	}
	lc, err := c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: b})
	if err != nil || len(lc.Rules) != 1 || aws.ToString(lc.Rules[0].ID) != "tmp" || lc.Rules[0].Expiration == nil ||
		aws.ToInt32(lc.Rules[0].Expiration.Days) != 7 {
		t.Errorf("lifecycle rules of %s: %v, %v; want the rule tmp", bucket, lc, err)
	}
}

// cellmapSlot is the slot of bucket in the cell map.
func cellmapSlot(t *testing.T, rt *router.Router, bucket string) int {
	t.Helper()
	mc, err := rt.MapGroup(true)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := mc.Get(context.Background(), &cellarv1.GetMapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return cellmap.Slot(bucket, len(cm.GetSlots()))
}
