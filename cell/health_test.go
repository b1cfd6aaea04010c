package cell_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

// ns builds the status of one node of cell-1: running and in the state given ("" for a
// node the gossip does not show).
func ns(role cell.Role, i int, state cell.State) cell.NodeStatus {
	return cell.NodeStatus{ID: cell.NodeID("cell-1", role, i), Role: role, Cell: "cell-1", Running: true, State: state}
}

func leader(n cell.NodeStatus) cell.NodeStatus { n.Leader = true; return n }

func stopped(n cell.NodeStatus) cell.NodeStatus { n.Running = false; return n }

// healthyCell is every node of cell-1 in topo, ready, with index-0 leading a
// replicated group.
func healthyCell(topo cell.Topology) []cell.NodeStatus {
	var out []cell.NodeStatus
	for _, role := range cell.Tiers {
		for i := range topo.Declared(role) {
			n := ns(role, i, cell.StateReady)
			n.Leader = role == cell.RoleIndex && i == 0 && topo.IndexNodes > 1
			out = append(out, n)
		}
	}
	return out
}

// without drops the nodes with the given ids.
func without(nodes []cell.NodeStatus, ids ...string) []cell.NodeStatus {
	return slices.DeleteFunc(slices.Clone(nodes), func(n cell.NodeStatus) bool { return slices.Contains(ids, n.ID) })
}

// with replaces the nodes of the same ids.
func with(nodes []cell.NodeStatus, repl ...cell.NodeStatus) []cell.NodeStatus {
	out := slices.Clone(nodes)
	for _, r := range repl {
		for i := range out {
			if out[i].ID == r.ID {
				out[i] = r
			}
		}
	}
	return out
}

func TestJudgeCell(t *testing.T) {
	three := cell.Topology{Cells: 3, IndexNodes: 3, PlacementNodes: 1, StorageNodes: 2}
	one := cell.Topology{Cells: 3, IndexNodes: 1, PlacementNodes: 1, StorageNodes: 2}
	full3, full1 := healthyCell(three), healthyCell(one)
	idx := func(i int) string { return cell.NodeID("cell-1", cell.RoleIndex, i) }

	type want struct {
		health   cell.Health
		reason   string // a part of the reason; "" wants none
		quorum   cell.Quorum
		failing  map[string][]cell.Role // operations that fail and what they miss; the rest work
		settled  string                 // a part of Settled's error; "" wants nil
		ready    map[cell.Role]int
		declared int // nodes of every tier the topology gives the cell
	}
	allOps := func(missing ...cell.Role) map[string][]cell.Role {
		m := map[string][]cell.Role{}
		for _, op := range cell.Operations {
			var miss []cell.Role
			for _, r := range op.Needs {
				if slices.Contains(missing, r) {
					miss = append(miss, r)
				}
			}
			if len(miss) > 0 {
				m[op.Name] = miss
			}
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		topo  cell.Topology
		nodes []cell.NodeStatus
		want  want
	}{
		{
			name: "every node ready, with a leader", topo: three, nodes: full3,
			want: want{health: cell.HealthServing, quorum: cell.Quorum{Declared: 3, Ready: 3, Need: 2, Leader: idx(0), Held: true},
				ready: map[cell.Role]int{cell.RoleIndex: 3, cell.RolePlacement: 1, cell.RoleStorage: 2}, declared: 6},
		},
		{
			// The view started after two index nodes died: it never heard of them.
			name: "two of three index nodes missing entirely", topo: three, nodes: without(full3, idx(1), idx(2)),
			want: want{health: cell.HealthDown, reason: "index has no quorum (1 of 3 ready, 2 needed)",
				quorum: cell.Quorum{Declared: 3, Ready: 1, Need: 2, Leader: idx(0)}, failing: allOps(cell.RoleIndex),
				settled: "the index of cell-1 has no quorum (1 of 3 ready, 2 needed)", declared: 6},
		},
		{
			name: "no index node listed at all", topo: three, nodes: without(full3, idx(0), idx(1), idx(2)),
			want: want{health: cell.HealthDown, reason: "no quorum (0 of 3 ready, 2 needed)",
				quorum: cell.Quorum{Declared: 3, Need: 2}, failing: allOps(cell.RoleIndex), settled: "no quorum", declared: 6},
		},
		{
			name: "one index node missing: quorum held, cell degraded", topo: three, nodes: without(full3, idx(2)),
			want: want{health: cell.HealthDegraded, reason: "1 of 6 nodes not ready",
				quorum: cell.Quorum{Declared: 3, Ready: 2, Need: 2, Leader: idx(0), Held: true}, declared: 6},
		},
		{
			name: "majority ready but no leader", topo: three,
			nodes: with(full3, ns(cell.RoleIndex, 0, cell.StateReady)),
			want: want{health: cell.HealthDown, reason: "index has no leader (3 of 3 ready)",
				quorum: cell.Quorum{Declared: 3, Ready: 3, Need: 2}, failing: allOps(cell.RoleIndex),
				settled: "the index of cell-1 has no leader", declared: 6},
		},
		{
			name: "a leader that is not ready does not lead", topo: three,
			nodes: with(full3, leader(ns(cell.RoleIndex, 0, cell.StateDraining))),
			want: want{health: cell.HealthDown, reason: "no leader (2 of 3 ready)",
				quorum: cell.Quorum{Declared: 3, Ready: 2, Need: 2}, failing: allOps(cell.RoleIndex),
				settled: "has no leader", declared: 6},
		},
		{
			name: "more ready index nodes than declared count as the declared", topo: three,
			nodes: append(slices.Clone(full3), ns(cell.RoleIndex, 3, cell.StateReady)),
			want: want{health: cell.HealthServing, quorum: cell.Quorum{Declared: 3, Ready: 3, Need: 2, Leader: idx(0), Held: true},
				ready: map[cell.Role]int{cell.RoleIndex: 4, cell.RolePlacement: 1, cell.RoleStorage: 2}, declared: 6},
		},
		{
			name: "a group of one needs no leader", topo: one, nodes: full1,
			want: want{health: cell.HealthServing, quorum: cell.Quorum{Declared: 1, Ready: 1, Need: 1, Held: true}, declared: 4},
		},
		{
			name: "a group of one rebuilding", topo: one, nodes: with(full1, ns(cell.RoleIndex, 0, cell.StateRebuilding)),
			want: want{health: cell.HealthDown, reason: "no quorum (0 of 1 ready, 1 needed)",
				quorum: cell.Quorum{Declared: 1, Need: 1}, failing: allOps(cell.RoleIndex),
				settled: "no quorum", declared: 4},
		},
		{
			name: "no storage node ready", topo: one,
			nodes: without(full1, cell.NodeID("cell-1", cell.RoleStorage, 0), cell.NodeID("cell-1", cell.RoleStorage, 1)),
			want: want{health: cell.HealthDown, reason: "no storage node ready: GET and PUT fail",
				quorum: cell.Quorum{Declared: 1, Ready: 1, Need: 1, Held: true}, failing: allOps(cell.RoleStorage), declared: 4},
		},
		{
			name: "one of two storage nodes stopped", topo: one,
			nodes: with(full1, stopped(ns(cell.RoleStorage, 1, ""))),
			want: want{health: cell.HealthDegraded, reason: "1 of 4 nodes not ready",
				quorum: cell.Quorum{Declared: 1, Ready: 1, Need: 1, Held: true}, declared: 4},
		},
		{
			name: "no placement: reads served, PUT refused", topo: one,
			nodes: with(full1, ns(cell.RolePlacement, 0, cell.StateStarting)),
			want: want{health: cell.HealthDegraded, reason: "no placement node ready: PUT refused",
				quorum: cell.Quorum{Declared: 1, Ready: 1, Need: 1, Held: true}, failing: allOps(cell.RolePlacement),
				settled: "cell-1-placement-0 is starting", declared: 4},
		},
		{
			name: "no index and no storage: every operation fails", topo: one,
			nodes: []cell.NodeStatus{ns(cell.RolePlacement, 0, cell.StateReady)},
			want: want{health: cell.HealthDown, reason: "index has no quorum",
				quorum: cell.Quorum{Declared: 1, Need: 1}, failing: allOps(cell.RoleIndex, cell.RoleStorage),
				settled: "no quorum", declared: 4},
		},
		{
			name: "nodes of other cells and gateways do not count", topo: one,
			nodes: []cell.NodeStatus{
				{ID: "cell-0-index-0", Role: cell.RoleIndex, Cell: "cell-0", Running: true, State: cell.StateReady},
				{ID: "cell-0-storage-0", Role: cell.RoleStorage, Cell: "cell-0", Running: true, State: cell.StateReady},
				{ID: "gateway-0", Role: cell.RoleGateway, Running: true, State: cell.StateReady},
				{ID: "status-1", Role: cell.RoleObserver, Cell: "cell-1", Running: true, State: cell.StateReady},
			},
			want: want{health: cell.HealthDown, quorum: cell.Quorum{Declared: 1, Need: 1}, reason: "no quorum",
				failing: allOps(cell.RoleIndex, cell.RolePlacement, cell.RoleStorage), settled: "no quorum", declared: 4},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := cell.JudgeCell(tc.topo, "cell-1", tc.nodes)
			w := tc.want
			if h.Cell != "cell-1" || h.Health != w.health {
				t.Errorf("health of %s = %s (%s), want %s", h.Cell, h.Health, h.Reason, w.health)
			}
			switch {
			case w.reason == "" && h.Reason != "":
				t.Errorf("reason %q, want none", h.Reason)
			case !strings.Contains(h.Reason, w.reason):
				t.Errorf("reason %q, want it to say %q", h.Reason, w.reason)
			}
			if h.Index != w.quorum {
				t.Errorf("index = %+v, want %+v", h.Index, w.quorum)
			}
			if len(h.Operations) != len(cell.Operations) {
				t.Fatalf("%d operations judged, want %d", len(h.Operations), len(cell.Operations))
			}
			for _, op := range h.Operations {
				missing, fails := w.failing[op.Name]
				if op.OK == fails || !slices.Equal(op.Missing, missing) {
					t.Errorf("%s: ok %v missing %v; want ok %v missing %v", op.Name, op.OK, op.Missing, !fails, missing)
				}
			}
			if w.ready != nil && !mapsEqual(h.Ready, w.ready) {
				t.Errorf("ready = %v, want %v", h.Ready, w.ready)
			}
			declared := 0
			for _, n := range h.Declared {
				declared += n
			}
			if declared != w.declared {
				t.Errorf("declared %v (%d nodes), want %d", h.Declared, declared, w.declared)
			}
			err := h.Settled()
			switch {
			case w.settled == "" && err != nil:
				t.Errorf("Settled = %v, want nil", err)
			case w.settled != "" && (err == nil || !strings.Contains(err.Error(), w.settled)):
				t.Errorf("Settled = %v, want an error saying %q", err, w.settled)
			}
		})
	}
}

func mapsEqual(a, b map[cell.Role]int) bool {
	for _, r := range cell.Tiers {
		if a[r] != b[r] {
			return false
		}
	}
	return true
}

func TestUnsettled(t *testing.T) {
	topo := cell.Topology{Cells: 2, IndexNodes: 1, PlacementNodes: 1, StorageNodes: 2}
	full := healthyCell(topo)
	st1 := cell.NodeID("cell-1", cell.RoleStorage, 1)
	for _, tc := range []struct {
		name string
		node cell.NodeStatus
		want string // "" wants the cell settled
	}{
		{"running and ready", ns(cell.RoleStorage, 1, cell.StateReady), ""},
		{"stopped and gone from the gossip", stopped(ns(cell.RoleStorage, 1, "")), ""},
		{"stopped, gossiped draining", stopped(ns(cell.RoleStorage, 1, cell.StateDraining)), ""},
		{"running but not in the gossip yet", ns(cell.RoleStorage, 1, ""), st1 + " is not seen"},
		{"running and still rebuilding", ns(cell.RoleStorage, 1, cell.StateRebuilding), st1 + " is rebuilding"},
		{"stopped but still gossiped ready", stopped(ns(cell.RoleStorage, 1, cell.StateReady)), st1 + " is stopped but still shown ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := cell.JudgeCell(topo, "cell-1", with(full, tc.node))
			if h.Unsettled != tc.want {
				t.Errorf("Unsettled = %q, want %q", h.Unsettled, tc.want)
			}
			err := h.Settled()
			if (tc.want == "") != (err == nil) || (err != nil && err.Error() != tc.want) {
				t.Errorf("Settled = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestMajority(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 7: 4} {
		if got := cell.Majority(n); got != want {
			t.Errorf("Majority(%d) = %d, want %d", n, got, want)
		}
	}
	if got := (cell.Topology{IndexNodes: 5}).IndexQuorumNeeded(); got != 3 {
		t.Errorf("IndexQuorumNeeded of 5 = %d, want 3", got)
	}
}

// fakeCluster is a Cluster whose nodes' statuses a test script changes: each call to
// Nodes runs next (if set) before answering.
type fakeCluster struct {
	topo  cell.Topology
	mu    sync.Mutex
	nodes []cell.NodeStatus
	err   error
	calls int
	next  func(f *fakeCluster) // called with mu held, before each answer
}

func (f *fakeCluster) Topology() cell.Topology { return f.topo }
func (f *fakeCluster) Nodes(ctx context.Context) ([]cell.NodeStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.next != nil {
		f.next(f)
	}
	if f.err != nil {
		return nil, f.err
	}
	return slices.Clone(f.nodes), nil
}
func (f *fakeCluster) StopNode(context.Context, string) error  { return cell.ErrUnsupported }
func (f *fakeCluster) KillNode(context.Context, string) error  { return cell.ErrUnsupported }
func (f *fakeCluster) StartNode(context.Context, string) error { return cell.ErrUnsupported }

func TestWaitSettled(t *testing.T) {
	topo := cell.Topology{Cells: 2, IndexNodes: 3, PlacementNodes: 1, StorageNodes: 1}
	full := healthyCell(topo)
	noLeader := with(full, ns(cell.RoleIndex, 0, cell.StateReady))
	rebuilding := with(full, ns(cell.RoleIndex, 2, cell.StateRebuilding))

	t.Run("settles once the leader is elected and the last node ready", func(t *testing.T) {
		f := &fakeCluster{topo: topo, nodes: noLeader, next: func(f *fakeCluster) {
			switch f.calls {
			case 2:
				f.nodes = rebuilding
			case 4:
				f.nodes = full
			}
		}}
		if err := cell.WaitSettled(context.Background(), f, "cell-1"); err != nil {
			t.Fatalf("WaitSettled = %v", err)
		}
		if f.calls != 4 {
			t.Errorf("settled after %d looks, want 4", f.calls)
		}
	})

	t.Run("already settled returns at once", func(t *testing.T) {
		f := &fakeCluster{topo: topo, nodes: full}
		if err := cell.WaitSettled(context.Background(), f, "cell-1"); err != nil || f.calls != 1 {
			t.Errorf("WaitSettled = %v after %d looks, want nil after 1", err, f.calls)
		}
	})

	t.Run("gives the last reason when ctx ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f := &fakeCluster{topo: topo, nodes: noLeader, next: func(f *fakeCluster) {
			if f.calls == 2 {
				f.nodes = rebuilding
			}
			if f.calls == 3 {
				cancel()
			}
		}}
		err := cell.WaitSettled(ctx, f, "cell-1")
		if err == nil || err.Error() != "cell-1-index-2 is rebuilding" {
			t.Errorf("WaitSettled = %v, want the last reason: cell-1-index-2 is rebuilding", err)
		}
	})

	t.Run("a look cut short by ctx keeps the reason before it", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f := &fakeCluster{topo: topo, nodes: noLeader, next: func(f *fakeCluster) {
			if f.calls == 2 {
				cancel()
				f.err = ctx.Err()
			}
		}}
		err := cell.WaitSettled(ctx, f, "cell-1")
		if err == nil || err.Error() != "the index of cell-1 has no leader" {
			t.Errorf("WaitSettled = %v, want: the index of cell-1 has no leader", err)
		}
	})

	t.Run("a cluster that cannot list its nodes", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		broken := errors.New("supervisor unreachable")
		f := &fakeCluster{topo: topo, err: broken, next: func(f *fakeCluster) {
			if f.calls == 2 {
				cancel()
			}
		}}
		if err := cell.WaitSettled(ctx, f, "cell-1"); !errors.Is(err, broken) {
			t.Errorf("WaitSettled = %v, want %v", err, broken)
		}
	})
}

func TestJudgeCluster(t *testing.T) {
	topo := cell.Topology{Cells: 2, IndexNodes: 1, PlacementNodes: 1, StorageNodes: 1}
	f := &fakeCluster{topo: topo, nodes: healthyCell(topo)}
	got, err := cell.JudgeCluster(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Cell != "cell-0" || got[0].Health != cell.HealthDown || got[1].Health != cell.HealthServing {
		t.Errorf("JudgeCluster = %+v, want cell-0 down (nothing of it listed), cell-1 serving", got)
	}
}
