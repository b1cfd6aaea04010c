package status

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cellarsim/cellar/drill/guard"
)

// entryLine is one audit log line, as the guardrail workflow writes it.
func entryLine(t *testing.T, e guard.Entry) string {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func TestAuditTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), AuditLogName)
	a := &auditTail{path: path}
	if evs, err := a.read(); err != nil || len(evs) != 0 {
		t.Fatalf("missing file: %v, %v; want nothing", evs, err)
	}
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	refused := entryLine(t, guard.Entry{
		Time: at, User: "ana", Command: "cellctl drain --cell cell-1 --tier index", Reason: "drill 3", PlanID: "p-7",
		Decision: guard.DecisionRefused, Cell: "cell-1", Outcome: "would leave 1 of 3 index nodes, floor is 2",
	})
	step := entryLine(t, guard.Entry{
		Time: at.Add(time.Minute), User: "ana", Command: "cellctl stop cell-1-index-0", Decision: guard.DecisionStep,
		Cell: "cell-1", Node: "cell-1-index-0", Outcome: "stopped",
	})
	appendFile(t, path, refused+step[:20])
	evs, err := a.read()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("events = %+v, want 1 (the partial line waits)", evs)
	}
	e := evs[0]
	if !e.Time.Equal(at) || e.Kind != EventAudit || e.Cell != "cell-1" || e.Node != "" || e.To != guard.DecisionRefused {
		t.Errorf("first event = %+v", e)
	}
	if want := "refused: cellctl drain --cell cell-1 --tier index cell=cell-1 outcome=would leave 1 of 3 index nodes, floor is 2 reason=drill 3 user=ana plan_id=p-7"; e.Message != want {
		t.Errorf("message = %q, want %q", e.Message, want)
	}

	appendFile(t, path, step[20:]+"not json\n"+`{"msg":"not an audit entry"}`+"\n")
	evs, _ = a.read()
	if len(evs) != 3 || evs[0].Node != "cell-1-index-0" || evs[0].Message != "step: cellctl stop cell-1-index-0 node=cell-1-index-0 cell=cell-1 outcome=stopped user=ana" ||
		!strings.HasPrefix(evs[1].Message, "unreadable audit line") || !strings.HasPrefix(evs[2].Message, "unreadable audit line") {
		t.Errorf("after completing the line: %+v", evs)
	}
	if evs, _ := a.read(); len(evs) != 0 {
		t.Errorf("nothing appended: %+v", evs)
	}

	// Replaced by a shorter file: read again from the top.
	if err := os.WriteFile(path, []byte(entryLine(t, guard.Entry{Decision: guard.DecisionHalt, Command: "cellctl halt"})), 0o644); err != nil {
		t.Fatal(err)
	}
	evs, _ = a.read()
	if len(evs) != 1 || evs[0].Message != "halt: cellctl halt" {
		t.Errorf("after truncation: %+v", evs)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
