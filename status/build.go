package status

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cellarsim/cellar/cell"
)

// operations lists the S3 operations a cell tile shows and the tiers each one needs
// (DESIGN.md: GET needs index and storage, LIST and DELETE the index only, PUT all
// three).
var operations = []struct {
	name  string
	needs []cell.Role
}{
	{"GET", []cell.Role{cell.RoleIndex, cell.RoleStorage}},
	{"LIST", []cell.Role{cell.RoleIndex}},
	{"DELETE", []cell.Role{cell.RoleIndex}},
	{"PUT", []cell.Role{cell.RoleIndex, cell.RolePlacement, cell.RoleStorage}},
}

// build assembles a Snapshot from the tracked nodes.
func (c *Collector) build(now time.Time, fileCells []string) Snapshot {
	cellSet := map[string]bool{}
	for _, id := range append(append([]string(nil), c.cfg.Cells...), fileCells...) {
		cellSet[id] = true
	}
	byCell := map[string][]*tracked{}
	var gateways []*tracked
	for _, t := range c.nodes {
		switch {
		case t.role == cell.RoleGateway:
			gateways = append(gateways, t)
		case t.cell != "":
			cellSet[t.cell] = true
			byCell[t.cell] = append(byCell[t.cell], t)
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
	for _, id := range cells {
		cv := buildCell(id, byCell[id])
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
	sortTracked(gateways)
	for _, t := range gateways {
		nv := t.view()
		snap.Gateways = append(snap.Gateways, nv)
		snap.Summary.count(nv)
	}
	return snap
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

func buildCell(id string, nodes []*tracked) CellView {
	sortTracked(nodes)
	cv := CellView{ID: id, Tiers: make([]TierView, 0, len(cell.Tiers))}
	ready := map[cell.Role]int{}
	total, notReady := 0, 0
	for _, role := range cell.Tiers {
		tv := TierView{Role: role, Nodes: []NodeView{}}
		for _, t := range nodes {
			if t.role != role {
				continue
			}
			nv := t.view()
			tv.Nodes = append(tv.Nodes, nv)
			tv.Total++
			if nv.State == cell.StateReady {
				tv.Ready++
			}
			if role == cell.RoleIndex && nv.Leader {
				cv.Index.Leader = nv.ID
			}
		}
		ready[role] = tv.Ready
		total += tv.Total
		notReady += tv.Total - tv.Ready
		cv.Tiers = append(cv.Tiers, tv)
	}
	idx := cv.Tiers[0]
	cv.Index.Ready, cv.Index.Total = idx.Ready, idx.Total
	cv.Index.Need = idx.Total/2 + 1
	cv.Index.Quorum = idx.Total > 0 && idx.Ready >= cv.Index.Need
	if !cv.Index.Quorum {
		// Placement needs a ready index (the order 2017's recovery had to follow).
		for _, tv := range cv.Tiers {
			for i, nv := range tv.Nodes {
				if tv.Role == cell.RolePlacement && nv.State == cell.StateStarting {
					tv.Nodes[i].Note = "waits for its cell's index"
				}
			}
		}
	}

	// A tier can do its part when it has a ready node; the index needs a majority.
	up := func(role cell.Role) bool {
		if role == cell.RoleIndex {
			return cv.Index.Quorum
		}
		return ready[role] > 0
	}
	for _, op := range operations {
		o := Operation{Name: op.name, OK: true}
		for _, need := range op.needs {
			if !up(need) {
				o.OK = false
				o.Missing = append(o.Missing, need)
			}
		}
		cv.Operations = append(cv.Operations, o)
	}

	switch {
	case total == 0:
		cv.Health, cv.Reason = HealthDown, "no node of this cell is known"
	case !cv.Index.Quorum:
		cv.Health = HealthDown
		cv.Reason = fmt.Sprintf("index has no quorum (%d of %d ready, %d needed): every request fails", idx.Ready, idx.Total, cv.Index.Need)
	case ready[cell.RoleStorage] == 0:
		cv.Health, cv.Reason = HealthDown, "no storage node ready: GET and PUT fail"
	case !up(cell.RolePlacement):
		cv.Health, cv.Reason = HealthDegraded, "no placement node ready: PUT refused, reads served"
	case notReady > 0:
		cv.Health = HealthDegraded
		cv.Reason = fmt.Sprintf("%d of %d nodes not ready", notReady, total)
	default:
		cv.Health = HealthServing
	}
	return cv
}

func (t *tracked) view() NodeView {
	nv := NodeView{
		ID: t.id, Role: t.role, Cell: t.cell, State: t.state, Since: t.since, Probe: t.probe,
		InGossip: t.gossip != nil, PID: t.pid, AdminAddr: t.admin, GRPCAddr: t.grpc,
		Started: t.started, Ready: t.ready, Gauges: t.gauges, Process: t.process,
	}
	if nv.State == "" {
		nv.State = StateDown
		if t.gossip != nil {
			nv.State = t.gossip.State
		}
	}
	if t.gossip != nil {
		nv.GossipState = t.gossip.State
		nv.Leader = isLeader(*t.gossip) && nv.State == cell.StateReady
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
