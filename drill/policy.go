// Package drill holds what removing capacity from a running cluster goes through: the
// guardrail policy that turns a request ("drain 2 index nodes of cell-2") into a plan or
// a refusal, the append-only audit log of every decision, the kill switch that halts
// drills, and the paced executor of a confirmed plan.
//
// The policy is a pure function of the topology, the nodes' current states and the
// request, so that a dry run and the execution that follows decide the same way, and a
// plan id (a hash of the exact plan) binds a confirmation to what was previewed.
package drill

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// NodeState is what the policy knows of one node now.
type NodeState struct {
	ID     string    `json:"id"`
	Role   cell.Role `json:"role"`
	Cell   string    `json:"cell,omitempty"`
	Up     bool      `json:"up"`               // running and ready
	Leader bool      `json:"leader,omitempty"` // leads its cell's index group
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

// Rules a plan can break.
const (
	RuleFloor = "floor"
	RuleCap   = "cap"
)

// Violation is a guardrail a plan breaks.
type Violation struct {
	Rule    string `json:"rule"`
	Message string `json:"message"`
	// Lifted is true when the request's override lifts it: the plan may then run.
	Lifted bool `json:"lifted"`
}

// Plan is what a drain would do, and whether the guardrails let it.
type Plan struct {
	ID    string    `json:"id"`
	Cell  string    `json:"cell"`
	Tier  cell.Role `json:"tier"`
	Nodes []string  `json:"nodes"` // in the order they are taken out

	// The tier in this cell: configured nodes, up now, up after the plan, and the floor.
	InCell     int `json:"in_cell"`
	UpInCell   int `json:"up_in_cell"`
	LeftInCell int `json:"left_in_cell"`
	Floor      int `json:"floor"`
	// Shares of the tier the plan takes: of this cell's nodes and of the region's.
	ShareOfCell   float64 `json:"share_of_cell"`
	ShareOfRegion float64 `json:"share_of_region"`
	InRegion      int     `json:"in_region"`
	Cap           int     `json:"cap"` // most nodes of the tier one command may take
	// KeepsQuorum says, for the index, whether the group keeps a majority up.
	KeepsQuorum bool `json:"keeps_quorum"`

	Violations []Violation `json:"violations,omitempty"`
	Override   string      `json:"override,omitempty"`
}

// Allowed reports whether the plan may run: every guardrail it breaks is lifted.
func (p *Plan) Allowed() bool {
	for _, v := range p.Violations {
		if !v.Lifted {
			return false
		}
	}
	return true
}

// Refusals are the violations that stop the plan.
func (p *Plan) Refusals() []Violation {
	var out []Violation
	for _, v := range p.Violations {
		if !v.Lifted {
			out = append(out, v)
		}
	}
	return out
}

// FloorLifted reports whether the plan runs only because the override lifts the floor:
// it takes the tier of the cell below what keeps it working.
func (p *Plan) FloorLifted() bool {
	for _, v := range p.Violations {
		if v.Rule == RuleFloor && v.Lifted {
			return true
		}
	}
	return false
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
func PlanDrain(topo cell.Topology, nodes []NodeState, pol Policy, req Request) (*Plan, error) {
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
	var tier []NodeState // this tier in this cell, configured order
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
		if n.Up {
			up++
		}
	}

	var chosen []string
	if len(req.Nodes) > 0 {
		seen := map[string]bool{}
		for _, id := range req.Nodes {
			i := slices.IndexFunc(tier, func(n NodeState) bool { return n.ID == id })
			switch {
			case seen[id]:
				return nil, badf("node %s is named twice", id)
			case i < 0:
				return nil, badf("node %s is not a %s node of %s", id, req.Tier, req.Cell)
			case !tier[i].Up:
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
			if n.Up && len(chosen) < req.Count {
				chosen = append(chosen, n.ID)
			}
		}
	}

	p := &Plan{
		Cell: req.Cell, Tier: req.Tier, Nodes: chosen, InCell: len(tier), UpInCell: up,
		LeftInCell: up - len(chosen), InRegion: inRegion, Override: req.Override,
	}
	p.Floor = floor(topo, pol, req.Tier)
	p.ShareOfCell = share(len(chosen), len(tier))
	p.ShareOfRegion = share(len(chosen), inRegion)
	p.Cap = max(1, int(math.Floor(pol.CapShare*float64(inRegion)+1e-9)))
	p.KeepsQuorum = req.Tier != cell.RoleIndex || p.LeftInCell >= p.Floor

	lift := req.Override != ""
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
	if len(p.Violations) == 0 {
		p.Override = "" // nothing to lift: the plan is the same with or without one
	}
	p.ID = planID("drain", p, tier)
	return p, nil
}

// floor is the fewest nodes of a tier a cell keeps up.
func floor(topo cell.Topology, pol Policy, tier cell.Role) int {
	switch tier {
	case cell.RoleIndex:
		return topo.IndexNodes/2 + 1
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

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// planID hashes everything the plan does and everything it was decided on: the
// action, cell, tier, nodes in order, which of the tier's nodes were up, and which
// guardrails it lifts. A change in any of them (another node went down meanwhile, a
// different override) gives another id.
func planID(action string, p *Plan, tier []NodeState) string {
	var up []string
	for _, n := range tier {
		if n.Up {
			up = append(up, n.ID)
		}
	}
	var lifted []string
	for _, v := range p.Violations {
		if v.Lifted {
			lifted = append(lifted, v.Rule)
		}
	}
	b, _ := json.Marshal(struct {
		Action string
		Cell   string
		Tier   cell.Role
		Nodes  []string
		Up     []string
		Lifted []string
		Floor  int
		Cap    int
	}{action, p.Cell, p.Tier, p.Nodes, up, lifted, p.Floor, p.Cap})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12]
}
