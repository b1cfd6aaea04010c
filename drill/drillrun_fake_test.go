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
)

// fakeCluster is a cluster that is only node states: stopped nodes are down, the
// first index node of each cell leads while it is up.
type fakeCluster struct {
	topo  cell.Topology
	mu    sync.Mutex
	down  map[string]bool
	calls []string
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
	return nil
}
func (f *fakeCluster) StartNode(_ context.Context, id string) error {
	f.set("start", id, false)
	return nil
}

func (f *fakeCluster) env(t *testing.T) Env {
	return Env{
		Topology: f.topo, Dir: t.TempDir(), Control: f, SampleEvery: 10 * time.Millisecond,
		Kill: func(_ context.Context, id string) error { f.set("kill", id, true); return nil },
		States: func(context.Context) ([]NodeState, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			var down []string
			for id := range f.down {
				down = append(down, id)
			}
			return states(f.topo, down...), nil
		},
		WaitHealthy: func(context.Context, string) error { return nil },
	}
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
  - assert: {quorum: lost, within: 2s}
  - assert: {cell: others, quorum: held}
  - restart: {tiers: [index, placement], cold: true, override: "after the crash"}
  - assert: {quorum: held, within: 2s}
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
	if got := kinds(rep); !strings.Contains(got, "KILL,KILL") || !strings.Contains(got, "QUORUM LOST") || !strings.Contains(got, "QUORUM RESTORED") {
		t.Errorf("timeline %s", got)
	}
	if len(rep.NodeRestarts) != 4 || rep.NodeRestarts[3].Node != "cell-1-placement-0" {
		t.Errorf("node restarts %+v", rep.NodeRestarts)
	}
	if len(rep.CellRestarts) != 1 || strings.Join(rep.CellRestarts[0].Order, ",") != "index,placement" {
		t.Errorf("cell restarts %+v", rep.CellRestarts)
	}
}

// The kill switch stops a drill before its next step; a failed expectation fails it.
func TestScenarioHaltedAndFailedChecks(t *testing.T) {
	f := &fakeCluster{topo: region(), down: map[string]bool{}}
	env := f.env(t)
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
	go func() {
		time.Sleep(20 * time.Millisecond)
		Halt(env.Dir, "real incident")
	}()
	rep, err := RunScenario(context.Background(), env, sc)
	if !errors.Is(err, ErrHalted) || rep.Outcome != "halted" {
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
