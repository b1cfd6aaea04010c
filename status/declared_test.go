package status

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/localcluster"
)

func TestDeclared(t *testing.T) {
	topo := cell.Topology{Cells: 3, IndexNodes: 3, PlacementNodes: 1, StorageNodes: 2, Gateways: 2}
	seen := func(id string, role cell.Role, cellID string, groupSize int) cell.Node {
		return cell.Node{ID: id, Role: role, Cell: cellID, GroupSize: groupSize}
	}
	ids := func(specs []cell.NodeSpec) string {
		var out []string
		for _, s := range specs {
			out = append(out, s.ID)
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		name  string
		topo  *cell.Topology
		seen  []cell.Node
		cells string
		// for cell-1: its index group size and the nodes never seen; then the gateways never seen
		index         int
		never, neverG string
	}{
		{
			name: "the topology declares every cell, even one never seen",
			topo: &topo,
			seen: []cell.Node{
				seen("cell-1-index-0", cell.RoleIndex, "cell-1", 0),
				seen("cell-1-storage-1", cell.RoleStorage, "cell-1", 0),
				seen("gateway-0", cell.RoleGateway, "", 0),
			},
			cells: "cell-0 cell-1 cell-2", index: 3,
			never: "cell-1-index-1 cell-1-index-2 cell-1-placement-0 cell-1-storage-0", neverG: "gateway-1",
		},
		{
			name:  "the topology wins over a gossiped group size",
			topo:  &topo,
			seen:  []cell.Node{seen("cell-1-index-0", cell.RoleIndex, "cell-1", 5)},
			cells: "cell-0 cell-1 cell-2", index: 3,
			never: "cell-1-index-1 cell-1-index-2 cell-1-placement-0 cell-1-storage-0 cell-1-storage-1", neverG: "gateway-0 gateway-1",
		},
		{
			name: "without a topology, the largest group size gossiped",
			seen: []cell.Node{
				seen("cell-1-index-1", cell.RoleIndex, "cell-1", 3),
				seen("cell-1-index-2", cell.RoleIndex, "cell-1", 0), // from before it gossiped it
				seen("cell-1-placement-0", cell.RolePlacement, "cell-1", 0),
				seen("cell-10-index-0", cell.RoleIndex, "cell-10", 5),
				seen("cell-2-index-0", cell.RoleIndex, "cell-2", 1),
			},
			cells: "cell-1 cell-2 cell-10", index: 3, never: "cell-1-index-0",
		},
		{
			name: "without a topology or a group size, the nodes seen",
			seen: []cell.Node{
				seen("cell-1-index-0", cell.RoleIndex, "cell-1", 0),
				seen("cell-1-index-1", cell.RoleIndex, "cell-1", 0),
				seen("cell-1-storage-0", cell.RoleStorage, "cell-1", 0),
			},
			cells: "cell-1", index: 2,
		},
		{
			name: "ids off the usual pattern still count",
			seen: []cell.Node{
				seen("idx-a", cell.RoleIndex, "cell-1", 3),
				seen("idx-b", cell.RoleIndex, "cell-1", 3),
			},
			cells: "cell-1", index: 3, never: "cell-1-index-0",
		},
		{
			name:  "nothing seen, no topology",
			cells: "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDeclared(tc.topo, tc.seen)
			if got := strings.Join(d.Cells(), " "); got != tc.cells {
				t.Errorf("cells %q, want %q", got, tc.cells)
			}
			if got := d.Topology("cell-1").IndexNodes; tc.cells != "" && got != tc.index {
				t.Errorf("index group of cell-1 = %d, want %d", got, tc.index)
			}
			if got := ids(d.NeverSeen("cell-1")); got != tc.never {
				t.Errorf("never seen in cell-1: %q, want %q", got, tc.never)
			}
			if got := ids(d.NeverSeen("")); got != tc.neverG {
				t.Errorf("gateways never seen: %q, want %q", got, tc.neverG)
			}
		})
	}

	// A cell declared but never seen is down for that reason, whatever the judgement.
	d := NewDeclared(&topo, nil)
	if h := d.Judge("cell-2", nil); h.Health != cell.HealthDown || h.Reason != "no node of this cell is known" {
		t.Errorf("unseen cell: %s (%s), want down: no node of this cell is known", h.Health, h.Reason)
	}
}

// lateCluster is two cells of 3 index, 1 placement and 2 storage nodes and a gateway,
// where cell-1 lost two of its index nodes before the view started: the gossip has
// never listed them.
type lateCluster struct {
	all     []*fakeNode // every node still running
	members *fakeMembers
	topo    cell.Topology
}

func newLateCluster(t *testing.T, gossipGroupSize bool) *lateCluster {
	lc := &lateCluster{members: &fakeMembers{}, topo: cell.Topology{Cells: 2, IndexNodes: 3, PlacementNodes: 1, StorageNodes: 2, Gateways: 1}}
	for _, spec := range lc.topo.Nodes() {
		if spec.Cell == "cell-1" && (spec.ID == "cell-1-index-1" || spec.ID == "cell-1-index-2") {
			continue
		}
		n := newFakeNode(t, spec.ID, spec.Role, spec.Cell)
		if spec.Role == cell.RoleIndex {
			n.leader = spec.ID == "cell-0-index-0"
			if gossipGroupSize {
				n.groupSize = 3
			}
		}
		lc.all = append(lc.all, n)
	}
	lc.members.set(lc.all...)
	return lc
}

// clusterFile is a cluster.json of lc: its topology, and the nodes of cell-0 only.
func (lc *lateCluster) clusterFile(t *testing.T) string {
	dir := t.TempDir()
	f := localcluster.ClusterFile{Version: 1, Running: true, Topology: localcluster.Topology{Topology: lc.topo}}
	for _, n := range lc.all {
		if n.cell == "cell-0" {
			f.Nodes = append(f.Nodes, localcluster.Node{ID: n.id, Role: n.role, Cell: n.cell, Process: localcluster.ProcRunning, AdminAddr: n.addr()})
		}
	}
	writeJSONFile(t, filepath.Join(dir, localcluster.ClusterFileName), f)
	return dir
}

// TestViewStartedAfterQuorumLost: a view that never saw two of cell-1's three index
// nodes must still judge its index group as one of three, whichever way it learns the
// group's size.
func TestViewStartedAfterQuorumLost(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) Config
	}{
		{"join mode: the index nodes gossip their group size", func(t *testing.T) Config {
			return Config{Members: newLateCluster(t, true).members}
		}},
		{"local mode: cluster.json declares the topology", func(t *testing.T) Config {
			lc := newLateCluster(t, false)
			return Config{Members: lc.members, DataDir: lc.clusterFile(t)}
		}},
		{"a topology given to the view", func(t *testing.T) Config {
			lc := newLateCluster(t, false)
			return Config{Members: lc.members, Topology: &lc.topo}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewCollector(tc.setup(t))
			if err != nil {
				t.Fatal(err)
			}
			c.Pass(context.Background())
			s := c.Snapshot()
			if len(s.Cells) != 2 {
				t.Fatalf("cells = %+v", s.Cells)
			}
			c0, c1 := s.Cells[0], s.Cells[1]
			if c0.Health != HealthServing {
				t.Errorf("cell-0 = %s (%s), want serving", c0.Health, c0.Reason)
			}
			if c1.Health != HealthDown || !strings.Contains(c1.Reason, "index has no quorum (1 of 3 ready, 2 needed)") {
				t.Errorf("cell-1 = %s (%s), want down: no quorum, 1 of 3", c1.Health, c1.Reason)
			}
			if want := (IndexGroup{Ready: 1, Total: 3, Need: 2}); c1.Index != want {
				t.Errorf("cell-1 index = %+v, want %+v", c1.Index, want)
			}
			for _, id := range []string{"cell-1-index-1", "cell-1-index-2"} {
				if n, _ := findNode(s, id); n.State != StateDown || !n.NeverSeen || n.Probe != "never seen" {
					t.Errorf("%s = %+v, want down, never seen", id, n)
				}
			}
			if want := (Summary{Cells: 2, CellsServing: 1, CellsDown: 1, Nodes: 13, NodesReady: 11, NodesDown: 2}); s.Summary != want {
				t.Errorf("summary = %+v, want %+v", s.Summary, want)
			}
		})
	}
}

func TestUnknownCellOfTopology(t *testing.T) {
	lc := newLateCluster(t, true)
	topo := lc.topo
	topo.Cells = 3
	c, err := NewCollector(Config{Members: lc.members, Topology: &topo})
	if err != nil {
		t.Fatal(err)
	}
	c.Pass(context.Background())
	s := c.Snapshot()
	if len(s.Cells) != 3 {
		t.Fatalf("cells = %+v, want 3", s.Cells)
	}
	c2 := s.Cells[2]
	if c2.ID != "cell-2" || c2.Health != HealthDown || c2.Reason != "no node of this cell is known" {
		t.Errorf("cell-2 = %s %s (%s), want down: no node of this cell is known", c2.ID, c2.Health, c2.Reason)
	}
	if got := len(c2.Tiers[0].Nodes) + len(c2.Tiers[1].Nodes) + len(c2.Tiers[2].Nodes); got != 6 {
		t.Errorf("cell-2 lists %d nodes, want its 6 declared ones, never seen", got)
	}
	if s.Summary.Nodes != 19 || s.Summary.NodesReady != 11 {
		t.Errorf("summary = %+v, want 11 of 19 ready", s.Summary)
	}
}

// TestDownAfterMissedProbes: a node the gossip still lists is shown down only after
// three probes in a row go unanswered; one the gossip has dropped, at the first.
func TestDownAfterMissedProbes(t *testing.T) {
	idx := newFakeNode(t, "cell-0-index-0", cell.RoleIndex, "cell-0")
	st := newFakeNode(t, "cell-0-storage-0", cell.RoleStorage, "cell-0")
	members := &fakeMembers{}
	members.set(idx, st)
	c, err := NewCollector(Config{Members: members})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pass := func() NodeView {
		c.Pass(ctx)
		n, _ := findNode(c.Snapshot(), st.id)
		return n
	}
	if n := pass(); n.State != cell.StateReady {
		t.Fatalf("storage = %s, want ready", n.State)
	}
	st.setBroken(true)
	for i := 1; i < downAfterFailures; i++ {
		if n := pass(); n.State != cell.StateReady || n.FailedProbes != i {
			t.Fatalf("after %d missed probes: %s with %d failed, want still ready", i, n.State, n.FailedProbes)
		}
	}
	if n := pass(); n.State != StateDown {
		t.Fatalf("after %d missed probes: %s, want down", downAfterFailures, n.State)
	}
	st.setBroken(false)
	if n := pass(); n.State != cell.StateReady || n.FailedProbes != 0 {
		t.Fatalf("answering again: %s with %d failed, want ready", n.State, n.FailedProbes)
	}
	// Gone from the gossip and silent: down at once.
	st.setBroken(true)
	members.set(idx)
	if n := pass(); n.State != StateDown {
		t.Errorf("gone from the gossip and silent: %s, want down", n.State)
	}
	for _, e := range c.Snapshot().Events {
		if e.Node == st.id && e.To == string(StateDown) && strings.Contains(e.Message, "ready → down") {
			return
		}
	}
	t.Errorf("no event says %s went down", st.id)
}

// TestLeaderKeptWhileAnswering: a leader that drops out of the gossip for a moment but
// still answers its probes keeps leading in the view, so its cell does not flap.
func TestLeaderKeptWhileAnswering(t *testing.T) {
	lc := newLateCluster(t, true)
	c, err := NewCollector(Config{Members: lc.members})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.Pass(ctx)
	if h := c.Snapshot().Cells[0]; h.Health != HealthServing || h.Index.Leader != "cell-0-index-0" {
		t.Fatalf("cell-0 = %s, leader %q; want serving, led by index-0", h.Health, h.Index.Leader)
	}
	leader := lc.all[slices.IndexFunc(lc.all, func(n *fakeNode) bool { return n.id == "cell-0-index-0" })]
	var rest []*fakeNode
	for _, n := range lc.all {
		if n != leader {
			rest = append(rest, n)
		}
	}
	lc.members.set(rest...)
	c.Pass(ctx)
	if h := c.Snapshot().Cells[0]; h.Health != HealthServing || h.Index.Leader != "cell-0-index-0" {
		t.Errorf("leader out of the gossip but answering: cell-0 = %s (%s), leader %q; want serving", h.Health, h.Reason, h.Index.Leader)
	}
	leader.setBroken(true)
	c.Pass(ctx)
	if h := c.Snapshot().Cells[0]; h.Health != HealthDown || !strings.Contains(h.Reason, "no leader") {
		t.Errorf("leader gone: cell-0 = %s (%s), want down without a leader", h.Health, h.Reason)
	}
}

func writeJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGuardrailsOffShown: a view of a cluster whose topology turns the guardrails off
// says so in its snapshot, with the banner every other output carries; with the
// guardrails on, or with no topology to tell, it says nothing.
func TestGuardrailsOffShown(t *testing.T) {
	lc := newLateCluster(t, true)
	for _, tc := range []struct {
		name       string
		guardrails string
		noTopology bool
		want       bool
	}{
		{name: "off", guardrails: cell.GuardrailsOff, want: true},
		{name: "on", guardrails: cell.GuardrailsOn},
		{name: "default", guardrails: ""},
		{name: "no topology", guardrails: cell.GuardrailsOff, noTopology: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo := lc.topo
			topo.Guardrails = tc.guardrails
			cfg := Config{Members: lc.members, Topology: &topo}
			if tc.noTopology {
				cfg.Topology = nil
			}
			c, err := NewCollector(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c.Pass(context.Background())
			s := c.Snapshot()
			if s.GuardrailsOff != tc.want {
				t.Fatalf("guardrails_off = %v, want %v", s.GuardrailsOff, tc.want)
			}
			if tc.want && s.GuardrailsOffBanner != guard.GuardrailsOffBanner {
				t.Errorf("banner = %q, want the guardrails-off banner", s.GuardrailsOffBanner)
			}
			if !tc.want && s.GuardrailsOffBanner != "" {
				t.Errorf("banner = %q with the guardrails on", s.GuardrailsOffBanner)
			}
		})
	}
}
