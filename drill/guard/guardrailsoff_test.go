package guard

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

// With the guardrails off, the mistyped drain of a one-cell region goes through the
// same workflow: planned, confirmed by its id, audited with every rule it crosses; only
// the verdict differs.
func TestGuardrailsOffChangesTheVerdictNotThePath(t *testing.T) {
	off := cell.DefaultTopology()
	off.Cells, off.IndexNodes, off.PlacementNodes, off.StorageNodes = 1, 3, 1, 2
	off.Guardrails = cell.GuardrailsOff
	on := off
	on.Guardrails = ""
	req := Request{Cell: cell.ID(0), Tier: cell.RoleIndex, Count: 2}

	refused, err := PlanDrain(on, states(on), Policy{}, req)
	if err != nil {
		t.Fatal(err)
	}
	if refused.Allowed() || refused.WouldRefuse() != "" {
		t.Fatalf("with the guardrails on the typo is allowed: %+v", refused)
	}
	p, err := PlanDrain(off, states(off), Policy{}, req)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Allowed() || !p.GuardrailsOff || p.Override != GuardrailsOffOverride {
		t.Fatalf("with the guardrails off the typo is not let through: %+v", p)
	}
	if len(p.Violations) != len(refused.Violations) || !strings.Contains(p.WouldRefuse(), "floor") || !strings.Contains(p.WouldRefuse(), "cap") {
		t.Errorf("the plan does not say what would have been refused: %q", p.WouldRefuse())
	}

	ctl := &fakeControl{}
	x := executor(t, ctl, func(context.Context, string) error { return nil })
	op := Op{Command: "drain", Plan: func(context.Context) (*Plan, error) { return PlanDrain(off, states(off), Policy{}, req) }}
	if _, err := x.Run(context.Background(), op); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if len(ctl.calls) != 0 {
		t.Fatalf("a dry run acted: %v", ctl.calls)
	}
	op.Reason = "the typo"
	op.Confirm = "0123456789ab"
	var stale *StaleError
	if _, err := x.Run(context.Background(), op); !errors.As(err, &stale) {
		t.Fatalf("an unconfirmed plan ran with the guardrails off: %v", err)
	}
	op.Confirm = p.ID
	res, err := x.Run(context.Background(), op)
	if err != nil || !res.Executed {
		t.Fatalf("confirmed plan: %v", err)
	}
	if got := decisions(t, x.Dir); got != "planned,refused,confirmed,override,override,step "+cell.NodeID(cell.ID(0), cell.RoleIndex, 1)+",step "+cell.NodeID(cell.ID(0), cell.RoleIndex, 2)+",done" {
		t.Errorf("audit decisions %s", got)
	}
	es, _ := ReadAudit(x.Dir)
	if !strings.Contains(es[0].Outcome, "GUARDRAILS OFF") || !strings.Contains(es[3].Outcome, "GUARDRAILS OFF") || es[2].Override != GuardrailsOffOverride {
		t.Errorf("the audit log does not say the guardrails are off: %+v", es)
	}

	rp, err := PlanRestart(off, states(off), Policy{}, RestartRequest{Cell: cell.ID(0), Tiers: []cell.Role{cell.RoleIndex, cell.RolePlacement}, Order: []cell.Role{cell.RolePlacement, cell.RoleIndex}, Cold: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rp.Allowed() || !strings.Contains(rp.WouldRefuse(), "order") {
		t.Errorf("a cold restart in the wrong order with the guardrails off: allowed %v, would refuse %q", rp.Allowed(), rp.WouldRefuse())
	}
}
