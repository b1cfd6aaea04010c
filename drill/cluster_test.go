package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/clustertest"
	"github.com/cellarsim/cellar/loadgen"
)

// clusterControl drives an in-process cluster the way the supervisor's control
// endpoint drives a local one: StartNode returns once the node is ready.
type clusterControl struct {
	cl      *clustertest.Cluster
	mu      sync.Mutex
	stopped map[string]bool
}

func (c *clusterControl) StopNode(_ context.Context, id string) error {
	c.cl.StopNode(id)
	c.mu.Lock()
	c.stopped[id] = true
	c.mu.Unlock()
	return nil
}

func (c *clusterControl) StartNode(_ context.Context, id string) error {
	c.cl.StartNode(id)
	c.mu.Lock()
	delete(c.stopped, id)
	c.mu.Unlock()
	c.cl.WaitReady(id)
	return nil
}

func (c *clusterControl) states(t *testing.T) []NodeState {
	view, err := c.cl.GatewayView()
	if err != nil {
		t.Fatal(err)
	}
	var out []NodeState
	for _, s := range c.cl.Topology.Nodes() {
		if s.Role == cell.RoleGateway {
			continue
		}
		n := view[s.ID]
		out = append(out, NodeState{ID: s.ID, Role: s.Role, Cell: s.Cell, Up: n.State == cell.StateReady, Leader: n.Leader})
	}
	return out
}

// waitHealthy: every node of the cell not stopped on purpose is ready, and the index
// has a leader.
func (c *clusterControl) waitHealthy(ctx context.Context, cellID string) error {
	for {
		err := func() error {
			view, err := c.cl.GatewayView()
			if err != nil {
				return err
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, s := range c.cl.Topology.Nodes() {
				if s.Cell == cellID && !c.stopped[s.ID] && view[s.ID].State != cell.StateReady {
					return fmt.Errorf("%s is %q", s.ID, view[s.ID].State)
				}
			}
			if c.cl.Leader(view, cellID) == "" {
				return errors.New("no index leader")
			}
			return nil
		}()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

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
	ctl := &clusterControl{cl: cl, stopped: map[string]bool{}}
	victim := cell.ID(1)

	names, home := loadgen.Buckets(topo, "drill", 2)
	cfg := loadgen.Config{
		Endpoint: cl.S3Endpoint(), AccessKey: topo.AccessKey, SecretKey: topo.SecretKey, Region: topo.Region,
		Buckets: names, BucketCell: home, Keys: 5, Sizes: loadgen.Sizes{{Bytes: 512, Weight: 1}}, Rate: 40, Duration: 14 * time.Second,
	}
	ctx := context.Background()
	if err := loadgen.Seed(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	type result struct {
		res *loadgen.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := loadgen.Run(ctx, cfg)
		done <- result{res, err}
	}()
	time.Sleep(2 * time.Second)

	dir := t.TempDir()
	x := &Executor{Dir: dir, Audit: OpenAudit(dir), Control: ctl, WaitHealthy: ctl.waitHealthy, HealthTimeout: 20 * time.Second,
		Command: "drain", Reason: "drill"}
	req := Request{Cell: victim, Tier: cell.RoleIndex, Count: 2}
	plan, err := PlanDrain(topo, ctl.states(t), Policy{}, req)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Allowed() || plan.KeepsQuorum {
		t.Fatalf("the typo'd drain is allowed: %+v", plan)
	}
	if rules := plan.Refusals(); len(rules) == 0 || rules[0].Rule != RuleFloor {
		t.Errorf("refusals %+v, want the floor first", rules)
	}
	if _, err := x.Drain(ctx, plan); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("refused plan ran: %v", err)
	}
	if len(ctl.stopped) != 0 {
		t.Fatalf("the refused plan stopped %v", ctl.stopped)
	}

	req.Override = "replay 2017"
	plan, err = PlanDrain(topo, ctl.states(t), Policy{}, req)
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
	time.Sleep(4 * time.Second)
	if _, err := x.Undrain(ctx, "undrain", victim, plan.Nodes); err != nil {
		t.Fatal(err)
	}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := ctl.waitHealthy(hctx, victim); err != nil {
		t.Fatalf("%s not healthy after undrain: %v", victim, err)
	}
	restored := time.Since(drained)

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
	entries, err := ReadAudit(dir)
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

func mustView(t *testing.T, cl *clustertest.Cluster) map[string]cell.Node {
	v, err := cl.GatewayView()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
