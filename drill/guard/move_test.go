package guard

import "testing"

func TestPlanMove(t *testing.T) {
	ok := MoveDetail{Bucket: "b", Slot: -1, Buckets: []string{"b"}, Source: "cell-0", Target: "cell-1",
		Objects: 10, TargetHealthy: true, TargetWritableNodes: 2, TargetCopies: 2, MapVersion: 7}
	for _, tc := range []struct {
		name    string
		change  func(*MoveDetail)
		off     bool
		allowed bool
	}{
		{"healthy target with headroom", func(*MoveDetail) {}, false, true},
		{"target is the source", func(d *MoveDetail) { d.Target = "cell-0" }, false, false},
		{"unhealthy target", func(d *MoveDetail) { d.TargetHealthy, d.TargetHealth = false, "down" }, false, false},
		{"target under its capacity floor", func(d *MoveDetail) { d.TargetWritableNodes = 1 }, false, false},
		{"guardrails off lets it through", func(d *MoveDetail) { d.TargetWritableNodes = 1 }, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := ok
			tc.change(&d)
			p := PlanMove(d, tc.off)
			if p.Allowed() != tc.allowed {
				t.Errorf("allowed %v, want %v (%s)", p.Allowed(), tc.allowed, p.RefusalText())
			}
			if p.Action != ActionMove || p.ID == "" {
				t.Errorf("plan %+v", p)
			}
		})
	}
	// Load on the bucket (objects, map version) does not make a previewed plan stale; a
	// change of the target does.
	a := PlanMove(ok, false)
	busy := ok
	busy.Objects, busy.MapVersion = 99, 12
	if b := PlanMove(busy, false); b.ID != a.ID {
		t.Errorf("the plan id changed with the object count: %s, %s", a.ID, b.ID)
	}
	other := ok
	other.Target = "cell-2"
	if c := PlanMove(other, false); c.ID == a.ID {
		t.Errorf("another target, the same plan id")
	}
}
