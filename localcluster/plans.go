package localcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway/mover"
)

// PlanRequest is the body of POST /v1/plans: one capacity operation for the supervisor
// to take through the guardrail workflow (guard.Executor.Run) on its own cluster.
type PlanRequest struct {
	// Action is guard.ActionDrain, guard.ActionRestart or guard.ActionUndrain.
	Action string `json:"action"`
	Cell   string `json:"cell"`
	// A drain takes Count nodes of Tier, or exactly Nodes; an undrain starts Nodes
	// (default: every node of the cell whose process does not run).
	Tier  cell.Role `json:"tier,omitempty"`
	Count int       `json:"count,omitempty"`
	Nodes []string  `json:"nodes,omitempty"`
	// A restart restarts Tiers (default all), started in Order, Cold or rolling.
	Tiers []cell.Role `json:"tiers,omitempty"`
	Order []cell.Role `json:"order,omitempty"`
	Cold  bool        `json:"cold,omitempty"`
	// Override, when set, says why the guardrails may be crossed.
	Override string `json:"override,omitempty"`
	// Policy is the floors and the cap to judge by (default guard.DefaultPolicy).
	Policy *guard.Policy `json:"policy,omitempty"`

	// Confirm is the id of the plan a dry run showed, to run it; "" asks for a dry
	// run. Auto runs the plan the guardrails allow with no preview (drills).
	Confirm string `json:"confirm,omitempty"`
	Auto    bool   `json:"auto,omitempty"`
	// Reason is required to run a plan; Command says who asked, for the audit log.
	Reason  string `json:"reason,omitempty"`
	Command string `json:"command,omitempty"`

	// HealthTimeoutMS bounds each wait for the cell's health (default 30s; an
	// undrain's final wait 60s); StartTimeoutMS each node's start in a restart
	// (default 2m).
	HealthTimeoutMS int64 `json:"health_timeout_ms,omitempty"`
	StartTimeoutMS  int64 `json:"start_timeout_ms,omitempty"`
}

// PlanEvent is one line of the answer to POST /v1/plans, which is newline-delimited
// JSON: the plan once it is decided ("plan"), a line per step as it happens
// ("progress"), and the result last ("result"). The HTTP status is 409 when the
// guardrails refuse the plan or its confirmation (or the kill switch is set, or
// another operation runs), 400 for a request that names nothing sensible, else 200;
// a failure while the plan runs is in the result.
type PlanEvent struct {
	Event  string      `json:"event"`
	Plan   *guard.Plan `json:"plan,omitempty"`
	Line   string      `json:"line,omitempty"`
	Result *PlanResult `json:"result,omitempty"`
	// Move is where a move is, in the progress events of POST /v1/moves.
	Move *mover.Progress `json:"move,omitempty"`
}

// Events of a plan's answer.
const (
	EventPlan     = "plan"
	EventProgress = "progress"
	EventResult   = "result"
)

// PlanResult is what the workflow decided and did.
type PlanResult struct {
	Executed bool               `json:"executed"`
	Steps    []guard.StepResult `json:"steps,omitempty"`
	// Error says why the plan did not run or did not finish; Kind what kind of
	// failure that is (see the Kind constants).
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"`
	// Stale is set for a confirmation that does not match the plan as it stands.
	Stale *StaleConfirmation `json:"stale,omitempty"`
	// Moved is what each bucket's move did, for POST /v1/moves.
	Moved []mover.Stats `json:"moved,omitempty"`
}

// StaleConfirmation is a guard.StaleError on the wire.
type StaleConfirmation struct {
	Confirmed string `json:"confirmed"`
	Current   string `json:"current"`
	Previewed bool   `json:"previewed"`
}

// planStream writes a plan's answer one event a line, flushing each, and picks the
// HTTP status when the first event is written.
type planStream struct {
	w       http.ResponseWriter
	mu      sync.Mutex
	started bool
}

func (s *planStream) send(status int, ev PlanEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.w.Header().Set("Content-Type", "application/x-ndjson")
		s.w.WriteHeader(status)
		s.started = true
	}
	_ = json.NewEncoder(s.w).Encode(ev)
	_ = http.NewResponseController(s.w).Flush()
}

// progressWriter turns the executor's progress lines into progress events.
type progressWriter struct{ s *planStream }

func (p progressWriter) Write(b []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(b), "\n"), "\n") {
		p.s.send(http.StatusOK, PlanEvent{Event: EventProgress, Line: line})
	}
	return len(b), nil
}

func (c *controller) servePlan(w http.ResponseWriter, r *http.Request) {
	s := &planStream{w: w}
	var req PlanRequest
	err := decodeBody(r, &req)
	if err == nil {
		err = req.check()
	}
	if err != nil {
		s.send(http.StatusBadRequest, resultEvent(nil, err))
		return
	}
	if req.Command == "" {
		req.Command = "POST /v1/plans"
	}
	running := req.Confirm != "" || req.Auto
	release := func() {}
	if running && req.Action != guard.ActionUndrain {
		if release, err = c.claim(fmt.Sprintf("a %s of %s by %q", req.Action, req.Cell, req.Command)); err != nil {
			c.refuse(req.Command, req.Reason, req.Confirm, req.Cell, "", err)
			s.send(statusOf(err), resultEvent(nil, err))
			return
		}
		defer release()
	}
	x := c.executor()
	x.Progress = progressWriter{s}
	if req.HealthTimeoutMS > 0 {
		x.HealthTimeout = time.Duration(req.HealthTimeoutMS) * time.Millisecond
	}
	if req.StartTimeoutMS > 0 {
		x.StartTimeout = time.Duration(req.StartTimeoutMS) * time.Millisecond
	}
	var op guard.Op
	op = guard.Op{Command: req.Command, Reason: req.Reason, Confirm: req.Confirm, Auto: req.Auto,
		Plan: c.planner(req),
		Show: func(p *guard.Plan) {
			status := http.StatusOK
			if op.Refuses(p) {
				status = http.StatusConflict
			}
			s.send(status, PlanEvent{Event: EventPlan, Plan: p})
		}}
	var res *guard.Result
	if req.Action == guard.ActionUndrain {
		res, err = c.undrain(r.Context(), s, x, op, req)
	} else {
		res, err = x.Run(r.Context(), op)
	}
	// Another operation may start once the client knows this one ended.
	release()
	s.send(statusOf(err), resultEvent(res, err))
}

// check refuses a request that names no action, or a policy out of range.
func (req *PlanRequest) check() error {
	switch req.Action {
	case guard.ActionDrain, guard.ActionRestart, guard.ActionUndrain:
	default:
		return &kindError{fmt.Sprintf("bad request: action %q: want drain, restart or undrain", req.Action), guard.ErrBadRequest}
	}
	if p := req.Policy; p != nil && (p.CapShare < 0 || p.CapShare > 1 || p.MinPlacement < 0 || p.MinStorage < 0) {
		return &kindError{"bad request: the cap share must be between 0 and 1, and the floors not negative", guard.ErrBadRequest}
	}
	return nil
}

// planner decides the plan of req from the cluster as it is now.
func (c *controller) planner(req PlanRequest) func(context.Context) (*guard.Plan, error) {
	pol := guard.DefaultPolicy()
	if req.Policy != nil {
		pol = *req.Policy
	}
	return func(ctx context.Context) (*guard.Plan, error) {
		if req.Action == guard.ActionUndrain {
			nodes, err := c.undrainNodes(req.Cell, req.Nodes)
			if err != nil {
				return nil, err
			}
			return guard.PlanUndrain(req.Cell, nodes), nil
		}
		states, err := c.cfg.Cluster.Nodes(ctx)
		if err != nil {
			return nil, err
		}
		topo := c.cfg.Cluster.Topology()
		if req.Action == guard.ActionDrain {
			return guard.PlanDrain(topo, states, pol, guard.Request{Cell: req.Cell, Tier: req.Tier, Count: req.Count, Nodes: req.Nodes, Override: req.Override})
		}
		rr := guard.RestartRequest{Cell: req.Cell, Tiers: req.Tiers, Order: req.Order, Cold: req.Cold, Override: req.Override}
		if len(rr.Order) > 0 && len(rr.Tiers) == 0 {
			rr.Tiers = rr.Order
		}
		return guard.PlanRestart(topo, states, pol, rr)
	}
}

// undrain starts stopped nodes of a cell, always without a preview (adding capacity
// back crosses no guardrail), and then waits for the cell to be whole: a cell whose
// index lost quorum only heals once enough of it is back. A cell with every node
// running gets an empty plan and nothing is done.
func (c *controller) undrain(ctx context.Context, s *planStream, x *guard.Executor, op guard.Op, req PlanRequest) (*guard.Result, error) {
	if strings.TrimSpace(op.Reason) == "" {
		op.Reason = "capacity back" // adding capacity back needs no reason of its own
	}
	op.Auto, op.Confirm = true, ""
	if err := x.Halted(op, req.Cell); err != nil {
		return nil, err
	}
	p, err := op.Plan(ctx)
	if err != nil {
		return nil, err
	}
	if len(p.Nodes) == 0 {
		s.send(http.StatusOK, PlanEvent{Event: EventPlan, Plan: p})
		return &guard.Result{Plan: p}, nil
	}
	res, err := x.Run(ctx, op)
	if err != nil {
		return res, err
	}
	wait := 60 * time.Second
	if req.HealthTimeoutMS > 0 {
		wait = time.Duration(req.HealthTimeoutMS) * time.Millisecond
	}
	hctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := cell.WaitSettled(hctx, c.cfg.Cluster, req.Cell); err != nil {
		return res, fmt.Errorf("every node started, but %s is not healthy: %w", req.Cell, err)
	}
	return res, nil
}

// undrainNodes picks the nodes an undrain starts: the named ones (which must be of the
// cell and not running), or every node of the cell that is not running, in the order
// a cell starts in.
func (c *controller) undrainNodes(cellID string, named []string) ([]string, error) {
	topo := c.cfg.Cluster.Topology()
	if !slices.Contains(topo.CellIDs(), cellID) {
		return nil, &kindError{fmt.Sprintf("bad request: no cell %q (cells: %s)", cellID, strings.Join(topo.CellIDs(), ", ")), guard.ErrBadRequest}
	}
	procs := c.cfg.Procs()
	if len(named) > 0 {
		for _, id := range named {
			i := slices.IndexFunc(procs, func(n Node) bool { return n.ID == id })
			switch {
			case i < 0 || procs[i].Cell != cellID:
				return nil, &kindError{fmt.Sprintf("bad request: node %s is not a node of %s", id, cellID), guard.ErrBadRequest}
			case running(procs[i]):
				return nil, &kindError{fmt.Sprintf("bad request: node %s is running already", id), guard.ErrBadRequest}
			}
		}
		return named, nil
	}
	var out []string
	for _, role := range guard.RestartOrder {
		for _, n := range procs {
			if n.Cell == cellID && n.Role == role && !running(n) {
				out = append(out, n.ID)
			}
		}
	}
	return out, nil
}

// resultEvent is the last event of a plan's answer.
func resultEvent(res *guard.Result, err error) PlanEvent {
	r := &PlanResult{}
	if res != nil {
		r.Executed, r.Steps = res.Executed, res.Steps
	}
	if err != nil {
		r.Error, r.Kind = err.Error(), kindOf(err)
		if stale, ok := err.(*guard.StaleError); ok {
			r.Stale = &StaleConfirmation{Confirmed: stale.Confirmed, Current: stale.Current, Previewed: stale.Previewed}
		}
	}
	return PlanEvent{Event: EventResult, Result: r}
}
