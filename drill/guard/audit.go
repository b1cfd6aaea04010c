package guard

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sync"
	"time"
)

// AuditFileName is the audit log in a cluster's data directory.
const AuditFileName = "audit.log"

// Decisions an audit entry records.
const (
	DecisionPlanned   = "planned"   // a dry run showed a plan
	DecisionRefused   = "refused"   // the guardrails, a stale confirmation or the kill switch said no
	DecisionConfirmed = "confirmed" // a confirmed plan starts
	DecisionOverride  = "override"  // a confirmed plan crosses a guardrail
	DecisionStep      = "step"      // one node of a plan was acted on
	DecisionDone      = "done"      // a plan finished
	DecisionAborted   = "aborted"   // a plan stopped part way
	DecisionHalt      = "halt"      // the kill switch was set
	DecisionResume    = "resume"    // the kill switch was cleared
	// DecisionGuardrailsOff: a cluster started with its guardrails off (teaching).
	DecisionGuardrailsOff = "guardrails-off"
)

// Entry is one line of the audit log.
type Entry struct {
	Time     time.Time `json:"time"`
	User     string    `json:"user"`
	Command  string    `json:"command"`
	Reason   string    `json:"reason,omitempty"`
	Override string    `json:"override,omitempty"`
	PlanID   string    `json:"plan_id,omitempty"`
	Decision string    `json:"decision"`
	Cell     string    `json:"cell,omitempty"`
	Node     string    `json:"node,omitempty"`
	// Nodes are the nodes a confirmed plan acts on (confirmed entries only).
	Nodes   []string `json:"nodes,omitempty"`
	Outcome string   `json:"outcome,omitempty"`
}

// Audit appends entries to an audit log: one JSON object a line, never rewritten.
type Audit struct {
	path string
	mu   sync.Mutex
	now  func() time.Time
}

// OpenAudit returns the audit log of the data directory dir.
func OpenAudit(dir string) *Audit {
	return &Audit{path: filepath.Join(dir, AuditFileName), now: time.Now}
}

// Path is the file the log is in.
func (a *Audit) Path() string { return a.path }

// Append writes e (with the time and user filled in when empty) at the end of the log
// and syncs it to disk.
func (a *Audit) Append(e Entry) error {
	if e.Time.IsZero() {
		e.Time = a.now().UTC()
	}
	if e.User == "" {
		e.User = CurrentUser()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open the audit log: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write the audit log: %w", err)
	}
	return nil
}

// ReadAudit reads every entry of the audit log of dir, oldest first. A missing log is
// empty; a line that does not parse is an error naming it.
func ReadAudit(dir string) ([]Entry, error) {
	path := filepath.Join(dir, AuditFileName)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open the audit log: %w", err)
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return out, fmt.Errorf("%s line %d does not parse: %v", path, line, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// CurrentUser names who runs this process: $USER, else the account name, else the uid.
func CurrentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}

// RunningPlan returns the confirmed entry of the plan id in the audit log of dir, when
// the log shows the plan confirmed and not yet done or aborted: a plan that is being
// carried out now. The component that acts on a node checks a step against it (see
// StepOf). ok is false for a plan the log shows no such confirmation of.
func RunningPlan(dir, id string) (confirmed Entry, ok bool, err error) {
	if id == "" {
		return Entry{}, false, nil
	}
	entries, err := ReadAudit(dir)
	if err != nil {
		return Entry{}, false, err
	}
	for _, e := range entries {
		if e.PlanID != id {
			continue
		}
		switch e.Decision {
		case DecisionConfirmed:
			confirmed, ok = e, true
		case DecisionDone, DecisionAborted:
			ok = false
		}
	}
	return confirmed, ok, nil
}
