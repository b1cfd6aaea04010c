package guard

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

// drainOp asks for a drain of cell-2's index through the workflow.
func drainOp(count int, override, confirm, reason string) Op {
	return Op{
		Command: "test drain", Reason: reason, Confirm: confirm,
		Plan: func(context.Context) (*Plan, error) {
			return PlanDrain(region(), states(region()), Policy{}, Request{Cell: cell.ID(2), Tier: cell.RoleIndex, Count: count, Override: override})
		},
	}
}

func TestRunGoesThroughEveryGuardrail(t *testing.T) {
	ok := func(context.Context, string) error { return nil }
	for _, tc := range []struct {
		name      string
		op        func(planID string) Op
		halted    bool
		wantErr   error
		stale     bool
		executed  bool
		calls     string
		decisions string
	}{
		{name: "a dry run does nothing", op: func(string) Op { return drainOp(1, "", "", "") },
			decisions: "planned"},
		{name: "a dry run of a plan past the floor is refused", op: func(string) Op { return drainOp(2, "", "", "") },
			wantErr: ErrRefused, decisions: "refused"},
		{name: "a confirmed plan runs", op: func(id string) Op { return drainOp(1, "", id, "rotate") },
			executed: true, calls: "stop " + idx(2, 1), decisions: "confirmed,step " + idx(2, 1) + ",done"},
		{name: "a plan confirmed without a reason does not run", op: func(id string) Op { return drainOp(1, "", id, " ") },
			wantErr: ErrNoReason},
		{name: "a confirmation of another plan is refused", op: func(string) Op { return drainOp(1, "", "0123456789ab", "rotate") },
			stale: true, decisions: "refused"},
		{name: "an override is audited per lifted rule", op: func(id string) Op { return drainOp(2, "replay 2017", id, "replay") },
			executed: true, calls: "stop " + idx(2, 1) + ",stop " + idx(2, 2),
			decisions: "confirmed,override,override,step " + idx(2, 1) + ",step " + idx(2, 2) + ",done"},
		{name: "the kill switch stops it before the plan", op: func(id string) Op { return drainOp(1, "", id, "rotate") },
			halted: true, wantErr: ErrHalted, decisions: "refused"},
		{name: "a drill runs what the guardrails allow", op: func(string) Op {
			op := drainOp(1, "", "", "drill x")
			op.Auto = true
			return op
		}, executed: true, calls: "stop " + idx(2, 1), decisions: "confirmed,step " + idx(2, 1) + ",done"},
		{name: "a drill is refused like anyone", op: func(string) Op {
			op := drainOp(2, "", "", "drill x")
			op.Auto = true
			return op
		}, wantErr: ErrRefused, decisions: "refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := executor(t, &fakeControl{}, ok)
			preview, _ := x.Run(context.Background(), tc.op(""))
			var id string
			if preview != nil {
				id = preview.Plan.ID
			}
			// Start from an empty log: the preview above is not part of the case.
			ctl := &fakeControl{}
			x = executor(t, ctl, ok)
			if tc.halted {
				Halt(x.Dir, "incident")
			}
			var shown *Plan
			op := tc.op(id)
			op.Show = func(p *Plan) { shown = p }
			res, err := x.Run(context.Background(), op)
			var stale *StaleError
			switch {
			case tc.stale && !errors.As(err, &stale):
				t.Fatalf("err %v, want a stale plan", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			case tc.wantErr == nil && !tc.stale && err != nil:
				t.Fatal(err)
			}
			if res != nil && shown != res.Plan {
				t.Error("the plan was not shown before it was decided on")
			}
			if got := res != nil && res.Executed; got != tc.executed {
				t.Errorf("executed %v, want %v", got, tc.executed)
			}
			if got := strings.Join(ctl.calls, ","); got != tc.calls {
				t.Errorf("calls %q, want %q", got, tc.calls)
			}
			if tc.wantErr == ErrNoReason {
				return
			}
			if got := decisions(t, x.Dir); got != tc.decisions {
				t.Errorf("audit %q, want %q", got, tc.decisions)
			}
		})
	}
}

func TestRestartPlanIDBindsSetsNotOrder(t *testing.T) {
	topo := region()
	a := states(topo)
	b := states(topo)
	// The index leader of cell-1 moved from node 0 to node 2.
	for i := range b {
		if b[i].Cell == cell.ID(1) && b[i].Role == cell.RoleIndex {
			b[i].Leader = b[i].ID == idx(1, 2)
		}
	}
	req := RestartRequest{Cell: cell.ID(1)}
	pa, err := PlanRestart(topo, a, Policy{}, req)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := PlanRestart(topo, b, Policy{}, req)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pa.Tiers[0].Nodes, ",") == strings.Join(pb.Tiers[0].Nodes, ",") {
		t.Fatal("the leader's move did not reorder the index tier")
	}
	if pa.ID != pb.ID {
		t.Errorf("a leader change gave another plan id: %s, %s", pa.ID, pb.ID)
	}
	c := states(topo, idx(1, 1))
	if pc, _ := PlanRestart(topo, c, Policy{}, req); pc.ID == pa.ID {
		t.Error("a node down changed nothing in the plan id")
	}
}
