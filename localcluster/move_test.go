package localcluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/internal/testwait"
	"github.com/cellarsim/cellar/localcluster"
)

// A move runs behind the control endpoint, whoever asks: without a confirmation it is
// a dry run, a mistyped confirmation and the kill switch are refused and audited, and
// a confirmed plan runs with the supervisor's certificate, while the operator's may
// not change the cell map itself.
func TestControlEndpointMoves(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of child processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	topo := smallTopology(t)
	topo.Cells, topo.StorageNodes, topo.MapNodes = 2, 1, 1
	sup, err := localcluster.Start(ctx, topo, dir, testOptions(t, &syncBuffer{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Stop(context.Background())
	addr, stop, err := sup.ServeControl()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	f, err := localcluster.ReadClusterFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	operator, err := localcluster.OperatorCreds(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw := rawClient{t, addr, f.ControlToken, operator.ClientTLS()}
	ctl, err := localcluster.NewControl(f)
	if err != nil {
		t.Fatal(err)
	}

	// The dry run: a plan, nothing done, audited as planned. Slot 0 moves to the cell
	// that does not hold it (the first gateway seeds the map soon after the start).
	var plan *guard.Plan
	testwait.Succeeds(t, time.Minute, "a dry run of a move of slot 0 makes a plan", func() error {
		res, _, err := ctl.Move(ctx, localcluster.MoveRequest{Slot: new(0), To: cell.ID(0)}, nil, nil)
		if res == nil || res.Plan == nil || res.Plan.MoveDetail == nil {
			return errors.Join(errors.New("no plan"), err)
		}
		plan = res.Plan
		return nil
	})
	target := cell.ID(0)
	if plan.MoveDetail.Source == target {
		target = cell.ID(1)
	}
	req := localcluster.MoveRequest{Slot: new(0), To: target, Command: "curl"}
	resp, body := raw.post("/v1/moves", req)
	evs := planEvents(t, body)
	if resp.StatusCode != http.StatusOK || len(evs) != 2 || evs[0].Plan == nil || evs[1].Result == nil || evs[1].Result.Executed {
		t.Fatalf("dry run: %s %s", resp.Status, body)
	}
	plan = evs[0].Plan
	if d := plan.MoveDetail; d.Target != target || d.Slot != 0 || !plan.Allowed() {
		t.Fatalf("dry run plan: %+v %+v", plan, d)
	}
	if e := lastAudit(t, dir); e.Decision != guard.DecisionPlanned || e.PlanID != plan.ID || e.Command != "curl" {
		t.Errorf("dry run audited as %+v", e)
	}

	// A mistyped confirmation is refused and audited.
	req.Confirm, req.Reason = "0123456789ab", "spread the load"
	resp, body = raw.post("/v1/moves", req)
	evs = planEvents(t, body)
	if last := evs[len(evs)-1].Result; resp.StatusCode != http.StatusConflict || last == nil || last.Kind != localcluster.KindStale || last.Executed {
		t.Fatalf("mistyped confirmation: %s %s", resp.Status, body)
	}
	if e := lastAudit(t, dir); e.Decision != guard.DecisionRefused || !strings.Contains(e.Outcome, "0123456789ab") {
		t.Errorf("mistyped confirmation audited as %+v", e)
	}
	// A confirmation without a reason, or a request naming both a bucket and a slot, is
	// not a request.
	resp, body = raw.post("/v1/moves", localcluster.MoveRequest{Slot: new(0), To: target, Confirm: plan.ID})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), localcluster.KindNoReason) {
		t.Errorf("a confirmation without a reason: %s %s", resp.Status, body)
	}
	resp, body = raw.post("/v1/moves", localcluster.MoveRequest{Bucket: "b", Slot: new(0), To: target})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), localcluster.KindBadRequest) {
		t.Errorf("a bucket and a slot: %s %s", resp.Status, body)
	}

	// The kill switch refuses the right confirmation, audited.
	if err := guard.Halt(dir, "move test"); err != nil {
		t.Fatal(err)
	}
	req.Confirm = plan.ID
	resp, body = raw.post("/v1/moves", req)
	var res localcluster.PlanResult
	if evs = planEvents(t, body); len(evs) == 1 && evs[0].Result != nil {
		res = *evs[0].Result
	}
	if resp.StatusCode != http.StatusConflict || res.Kind != localcluster.KindHalted {
		t.Fatalf("halted: %s %s", resp.Status, body)
	}
	if e := lastAudit(t, dir); e.Decision != guard.DecisionRefused || !strings.Contains(e.Outcome, "halted") || e.PlanID != plan.ID {
		t.Errorf("halted audited as %+v", e)
	}
	if err := guard.Resume(dir); err != nil {
		t.Fatal(err)
	}

	// The operator's certificate may not change the map itself...
	conns, err := localcluster.OperatorConns(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer conns.Close()
	mapNode, _ := sup.Node(cell.NodeID("", cell.RoleMap, 0))
	cc, err := conns.Get(mapNode.GRPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	setSlot := &cellarv1.MapCommand{Op: &cellarv1.MapCommand_SetSlot{SetSlot: &cellarv1.SetSlot{Slot: 0, Cell: target}}}
	if _, err := cellarv1.NewCellMapClient(cc).Apply(ctx, setSlot); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("the operator applies a map change: %v, want PermissionDenied", err)
	}
	// ...the confirmed plan runs, through cellctl, with the supervisor's.
	code, out := runCLI("move", "--data-dir", dir, "--slot", "0", "--to", target, "--confirm", plan.ID,
		"--reason", "spread the load", "--output", "json")
	var rep struct {
		Plan     *guard.Plan `json:"plan"`
		Executed bool        `json:"executed"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.Executed || rep.Plan.ID != plan.ID {
		t.Fatalf("cellctl move --confirm: exit %d: %s", code, out)
	}
	if e := lastAudit(t, dir); e.Decision != guard.DecisionDone || e.PlanID != plan.ID {
		t.Errorf("the move audited as %+v", e)
	}
	m, err := cellarv1.NewCellMapClient(cc).Get(ctx, &cellarv1.GetMapRequest{})
	if err != nil || len(m.GetSlots()) == 0 || m.Slots[0] != target {
		t.Errorf("after the move, slot 0 is in %v (%v), want %s", m.GetSlots(), err, target)
	}
	// The moves' metrics are on the control endpoint, for Prometheus: no token asked.
	scheme, client := "http://", http.DefaultClient
	if raw.tls != nil {
		scheme, client = "https://", &http.Client{Transport: &http.Transport{TLSClientConfig: raw.tls}}
	}
	resp, err = client.Get(scheme + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"cellar_moves_in_progress 0", "cellar_move_cutover_pause_seconds_count", "cellar_move_objects_copied_total"} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(metrics), want) {
			t.Errorf("GET /metrics on the control endpoint: %s, without %q:\n%s", resp.Status, want, metrics)
		}
	}
}
