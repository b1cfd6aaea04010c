package guard

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Op is one capacity operation asked of the guardrails.
type Op struct {
	// Command says who asked, for the audit log ("cellctl drain --cell cell-2 ...").
	Command string
	// Reason says why; required to run a plan (not to preview one).
	Reason string
	// Confirm is the id of the plan the caller previewed and now wants run; "" asks
	// for a dry run: the plan is shown and audited, nothing is done.
	Confirm string
	// Auto runs the plan as it stands when the guardrails allow it, with no preview:
	// for a drill, whose scenario is the confirmation.
	Auto bool
	// Plan decides the plan from the cluster as it is now.
	Plan func(ctx context.Context) (*Plan, error)
	// Show, when set, is given the plan once it is decided, before anything else.
	Show func(*Plan)
	// Execute carries out a plan of an action the executor does not run itself (a
	// move: the mover runs it), once the workflow has confirmed and audited it.
	Execute func(ctx context.Context, p *Plan) ([]StepResult, error)
}

// confirms reports whether op confirms plan p: a drill's, or one naming p's id.
func (op Op) confirms(p *Plan) bool { return op.Auto || op.Confirm == p.ID }

// Refuses reports whether Run will refuse plan p for op before acting on anything: p
// breaks a guardrail no override lifts, or op asks to run another plan than p. A
// server that answers before Run ends (a status code sent with the plan) asks this.
func (op Op) Refuses(p *Plan) bool {
	running := op.Confirm != "" || op.Auto
	return !p.Allowed() || (running && !op.confirms(p))
}

// Result is what Run decided and did.
type Result struct {
	Plan     *Plan
	Executed bool
	Steps    []StepResult
}

// ErrRefused is returned, wrapped with the reasons, for a plan that breaks a guardrail
// no override lifts.
var ErrRefused = errors.New("refused")

// ErrNoReason is returned for a plan asked to run without a reason.
var ErrNoReason = errors.New("a reason is required to run a plan")

// StaleError is returned when the plan confirmed is not the plan as it stands now:
// the cluster or the request changed since the dry run, or (when no dry run in the
// audit log showed the id confirmed) the id was mistyped.
type StaleError struct {
	Confirmed, Current string
	// Previewed: a dry run showed the plan confirmed.
	Previewed bool
}

func (e *StaleError) Error() string {
	if !e.Previewed {
		return fmt.Sprintf("no dry run showed a plan %s: the plan as it stands now is %s", e.Confirmed, e.Current)
	}
	return fmt.Sprintf("plan %s does not match the plan as it stands now (%s): the cluster or the request changed since the dry run",
		e.Confirmed, e.Current)
}

// Run takes one operation through the guardrail workflow, the only one in cellar:
//
//  1. the kill switch, when the plan is to run: set, and nothing is decided;
//  2. the plan, from the cluster as it is now, shown to the caller;
//  3. a dry run (no Confirm, no Auto): audited as planned or refused, nothing done;
//  4. a refusal when the plan breaks a guardrail no override lifts;
//  5. the confirmation: the id confirmed must be the plan's id now;
//  6. the audit of the confirmation and of every guardrail the override lifts;
//  7. the paced execution (Drain, Restart or Undrain), every step audited.
//
// Errors: ErrHalted, ErrNoReason, ErrRefused, *StaleError, ErrBadRequest (from the
// plan), or what stopped the execution. The result is returned with every error but
// ErrHalted and ErrNoReason.
func (x *Executor) Run(ctx context.Context, op Op) (*Result, error) {
	running := op.Confirm != "" || op.Auto
	if running && strings.TrimSpace(op.Reason) == "" {
		return nil, ErrNoReason
	}
	x.Command, x.Reason, x.Override = op.Command, op.Reason, ""
	if running {
		if err := x.Halted(op, ""); err != nil {
			return nil, err
		}
	}
	plan, err := op.Plan(ctx)
	if err != nil {
		return nil, err
	}
	x.Override = plan.Override
	if op.Show != nil {
		op.Show(plan)
	}
	res := &Result{Plan: plan}
	audit := func(decision, outcome string) error {
		return x.Audit.Append(x.entry(plan, decision, "", outcome))
	}
	if !plan.Allowed() {
		outcome := plan.RefusalText()
		if !running {
			outcome += " (dry run)"
		}
		if err := audit(DecisionRefused, outcome); err != nil {
			return res, err
		}
		return res, fmt.Errorf("%w: %s", ErrRefused, plan.RefusalText())
	}
	if !running {
		outcome := "dry run; nothing done"
		if w := plan.WouldRefuse(); w != "" {
			outcome += "; GUARDRAILS OFF, with them on it would be refused: " + w
		}
		return res, audit(DecisionPlanned, outcome)
	}
	if !op.confirms(plan) {
		stale := &StaleError{Confirmed: op.Confirm, Current: plan.ID, Previewed: x.previewed(op.Confirm)}
		if err := audit(DecisionRefused, stale.Error()); err != nil {
			return res, err
		}
		return res, stale
	}
	confirmed := x.entry(plan, DecisionConfirmed, "", fmt.Sprintf("%s %s", plan.Action, strings.Join(plan.Nodes, ", ")))
	confirmed.Nodes = plan.Nodes
	if err := x.Audit.Append(confirmed); err != nil {
		return res, err
	}
	for _, v := range plan.Violations {
		if v.Lifted {
			by := ""
			if plan.GuardrailsOff {
				by = " (GUARDRAILS OFF)"
			}
			if err := audit(DecisionOverride, v.Rule+" lifted"+by+": "+v.Message); err != nil {
				return res, err
			}
		}
	}
	res.Executed = true
	switch plan.Action {
	case ActionDrain:
		res.Steps, err = x.Drain(ctx, plan)
	case ActionRestart:
		res.Steps, err = x.Restart(ctx, plan)
	case ActionUndrain:
		res.Steps, err = x.Undrain(ctx, plan)
	case ActionMove:
		if op.Execute == nil {
			return res, fmt.Errorf("no way to run a %q plan", plan.Action)
		}
		res.Steps, err = op.Execute(ctx, plan)
		decision, outcome := DecisionDone, "moved"
		if err != nil {
			decision, outcome = DecisionAborted, err.Error()
		}
		if aerr := audit(decision, outcome); aerr != nil {
			err = errors.Join(err, aerr)
		}
	default:
		err = fmt.Errorf("no way to run a %q plan", plan.Action)
	}
	return res, err
}

// previewed reports whether the audit log shows a dry run of the plan id.
func (x *Executor) previewed(id string) bool {
	entries, _ := ReadAudit(x.Dir)
	for _, e := range entries {
		if e.PlanID == id && e.Decision == DecisionPlanned {
			return true
		}
	}
	return false
}

// Halted returns an error wrapping ErrHalted, and audits the refusal, when the kill
// switch is set; cellID, when known, goes into the audit entry.
func (x *Executor) Halted(op Op, cellID string) error {
	err := CheckHalt(x.Dir)
	if err != nil {
		_ = x.Audit.Append(Entry{Command: op.Command, Reason: op.Reason, PlanID: op.Confirm, Decision: DecisionRefused, Cell: cellID, Outcome: err.Error()})
	}
	return err
}

// PlanUndrain is the plan that starts stopped nodes of a cell again. Adding capacity
// back crosses no guardrail, but it is planned, audited and halted like the rest.
func PlanUndrain(cellID string, nodes []string) *Plan {
	p := &Plan{Action: ActionUndrain, Cell: cellID, Nodes: nodes}
	p.seal(nil)
	return p
}
