package localcluster_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/localcluster"
)

// heldCluster is a cluster of one cell whose stops wait until the test lets them go.
type heldCluster struct {
	topo    cell.Topology
	mu      sync.Mutex
	states  []cell.NodeStatus
	stopped chan string   // a stop has begun
	release chan struct{} // lets the stops finish
}

func newHeldCluster() *heldCluster {
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.PlacementNodes, topo.StorageNodes = 1, 3, 1, 2
	h := &heldCluster{topo: topo, stopped: make(chan string, 8), release: make(chan struct{})}
	for _, s := range topo.Nodes() {
		if s.Role != cell.RoleGateway {
			h.states = append(h.states, cell.NodeStatus{ID: s.ID, Role: s.Role, Cell: s.Cell, Running: true, State: cell.StateReady,
				Leader: s.ID == cell.NodeID(s.Cell, cell.RoleIndex, 0)})
		}
	}
	return h
}

func (h *heldCluster) Topology() cell.Topology { return h.topo }

func (h *heldCluster) Nodes(context.Context) ([]cell.NodeStatus, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]cell.NodeStatus(nil), h.states...), nil
}

func (h *heldCluster) StopNode(_ context.Context, id string) error {
	h.stopped <- id
	<-h.release
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.states {
		if h.states[i].ID == id {
			h.states[i].Running, h.states[i].State = false, ""
		}
	}
	return nil
}

func (h *heldCluster) KillNode(ctx context.Context, id string) error { return h.StopNode(ctx, id) }
func (h *heldCluster) StartNode(context.Context, string) error       { return nil }

func (h *heldCluster) procs() []localcluster.Node {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []localcluster.Node
	for _, s := range h.states {
		p := localcluster.ProcStopped
		if s.Running {
			p = localcluster.ProcRunning
		}
		out = append(out, localcluster.Node{ID: s.ID, Role: s.Role, Cell: s.Cell, Process: p})
	}
	return out
}

// The plan reaches the client before anything is done, and each step as it happens;
// while a plan takes capacity out, no other removal may start, so that two together
// cannot cross a floor that each alone keeps.
func TestControlStreamsAPlanAndRunsOneRemovalAtATime(t *testing.T) {
	h := newHeldCluster()
	dir := t.TempDir()
	srv := httptest.NewServer(localcluster.NewControlHandler(localcluster.ControlConfig{
		Dir: dir, Cluster: h, Procs: h.procs, Token: "t"}))
	defer srv.Close()
	ctl, err := localcluster.NewControl(&localcluster.ClusterFile{Running: true, ControlAddr: strings.TrimPrefix(srv.URL, "http://"), ControlToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ctl.Caller = localcluster.Caller{Command: "test", Reason: "test"}
	ctx := context.Background()

	shown := make(chan *guard.Plan, 1)
	type outcome struct {
		res *guard.Result
		err error
	}
	done := make(chan outcome, 1)
	var progress strings.Builder
	go func() {
		res, err := ctl.RunPlan(ctx, localcluster.PlanRequest{Action: guard.ActionDrain, Cell: "cell-0", Tier: cell.RoleIndex,
			Count: 1, Auto: true, Reason: "rotate", Command: "test drain"}, func(p *guard.Plan) { shown <- p }, &progress)
		done <- outcome{res, err}
	}()
	p := <-shown
	if stopping := <-h.stopped; len(p.Nodes) != 1 || p.Nodes[0] != stopping {
		t.Fatalf("plan %v shown; the stop under way is of %s", p.Nodes, stopping)
	}

	// Another removal meanwhile, of a storage node this time, is refused and audited.
	other := cell.NodeID("cell-0", cell.RoleStorage, 0)
	if err := ctl.StopNode(ctx, other); !errors.Is(err, localcluster.ErrBusy) || !strings.Contains(err.Error(), "test drain") {
		t.Errorf("a stop while a drain runs: %v", err)
	}
	es, _ := guard.ReadAudit(dir)
	if last := es[len(es)-1]; last.Decision != guard.DecisionRefused || last.Node != other {
		t.Errorf("the busy refusal audited as %+v", last)
	}

	close(h.release)
	out := <-done
	if out.err != nil || out.res == nil || !out.res.Executed || len(out.res.Steps) != 1 || !strings.Contains(progress.String(), "stop "+p.Nodes[0]+": done") {
		t.Fatalf("drain: %+v, %v; progress %q", out.res, out.err, progress.String())
	}
	// Now it may go.
	if err := ctl.StopNode(ctx, other); err != nil {
		t.Errorf("a stop once the drain is done: %v", err)
	}
}
