package guard

import (
	"errors"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

// region is the default shape: 4 cells × (3 index, 1 placement, 2 storage).
func region() cell.Topology {
	t := cell.DefaultTopology()
	t.Cells, t.IndexNodes, t.PlacementNodes, t.StorageNodes = 4, 3, 1, 2
	return t
}

// states lists every node of topo as up, the first index node of each cell leading,
// except the ids in down.
func states(topo cell.Topology, down ...string) []cell.NodeStatus {
	var out []cell.NodeStatus
	for _, s := range topo.Nodes() {
		if s.Role == cell.RoleGateway {
			continue
		}
		n := cell.NodeStatus{ID: s.ID, Role: s.Role, Cell: s.Cell, Running: true, State: cell.StateReady}
		n.Leader = s.Role == cell.RoleIndex && s.ID == cell.NodeID(s.Cell, cell.RoleIndex, 0)
		for _, d := range down {
			if d == s.ID {
				n.Running, n.State = false, ""
			}
		}
		out = append(out, n)
	}
	return out
}

func idx(c, i int) string { return cell.NodeID(cell.ID(c), cell.RoleIndex, i) }

func TestPlanDrain(t *testing.T) {
	big := region()
	big.Cells = 20 // 60 index nodes: the 5% cap is 3
	for _, tc := range []struct {
		name    string
		topo    cell.Topology
		down    []string
		pol     Policy
		req     Request
		nodes   []string
		left    int
		quorum  bool
		refused []string // rules that stop the plan
		lifted  []string // rules the override lifts
	}{
		{name: "one follower of an index", topo: region(), req: Request{Cell: cell.ID(2), Tier: cell.RoleIndex, Count: 1},
			nodes: []string{idx(2, 1)}, left: 2, quorum: true},
		{name: "the 2017 typo: two of three index nodes", topo: region(), req: Request{Cell: cell.ID(2), Tier: cell.RoleIndex, Count: 2},
			nodes: []string{idx(2, 1), idx(2, 2)}, left: 1, quorum: false, refused: []string{RuleFloor, RuleCap}},
		{name: "the 2017 typo with an override", topo: region(), req: Request{Cell: cell.ID(2), Tier: cell.RoleIndex, Count: 2, Override: "replay 2017"},
			nodes: []string{idx(2, 1), idx(2, 2)}, left: 1, quorum: false, lifted: []string{RuleFloor, RuleCap}},
		{name: "the leader goes last", topo: region(), req: Request{Cell: cell.ID(0), Tier: cell.RoleIndex, Count: 3, Override: "all"},
			nodes: []string{idx(0, 1), idx(0, 2), idx(0, 0)}, left: 0, quorum: false, lifted: []string{RuleFloor, RuleCap}},
		{name: "named nodes keep their order", topo: region(), req: Request{Cell: cell.ID(1), Tier: cell.RoleIndex, Nodes: []string{idx(1, 0)}},
			nodes: []string{idx(1, 0)}, left: 2, quorum: true},
		{name: "one down already: the next one crosses the floor", topo: region(), down: []string{idx(3, 2)},
			req:   Request{Cell: cell.ID(3), Tier: cell.RoleIndex, Count: 1},
			nodes: []string{idx(3, 1)}, left: 1, quorum: false, refused: []string{RuleFloor}},
		{name: "the only placement node", topo: region(), req: Request{Cell: cell.ID(0), Tier: cell.RolePlacement, Count: 1},
			nodes: []string{cell.NodeID(cell.ID(0), cell.RolePlacement, 0)}, left: 0, quorum: true, refused: []string{RuleFloor}},
		{name: "one of two storage nodes", topo: region(), req: Request{Cell: cell.ID(0), Tier: cell.RoleStorage, Count: 1},
			nodes: []string{cell.NodeID(cell.ID(0), cell.RoleStorage, 0)}, left: 1, quorum: true},
		{name: "a storage floor of two", topo: region(), pol: Policy{MinStorage: 2}, req: Request{Cell: cell.ID(0), Tier: cell.RoleStorage, Count: 1},
			nodes: []string{cell.NodeID(cell.ID(0), cell.RoleStorage, 0)}, left: 1, quorum: true, refused: []string{RuleFloor}},
		{name: "both storage nodes: floor and cap", topo: region(), req: Request{Cell: cell.ID(0), Tier: cell.RoleStorage, Count: 2},
			nodes: []string{cell.NodeID(cell.ID(0), cell.RoleStorage, 0), cell.NodeID(cell.ID(0), cell.RoleStorage, 1)},
			left:  0, quorum: true, refused: []string{RuleFloor, RuleCap}},
		{name: "a wide cap allows what the floor allows", topo: region(), pol: Policy{CapShare: 0.5},
			req: Request{Cell: cell.ID(0), Tier: cell.RoleStorage, Count: 1}, nodes: []string{cell.NodeID(cell.ID(0), cell.RoleStorage, 0)}, left: 1, quorum: true},
		{name: "a big region: the cap is 5%", topo: big, req: Request{Cell: cell.ID(5), Tier: cell.RoleIndex, Count: 1},
			nodes: []string{idx(5, 1)}, left: 2, quorum: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PlanDrain(tc.topo, states(tc.topo, tc.down...), tc.pol, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(p.Nodes, ",") != strings.Join(tc.nodes, ",") {
				t.Errorf("nodes %v, want %v", p.Nodes, tc.nodes)
			}
			if p.LeftInCell != tc.left || p.KeepsQuorum != tc.quorum {
				t.Errorf("left %d quorum %v, want %d %v", p.LeftInCell, p.KeepsQuorum, tc.left, tc.quorum)
			}
			var refused, lifted []string
			for _, v := range p.Violations {
				if v.Lifted {
					lifted = append(lifted, v.Rule)
				} else {
					refused = append(refused, v.Rule)
				}
			}
			if strings.Join(refused, ",") != strings.Join(tc.refused, ",") || strings.Join(lifted, ",") != strings.Join(tc.lifted, ",") {
				t.Errorf("refused %v lifted %v, want %v %v (%+v)", refused, lifted, tc.refused, tc.lifted, p.Violations)
			}
			if p.Allowed() != (len(tc.refused) == 0) {
				t.Errorf("allowed %v with refusals %v", p.Allowed(), tc.refused)
			}
			if p.FloorLifted() != (len(tc.lifted) > 0 && tc.lifted[0] == RuleFloor) {
				t.Errorf("floor lifted %v", p.FloorLifted())
			}
			if len(p.ID) != 12 {
				t.Errorf("plan id %q", p.ID)
			}
		})
	}
}

func TestPlanNumbers(t *testing.T) {
	p, err := PlanDrain(region(), states(region()), Policy{}, Request{Cell: cell.ID(2), Tier: cell.RoleIndex, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if p.InCell != 3 || p.UpInCell != 3 || p.Floor != 2 || p.InRegion != 12 || p.Cap != 1 {
		t.Errorf("plan %+v", p)
	}
	if p.ShareOfCell < 0.66 || p.ShareOfCell > 0.67 || p.ShareOfRegion < 0.16 || p.ShareOfRegion > 0.17 {
		t.Errorf("shares %.3f of the cell, %.3f of the region", p.ShareOfCell, p.ShareOfRegion)
	}
	for _, v := range p.Violations {
		if v.Rule == RuleFloor && !strings.Contains(v.Message, "lose quorum") {
			t.Errorf("floor message %q does not say the cell loses quorum", v.Message)
		}
	}
}

func TestPlanIDIsBoundToThePlan(t *testing.T) {
	topo := region()
	req := Request{Cell: cell.ID(2), Tier: cell.RoleIndex, Count: 2, Override: "replay"}
	plan := func(req Request, down ...string) string {
		t.Helper()
		p, err := PlanDrain(topo, states(topo, down...), Policy{}, req)
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	id := plan(req)
	if plan(req) != id {
		t.Error("the same plan twice has two ids")
	}
	other := req
	other.Override = "another reason to override"
	if plan(other) != id {
		t.Error("the override's wording changed the id: only what it lifts should")
	}
	noOverride := req
	noOverride.Override = ""
	named := req
	named.Count, named.Nodes = 0, []string{idx(2, 2), idx(2, 1)}
	for name, got := range map[string]string{
		"without the override":     plan(noOverride),
		"another cell":             plan(Request{Cell: cell.ID(1), Tier: cell.RoleIndex, Count: 2, Override: "x"}),
		"another node down":        plan(req, cell.NodeID(cell.ID(2), cell.RoleIndex, 0)),
		"the same nodes reordered": plan(named),
		"one node fewer":           plan(Request{Cell: cell.ID(2), Tier: cell.RoleIndex, Count: 1, Override: "x"}),
		"a node elsewhere is down": plan(req, idx(1, 0)),
	} {
		if name == "a node elsewhere is down" {
			if got != id {
				t.Errorf("%s changed the id", name)
			}
			continue
		}
		if got == id {
			t.Errorf("%s: same id %s", name, id)
		}
	}
}

func TestPlanDrainBadRequests(t *testing.T) {
	topo := region()
	for _, req := range []Request{
		{Cell: cell.ID(9), Tier: cell.RoleIndex, Count: 1},
		{Cell: cell.ID(0), Tier: cell.RoleGateway, Count: 1},
		{Cell: cell.ID(0), Tier: cell.RoleIndex},
		{Cell: cell.ID(0), Tier: cell.RoleIndex, Count: 1, Nodes: []string{idx(0, 1)}},
		{Cell: cell.ID(0), Tier: cell.RoleIndex, Count: 4},
		{Cell: cell.ID(0), Tier: cell.RoleIndex, Nodes: []string{idx(1, 1)}},
		{Cell: cell.ID(0), Tier: cell.RoleIndex, Nodes: []string{idx(0, 1), idx(0, 1)}},
		{Cell: cell.ID(0), Tier: cell.RoleIndex, Nodes: []string{idx(0, 2)}},
	} {
		_, err := PlanDrain(topo, states(topo, idx(0, 2)), Policy{}, req)
		if !errors.Is(err, ErrBadRequest) {
			t.Errorf("%+v: %v, want a bad request", req, err)
		}
	}
}
