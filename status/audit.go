package status

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"

	"github.com/cellarsim/cellar/drill/guard"
)

// AuditLogName is the file in a cluster's data directory where drills and guardrails
// append their audit records, one guard.Entry a line.
const AuditLogName = guard.AuditFileName

// auditTail follows an append-only JSON-lines file. It reads what was appended since
// the last call, starts again from the top when the file shrinks (replaced or
// truncated), and on first open skips all but the last tailStart bytes.
type auditTail struct {
	path    string
	offset  int64
	partial []byte
	opened  bool
}

const tailStart = 256 << 10

// read returns the events of the lines appended since the last call. A missing file
// gives none and no error.
func (a *auditTail) read() ([]Event, error) {
	f, err := os.Open(a.path)
	if os.IsNotExist(err) {
		a.offset, a.partial, a.opened = 0, nil, false
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	skipFirst := false
	switch {
	case !a.opened:
		a.opened = true
		if size > tailStart {
			a.offset, skipFirst = size-tailStart, true
		}
	case size < a.offset:
		a.offset, a.partial = 0, nil
	}
	if size == a.offset {
		return nil, nil
	}
	b, err := io.ReadAll(io.NewSectionReader(f, a.offset, size-a.offset))
	if err != nil {
		return nil, err
	}
	a.offset += int64(len(b))
	b = append(a.partial, b...)
	a.partial = nil
	if i := bytes.LastIndexByte(b, '\n'); i < len(b)-1 {
		a.partial = append([]byte(nil), b[i+1:]...)
		b = b[:i+1]
	}
	var out []Event
	for i, line := range bytes.Split(b, []byte{'\n'}) {
		if (i == 0 && skipFirst) || len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		out = append(out, auditEvent(line))
	}
	return out, nil
}

// auditEvent turns one line of the audit log (a guard.Entry) into an Event: its
// message is "<decision>: <command>", followed by where it acted, what came of it and
// who asked why.
func auditEvent(line []byte) Event {
	var e guard.Entry
	if err := json.Unmarshal(line, &e); err != nil || (e.Decision == "" && e.Command == "") {
		return Event{Kind: EventAudit, Message: "unreadable audit line: " + truncate(string(bytes.TrimSpace(line)), 120)}
	}
	ev := Event{Time: e.Time, Kind: EventAudit, Cell: e.Cell, Node: e.Node, To: e.Decision}
	msg := e.Decision
	if e.Command != "" {
		msg = strings.TrimPrefix(e.Decision+": "+e.Command, ": ")
	}
	parts := []string{msg}
	for _, kv := range [][2]string{
		{"node", e.Node}, {"cell", e.Cell}, {"outcome", e.Outcome}, {"override", e.Override},
		{"reason", e.Reason}, {"user", e.User}, {"plan_id", e.PlanID},
	} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	ev.Message = truncate(strings.Join(parts, " "), 240)
	return ev
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
