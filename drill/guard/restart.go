package guard

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cellarsim/cellar/cell"
)

// RestartOrder is the dependency order a cell's tiers start in: the index first (the
// others follow it), then storage, then placement (placement picks storage nodes that
// must be up).
var RestartOrder = []cell.Role{cell.RoleIndex, cell.RoleStorage, cell.RolePlacement}

// RestartRequest asks to restart tiers of a cell, in Order (default: RestartOrder,
// restricted to Tiers when given).
type RestartRequest struct {
	Cell  string      `json:"cell"`
	Tiers []cell.Role `json:"tiers,omitempty"`
	Order []cell.Role `json:"order,omitempty"`
	// Cold stops every node of the tiers first, then starts them tier by tier; rolling
	// (the default) restarts one node at a time, waiting for health in between.
	Cold     bool   `json:"cold"`
	Override string `json:"override,omitempty"`
}

// RestartTier is one tier of a restart plan.
type RestartTier struct {
	Tier  cell.Role `json:"tier"`
	Nodes []string  `json:"nodes"`
	Floor int       `json:"floor"`
	// Least is the fewest nodes of the tier up at any point of the restart.
	Least int `json:"least_up"`
}

// RestartDetail is what a restart plan does, tier by tier.
type RestartDetail struct {
	Cold  bool          `json:"cold"`
	Tiers []RestartTier `json:"tiers"` // in the order they start
}

// PlanRestart decides a restart of a cell's running nodes. A rolling restart takes one
// node down at a time, so it crosses a floor only where a tier has no node to spare; a
// cold one takes every tier to zero, below every floor (which is what a cold restart
// is for, so it needs an override, as does an order other than the dependency order).
func PlanRestart(topo cell.Topology, nodes []cell.NodeStatus, pol Policy, req RestartRequest) (*Plan, error) {
	pol = pol.withDefaults()
	if !slices.Contains(topo.CellIDs(), req.Cell) {
		return nil, badf("no cell %q (cells: %s)", req.Cell, strings.Join(topo.CellIDs(), ", "))
	}
	tiers := req.Tiers
	if len(tiers) == 0 {
		tiers = RestartOrder
	}
	for _, t := range tiers {
		if !slices.Contains(Tiers, t) {
			return nil, badf("tier %q: want index, placement or storage", t)
		}
	}
	order := req.Order
	if len(order) == 0 {
		for _, t := range RestartOrder {
			if slices.Contains(tiers, t) {
				order = append(order, t)
			}
		}
	}
	if len(order) != len(tiers) {
		return nil, badf("the order must name each tier to restart once")
	}
	for i, t := range order {
		if !slices.Contains(tiers, t) || slices.Contains(order[:i], t) {
			return nil, badf("the order must name each tier to restart once")
		}
	}
	p := &Plan{Action: ActionRestart, Cell: req.Cell, Override: req.Override, RestartDetail: &RestartDetail{Cold: req.Cold}}
	p.GuardrailsOff = topo.GuardrailsOff()
	lift := req.Override != "" || p.GuardrailsOff
	for _, t := range order {
		rt := RestartTier{Tier: t, Floor: floor(topo, pol, t)}
		for _, n := range nodes {
			if n.Cell == req.Cell && n.Role == t && n.Ready() {
				rt.Nodes = append(rt.Nodes, n.ID)
			}
		}
		if len(rt.Nodes) == 0 {
			return nil, badf("%s has no %s node up to restart", req.Cell, t)
		}
		if t == cell.RoleIndex {
			// Followers first, the leader last: one election, at the end.
			slices.SortStableFunc(rt.Nodes, func(a, b string) int {
				return boolInt(isLeader(nodes, a)) - boolInt(isLeader(nodes, b))
			})
		}
		rt.Least = len(rt.Nodes) - 1
		if req.Cold {
			rt.Least = 0
		}
		if rt.Least < rt.Floor {
			how := "a rolling restart takes one of its"
			if req.Cold {
				how = "a cold restart stops all of its"
			}
			p.Violations = append(p.Violations, Violation{Rule: RuleFloor, Lifted: lift, Message: fmt.Sprintf(
				"%s: %s %d %s node%s up, leaving %d, below its floor of %d", req.Cell, how, len(rt.Nodes), t, plural(len(rt.Nodes)), rt.Least, rt.Floor)})
		}
		p.Tiers = append(p.Tiers, rt)
		p.Nodes = append(p.Nodes, rt.Nodes...)
	}
	for i := 1; i < len(order); i++ {
		if slices.Index(RestartOrder, order[i]) < slices.Index(RestartOrder, order[i-1]) {
			p.Violations = append(p.Violations, Violation{Rule: RuleOrder, Lifted: lift, Message: fmt.Sprintf(
				"%s would start before %s, against the dependency order %s", order[i-1], order[i], joinRoles(RestartOrder))})
			break
		}
	}
	// The id binds each tier's set of nodes, not their order: a leader that moves
	// between the dry run and the confirmation reorders a tier but changes nothing
	// the plan was decided on.
	type tierBasis struct {
		Tier  cell.Role
		Nodes []string
		Floor int
		Least int
	}
	basis := struct {
		Cold  bool
		Tiers []tierBasis
	}{Cold: p.Cold}
	for _, t := range p.Tiers {
		basis.Tiers = append(basis.Tiers, tierBasis{t.Tier, slices.Sorted(slices.Values(t.Nodes)), t.Floor, t.Least})
	}
	p.Nodes = nil // hashed per tier, as sets
	p.seal(basis)
	for _, t := range p.Tiers {
		p.Nodes = append(p.Nodes, t.Nodes...)
	}
	return p, nil
}

func isLeader(nodes []cell.NodeStatus, id string) bool {
	for _, n := range nodes {
		if n.ID == id {
			return n.Leader
		}
	}
	return false
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func joinRoles(rs []cell.Role) string {
	var s []string
	for _, r := range rs {
		s = append(s, string(r))
	}
	return strings.Join(s, ", ")
}

// Restart carries out a restart plan. Rolling: per tier in order, per node: stop,
// start (which returns once it is ready), wait for the cell to be healthy. Cold: stop
// every node of the plan (the last tier to start first), then per tier in order start
// all its nodes at once and wait for them all. Each start is bounded by StartTimeout
// (default 2m); every step is audited and checks the kill switch first. The results
// hold each node's time from start to ready.
func (x *Executor) Restart(ctx context.Context, p *Plan) ([]StepResult, error) {
	if err := x.check(p, ActionRestart); err != nil {
		return nil, err
	}
	var out []StepResult
	var mu sync.Mutex
	record := func(s StepResult) {
		mu.Lock()
		out = append(out, s)
		mu.Unlock()
	}
	entry := func(decision, node, outcome string) Entry { return x.entry(p, decision, node, outcome) }
	fail := func(node string, err error) ([]StepResult, error) {
		_ = x.Audit.Append(entry(DecisionAborted, node, err.Error()))
		return out, err
	}
	stepCtx := x.stepContext(ctx, p)
	act := func(action, id string) error {
		start := time.Now()
		var err error
		if action == "stop" {
			err = x.Cluster.StopNode(stepCtx, id)
		} else {
			sctx, cancel := context.WithTimeout(stepCtx, x.startTimeout())
			err = x.Cluster.StartNode(sctx, id)
			cancel()
		}
		s := StepResult{Node: id, Action: action, Took: time.Since(start)}
		outcome := fmt.Sprintf("%s done in %s", action, s.Took.Round(time.Millisecond))
		if action == "start" {
			outcome = fmt.Sprintf("started and ready in %s", s.Took.Round(time.Millisecond))
		}
		if err != nil {
			s.Error = err.Error()
			outcome = fmt.Sprintf("%s failed after %s: %v", action, s.Took.Round(time.Millisecond), err)
		}
		record(s)
		x.progressf("%s %s: %s\n", action, id, strings.TrimPrefix(outcome, action+" "))
		if aerr := x.Audit.Append(entry(DecisionStep, id, outcome)); aerr != nil && err == nil {
			err = aerr
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", action, id, err)
		}
		return nil
	}
	if !p.Cold {
		for _, t := range p.Tiers {
			for _, id := range t.Nodes {
				if err := CheckHalt(x.Dir); err != nil {
					return fail(id, err)
				}
				if err := act("stop", id); err != nil {
					return fail(id, err)
				}
				if err := act("start", id); err != nil {
					return fail(id, err)
				}
				if err := x.waitHealthy(ctx, p.Cell); err != nil {
					return fail(id, fmt.Errorf("%s was not healthy after restarting %s: %w", p.Cell, id, err))
				}
			}
		}
	} else {
		for i := len(p.Tiers) - 1; i >= 0; i-- {
			for _, id := range p.Tiers[i].Nodes {
				if err := CheckHalt(x.Dir); err != nil {
					return fail(id, err)
				}
				if err := act("stop", id); err != nil {
					return fail(id, err)
				}
			}
		}
		for _, t := range p.Tiers {
			if err := CheckHalt(x.Dir); err != nil {
				return fail("", err)
			}
			errs := make([]error, len(t.Nodes))
			var wg sync.WaitGroup
			for i, id := range t.Nodes {
				wg.Go(func() { errs[i] = act("start", id) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					return fail(t.Nodes[i], fmt.Errorf("%s tier did not come back, so the tiers after it were not started: %w", t.Tier, err))
				}
			}
		}
		if err := x.waitHealthy(ctx, p.Cell); err != nil {
			return fail("", fmt.Errorf("every node started, but %s is not healthy: %w", p.Cell, err))
		}
	}
	if err := x.Audit.Append(entry(DecisionDone, "", "restart done")); err != nil {
		return out, err
	}
	return out, nil
}

func (x *Executor) startTimeout() time.Duration {
	if x.StartTimeout > 0 {
		return x.StartTimeout
	}
	return 2 * time.Minute
}
