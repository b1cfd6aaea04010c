// Package guard is the one guardrail workflow every capacity operation of cellar goes
// through, whoever asks for it (cellctl drain and restart, a drill's steps, the
// supervisor's control endpoint):
//
//	halt check → plan → dry run → confirmation by plan id → reason → audit → paced execution
//
// The policy turns a request ("drain 2 index nodes of cell-2") into a Plan, which may
// break guardrails: a floor per tier per cell, a cap on the share of a tier one command
// takes, the dependency order of a restart. An override lifts them, loudly. The policy
// is a pure function of the topology, the nodes' current states and the request, so
// that a dry run and the execution that follows decide the same way, and a plan id (a
// hash of what the plan does and what it was decided on) binds a confirmation to what
// was previewed. Run carries a plan through the workflow; the Executor acts on a
// cell.Cluster one node at a time, checking the kill switch (Halt) before each step and
// waiting for the cell to settle after each; every decision and step is appended to the
// audit log (Audit) that the status page reads.
package guard

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/cellarsim/cellar/cell"
)

// Tiers whose capacity a drain removes.
var Tiers = []cell.Role{cell.RoleIndex, cell.RolePlacement, cell.RoleStorage}

// Policy is the configured guardrails.
type Policy struct {
	// MinPlacement and MinStorage are the floors of those tiers: the fewest nodes a
	// cell may keep up (default 1 each). The index's floor is always a majority of its
	// group.
	MinPlacement int `json:"min_placement"`
	MinStorage   int `json:"min_storage"`
	// CapShare is the largest share of a tier, region-wide, that one command may take
	// (default 0.05); the cap is never below one node.
	CapShare float64 `json:"cap_share"`
}

// DefaultPolicy is the guardrails cellctl applies unless told otherwise.
func DefaultPolicy() Policy { return Policy{MinPlacement: 1, MinStorage: 1, CapShare: 0.05} }

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	if p.MinPlacement <= 0 {
		p.MinPlacement = d.MinPlacement
	}
	if p.MinStorage <= 0 {
		p.MinStorage = d.MinStorage
	}
	if p.CapShare <= 0 {
		p.CapShare = d.CapShare
	}
	return p
}

// Request asks to take nodes of one tier of one cell out: Count of them (the policy
// picks which) or exactly Nodes.
type Request struct {
	Cell  string    `json:"cell"`
	Tier  cell.Role `json:"tier"`
	Count int       `json:"count,omitempty"`
	Nodes []string  `json:"nodes,omitempty"`
	// Override, when not empty, is why the guardrails may be crossed: it lifts the
	// cap and the floor, each lift recorded in the plan.
	Override string `json:"override,omitempty"`
}

// ErrBadRequest wraps a request the policy cannot plan at all (unknown cell or node,
// nothing to take out): not a guardrail, a mistake in the request.
var ErrBadRequest = errors.New("bad request")

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

// PlanDrain decides a drain: topo is the configured cluster, nodes the current states.
// It returns a plan, which may break guardrails (see Allowed and Refusals), or an error
// wrapping ErrBadRequest when the request names no sensible set of nodes.
func PlanDrain(topo cell.Topology, nodes []cell.NodeStatus, pol Policy, req Request) (*Plan, error) {
	pol = pol.withDefaults()
	if !slices.Contains(Tiers, req.Tier) {
		return nil, badf("tier %q: want index, placement or storage", req.Tier)
	}
	if !slices.Contains(topo.CellIDs(), req.Cell) {
		return nil, badf("no cell %q (cells: %s)", req.Cell, strings.Join(topo.CellIDs(), ", "))
	}
	if (req.Count > 0) == (len(req.Nodes) > 0) {
		return nil, badf("give a count of nodes or a list of nodes, not both or neither")
	}
	var tier []cell.NodeStatus // this tier in this cell, configured order
	inRegion := 0
	for _, n := range nodes {
		if n.Role != req.Tier {
			continue
		}
		inRegion++
		if n.Cell == req.Cell {
			tier = append(tier, n)
		}
	}
	up := 0
	for _, n := range tier {
		if n.Ready() {
			up++
		}
	}

	var chosen []string
	if len(req.Nodes) > 0 {
		seen := map[string]bool{}
		for _, id := range req.Nodes {
			i := slices.IndexFunc(tier, func(n cell.NodeStatus) bool { return n.ID == id })
			switch {
			case seen[id]:
				return nil, badf("node %s is named twice", id)
			case i < 0:
				return nil, badf("node %s is not a %s node of %s", id, req.Tier, req.Cell)
			case !tier[i].Ready():
				return nil, badf("node %s is already down", id)
			}
			seen[id] = true
			chosen = append(chosen, id)
		}
	} else {
		if req.Count > up {
			return nil, badf("%s has %d %s node%s up, fewer than the %d asked for", req.Cell, up, req.Tier, plural(up), req.Count)
		}
		// Followers first, by id, the leader last: a drain that can avoid moving the
		// index's leadership does.
		cands := slices.Clone(tier)
		sort.SliceStable(cands, func(i, j int) bool { return !cands[i].Leader && cands[j].Leader })
		for _, n := range cands {
			if n.Ready() && len(chosen) < req.Count {
				chosen = append(chosen, n.ID)
			}
		}
	}

	p := &Plan{Action: ActionDrain, Cell: req.Cell, Nodes: chosen, Override: req.Override, DrainDetail: &DrainDetail{
		Tier: req.Tier, InCell: len(tier), UpInCell: up, LeftInCell: up - len(chosen), InRegion: inRegion,
	}}
	p.Floor = floor(topo, pol, req.Tier)
	p.ShareOfCell = share(len(chosen), len(tier))
	p.ShareOfRegion = share(len(chosen), inRegion)
	p.Cap = max(1, int(math.Floor(pol.CapShare*float64(inRegion)+1e-9)))
	p.KeepsQuorum = req.Tier != cell.RoleIndex || p.LeftInCell >= p.Floor

	// With the guardrails off (a teaching topology), every guardrail the plan breaks is
	// lifted as an override would lift it: the verdict changes, the workflow does not.
	p.GuardrailsOff = topo.GuardrailsOff()
	lift := req.Override != "" || p.GuardrailsOff
	if p.LeftInCell < p.Floor {
		what := fmt.Sprintf("the configured minimum of %d", p.Floor)
		if req.Tier == cell.RoleIndex {
			what = fmt.Sprintf("a majority of its group of %d (%d): the cell would lose quorum", len(tier), p.Floor)
		}
		p.Violations = append(p.Violations, Violation{Rule: RuleFloor, Lifted: lift, Message: fmt.Sprintf(
			"%s would keep %d %s node%s up, below its floor, %s", req.Cell, p.LeftInCell, req.Tier, plural(p.LeftInCell), what)})
	}
	if len(chosen) > p.Cap {
		p.Violations = append(p.Violations, Violation{Rule: RuleCap, Lifted: lift, Message: fmt.Sprintf(
			"%d %s nodes is %.0f%% of the tier region-wide; one command may take at most %d (%.0f%%, at least one node)",
			len(chosen), req.Tier, 100*p.ShareOfRegion, p.Cap, 100*pol.CapShare)})
	}
	var upIDs []string
	for _, n := range tier {
		if n.Ready() {
			upIDs = append(upIDs, n.ID)
		}
	}
	// What the plan was decided on: which of the tier's nodes were up, and its limits.
	p.seal(struct {
		Tier  cell.Role
		Up    []string
		Floor int
		Cap   int
	}{req.Tier, upIDs, p.Floor, p.Cap})
	return p, nil
}

// floor is the fewest nodes of a tier a cell keeps up.
func floor(topo cell.Topology, pol Policy, tier cell.Role) int {
	switch tier {
	case cell.RoleIndex:
		return cell.Majority(topo.IndexNodes)
	case cell.RolePlacement:
		return min(pol.MinPlacement, topo.PlacementNodes)
	default:
		return min(pol.MinStorage, topo.StorageNodes)
	}
}

func share(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}
