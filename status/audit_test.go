package status

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAuditTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), AuditLogName)
	a := &auditTail{path: path}
	if evs, err := a.read(); err != nil || len(evs) != 0 {
		t.Fatalf("missing file: %v, %v; want nothing", evs, err)
	}
	appendFile(t, path, `{"time":"2026-11-22T12:00:00Z","action":"drain","cell":"cell-1","node":"cell-1-index-0","reason":"drill 3","actor":"ana"}`+"\n"+
		`{"ts":1795000000.5,"msg":"kill switch engaged"}`+"\n"+`{"msg":"half a li`)
	evs, err := a.read()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("events = %+v, want 2 (the partial line waits)", evs)
	}
	e := evs[0]
	if !e.Time.Equal(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)) || e.Kind != EventAudit || e.Cell != "cell-1" || e.Node != "cell-1-index-0" {
		t.Errorf("first event = %+v", e)
	}
	if want := "drain node=cell-1-index-0 cell=cell-1 reason=drill 3 actor=ana"; e.Message != want {
		t.Errorf("message = %q, want %q", e.Message, want)
	}
	if evs[1].Time.Unix() != 1795000000 || evs[1].Message != "kill switch engaged" {
		t.Errorf("second event = %+v", evs[1])
	}

	appendFile(t, path, "ne\"}\nnot json\n")
	evs, _ = a.read()
	if len(evs) != 2 || evs[0].Message != "half a line" || !strings.HasPrefix(evs[1].Message, "unreadable audit line") {
		t.Errorf("after completing the line: %+v", evs)
	}
	if evs, _ := a.read(); len(evs) != 0 {
		t.Errorf("nothing appended: %+v", evs)
	}

	// The drill tooling's entries.
	appendFile(t, path, `{"time":"2026-11-22T12:01:00Z","user":"ana","command":"cellctl drain --cell cell-1 --tier index","reason":"drill 3","plan_id":"p-7","decision":"refused","cell":"cell-1","outcome":"would leave 1 of 3 index nodes, floor is 2"}`+"\n")
	evs, _ = a.read()
	if len(evs) != 1 || evs[0].To != "refused" || evs[0].Cell != "cell-1" ||
		evs[0].Message != "refused: cellctl drain --cell cell-1 --tier index cell=cell-1 outcome=would leave 1 of 3 index nodes, floor is 2 reason=drill 3 user=ana plan_id=p-7" {
		t.Errorf("drill entry = %+v", evs)
	}

	// Replaced by a shorter file: read again from the top.
	if err := os.WriteFile(path, []byte(`{"msg":"new log"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	evs, _ = a.read()
	if len(evs) != 1 || evs[0].Message != "new log" {
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
