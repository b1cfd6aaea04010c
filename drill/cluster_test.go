package drill

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/clustertest"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/internal/testwait"
	"github.com/cellarsim/cellar/loadgen"
)

// The 2017 drill on two cells under load: the mistyped drain of two of a cell's three
// index nodes is refused and changes nothing; with an override it runs, the cell loses
// quorum, and only that cell's requests fail; undrain brings it back.
func TestDrainDrillUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.PlacementNodes, topo.StorageNodes = 2, 3, 1, 2
	cl := clustertest.Start(t, topo)
	ctl := cl.Control()
	victim := cell.ID(1)

	names, home := loadgen.Buckets(topo, "drill", 2)
	cfg := loadgen.Config{
		Endpoint: cl.S3Endpoint(), AccessKey: cl.Topology.AccessKey, SecretKey: cl.Topology.SecretKey, Region: topo.Region,
		Buckets: names, BucketCell: home, Keys: 5, Sizes: loadgen.Sizes{{Bytes: 512, Weight: 1}}, Rate: 40, Duration: 3 * time.Minute,
	}
	var seen observed
	cfg.Observe, cfg.ProgressEvery = seen.observe, 250*time.Millisecond
	ctx := context.Background()
	if err := loadgen.Seed(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	type result struct {
		res *loadgen.Result
		err error
	}
	done := make(chan result, 1)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	go func() {
		res, err := loadgen.Run(loadCtx, cfg)
		done <- result{res, err}
	}()
	// The load runs in both cells before anything is drained.
	seen.wait(t, "load in every cell", func(cells map[string]loadgen.Summary) bool {
		return cells[cell.ID(0)].OK > 20 && cells[victim].OK > 20
	})

	dir := t.TempDir()
	x := &guard.Executor{Dir: dir, Audit: guard.OpenAudit(dir), Cluster: ctl, HealthTimeout: 20 * time.Second,
		Command: "drain", Reason: "drill"}
	req := guard.Request{Cell: victim, Tier: cell.RoleIndex, Count: 2}
	plan, err := guard.PlanDrain(topo, mustNodes(t, ctl), guard.Policy{}, req)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Allowed() || plan.KeepsQuorum {
		t.Fatalf("the typo'd drain is allowed: %+v", plan)
	}
	if rules := plan.Refusals(); len(rules) == 0 || rules[0].Rule != guard.RuleFloor {
		t.Errorf("refusals %+v, want the floor first", rules)
	}
	if _, err := x.Drain(ctx, plan); !errors.Is(err, guard.ErrNotAllowed) {
		t.Fatalf("refused plan ran: %v", err)
	}
	for _, n := range mustNodes(t, ctl) {
		if !n.Running {
			t.Fatalf("the refused plan stopped %s", n.ID)
		}
	}

	req.Override = "replay 2017"
	plan, err = guard.PlanDrain(topo, mustNodes(t, ctl), guard.Policy{}, req)
	if err != nil || !plan.Allowed() || !plan.FloorLifted() {
		t.Fatalf("with override: %+v, %v", plan, err)
	}
	if leader := cl.Leader(mustView(t, cl), victim); slices.Contains(plan.Nodes, leader) {
		t.Errorf("the plan %v takes the leader %s: the two followers should go", plan.Nodes, leader)
	}
	drained := time.Now()
	if _, err := x.Drain(ctx, plan); err != nil {
		t.Fatal(err)
	}
	seen.wait(t, victim+" failing", func(cells map[string]loadgen.Summary) bool {
		return cells[victim].ErrorCodes["ServiceUnavailable"] > 10
	})
	if _, err := x.Undrain(ctx, guard.PlanUndrain(victim, plan.Nodes)); err != nil {
		t.Fatal(err)
	}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cell.WaitSettled(hctx, ctl, victim); err != nil {
		t.Fatalf("%s not healthy after undrain: %v", victim, err)
	}
	restored := time.Since(drained)
	// Then the load goes on until the cell has served a few seconds' worth again.
	var before int64
	seen.wait(t, "load", func(cells map[string]loadgen.Summary) bool { before = cells[victim].OK; return true })
	seen.wait(t, victim+" serving again", func(cells map[string]loadgen.Summary) bool {
		return cells[victim].OK > before+40
	})
	stopLoad()

	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	res := r.res
	healthy := res.Cells[cell.ID(0)]
	hit := res.Cells[victim]
	t.Logf("drain to restored: %v; %s: %+v; %s: %+v", restored.Round(time.Millisecond), cell.ID(0), healthy.Summary, victim, hit.Summary)
	if healthy.Errors != 0 || healthy.OK == 0 {
		t.Errorf("%s, not drained, had errors: %+v", cell.ID(0), healthy.Summary)
	}
	if hit.ErrorCodes["ServiceUnavailable"] == 0 {
		t.Errorf("%s lost quorum but no request failed with ServiceUnavailable: %+v", victim, hit.Summary)
	}
	if res.Overall.Errors != hit.Errors {
		t.Errorf("errors outside %s: %d overall, %d in it", victim, res.Overall.Errors, hit.Errors)
	}
	// The cell recovered: its last seconds of load succeed.
	last := hit.Series[len(hit.Series)-1]
	if last.Errors != 0 {
		t.Errorf("%s still failing at the end of the load: %+v", victim, last)
	}
	entries, err := guard.ReadAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, e := range entries {
		ds = append(ds, e.Decision)
	}
	if got := strings.Join(ds, ","); got != "step,step,done,step,step,done" {
		t.Errorf("audit %s", got)
	}
}

// observed keeps the load's latest per-cell totals, for waits on what the load saw.
type observed struct {
	mu    sync.Mutex
	cells map[string]loadgen.Summary
}

func (o *observed) observe(_ loadgen.Summary, cells map[string]loadgen.Summary) {
	o.mu.Lock()
	o.cells = cells
	o.mu.Unlock()
}

// wait returns once cond holds of the load's totals; it fails the test after a minute.
func (o *observed) wait(t *testing.T, what string, cond func(map[string]loadgen.Summary) bool) {
	t.Helper()
	testwait.Until(t, time.Minute, what, func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.cells != nil && cond(o.cells)
	})
}

func mustNodes(t *testing.T, c cell.Cluster) []cell.NodeStatus {
	t.Helper()
	nodes, err := c.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}

func mustView(t *testing.T, cl *clustertest.Cluster) map[string]cell.Node {
	v, err := cl.GatewayView()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
