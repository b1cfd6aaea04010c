package guard

import (
	"context"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

// stepRecorder records the step each call on the cluster carries.
type stepRecorder struct {
	fakeControl
	steps []Step
}

func (s *stepRecorder) StopNode(ctx context.Context, id string) error {
	st, _ := StepOf(ctx)
	s.steps = append(s.steps, st)
	return s.fakeControl.StopNode(ctx, id)
}

func (s *stepRecorder) KillNode(ctx context.Context, id string) error {
	st, _ := StepOf(ctx)
	s.steps = append(s.steps, st)
	return s.fakeControl.KillNode(ctx, id)
}

// Each call an executor makes says which plan it is a step of; the audit log shows the
// plan running, with its nodes and override, until it is done.
func TestStepsCarryTheirPlan(t *testing.T) {
	for _, kill := range []bool{false, true} {
		rec := &stepRecorder{}
		x := executor(t, &rec.fakeControl, func(context.Context, string) error { return nil })
		x.Cluster, x.Kill = rec, kill
		op := drainOp(2, "replay 2017", "", "drill")
		op.Auto = true
		res, err := x.Run(context.Background(), op)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.steps) != 2 || rec.steps[0] != (Step{PlanID: res.Plan.ID, Command: "test drain", Reason: "drill"}) {
			t.Errorf("kill %v: steps %+v, plan %s", kill, rec.steps, res.Plan.ID)
		}
		want := "stop " + idx(2, 1)
		if kill {
			want = "kill " + idx(2, 1)
		}
		if rec.calls[0] != want {
			t.Errorf("kill %v: calls %v", kill, rec.calls)
		}
		e, ok, err := RunningPlan(x.Dir, res.Plan.ID)
		if ok || err != nil {
			t.Errorf("a plan that is done is running: %+v, %v", e, err)
		}
	}
	// While it runs: confirmed, with its nodes and its override.
	dir := t.TempDir()
	a := OpenAudit(dir)
	_ = a.Append(Entry{PlanID: "p1", Decision: DecisionConfirmed, Cell: cell.ID(2), Nodes: []string{idx(2, 1)}, Override: "o"})
	_ = a.Append(Entry{PlanID: "p1", Decision: DecisionStep, Node: idx(2, 1)})
	if e, ok, err := RunningPlan(dir, "p1"); !ok || err != nil || e.Override != "o" || e.Nodes[0] != idx(2, 1) {
		t.Errorf("running plan: %+v %v %v", e, ok, err)
	}
	if _, ok, _ := RunningPlan(dir, "nope"); ok {
		t.Error("an unknown plan is running")
	}
}
