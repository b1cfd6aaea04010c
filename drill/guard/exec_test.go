package guard

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

func TestAuditAppendsAndReads(t *testing.T) {
	dir := t.TempDir()
	if got, err := ReadAudit(dir); err != nil || len(got) != 0 {
		t.Fatalf("empty log: %v, %v", got, err)
	}
	a := OpenAudit(dir)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Append(Entry{Command: "drain", Decision: DecisionPlanned, PlanID: strings.Repeat("x", i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := ReadAudit(dir)
	if err != nil || len(got) != 20 {
		t.Fatalf("%d entries, %v; want 20", len(got), err)
	}
	if got[0].User == "" || got[0].Time.IsZero() {
		t.Errorf("entry without user or time: %+v", got[0])
	}
	// Appending never rewrites: a second handle adds to the same file.
	if err := OpenAudit(dir).Append(Entry{Command: "drill halt", Decision: DecisionHalt}); err != nil {
		t.Fatal(err)
	}
	if got, _ := ReadAudit(dir); len(got) != 21 || got[20].Decision != DecisionHalt {
		t.Errorf("after another append: %d entries", len(got))
	}
	f, _ := os.OpenFile(filepath.Join(dir, AuditFileName), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("{not json\n")
	f.Close()
	if _, err := ReadAudit(dir); err == nil || !strings.Contains(err.Error(), "line 22") {
		t.Errorf("corrupt line: %v", err)
	}
}

func TestKillSwitch(t *testing.T) {
	dir := t.TempDir()
	if err := CheckHalt(dir); err != nil {
		t.Fatal(err)
	}
	if err := Halt(dir, "incident 42"); err != nil {
		t.Fatal(err)
	}
	err := CheckHalt(dir)
	if !errors.Is(err, ErrHalted) || !strings.Contains(err.Error(), "incident 42") {
		t.Errorf("halted: %v", err)
	}
	if err := Resume(dir); err != nil {
		t.Fatal(err)
	}
	if err := Resume(dir); err != nil {
		t.Fatal(err)
	}
	if err := CheckHalt(dir); err != nil {
		t.Errorf("after resume: %v", err)
	}
}

// fakeControl records what it is asked and can fail or set the kill switch on a node.
type fakeControl struct {
	mu     sync.Mutex
	calls  []string
	fail   string
	failOn string // "stop" or "start": fail only that action ("": both)
	haltOn string
	dir    string
}

func (f *fakeControl) do(action, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, action+" "+id)
	if id == f.haltOn {
		Halt(f.dir, "stop everything")
	}
	if id == f.fail && (f.failOn == "" || f.failOn == action) {
		return errors.New("no such process")
	}
	return nil
}

func (f *fakeControl) Topology() cell.Topology { return region() }
func (f *fakeControl) Nodes(context.Context) ([]cell.NodeStatus, error) {
	return states(region()), nil
}
func (f *fakeControl) StopNode(_ context.Context, id string) error  { return f.do("stop", id) }
func (f *fakeControl) KillNode(_ context.Context, id string) error  { return f.do("kill", id) }
func (f *fakeControl) StartNode(_ context.Context, id string) error { return f.do("start", id) }

func executor(t *testing.T, ctl *fakeControl, healthy func(context.Context, string) error) *Executor {
	dir := t.TempDir()
	ctl.dir = dir
	return &Executor{Dir: dir, Audit: OpenAudit(dir), Cluster: ctl, WaitHealthy: healthy, Command: "drain", Reason: "test"}
}

func decisions(t *testing.T, dir string) string {
	t.Helper()
	es, err := ReadAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, strings.TrimSpace(e.Decision+" "+e.Node))
	}
	return strings.TrimSpace(strings.Join(out, ","))
}

func overridden(t *testing.T) *Plan {
	p, err := PlanDrain(region(), states(region()), Policy{}, Request{Cell: cell.ID(2), Tier: cell.RoleIndex, Count: 2, Override: "replay"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExecutorPacesAndAudits(t *testing.T) {
	ctl := &fakeControl{}
	var waited []string
	x := executor(t, ctl, func(_ context.Context, c string) error {
		waited = append(waited, c)
		return nil
	})
	steps, err := x.Drain(context.Background(), overridden(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ctl.calls, ","); got != "stop "+idx(2, 1)+",stop "+idx(2, 2) {
		t.Errorf("calls %s", got)
	}
	if len(waited) != 1 || waited[0] != cell.ID(2) {
		t.Errorf("waited for health %v, want once for %s (between the two nodes)", waited, cell.ID(2))
	}
	if len(steps) != 2 || steps[0].Error != "" {
		t.Errorf("steps %+v", steps)
	}
	if got, want := decisions(t, x.Dir), "step "+idx(2, 1)+",step "+idx(2, 2)+",done"; got != want {
		t.Errorf("audit %q, want %q", got, want)
	}
}

func TestExecutorRefusesAPlanThatBreaksAGuardrail(t *testing.T) {
	ctl := &fakeControl{}
	x := executor(t, ctl, nil)
	p, _ := PlanDrain(region(), states(region()), Policy{}, Request{Cell: cell.ID(2), Tier: cell.RoleIndex, Count: 2})
	if _, err := x.Drain(context.Background(), p); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("unlifted plan: %v", err)
	}
	if len(ctl.calls) != 0 {
		t.Errorf("acted on %v", ctl.calls)
	}
}

func TestExecutorStopsWhenTheCellStaysUnhealthy(t *testing.T) {
	ctl := &fakeControl{}
	x := executor(t, ctl, func(ctx context.Context, _ string) error { return errors.New("no leader") })
	_, err := x.Drain(context.Background(), overridden(t))
	if err == nil || !strings.Contains(err.Error(), "was left alone") {
		t.Errorf("unhealthy cell: %v", err)
	}
	if len(ctl.calls) != 1 {
		t.Errorf("calls %v, want only the first node", ctl.calls)
	}
	if got := decisions(t, x.Dir); got != "step "+idx(2, 1)+",aborted "+idx(2, 1) {
		t.Errorf("audit %q", got)
	}
}

func TestExecutorHonoursTheKillSwitch(t *testing.T) {
	ctl := &fakeControl{haltOn: idx(2, 1)}
	x := executor(t, ctl, func(context.Context, string) error { return nil })
	_, err := x.Drain(context.Background(), overridden(t))
	if !errors.Is(err, ErrHalted) {
		t.Errorf("halted mid-plan: %v", err)
	}
	if len(ctl.calls) != 1 {
		t.Errorf("calls %v, want the first node only", ctl.calls)
	}
	if got := decisions(t, x.Dir); got != "step "+idx(2, 1)+",aborted "+idx(2, 2) {
		t.Errorf("audit %q", got)
	}
	// Halted before it starts: nothing happens.
	ctl2 := &fakeControl{}
	x2 := executor(t, ctl2, nil)
	Halt(x2.Dir, "")
	if _, err := x2.Undrain(context.Background(), PlanUndrain(cell.ID(2), []string{idx(2, 1)})); !errors.Is(err, ErrHalted) || len(ctl2.calls) != 0 {
		t.Errorf("halted undrain: %v, calls %v", err, ctl2.calls)
	}
}

func TestExecutorReportsAFailedStep(t *testing.T) {
	ctl := &fakeControl{fail: idx(2, 2)}
	x := executor(t, ctl, func(context.Context, string) error { return nil })
	steps, err := x.Undrain(context.Background(), PlanUndrain(cell.ID(2), []string{idx(2, 1), idx(2, 2), idx(2, 0)}))
	if err == nil || !strings.Contains(err.Error(), "no such process") {
		t.Errorf("failed step: %v", err)
	}
	if len(steps) != 2 || steps[1].Error == "" {
		t.Errorf("steps %+v", steps)
	}
	if got := decisions(t, x.Dir); got != "step "+idx(2, 1)+",aborted "+idx(2, 2) {
		t.Errorf("audit %q", got)
	}
}
