package localcluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/internal/faultfile"
	"github.com/cellarsim/cellar/internal/testwait"
)

// haltAudits returns the audit entries that record a pill disarmed by the kill switch.
func haltAudits(t *testing.T, dir string) []guard.Entry {
	t.Helper()
	es, err := guard.ReadAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []guard.Entry
	for _, e := range es {
		if e.Decision == guard.DecisionHalt && strings.Contains(e.Outcome, disarmedByHalt) {
			out = append(out, e)
		}
	}
	return out
}

// 'cellctl drill halt' disarms every pill for good: the supervisor that serves the
// control endpoint sees the kill switch, empties the faults file and audits each pill
// it disarmed; 'cellctl drill resume' clears the switch and arms nothing again. A
// pill armed after the resume is left alone.
func TestHaltDisarmsEveryPillAndResumeArmsNothing(t *testing.T) {
	dir := t.TempDir()
	s := &Supervisor{dir: dir, topo: cell.Topology{Faults: true}, procs: map[string]*proc{}, opts: Options{Progress: os.Stderr}}
	_, stop, err := s.ServeControlWith(ControlOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctl, err := NewControl(s.ClusterFile())
	if err != nil {
		t.Fatal(err)
	}
	ctl.Caller = Caller{Command: "test"}
	ctx := context.Background()
	if err := ctl.Poison(ctx, "gw-key", false, "drill"); err != nil {
		t.Fatal(err)
	}
	if err := ctl.PoisonIndex(ctx, "b", "k", false, "drill"); err != nil {
		t.Fatal(err)
	}
	faults := s.faultsFile()
	if f, err := faultfile.Read(faults); err != nil || f.Poison == nil || f.Index == nil {
		t.Fatalf("both pills armed: %+v, %v", f, err)
	}

	// As 'cellctl drill halt' does it: the switch, then its audit entry.
	if err := guard.Halt(dir, "incident"); err != nil {
		t.Fatal(err)
	}
	if err := guard.OpenAudit(dir).Append(guard.Entry{Command: "cellctl drill halt", Decision: guard.DecisionHalt, Outcome: "drills halted"}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, time.Minute, "the faults file is gone", func() bool {
		_, err := os.Stat(faults)
		return errors.Is(err, os.ErrNotExist)
	})
	// The file goes first, then each pill's audit entry is written.
	testwait.Until(t, time.Minute, "both disarms are audited", func() bool { return len(haltAudits(t, dir)) >= 2 })
	audits := haltAudits(t, dir)
	if len(audits) != 2 || !strings.HasPrefix(audits[0].Outcome+audits[1].Outcome, "poison pill "+disarmedByHalt) ||
		!strings.Contains(audits[1].Outcome, "index pill "+disarmedByHalt) || !strings.Contains(audits[1].Outcome, "b/k") ||
		audits[0].Reason != "drills halted: incident" {
		t.Fatalf("audit of the disarming: %+v", audits)
	}

	if err := guard.Resume(dir); err != nil {
		t.Fatal(err)
	}
	f, err := faultfile.Read(faults)
	if err != nil || !f.Empty() {
		t.Errorf("after resume: %+v, %v; want nothing armed", f, err)
	}
	if w := faultfile.NewWatch(faults); !w.Current().Empty() {
		t.Errorf("a node's view after resume: %+v; want nothing armed", w.Current())
	}

	// A pill armed after the resume stays armed: the halt came before it.
	if err := ctl.PoisonIndex(ctx, "b", "k2", false, "drill again"); err != nil {
		t.Fatal(err)
	}
	if got, err := disarmOnHalt(dir, faults, guard.OpenAudit(dir)); err != nil || len(got) != 0 {
		t.Errorf("disarmOnHalt after the resume: %v, %v; want nothing disarmed", got, err)
	}
	if f, err := faultfile.Read(faults); err != nil || !f.Index.Matches("b", "k2") {
		t.Errorf("the pill armed after the resume: %+v, %v", f, err)
	}
	if n := len(haltAudits(t, dir)); n != 2 {
		t.Errorf("%d disarmings audited, want still 2", n)
	}
}

// A halt set and cleared again before the supervisor looked still disarms: the audit
// log records the halt, after the pill was armed.
func TestHaltBetweenTwoLooksStillDisarms(t *testing.T) {
	dir := t.TempDir()
	faults := filepath.Join(dir, FaultsFileName)
	audit := guard.OpenAudit(dir)
	armed := time.Now().UTC().Add(-time.Minute)
	if err := faultfile.Update(faults, func(f *faultfile.Faults) {
		f.Index = &faultfile.IndexPill{Bucket: "b", Key: "k", ArmedAt: armed, Reason: "drill"}
	}); err != nil {
		t.Fatal(err)
	}
	// A halt before the pill was armed does not disarm it.
	if err := audit.Append(guard.Entry{Time: armed.Add(-time.Second), Command: "cellctl drill halt", Decision: guard.DecisionHalt, Outcome: "drills halted"}); err != nil {
		t.Fatal(err)
	}
	if got, err := disarmOnHalt(dir, faults, audit); err != nil || len(got) != 0 {
		t.Fatalf("a halt before the arming: disarmed %v, %v", got, err)
	}
	// Halted and resumed since the arming, with no switch left to see.
	if err := guard.Halt(dir, "blip"); err != nil {
		t.Fatal(err)
	}
	if err := audit.Append(guard.Entry{Command: "cellctl drill halt", Decision: guard.DecisionHalt, Outcome: "drills halted"}); err != nil {
		t.Fatal(err)
	}
	if err := guard.Resume(dir); err != nil {
		t.Fatal(err)
	}
	got, err := disarmOnHalt(dir, faults, audit)
	if err != nil || len(got) != 1 || !strings.HasPrefix(got[0], "index pill "+disarmedByHalt) {
		t.Fatalf("disarmed %v, %v; want the index pill", got, err)
	}
	if f, err := faultfile.Read(faults); err != nil || !f.Empty() {
		t.Errorf("faults after: %+v, %v", f, err)
	}
	if n := len(haltAudits(t, dir)); n != 1 {
		t.Errorf("%d disarmings audited, want 1", n)
	}
}
