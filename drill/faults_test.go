package drill

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

// A cluster that cannot cut networks or pause nodes refuses a scenario that asks for
// it before any step runs: no node is touched and nothing is audited.
func TestFaultStepsRefusedWhereTheyCannotRun(t *testing.T) {
	for _, step := range []string{"partition: {leader: true}", "heal: {}", "pause: {tier: storage, count: 1}", "unpause: {}"} {
		t.Run(strings.Fields(step)[0], func(t *testing.T) {
			f := &fakeCluster{topo: region(), down: map[string]bool{}}
			sc, err := ParseScenario([]byte("name: f\nsteps:\n  - kill: {tier: index, count: 1}\n  - " + step + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			env := f.env(t)
			rep, err := RunScenario(context.Background(), env, sc)
			if rep != nil || !errors.Is(err, ErrCannotFault) || !strings.Contains(err.Error(), "--cluster compose:") {
				t.Fatalf("RunScenario = %v, %v; want no report and ErrCannotFault naming --cluster compose:", rep, err)
			}
			if strings.Contains(step, "partition") && !strings.Contains(err.Error(), "cannot cut networks") {
				t.Errorf("error %q does not say the cluster cannot cut networks", err)
			}
			if len(f.calls) > 0 {
				t.Errorf("nodes acted on: %v", f.calls)
			}
			if d := decisions(t, env.Dir); d != "" {
				t.Errorf("audit log: %q, want nothing", d)
			}
		})
	}
}

func TestFaultStepsParse(t *testing.T) {
	for _, tt := range []struct {
		step string
		ok   bool
	}{
		{"partition: {leader: true}", true},
		{"partition: {nodes: [cell-1-index-0, cell-1-index-1]}", true},
		{"partition: {tier: index, count: 2}", true},
		{"partition: {}", false},
		{"partition: {leader: true, nodes: [cell-1-index-0]}", false},
		{"partition: {tier: gateway, count: 1}", false},
		{"pause: {tier: storage}", false},
		{"heal: {}", true},
		{"unpause: {nodes: [cell-1-storage-0]}", true},
		{"assert: {leader: moved, within: 5s}", true},
		{"assert: {leader: stays}", false},
	} {
		_, err := ParseScenario([]byte("name: f\nsteps:\n  - " + tt.step + "\n"))
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v, want ok=%v", tt.step, err, tt.ok)
		}
	}
}

// partitionCluster is a fakeCluster that can cut nodes off: a cut index node leads no
// more, and the first index node of its cell that is not cut leads instead.
type partitionCluster struct {
	*fakeCluster
	cut map[string]bool
}

func (p *partitionCluster) Nodes(ctx context.Context) ([]cell.NodeStatus, error) {
	nodes, _ := p.fakeCluster.Nodes(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	led := map[string]bool{}
	for i, n := range nodes {
		if n.Role != cell.RoleIndex {
			continue
		}
		nodes[i].Leader = !p.cut[n.ID] && !led[n.Cell] && n.Running
		led[n.Cell] = led[n.Cell] || nodes[i].Leader
	}
	return nodes, nil
}

func (p *partitionCluster) Partition(_ context.Context, ids []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		p.cut[id] = true
		p.calls = append(p.calls, "partition "+id)
	}
	return nil
}

func (p *partitionCluster) Heal(_ context.Context, ids []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		delete(p.cut, id)
		p.calls = append(p.calls, "heal "+id)
	}
	return nil
}

// The index-partition scenario's steps on a cluster that can cut networks: the leader
// is cut off, another node leads, the heal joins it back; each node acted on is
// audited and on the timeline.
func TestPartitionOfTheLeader(t *testing.T) {
	p := &partitionCluster{fakeCluster: &fakeCluster{topo: region(), down: map[string]bool{}}, cut: map[string]bool{}}
	sc, err := ParseScenario([]byte(`
name: p
target: cell-2
steps:
  - partition: {leader: true}
  - assert: {leader: moved, within: 1m}
  - assert: {quorum: held}
  - heal: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	env := p.env(t)
	env.Cluster = p
	rep, err := RunScenario(context.Background(), env, sc)
	if err != nil {
		t.Fatalf("%v\n%s", err, kinds(rep))
	}
	if got, want := strings.Join(p.calls, ","), "partition cell-2-index-0,heal cell-2-index-0"; got != want {
		t.Errorf("calls %q, want %q", got, want)
	}
	for _, c := range rep.Checks {
		if !c.OK {
			t.Errorf("check failed: %s: %s", c.What, c.Detail)
		}
	}
	k := kinds(rep)
	for _, want := range []string{"PARTITION", "LEADER", "HEAL"} {
		if !slices.Contains(strings.Split(k, ","), want) {
			t.Errorf("timeline %s has no %s", k, want)
		}
	}
	if d := decisions(t, env.Dir); !strings.Contains(d, "step cell-2-index-0,") || strings.Count(d, "step cell-2-index-0") != 2 {
		t.Errorf("audit log %q: want a step entry for the partition and for the heal", d)
	}
	if len(rep.LeftDown) > 0 {
		t.Errorf("left down: %v", rep.LeftDown)
	}
}
