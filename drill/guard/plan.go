package guard

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	"github.com/cellarsim/cellar/cell"
)

// Actions a plan can take.
const (
	ActionDrain   = "drain"   // stop nodes of one tier of a cell, one at a time
	ActionRestart = "restart" // restart tiers of a cell in dependency order
	ActionUndrain = "undrain" // start stopped nodes of a cell again
	ActionMove    = "move"    // move a bucket (or a slot's buckets) to another cell
)

// Rules a plan can break.
const (
	RuleFloor = "floor"
	RuleCap   = "cap"
	RuleOrder = "order"
	// RuleTarget: a move's target cell is not healthy, or lacks the capacity floor.
	RuleTarget = "target"
)

// Violation is a guardrail a plan breaks.
type Violation struct {
	Rule    string `json:"rule"`
	Message string `json:"message"`
	// Lifted is true when the request's override lifts it: the plan may then run.
	Lifted bool `json:"lifted"`
}

// Plan is what one capacity operation would do, and whether the guardrails let it.
// Every action has the fields above its details; DrainDetail or RestartDetail says
// the rest (their fields appear inline in the plan's JSON).
type Plan struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	Cell   string `json:"cell"`
	// Nodes are the nodes the plan acts on, in the order it acts on them.
	Nodes []string `json:"nodes"`

	*DrainDetail
	*RestartDetail
	*MoveDetail

	Violations []Violation `json:"violations,omitempty"`
	Override   string      `json:"override,omitempty"`
	// GuardrailsOff is set when the cluster's topology turns the guardrails off
	// (guardrails: off, for teaching): every violation is lifted, and a plan that
	// breaks one without an override of its own carries GuardrailsOffOverride.
	GuardrailsOff bool `json:"guardrails_off,omitempty"`
}

// GuardrailsOffOverride is the override of a plan the guardrails would refuse, let
// through because the cluster's guardrails are off.
const GuardrailsOffOverride = "GUARDRAILS OFF (teaching mode): nothing was refused"

// GuardrailsOffBanner is the line every output about a cluster without guardrails
// carries.
const GuardrailsOffBanner = "GUARDRAILS OFF: teaching mode; nothing is refused, every plan is still audited. Never on a cluster that matters."

// WouldRefuse is the refusals the plan would have had with the guardrails on, in one
// line like RefusalText; empty when the guardrails are on or it breaks none.
func (p *Plan) WouldRefuse() string {
	if !p.GuardrailsOff {
		return ""
	}
	var msgs []string
	for _, v := range p.Violations {
		msgs = append(msgs, v.Rule+": "+v.Message)
	}
	return strings.Join(msgs, "; ")
}

// DrainDetail is what a drain plan was decided on.
type DrainDetail struct {
	Tier cell.Role `json:"tier"`
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
}

// Allowed reports whether the plan may run: every guardrail it breaks is lifted.
func (p *Plan) Allowed() bool { return len(p.Refusals()) == 0 }

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

// RefusalText is the refusals in one line: "floor: ...; cap: ...".
func (p *Plan) RefusalText() string {
	var msgs []string
	for _, v := range p.Refusals() {
		msgs = append(msgs, v.Rule+": "+v.Message)
	}
	return strings.Join(msgs, "; ")
}

// FloorLifted reports whether the plan runs only because the override lifts the floor:
// it takes a tier of the cell below what keeps it working.
func (p *Plan) FloorLifted() bool {
	return slices.ContainsFunc(p.Violations, func(v Violation) bool { return v.Rule == RuleFloor && v.Lifted })
}

// seal finishes a plan: an override with nothing to lift is dropped (the plan is the
// same with or without one), and the id is set. The id hashes everything the plan
// does and everything it was decided on (basis): the action, the cell, the nodes,
// which guardrails it lifts, and the action's own basis. A change in any of them
// (another node went down meanwhile, a different override) gives another id; the
// override's wording does not.
func (p *Plan) seal(basis any) {
	if len(p.Violations) == 0 {
		p.Override = ""
	} else if p.GuardrailsOff && p.Override == "" {
		p.Override = GuardrailsOffOverride
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
		Nodes  []string
		Lifted []string
		Basis  any
	}{p.Action, p.Cell, p.Nodes, lifted, basis})
	sum := sha256.Sum256(b)
	p.ID = hex.EncodeToString(sum[:])[:12]
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
