package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Control acts on the nodes of a running cluster.
type Control interface {
	// StopNode stops a node gracefully and returns once its process has ended.
	StopNode(ctx context.Context, id string) error
	// StartNode starts a stopped node and returns once it is ready.
	StartNode(ctx context.Context, id string) error
}

// Executor carries out plans one node at a time: before every step it checks the
// kill switch, after every step but the last it waits for the cell to be healthy,
// and it writes every step to the audit log.
type Executor struct {
	Dir     string // the cluster's data directory: where the kill switch is
	Audit   *Audit
	Control Control
	// WaitHealthy returns once the cell is healthy again (its nodes that should be up
	// are ready, its index has a leader), or an error when ctx ends first.
	WaitHealthy func(ctx context.Context, cell string) error
	// HealthTimeout bounds each wait for health (default 30s).
	HealthTimeout time.Duration
	// StartTimeout bounds each node's start in a restart, until it is ready (default 2m).
	StartTimeout time.Duration
	// Command, Reason and Override go into every audit entry.
	Command, Reason, Override string
	// Progress receives a line per step (nil: none).
	Progress io.Writer
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

// Drain stops the plan's nodes in order. The plan must be allowed.
func (x *Executor) Drain(ctx context.Context, p *Plan) ([]StepResult, error) {
	if !p.Allowed() {
		var msgs []string
		for _, v := range p.Refusals() {
			msgs = append(msgs, v.Message)
		}
		return nil, fmt.Errorf("%w: %s", ErrNotAllowed, strings.Join(msgs, "; "))
	}
	return x.run(ctx, p.ID, p.Cell, "stop", p.Nodes, x.Control.StopNode, true)
}

// Undrain starts nodes of a cell again, in order, each one ready before the next. It
// does not wait for the cell's health in between: a cell whose index lost quorum only
// becomes healthy once enough of its nodes are back. Adding capacity back needs no
// guardrail, but the kill switch and the audit log apply.
func (x *Executor) Undrain(ctx context.Context, planID, cellID string, nodes []string) ([]StepResult, error) {
	return x.run(ctx, planID, cellID, "start", nodes, x.Control.StartNode, false)
}

func (x *Executor) run(ctx context.Context, planID, cellID, action string, nodes []string, act func(context.Context, string) error, paced bool) ([]StepResult, error) {
	entry := func(decision, node, outcome string) Entry {
		return Entry{Command: x.Command, Reason: x.Reason, Override: x.Override, PlanID: planID,
			Decision: decision, Cell: cellID, Node: node, Outcome: outcome}
	}
	abort := func(node string, err error) error {
		if aerr := x.Audit.Append(entry(DecisionAborted, node, err.Error())); aerr != nil {
			return errors.Join(err, aerr)
		}
		return err
	}
	timeout := x.HealthTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	var out []StepResult
	for i, id := range nodes {
		if err := CheckHalt(x.Dir); err != nil {
			return out, abort(id, err)
		}
		if err := ctx.Err(); err != nil {
			return out, abort(id, fmt.Errorf("interrupted before %s %s", action, id))
		}
		start := time.Now()
		err := act(ctx, id)
		step := StepResult{Node: id, Action: action, Took: time.Since(start)}
		if err != nil {
			step.Error = err.Error()
			out = append(out, step)
			return out, abort(id, fmt.Errorf("%s %s: %w", action, id, err))
		}
		x.progressf("%s %s: done in %s\n", action, id, step.Took.Round(time.Millisecond))
		if err := x.Audit.Append(entry(DecisionStep, id, fmt.Sprintf("%s done in %s", action, step.Took.Round(time.Millisecond)))); err != nil {
			out = append(out, step)
			return out, err
		}
		if paced && i < len(nodes)-1 && x.WaitHealthy != nil {
			hctx, cancel := context.WithTimeout(ctx, timeout)
			hstart := time.Now()
			err := x.WaitHealthy(hctx, cellID)
			cancel()
			step.Healthy = time.Since(hstart)
			out = append(out, step)
			if err != nil {
				return out, abort(id, fmt.Errorf("%s was not healthy within %s after %s %s, so %s was left alone: %v",
					cellID, timeout, action, id, strings.Join(nodes[i+1:], ", "), err))
			}
			x.progressf("%s healthy again after %s\n", cellID, step.Healthy.Round(time.Millisecond))
			continue
		}
		out = append(out, step)
	}
	if err := x.Audit.Append(entry(DecisionDone, "", fmt.Sprintf("%s of %s done", action, strings.Join(nodes, ", ")))); err != nil {
		return out, err
	}
	return out, nil
}

func (x *Executor) progressf(format string, args ...any) {
	if x.Progress != nil {
		fmt.Fprintf(x.Progress, format, args...)
	}
}
