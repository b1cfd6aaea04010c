package guard

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

func TestPlanRestart(t *testing.T) {
	topo := region()
	c := cell.ID(1)
	for _, tc := range []struct {
		name    string
		req     RestartRequest
		down    []string
		order   string // tier:nodes, ...
		refused []string
		lifted  []string
	}{
		{name: "rolling, whole cell: placement has no node to spare", req: RestartRequest{Cell: c},
			order:   "index:cell-1-index-1,cell-1-index-2,cell-1-index-0 storage:cell-1-storage-0,cell-1-storage-1 placement:cell-1-placement-0",
			refused: []string{RuleFloor}},
		{name: "rolling index only", req: RestartRequest{Cell: c, Tiers: []cell.Role{cell.RoleIndex}},
			order: "index:cell-1-index-1,cell-1-index-2,cell-1-index-0"},
		{name: "rolling storage only", req: RestartRequest{Cell: c, Tiers: []cell.Role{cell.RoleStorage}},
			order: "storage:cell-1-storage-0,cell-1-storage-1"},
		{name: "cold", req: RestartRequest{Cell: c, Cold: true, Tiers: []cell.Role{cell.RoleIndex, cell.RoleStorage}},
			order: "index:cell-1-index-1,cell-1-index-2,cell-1-index-0 storage:cell-1-storage-0,cell-1-storage-1", refused: []string{RuleFloor, RuleFloor}},
		{name: "cold with override", req: RestartRequest{Cell: c, Cold: true, Tiers: []cell.Role{cell.RoleIndex}, Override: "2017"},
			order: "index:cell-1-index-1,cell-1-index-2,cell-1-index-0", lifted: []string{RuleFloor}},
		{name: "wrong order", req: RestartRequest{Cell: c, Tiers: []cell.Role{cell.RoleIndex, cell.RoleStorage}, Order: []cell.Role{cell.RoleStorage, cell.RoleIndex}},
			order: "storage:cell-1-storage-0,cell-1-storage-1 index:cell-1-index-1,cell-1-index-2,cell-1-index-0", refused: []string{RuleOrder}},
		{name: "only the nodes up", req: RestartRequest{Cell: c, Tiers: []cell.Role{cell.RoleIndex}}, down: []string{"cell-1-index-2"},
			order: "index:cell-1-index-1,cell-1-index-0", refused: []string{RuleFloor}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PlanRestart(topo, states(topo, tc.down...), Policy{}, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, rt := range p.Tiers {
				got = append(got, string(rt.Tier)+":"+strings.Join(rt.Nodes, ","))
			}
			if strings.Join(got, " ") != tc.order {
				t.Errorf("order %s\nwant  %s", strings.Join(got, " "), tc.order)
			}
			var refused, lifted []string
			for _, v := range p.Violations {
				if v.Lifted {
					lifted = append(lifted, v.Rule)
				} else {
					refused = append(refused, v.Rule)
				}
			}
			if !slices.Equal(refused, tc.refused) || !slices.Equal(lifted, tc.lifted) {
				t.Errorf("refused %v lifted %v, want %v %v: %+v", refused, lifted, tc.refused, tc.lifted, p.Violations)
			}
		})
	}
	a, _ := PlanRestart(topo, states(topo), Policy{}, RestartRequest{Cell: c, Tiers: []cell.Role{cell.RoleIndex}})
	b, _ := PlanRestart(topo, states(topo), Policy{}, RestartRequest{Cell: c, Tiers: []cell.Role{cell.RoleIndex}, Cold: true})
	if a.ID == b.ID || len(a.ID) != 12 {
		t.Errorf("rolling and cold plans share id %s", a.ID)
	}
	for _, req := range []RestartRequest{
		{Cell: "cell-9"},
		{Cell: c, Tiers: []cell.Role{cell.RoleGateway}},
		{Cell: c, Tiers: []cell.Role{cell.RoleIndex}, Order: []cell.Role{cell.RoleIndex, cell.RoleStorage}},
		{Cell: c, Tiers: []cell.Role{cell.RoleIndex, cell.RoleStorage}, Order: []cell.Role{cell.RoleIndex, cell.RoleIndex}},
	} {
		if _, err := PlanRestart(topo, states(topo), Policy{}, req); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%+v: %v", req, err)
		}
	}
}

func restartPlan(t *testing.T, req RestartRequest) *Plan {
	t.Helper()
	p, err := PlanRestart(region(), states(region()), Policy{}, req)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRestartRolling(t *testing.T) {
	ctl := &fakeControl{}
	var waits int
	x := executor(t, ctl, func(context.Context, string) error { waits++; return nil })
	steps, err := x.Restart(context.Background(), restartPlan(t, RestartRequest{Cell: cell.ID(1), Tiers: []cell.Role{cell.RoleStorage, cell.RoleIndex}}))
	if err != nil {
		t.Fatal(err)
	}
	want := "stop cell-1-index-1,start cell-1-index-1,stop cell-1-index-2,start cell-1-index-2,stop cell-1-index-0,start cell-1-index-0," +
		"stop cell-1-storage-0,start cell-1-storage-0,stop cell-1-storage-1,start cell-1-storage-1"
	if got := strings.Join(ctl.calls, ","); got != want {
		t.Errorf("calls %s\nwant  %s", got, want)
	}
	if waits != 5 || len(steps) != 10 {
		t.Errorf("%d health waits, %d steps", waits, len(steps))
	}
	if d := decisions(t, x.Dir); strings.Count(d, "step") != 10 || !strings.HasSuffix(d, "done") {
		t.Errorf("audit %s", d)
	}
}

func TestRestartCold(t *testing.T) {
	ctl := &fakeControl{}
	x := executor(t, ctl, func(context.Context, string) error { return nil })
	p := restartPlan(t, RestartRequest{Cell: cell.ID(1), Cold: true, Override: "cold start", Tiers: []cell.Role{cell.RoleIndex, cell.RolePlacement}})
	if _, err := x.Restart(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	calls := ctl.calls
	if strings.Join(calls[:4], ",") != "stop cell-1-placement-0,stop cell-1-index-1,stop cell-1-index-2,stop cell-1-index-0" {
		t.Errorf("stops %v", calls[:4])
	}
	starts := slices.Clone(calls[4:7])
	slices.Sort(starts)
	if strings.Join(starts, ",") != "start cell-1-index-0,start cell-1-index-1,start cell-1-index-2" || calls[7] != "start cell-1-placement-0" {
		t.Errorf("starts %v", calls[4:])
	}
}

func TestRestartInTheWrongOrderFailsWhereTheDependencyIsMissing(t *testing.T) {
	ctl := &fakeControl{fail: "cell-1-placement-0", failOn: "start"}
	x := executor(t, ctl, func(context.Context, string) error { return nil })
	p := restartPlan(t, RestartRequest{Cell: cell.ID(1), Cold: true, Override: "show why order matters",
		Tiers: []cell.Role{cell.RoleIndex, cell.RolePlacement}, Order: []cell.Role{cell.RolePlacement, cell.RoleIndex}})
	if _, err := x.Restart(context.Background(), p); err == nil || !strings.Contains(err.Error(), "tiers after it were not started") {
		t.Errorf("wrong order: %v", err)
	}
	for _, c := range ctl.calls {
		if strings.HasPrefix(c, "start cell-1-index") {
			t.Errorf("started %s after placement failed", c)
		}
	}
	if d := decisions(t, x.Dir); !strings.HasSuffix(d, "aborted cell-1-placement-0") {
		t.Errorf("audit %s", d)
	}
	// Without the override it does not run at all.
	p2 := restartPlan(t, RestartRequest{Cell: cell.ID(1), Tiers: []cell.Role{cell.RoleIndex, cell.RoleStorage}, Order: []cell.Role{cell.RoleStorage, cell.RoleIndex}})
	if _, err := x.Restart(context.Background(), p2); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("wrong order without override: %v", err)
	}
}

func TestRestartHalted(t *testing.T) {
	ctl := &fakeControl{haltOn: "cell-1-index-1"}
	x := executor(t, ctl, func(context.Context, string) error { return nil })
	_, err := x.Restart(context.Background(), restartPlan(t, RestartRequest{Cell: cell.ID(1), Tiers: []cell.Role{cell.RoleIndex}}))
	if !errors.Is(err, ErrHalted) {
		t.Errorf("halted: %v", err)
	}
	if got := strings.Join(ctl.calls, ","); got != "stop cell-1-index-1,start cell-1-index-1" {
		t.Errorf("calls %s: the node taken down must come back before the halt", got)
	}
}
