package status

import (
	"sort"

	"github.com/cellarsim/cellar/cell"
)

// Declared is the shape a view judges a cluster against: the cells, and how many nodes
// of each tier each cell should have. A view only knows the members it has seen; a
// view started after two of three index nodes died must still judge the index group
// as one of three, or it shows a cell without quorum as serving.
//
// The shape comes, per cell and in this order of preference:
//   - from the cluster's topology, when the view has one (DATA_DIR/cluster.json, or a
//     topology file the operator names);
//   - for the index group, from the group size its index nodes gossip (each index node
//     says how many members its group was declared with: the largest any of them ever
//     said counts);
//   - from the nodes the view has seen.
type Declared struct {
	topo     *cell.Topology
	cells    map[string]*seenCell
	gateways map[string]bool
}

// seenCell is what a view has seen of one cell.
type seenCell struct {
	ids       map[cell.Role]map[string]bool
	groupSize int // the largest index group size gossiped
}

// NewDeclared works out the declared shape from topo (nil when the view has no
// topology) and the nodes the view has seen, now or before, each once. Of each node
// only the id, role, cell and group size are read.
func NewDeclared(topo *cell.Topology, seen []cell.Node) Declared {
	d := Declared{cells: map[string]*seenCell{}, gateways: map[string]bool{}}
	if topo != nil && topo.Cells > 0 {
		t := *topo
		d.topo = &t
	}
	for _, n := range seen {
		switch {
		case n.Role == cell.RoleGateway:
			d.gateways[n.ID] = true
		case n.Cell != "":
			sc := d.cell(n.Cell)
			if sc.ids[n.Role] == nil {
				sc.ids[n.Role] = map[string]bool{}
			}
			sc.ids[n.Role][n.ID] = true
			if n.Role == cell.RoleIndex {
				sc.groupSize = max(sc.groupSize, n.GroupSize)
			}
		}
	}
	return d
}

// GuardrailsOff reports whether the declared topology turns the guardrails off. A view
// without a topology cannot tell, and says nothing.
func (d Declared) GuardrailsOff() bool { return d.topo != nil && d.topo.GuardrailsOff() }

func (d Declared) cell(id string) *seenCell {
	sc := d.cells[id]
	if sc == nil {
		sc = &seenCell{ids: map[cell.Role]map[string]bool{}}
		d.cells[id] = sc
	}
	return sc
}

// Cells lists the topology's cells and every other cell a seen node is in, cell-2
// before cell-10.
func (d Declared) Cells() []string {
	set := map[string]bool{}
	if d.topo != nil {
		for _, id := range d.topo.CellIDs() {
			set[id] = true
		}
	}
	for id := range d.cells {
		set[id] = true
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return naturalLess(out[i], out[j]) })
	return out
}

// Topology is what cell.JudgeCell judges one cell against: the cluster's topology with
// the cell's tiers as declared.
func (d Declared) Topology(cellID string) cell.Topology {
	if d.topo != nil {
		return *d.topo
	}
	sc := d.cells[cellID]
	if sc == nil {
		return cell.Topology{}
	}
	t := cell.Topology{
		Cells:          len(d.cells),
		IndexNodes:     len(sc.ids[cell.RoleIndex]),
		PlacementNodes: len(sc.ids[cell.RolePlacement]),
		StorageNodes:   len(sc.ids[cell.RoleStorage]),
		Gateways:       len(d.gateways),
	}
	if sc.groupSize > 0 {
		t.IndexNodes = sc.groupSize
	}
	return t
}

// Known reports whether the view has seen any node of the cell.
func (d Declared) Known(cellID string) bool { return d.cells[cellID] != nil }

// NeverSeen lists the nodes the shape gives a cell beyond those the view has seen
// (with cellID "", the gateways beyond those seen), named as cell.NodeID names them.
func (d Declared) NeverSeen(cellID string) []cell.NodeSpec {
	var out []cell.NodeSpec
	add := func(role cell.Role, want int, seen map[string]bool) {
		for i := 0; len(seen)+countRole(out, role) < want; i++ {
			if id := cell.NodeID(cellID, role, i); !seen[id] {
				out = append(out, cell.NodeSpec{ID: id, Role: role, Cell: cellID})
			}
		}
	}
	t := d.Topology(cellID)
	if cellID == "" {
		if d.topo != nil {
			add(cell.RoleGateway, d.topo.Gateways, d.gateways)
		}
		return out
	}
	var seen map[cell.Role]map[string]bool
	if sc := d.cells[cellID]; sc != nil {
		seen = sc.ids
	}
	for _, role := range cell.Tiers {
		add(role, t.Declared(role), seen[role])
	}
	return out
}

func countRole(specs []cell.NodeSpec, role cell.Role) int {
	n := 0
	for _, s := range specs {
		if s.Role == role {
			n++
		}
	}
	return n
}

// Judge judges one cell with cell.JudgeCell against the declared shape. A cell of
// which the view has seen no node is down for that reason.
func (d Declared) Judge(cellID string, nodes []cell.NodeStatus) cell.CellHealth {
	h := cell.JudgeCell(d.Topology(cellID), cellID, nodes)
	if !d.Known(cellID) {
		h.Health, h.Reason = cell.HealthDown, "no node of this cell is known"
	}
	return h
}
