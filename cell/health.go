package cell

import (
	"fmt"
	"slices"
)

// NodeStatus is what an observer knows of one node now: what its supervisor says of
// its process, and what the gossip says of the node.
type NodeStatus struct {
	ID   string `json:"id"`
	Role Role   `json:"role"`
	Cell string `json:"cell,omitempty"`
	// Running: the node's process (or container) runs. An observer with no supervisor
	// to ask takes a node it sees in the gossip as running.
	Running bool `json:"running"`
	// State is what the node gossips; "" while the observer does not see it.
	State State `json:"state,omitempty"`
	// Leader: the node leads its cell's index group.
	Leader bool `json:"leader,omitempty"`
}

// Ready reports whether the node gets work: it runs and gossips ready.
func (n NodeStatus) Ready() bool { return n.Running && n.State == StateReady }

// Majority is the number of members a replication group of n needs to keep quorum.
func Majority(n int) int { return n/2 + 1 }

// Health of a cell, from what its tiers can do.
type Health string

const (
	// HealthServing: every operation works and every declared node is ready.
	HealthServing Health = "serving"
	// HealthDegraded: every operation still works, or reads do while writes do not
	// (no placement), or some nodes are down but each tier still has enough.
	HealthDegraded Health = "degraded"
	// HealthDown: reads fail (no index quorum, or no storage node ready).
	HealthDown Health = "down"
)

// Quorum is the state of a cell's index group, judged against the group the topology
// declares, not against the members an observer happens to have seen: a view that
// started after two of three index nodes died still knows the group has three.
type Quorum struct {
	Declared int    `json:"declared"` // nodes the topology gives the group
	Ready    int    `json:"ready"`    // of them ready now
	Need     int    `json:"need"`     // a majority of Declared
	Leader   string `json:"leader,omitempty"`
	Held     bool   `json:"held"`
}

// Operations lists the S3 operations of a cell and the tiers each one needs: GET needs
// the index and storage, LIST and DELETE the index only, PUT all three.
var Operations = []struct {
	Name  string
	Needs []Role
}{
	{"GET", []Role{RoleIndex, RoleStorage}},
	{"LIST", []Role{RoleIndex}},
	{"DELETE", []Role{RoleIndex}},
	{"PUT", []Role{RoleIndex, RolePlacement, RoleStorage}},
}

// OperationHealth says whether a cell can serve one S3 operation now.
type OperationHealth struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Missing []Role `json:"missing,omitempty"`
}

// CellHealth is the one judgement of a cell's health that the status page, cellctl
// status, drills and tests share.
type CellHealth struct {
	Cell   string `json:"cell"`
	Health Health `json:"health"`
	// Reason says in a few words why the cell is not serving.
	Reason string `json:"reason,omitempty"`
	Index  Quorum `json:"index"`
	// Ready and Declared count each tier's nodes: ready now, and in the topology.
	Ready      map[Role]int      `json:"ready"`
	Declared   map[Role]int      `json:"declared"`
	Operations []OperationHealth `json:"operations"`
	// Unsettled says which node's gossip does not yet agree with its process (running
	// but not ready, or stopped but still gossiped ready); "" when none does.
	Unsettled string `json:"unsettled,omitempty"`
}

// Declared is how many nodes of a tier every cell of the topology has.
func (t Topology) Declared(role Role) int {
	switch role {
	case RoleIndex:
		return t.IndexNodes
	case RolePlacement:
		return t.PlacementNodes
	case RoleStorage:
		return t.StorageNodes
	}
	return 0
}

// IndexQuorumNeeded is the majority the index group of every cell needs.
func (t Topology) IndexQuorumNeeded() int { return Majority(t.IndexNodes) }

// JudgeCell decides the health of one cell from the topology (what the cell should
// have) and the nodes' statuses (what it has now). Nodes of other cells are ignored;
// a declared node that nodes does not list counts as not ready.
//
// The index holds quorum when a majority of its declared group is ready and, for a
// replicated group, one of them leads. Without quorum the cell is down (every request
// needs the index); without a ready storage node it is down too (GET and PUT fail);
// without placement it is degraded (reads served, PUT refused); with any declared node
// not ready it is degraded.
func JudgeCell(topo Topology, cellID string, nodes []NodeStatus) CellHealth {
	h := CellHealth{Cell: cellID, Ready: map[Role]int{}, Declared: map[Role]int{}}
	for _, role := range Tiers {
		h.Declared[role] = topo.Declared(role)
	}
	for _, n := range nodes {
		if n.Cell != cellID || !slices.Contains(Tiers, n.Role) {
			continue
		}
		ready := n.Ready()
		if ready {
			h.Ready[n.Role]++
			if n.Role == RoleIndex && n.Leader {
				h.Index.Leader = n.ID
			}
		}
		if h.Unsettled == "" {
			switch {
			case n.Running && n.State == "":
				h.Unsettled = n.ID + " is not seen"
			case n.Running && !ready:
				h.Unsettled = fmt.Sprintf("%s is %s", n.ID, n.State)
			case !n.Running && n.State == StateReady:
				h.Unsettled = n.ID + " is stopped but still shown ready"
			}
		}
	}
	h.Index.Declared = h.Declared[RoleIndex]
	h.Index.Ready = min(h.Ready[RoleIndex], h.Index.Declared)
	h.Index.Need = Majority(h.Index.Declared)
	h.Index.Held = h.Index.Declared > 0 && h.Index.Ready >= h.Index.Need &&
		(h.Index.Declared == 1 || h.Index.Leader != "")

	up := func(role Role) bool {
		if role == RoleIndex {
			return h.Index.Held
		}
		return h.Ready[role] > 0
	}
	for _, op := range Operations {
		o := OperationHealth{Name: op.Name, OK: true}
		for _, need := range op.Needs {
			if !up(need) {
				o.OK = false
				o.Missing = append(o.Missing, need)
			}
		}
		h.Operations = append(h.Operations, o)
	}

	declared, notReady := 0, 0
	for _, role := range Tiers {
		declared += h.Declared[role]
		notReady += max(0, h.Declared[role]-h.Ready[role])
	}
	switch {
	case !h.Index.Held:
		h.Health = HealthDown
		if h.Index.Ready >= h.Index.Need {
			h.Reason = fmt.Sprintf("index has no leader (%d of %d ready): every request fails", h.Index.Ready, h.Index.Declared)
		} else {
			h.Reason = fmt.Sprintf("index has no quorum (%d of %d ready, %d needed): every request fails", h.Index.Ready, h.Index.Declared, h.Index.Need)
		}
	case h.Ready[RoleStorage] == 0:
		h.Health, h.Reason = HealthDown, "no storage node ready: GET and PUT fail"
	case h.Ready[RolePlacement] == 0:
		h.Health, h.Reason = HealthDegraded, "no placement node ready: PUT refused, reads served"
	case notReady > 0:
		h.Health = HealthDegraded
		h.Reason = fmt.Sprintf("%d of %d nodes not ready", notReady, declared)
	default:
		h.Health = HealthServing
	}
	return h
}

// Settled returns nil when the cell is healthy for a drill to go on: its index holds
// quorum, every node whose process runs is ready, and no stopped node is still
// gossiped ready. Otherwise it says what is missing.
func (h CellHealth) Settled() error {
	switch {
	case !h.Index.Held && h.Index.Ready >= h.Index.Need:
		return fmt.Errorf("the index of %s has no leader", h.Cell)
	case !h.Index.Held:
		return fmt.Errorf("the index of %s has no quorum (%d of %d ready, %d needed)", h.Cell, h.Index.Ready, h.Index.Declared, h.Index.Need)
	case h.Unsettled != "":
		return fmt.Errorf("%s", h.Unsettled)
	}
	return nil
}
