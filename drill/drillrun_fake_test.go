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
	"github.com/cellarsim/cellar/drill/guard"
)

// region is the default shape: 4 cells × (3 index, 1 placement, 2 storage).
func region() cell.Topology {
	t := cell.DefaultTopology()
	t.Cells, t.IndexNodes, t.PlacementNodes, t.StorageNodes = 4, 3, 1, 2
	return t
}

// states lists every node of topo as ready, the first index node of each cell
// leading, except the ids in down, which are stopped.
func states(topo cell.Topology, down ...string) []cell.NodeStatus {
	var out []cell.NodeStatus
	for _, s := range topo.Nodes() {
		if s.Role == cell.RoleGateway {
			continue
		}
		n := cell.NodeStatus{ID: s.ID, Role: s.Role, Cell: s.Cell, Running: true, State: cell.StateReady}
		n.Leader = s.Role == cell.RoleIndex && s.ID == cell.NodeID(s.Cell, cell.RoleIndex, 0)
		if slices.Contains(down, s.ID) {
			n.Running, n.State, n.Leader = false, "", false
		}
		out = append(out, n)
	}
	return out
}

// decisions is the audit log of dir as "decision node" pairs.
func decisions(t *testing.T, dir string) string {
	t.Helper()
	es, err := guard.ReadAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, strings.TrimSpace(e.Decision+" "+e.Node))
	}
	return strings.Join(out, ",")
}

// fakeCluster is a cluster that is only node states: stopped nodes are down, the
// first index node of each cell leads while it is up. haltOnStop, when set, is a
// data directory whose kill switch the first stop sets.
type fakeCluster struct {
	topo       cell.Topology
	mu         sync.Mutex
	down       map[string]bool
	calls      []string
	haltOnStop string
}

func (f *fakeCluster) Topology() cell.Topology { return f.topo }

func (f *fakeCluster) Nodes(context.Context) ([]cell.NodeStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var down []string
	for id := range f.down {
		down = append(down, id)
	}
	return states(f.topo, down...), nil
}

func (f *fakeCluster) set(action, id string, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, action+" "+id)
	if down {
		f.down[id] = true
	} else {
		delete(f.down, id)
	}
}

func (f *fakeCluster) StopNode(_ context.Context, id string) error {
	f.set("stop", id, true)
	if f.haltOnStop != "" {
		return guard.Halt(f.haltOnStop, "real incident")
	}
	return nil
}

func (f *fakeCluster) KillNode(_ context.Context, id string) error {
	f.set("kill", id, true)
	return nil
}
func (f *fakeCluster) StartNode(_ context.Context, id string) error {
	f.set("start", id, false)
	return nil
}

func (f *fakeCluster) env(t *testing.T) Env {
	return Env{Topology: f.topo, Dir: t.TempDir(), Cluster: f, SampleEvery: 10 * time.Millisecond}
}

func kinds(r *Report) string {
	var out []string
	for _, e := range r.Timeline {
		out = append(out, e.Kind)
	}
	return strings.Join(out, ",")
}

// A crash (kill) takes a cell's index below quorum; the restart that follows starts
// the killed nodes too, the index first.
func TestScenarioKillAndRestart(t *testing.T) {
	f := &fakeCluster{topo: region(), down: map[string]bool{}}
	sc, err := ParseScenario([]byte(`
name: kill
target: cell-1
steps:
  - kill: {tier: index, count: 2}
  - assert: {quorum: lost, within: 1m}
  - assert: {cell: others, quorum: held}
  - restart: {tiers: [index, placement], cold: true, override: "after the crash"}
  - assert: {quorum: held, within: 1m}
`))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := RunScenario(context.Background(), f.env(t), sc)
	if err != nil {
		t.Fatalf("%v\n%s", err, kinds(rep))
	}
	if strings.Join(rep.Tested, ",") != "cell-1" || rep.Outcome != "completed" || len(rep.LeftDown) != 0 {
		t.Errorf("report %+v", rep)
	}
	// Followers are killed, not the leader; the restart stops only what still runs.
	wantKills := []string{"kill cell-1-index-1", "kill cell-1-index-2"}
	if !slices.Equal(f.calls[:2], wantKills) {
		t.Errorf("calls %v", f.calls)
	}
	for _, c := range f.calls[2:] {
		if c == "stop cell-1-index-1" || c == "stop cell-1-index-2" {
			t.Errorf("%s: it was already down", c)
		}
	}
	// The sampler may record the quorum's loss between the two kills: count them,
	// do not expect them side by side.
	if got := kinds(rep); strings.Count(got, "KILL") != 2 || !strings.Contains(got, "QUORUM LOST") || !strings.Contains(got, "QUORUM RESTORED") {
		t.Errorf("timeline %s", got)
	}
	if len(rep.NodeRestarts) != 4 || rep.NodeRestarts[3].Node != "cell-1-placement-0" {
		t.Errorf("node restarts %+v", rep.NodeRestarts)
	}
	if len(rep.CellRestarts) != 1 || strings.Join(rep.CellRestarts[0].Order, ",") != "index,placement" {
		t.Errorf("cell restarts %+v", rep.CellRestarts)
	}
	// The cell was down from its quorum lost to restored.
	if d := rep.Downtime; len(d) != 1 || d[0].Cell != "cell-1" || d[0].Basis != DownQuorum || !d[0].Restored || d[0].Took() <= 0 {
		t.Errorf("downtime %+v", d)
	}
}

// The kill switch stops a drill before its next step; a failed expectation fails it.
func TestScenarioHaltedAndFailedChecks(t *testing.T) {
	f := &fakeCluster{topo: region(), down: map[string]bool{}}
	env := f.env(t)
	f.haltOnStop = env.Dir // an operator halts drills while the first drain runs
	sc, err := ParseScenario([]byte(`
name: halted
steps:
  - drain: {tier: index, count: 1, expect: refused}
  - wait: 50ms
  - drain: {tier: index, count: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := RunScenario(context.Background(), env, sc)
	if !errors.Is(err, guard.ErrHalted) || rep.Outcome != "halted" {
		t.Fatalf("%v, outcome %s", err, rep.Outcome)
	}
	// The one-node drain was allowed and ran, against the expectation.
	if len(rep.Checks) != 1 || rep.Checks[0].OK {
		t.Errorf("checks %+v", rep.Checks)
	}
	if len(rep.LeftDown) != 1 {
		t.Errorf("left down %v", rep.LeftDown)
	}
	if d := decisions(t, env.Dir); !strings.Contains(d, "aborted") {
		t.Errorf("audit %s", d)
	}
}
