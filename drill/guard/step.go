package guard

import "context"

// Step is what an Executor says about each call it makes on its cluster: which plan
// the call is a step of, and the command and reason behind it. A cluster whose nodes
// are acted on by another component (the supervisor's control endpoint) passes it on,
// so that the component that acts can check the call against the plan and audit it.
type Step struct {
	PlanID  string
	Command string
	Reason  string
}

type stepKey struct{}

// WithStep returns ctx carrying s.
func WithStep(ctx context.Context, s Step) context.Context {
	return context.WithValue(ctx, stepKey{}, s)
}

// StepOf returns the step ctx carries, if any.
func StepOf(ctx context.Context) (Step, bool) {
	s, ok := ctx.Value(stepKey{}).(Step)
	return s, ok
}

// stepContext is ctx for a call the executor makes as a step of plan p.
func (x *Executor) stepContext(ctx context.Context, p *Plan) context.Context {
	return WithStep(ctx, Step{PlanID: p.ID, Command: x.Command, Reason: x.Reason})
}
