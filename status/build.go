package status

import (
	"sort"
	"strings"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/localcluster"
)

// build assembles a Snapshot from the tracked nodes, judging each cell against the
// declared shape.
func (c *Collector) build(now time.Time, decl Declared) Snapshot {
	cellSet := map[string]bool{}
	for _, id := range append(decl.Cells(), c.cfg.Cells...) {
		cellSet[id] = true
	}
	byCell := map[string][]NodeView{}
	var gateways []NodeView
	for _, t := range c.nodes {
		switch {
		case t.role == cell.RoleGateway:
			gateways = append(gateways, t.view())
		case t.cell != "":
			cellSet[t.cell] = true
			byCell[t.cell] = append(byCell[t.cell], t.view())
		}
	}
	cells := make([]string, 0, len(cellSet))
	for id := range cellSet {
		cells = append(cells, id)
	}
	sort.Slice(cells, func(i, j int) bool { return naturalLess(cells[i], cells[j]) })
	traffic := c.traffic.compute(now, cells)

	snap := Snapshot{
		Generated:         now,
		StaleAfterSeconds: c.cfg.StaleAfter.Seconds(),
		Cells:             make([]CellView, 0, len(cells)),
		Gateways:          []NodeView{},
	}
	if decl.GuardrailsOff() {
		snap.GuardrailsOff, snap.GuardrailsOffBanner = true, guard.GuardrailsOffBanner
	}
	for _, id := range cells {
		cv := buildCell(id, withNeverSeen(byCell[id], decl.NeverSeen(id)), decl)
		if traffic != nil {
			cv.Traffic = traffic[id]
		}
		snap.Cells = append(snap.Cells, cv)
		snap.Summary.Cells++
		switch cv.Health {
		case HealthServing:
			snap.Summary.CellsServing++
		case HealthDown:
			snap.Summary.CellsDown++
		}
		for _, tv := range cv.Tiers {
			for _, nv := range tv.Nodes {
				snap.Summary.count(nv)
			}
		}
	}
	for _, nv := range withNeverSeen(gateways, decl.NeverSeen("")) {
		snap.Gateways = append(snap.Gateways, nv)
		snap.Summary.count(nv)
	}
	snap.CellMap = c.cellMap()
	return snap
}

// cellMap is the map's version as the map group's members and the gateways last
// gossiped it; nil when no member of a map group has been seen.
func (c *Collector) cellMap() *CellMapView {
	var v CellMapView
	var gateways []MapHolder
	for _, t := range c.nodes {
		if t.role != cell.RoleMap && t.role != cell.RoleGateway {
			continue
		}
		h := MapHolder{ID: t.id, State: t.view().State}
		if g := t.lastGossip; g != nil {
			h.Version, h.Leader = g.MapVersion, g.Leader && t.gossip != nil
		}
		if t.role == cell.RoleGateway {
			gateways = append(gateways, h)
			continue
		}
		v.Members = append(v.Members, h)
		v.Version = max(v.Version, h.Version)
	}
	if len(v.Members) == 0 {
		return nil
	}
	for _, h := range gateways {
		if h.State != StateDown && h.Version < v.Version {
			v.Behind = append(v.Behind, h.ID)
		}
	}
	sort.Slice(v.Members, func(i, j int) bool { return naturalLess(v.Members[i].ID, v.Members[j].ID) })
	sort.Slice(gateways, func(i, j int) bool { return naturalLess(gateways[i].ID, gateways[j].ID) })
	sort.Slice(v.Behind, func(i, j int) bool { return naturalLess(v.Behind[i], v.Behind[j]) })
	v.Gateways = gateways
	return &v
}

// MoveSilentAfter is how long a move in progress may go unrecorded before the view
// says it has heard nothing of it (the supervisor records its progress every second
// or two, and at every change of phase).
const MoveSilentAfter = 30 * time.Second

// moves are the moves of DATA_DIR/moves.json as of now.
func moves(recorded []localcluster.MoveStatus, now time.Time) []MoveView {
	out := make([]MoveView, 0, len(recorded))
	for _, m := range recorded {
		mv := MoveView{MoveStatus: m, InProgress: m.Running()}
		if mv.InProgress {
			mv.SilentSeconds = max(0, now.Sub(m.Updated).Seconds())
			mv.Silent = now.Sub(m.Updated) > MoveSilentAfter
		}
		out = append(out, mv)
	}
	return out
}

func (s *Summary) count(nv NodeView) {
	s.Nodes++
	switch nv.State {
	case cell.StateReady:
		s.NodesReady++
	case StateDown:
		s.NodesDown++
	}
}

// withNeverSeen adds the declared nodes the view has never seen, as down, and sorts
// the lot by id.
func withNeverSeen(views []NodeView, never []cell.NodeSpec) []NodeView {
	for _, spec := range never {
		views = append(views, NodeView{ID: spec.ID, Role: spec.Role, Cell: spec.Cell, State: StateDown, Probe: "never seen", NeverSeen: true})
	}
	sort.Slice(views, func(i, j int) bool { return naturalLess(views[i].ID, views[j].ID) })
	return views
}

// buildCell draws one cell from its nodes' views; its health is decl's judgement.
func buildCell(id string, nodes []NodeView, decl Declared) CellView {
	statuses := make([]cell.NodeStatus, 0, len(nodes))
	for _, nv := range nodes {
		statuses = append(statuses, nv.nodeStatus())
	}
	h := decl.Judge(id, statuses)
	cv := CellView{
		ID: id, Health: string(h.Health), Reason: h.Reason,
		Tiers: make([]TierView, 0, len(cell.Tiers)),
		Index: IndexGroup{
			Ready: h.Index.Ready, Total: h.Index.Declared, Need: h.Index.Need,
			Quorum: h.Index.Held, Leader: h.Index.Leader,
		},
		Operations: h.Operations,
	}
	for _, role := range cell.Tiers {
		tv := TierView{Role: role, Nodes: []NodeView{}}
		for _, nv := range nodes {
			if nv.Role != role {
				continue
			}
			if role == cell.RolePlacement && !h.Index.Held && nv.State == cell.StateStarting {
				// Placement needs a ready index (the order 2017's recovery had to follow).
				nv.Note = "waits for its cell's index"
			}
			tv.Nodes = append(tv.Nodes, nv)
			tv.Total++
			if nv.State == cell.StateReady {
				tv.Ready++
			}
		}
		cv.Tiers = append(cv.Tiers, tv)
	}
	return cv
}

// nodeStatus is what cell.JudgeCell needs to know of a node: a node the view shows
// down does not run, as far as the view can tell.
func (nv NodeView) nodeStatus() cell.NodeStatus {
	st := cell.NodeStatus{ID: nv.ID, Role: nv.Role, Cell: nv.Cell, Running: nv.State != StateDown, Leader: nv.Leader}
	if st.Running {
		st.State = nv.State
	}
	return st
}

func (t *tracked) view() NodeView {
	nv := NodeView{
		ID: t.id, Role: t.role, Cell: t.cell, State: t.state, Since: t.since, Probe: t.probe,
		InGossip: t.gossip != nil, PID: t.pid, AdminAddr: t.admin, GRPCAddr: t.grpc,
		Started: t.started, Ready: t.ready, Gauges: t.gauges, Process: t.process,
		FailedProbes: t.failures,
	}
	if nv.State == "" {
		nv.State = StateDown
		if t.gossip != nil {
			nv.State = t.gossip.State
		}
	}
	// Who leads is known from the gossip only. A node the gossip drops for a moment
	// (a busy machine misses its gossip probes) but that still answers its own
	// probes keeps what it last gossiped, so that its cell does not flap.
	if g := t.lastGossip; g != nil && (t.gossip != nil || t.answered) {
		nv.Leader = isLeader(*g) && nv.State == cell.StateReady
	}
	if t.gossip != nil {
		nv.GossipState = t.gossip.State
		nv.AppliedIndex = t.gossip.AppliedIndex
		if nv.State == cell.StateRebuilding {
			nv.Progress = t.gossip.Progress
		}
	}
	if !t.started.IsZero() && !t.ready.IsZero() && !t.ready.Before(t.started) {
		s := t.ready.Sub(t.started).Seconds()
		nv.ReadySeconds = &s
	}
	return nv
}

func sortTracked(ts []*tracked) {
	sort.Slice(ts, func(i, j int) bool { return naturalLess(ts[i].id, ts[j].id) })
}

// naturalLess orders ids with their numbers compared as numbers: cell-2 before cell-10.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		na, ra := leadingNumber(a)
		nb, rb := leadingNumber(b)
		if ra != a && rb != b { // both start with digits
			if na != nb {
				return na < nb
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

// leadingNumber splits the digits at the start of s off as a number.
func leadingNumber(s string) (int, string) {
	rest := strings.TrimLeft(s, "0123456789")
	n := 0
	for _, ch := range s[:len(s)-len(rest)] {
		n = n*10 + int(ch-'0')
	}
	return n, rest
}
