package localcluster

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway/mover"
)

// The control endpoint's answer to a move, as it streams, is what moves.json records:
// nothing for a dry run; the move's phase and copy as its progress comes; its end,
// write pause and error with its result; an answer cut short is an interrupted move.
func TestMovesRecordedFromTheStream(t *testing.T) {
	dir := t.TempDir()
	c := &controller{cfg: ControlConfig{Dir: dir}}
	plan := &guard.Plan{ID: "4be1a09c22f1", MoveDetail: &guard.MoveDetail{Bucket: "photos", Source: "cell-0", Target: "cell-2", MapVersion: 7}}
	serve := func(events ...PlanEvent) {
		h := c.recordMoves(func(w http.ResponseWriter, r *http.Request) {
			s := &planStream{w: w}
			for _, ev := range events {
				s.send(http.StatusOK, ev)
			}
		})
		h(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v1/moves", nil))
	}
	read := func() []MoveStatus {
		t.Helper()
		moves, err := ReadMoves(dir)
		if err != nil {
			t.Fatal(err)
		}
		return moves
	}
	progress := func(step string, objects int64) PlanEvent {
		return PlanEvent{Event: EventProgress, Move: &mover.Progress{Bucket: "photos", Step: step, Objects: objects, Total: 400}}
	}

	// A dry run: the plan and a result, no progress.
	serve(PlanEvent{Event: EventPlan, Plan: plan}, PlanEvent{Event: EventResult, Result: &PlanResult{}})
	if moves := read(); len(moves) != 0 {
		t.Fatalf("a dry run recorded %+v", moves)
	}

	// A move that runs to its end.
	serve(PlanEvent{Event: EventPlan, Plan: plan}, progress("copy", 10), progress("fence", 400), progress("done", 402),
		PlanEvent{Event: EventResult, Result: &PlanResult{Executed: true, Moved: []mover.Stats{{Bucket: "photos", Objects: 402, WritePause: 90e6}}}})
	moves := read()
	if len(moves) != 1 {
		t.Fatalf("moves %+v, want one", moves)
	}
	m := moves[0]
	if m.PlanID != plan.ID || m.Source != "cell-0" || m.Target != "cell-2" || m.MapVersion != 7 || m.Phase != "done" ||
		m.Objects != 402 || m.Total != 400 || m.Running() || m.WritePause != 90e6 {
		t.Errorf("recorded %+v", m)
	}

	// A move whose answer ends mid-copy (the supervisor went away): interrupted, and
	// the newest first.
	other := *plan
	other.ID = "0d5e4a110000"
	serve(PlanEvent{Event: EventPlan, Plan: &other}, progress("copy", 5))
	moves = read()
	if len(moves) != 2 || moves[0].PlanID != other.ID || moves[0].Phase != "interrupted" || moves[0].Running() {
		b, _ := json.Marshal(moves)
		t.Errorf("moves after an interrupted one: %s", b)
	}
}
