package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cellarsim/cellar/cell"
)

// Executor carries out plans on a cluster one node at a time: before every step it
// checks the kill switch, after every step but the last it waits for the cell to
// settle, and it writes every step to the audit log. Run is the way in: it takes a
// plan through the whole workflow before the executor acts.
type Executor struct {
	Dir     string // the cluster's data directory: where the kill switch is
	Audit   *Audit
	Cluster cell.Cluster
	// WaitHealthy returns once the cell is healthy again, or an error when ctx ends
	// first. Default: cell.WaitSettled on Cluster, the one definition of a healthy cell.
	WaitHealthy func(ctx context.Context, cell string) error
	// HealthTimeout bounds each wait for health (default 30s).
	HealthTimeout time.Duration
	// StartTimeout bounds each node's start in a restart, until it is ready (default 2m).
	StartTimeout time.Duration
	// Command, Reason and Override go into every audit entry; Run sets them from its Op.
	Command, Reason, Override string
	// Progress receives a line per step (nil: none).
	Progress io.Writer
	// Kill makes Drain end its nodes with KillNode, as a crash would, instead of
	// stopping them gracefully.
	Kill bool
}

// StepResult is one node a plan acted on.
type StepResult struct {
	Node    string        `json:"node"`
	Action  string        `json:"action"` // "stop" or "start"
	Took    time.Duration `json:"took_ns"`
	Healthy time.Duration `json:"healthy_after_ns,omitempty"` // wait for the cell's health that followed
	Error   string        `json:"error,omitempty"`
}

// ErrNotAllowed is returned for a plan that breaks a guardrail no override lifted.
var ErrNotAllowed = errors.New("the plan breaks a guardrail")

func (x *Executor) entry(p *Plan, decision, node, outcome string) Entry {
	return Entry{Command: x.Command, Reason: x.Reason, Override: x.Override, PlanID: p.ID,
		Decision: decision, Cell: p.Cell, Node: node, Outcome: outcome}
}

// check refuses a plan of another action or one the guardrails do not allow.
func (x *Executor) check(p *Plan, action string) error {
	if p.Action != action {
		return fmt.Errorf("a %s plan given to %s", p.Action, action)
	}
	if !p.Allowed() {
		var msgs []string
		for _, v := range p.Refusals() {
			msgs = append(msgs, v.Message)
		}
		return fmt.Errorf("%w: %s", ErrNotAllowed, strings.Join(msgs, "; "))
	}
	return nil
}

// Drain stops (or, with Kill, kills) the plan's nodes in order, waiting for the cell
// to settle between them. The plan must be allowed.
func (x *Executor) Drain(ctx context.Context, p *Plan) ([]StepResult, error) {
	if err := x.check(p, ActionDrain); err != nil {
		return nil, err
	}
	if x.Kill {
		return x.run(ctx, p, "kill", x.Cluster.KillNode, true)
	}
	return x.run(ctx, p, "stop", x.Cluster.StopNode, true)
}

// Undrain starts the plan's nodes again, in order, each one ready before the next. It
// does not wait for the cell's health in between: a cell whose index lost quorum only
// becomes healthy once enough of its nodes are back.
func (x *Executor) Undrain(ctx context.Context, p *Plan) ([]StepResult, error) {
	if err := x.check(p, ActionUndrain); err != nil {
		return nil, err
	}
	return x.run(ctx, p, "start", x.Cluster.StartNode, false)
}

func (x *Executor) run(ctx context.Context, p *Plan, action string, act func(context.Context, string) error, paced bool) ([]StepResult, error) {
	abort := func(node string, err error) error {
		if aerr := x.Audit.Append(x.entry(p, DecisionAborted, node, err.Error())); aerr != nil {
			return errors.Join(err, aerr)
		}
		return err
	}
	nodes := p.Nodes
	var out []StepResult
	for i, id := range nodes {
		if err := CheckHalt(x.Dir); err != nil {
			return out, abort(id, err)
		}
		if err := ctx.Err(); err != nil {
			return out, abort(id, fmt.Errorf("interrupted before %s %s", action, id))
		}
		start := time.Now()
		err := act(x.stepContext(ctx, p), id)
		step := StepResult{Node: id, Action: action, Took: time.Since(start)}
		if err != nil {
			step.Error = err.Error()
			out = append(out, step)
			return out, abort(id, fmt.Errorf("%s %s: %w", action, id, err))
		}
		x.progressf("%s %s: done in %s\n", action, id, step.Took.Round(time.Millisecond))
		if err := x.Audit.Append(x.entry(p, DecisionStep, id, fmt.Sprintf("%s done in %s", action, step.Took.Round(time.Millisecond)))); err != nil {
			out = append(out, step)
			return out, err
		}
		if paced && i < len(nodes)-1 {
			hstart := time.Now()
			err := x.waitHealthy(ctx, p.Cell)
			step.Healthy = time.Since(hstart)
			out = append(out, step)
			if err != nil {
				return out, abort(id, fmt.Errorf("%s was not healthy within %s after %s %s, so %s was left alone: %v",
					p.Cell, x.healthTimeout(), action, id, strings.Join(nodes[i+1:], ", "), err))
			}
			x.progressf("%s healthy again after %s\n", p.Cell, step.Healthy.Round(time.Millisecond))
			continue
		}
		out = append(out, step)
	}
	if err := x.Audit.Append(x.entry(p, DecisionDone, "", fmt.Sprintf("%s of %s done", action, strings.Join(nodes, ", ")))); err != nil {
		return out, err
	}
	return out, nil
}

func (x *Executor) healthTimeout() time.Duration {
	if x.HealthTimeout > 0 {
		return x.HealthTimeout
	}
	return 30 * time.Second
}

// waitHealthy waits, at most HealthTimeout, for a cell to be healthy.
func (x *Executor) waitHealthy(ctx context.Context, cellID string) error {
	wait := x.WaitHealthy
	if wait == nil {
		wait = func(ctx context.Context, c string) error { return cell.WaitSettled(ctx, x.Cluster, c) }
	}
	hctx, cancel := context.WithTimeout(ctx, x.healthTimeout())
	defer cancel()
	return wait(hctx, cellID)
}

func (x *Executor) progressf(format string, args ...any) {
	if x.Progress != nil {
		fmt.Fprintf(x.Progress, format, args...)
	}
}
