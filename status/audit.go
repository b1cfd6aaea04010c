package status

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// AuditLogName is the file in a cluster's data directory where drills and guardrails
// append their audit records, one JSON object a line.
const AuditLogName = "audit.log"

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

// Keys an audit record may use for its time, its message and where it happened.
var (
	timeKeys    = []string{"time", "ts", "timestamp", "at"}
	messageKeys = []string{"msg", "message", "event", "action", "summary"}
)

// auditEvent turns one audit line into an Event. The drill tooling's records are read
// generously: the time and message come from the usual keys, "cell" and "node" are
// kept, and the other fields are summarised as key=value after the message.
func auditEvent(line []byte) Event {
	ev := Event{Kind: EventAudit}
	var rec map[string]any
	if err := json.Unmarshal(line, &rec); err != nil {
		ev.Message = "unreadable audit line: " + truncate(string(bytes.TrimSpace(line)), 120)
		return ev
	}
	for _, k := range timeKeys {
		if t, ok := parseTime(rec[k]); ok {
			ev.Time = t
			delete(rec, k)
			break
		}
	}
	var msg string
	for _, k := range messageKeys {
		if s, ok := rec[k].(string); ok && s != "" {
			msg = s
			delete(rec, k)
			break
		}
	}
	// The drill tooling's entries: "<decision>: <command>".
	if d, ok := rec["decision"].(string); ok && d != "" {
		ev.To = d
		delete(rec, "decision")
		if c, ok := rec["command"].(string); ok && c != "" && msg == "" {
			msg = d + ": " + c
			delete(rec, "command")
		} else if msg == "" {
			msg = d
		}
	}
	if s, ok := rec["cell"].(string); ok {
		ev.Cell = s
	}
	if s, ok := rec["node"].(string); ok {
		ev.Node = s
	}
	delete(rec, "level")
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := keyRank(keys[i]), keyRank(keys[j])
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	parts := []string{}
	if msg != "" {
		parts = append(parts, msg)
	}
	for _, k := range keys {
		v := rec[k]
		switch v.(type) {
		case map[string]any, []any, nil:
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	ev.Message = truncate(strings.Join(parts, " "), 240)
	if ev.Message == "" {
		ev.Message = "audit record"
	}
	return ev
}

// summaryKeys come first after the message, in this order; other keys follow sorted.
var summaryKeys = []string{"node", "cell", "tier", "outcome", "override", "reason", "user", "actor"}

func keyRank(k string) int {
	for i, s := range summaryKeys {
		if s == k {
			return i
		}
	}
	return len(summaryKeys)
}

func parseTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case string:
		for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02 15:04:05"} {
			if t, err := time.Parse(layout, x); err == nil {
				return t, true
			}
		}
	case float64:
		switch {
		case x > 1e17: // nanoseconds
			return time.Unix(0, int64(x)), true
		case x > 1e11: // milliseconds
			return time.UnixMilli(int64(x)), true
		case x > 0:
			sec := int64(x)
			return time.Unix(sec, int64((x-float64(sec))*1e9)), true
		}
	}
	return time.Time{}, false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
