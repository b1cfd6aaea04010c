package localcluster_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/internal/faultfile"
	"github.com/cellarsim/cellar/localcluster"
)

// The control endpoint arms the index pill beside the poison pill, each kept when
// the other changes, and refuses it as it refuses the poison pill: a cluster without
// faults, no reason, no object named, drills halted (disarming still works). Every
// decision is audited.
func TestControlArmsAndRefusesTheIndexPill(t *testing.T) {
	h := newHeldCluster()
	ctx := context.Background()
	control := func(dir, faults string) *localcluster.Control {
		srv := httptest.NewServer(localcluster.NewControlHandler(localcluster.ControlConfig{
			Dir: dir, Cluster: h, Procs: h.procs, Token: "t", FaultsFile: faults}))
		t.Cleanup(srv.Close)
		ctl, err := localcluster.NewControl(&localcluster.ClusterFile{Running: true, ControlAddr: strings.TrimPrefix(srv.URL, "http://"), ControlToken: "t"})
		if err != nil {
			t.Fatal(err)
		}
		ctl.Caller = localcluster.Caller{Command: "test"}
		return ctl
	}

	off := t.TempDir()
	if err := control(off, "").PoisonIndex(ctx, "b", "k", false, "drill"); !errors.Is(err, localcluster.ErrFaultsOff) {
		t.Errorf("faults off: %v, want ErrFaultsOff", err)
	}
	if e := lastAudit(t, off); e.Decision != guard.DecisionRefused || !strings.Contains(e.Outcome, "arm the index pill") {
		t.Errorf("audit of the refusal: %+v", e)
	}

	dir := t.TempDir()
	faults := filepath.Join(dir, localcluster.FaultsFileName)
	ctl := control(dir, faults)
	if err := ctl.PoisonIndex(ctx, "b", "k", false, ""); !errors.Is(err, guard.ErrNoReason) {
		t.Errorf("no reason: %v, want guard.ErrNoReason", err)
	}
	if err := ctl.PoisonIndex(ctx, "", "k", false, "drill"); !errors.Is(err, guard.ErrBadRequest) {
		t.Errorf("no bucket: %v, want guard.ErrBadRequest", err)
	}
	if err := guard.Halt(dir, "stop everything"); err != nil {
		t.Fatal(err)
	}
	if err := ctl.PoisonIndex(ctx, "b", "k", false, "drill"); !errors.Is(err, guard.ErrHalted) {
		t.Errorf("drills halted: %v, want guard.ErrHalted", err)
	}
	if e := lastAudit(t, dir); e.Decision != guard.DecisionRefused {
		t.Errorf("audit of the refusal while halted: %+v", e)
	}
	if err := guard.Resume(dir); err != nil {
		t.Fatal(err)
	}

	if err := ctl.Poison(ctx, "gw-key", false, "drill"); err != nil {
		t.Fatal(err)
	}
	if err := ctl.PoisonIndex(ctx, "b", "dir/k", false, "drill"); err != nil {
		t.Fatalf("arm the index pill (a key may have '/'): %v", err)
	}
	if e := lastAudit(t, dir); e.Decision != guard.DecisionStep || !strings.Contains(e.Outcome, "index pill armed") {
		t.Errorf("audit of arming: %+v", e)
	}
	f, err := faultfile.Read(faults)
	if err != nil || f.Poison == nil || f.Poison.Key != "gw-key" || !f.Index.Matches("b", "dir/k") {
		t.Fatalf("faults file with both pills armed: %+v, %v", f, err)
	}
	if fi, err := os.Stat(faults); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("faults file mode: %v, %v; want 0600", fi, err)
	}

	// Halted, disarming works, one pill at a time.
	if err := guard.Halt(dir, "stop everything"); err != nil {
		t.Fatal(err)
	}
	if err := ctl.PoisonIndex(ctx, "", "", true, "drill over"); err != nil {
		t.Fatalf("disarm the index pill while halted: %v", err)
	}
	if f, err := faultfile.Read(faults); err != nil || f.Index != nil || f.Poison == nil {
		t.Fatalf("after disarming the index pill: %+v, %v; want the poison pill kept", f, err)
	}
	if err := ctl.Poison(ctx, "", true, "drill over"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(faults); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("faults file with nothing armed: %v, want it gone", err)
	}
}
