package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/internal/faultfile"
)

// The kill switch disarms. While drills are halted the nodes see no fault (they look
// for the switch beside the faults file), but that alone would only suspend a pill:
// once the switch is cleared, a pill nobody disarmed would be armed again, with
// nobody watching. So the supervisor, which alone writes the faults file, disarms
// every pill as soon as it sees the switch set, and records each in the audit log;
// 'cellctl drill resume' clears the switch and arms nothing. A switch set and cleared
// again between two looks still disarms: the audit log records the halt, and a pill
// armed before a halt the log records is disarmed too.

// haltEvery is how often the supervisor looks for the kill switch while a fault is
// armed.
const haltEvery = 100 * time.Millisecond

// faultsMu serialises the changes this process makes to a faults file: an arming
// and the kill switch's disarming, each a read, a change and a write.
var faultsMu sync.Mutex

// disarmedByHalt is in the outcome of every audit entry of a pill the kill switch
// disarmed (beside the halt's own entry).
const disarmedByHalt = "disarmed by the kill switch"

// disarmOnHalt disarms every pill of the faults file at faultsFile that a halt of the
// cluster in dir came after: the kill switch set now, or a halt the audit log records
// after the pill was armed. Each pill disarmed is audited. It returns what it
// disarmed, as the audit log words it.
func disarmOnHalt(dir, faultsFile string, audit *guard.Audit) ([]string, error) {
	f, err := faultfile.Read(faultsFile)
	if err != nil || f.Empty() {
		return nil, err
	}
	halted, info := guard.Halted(dir)
	var halts []time.Time
	if !halted {
		entries, err := guard.ReadAudit(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Decision == guard.DecisionHalt && !strings.Contains(e.Outcome, disarmedByHalt) {
				halts = append(halts, e.Time)
			}
		}
	}
	haltedSince := func(armed time.Time) (time.Time, bool) {
		if halted {
			return info.Time, true
		}
		for _, h := range halts {
			if h.After(armed) {
				return h, true
			}
		}
		return time.Time{}, false
	}
	due := func(armed *time.Time) bool {
		if armed == nil {
			return false
		}
		_, ok := haltedSince(*armed)
		return ok
	}
	var poisonAt, indexAt *time.Time
	if f.Poison != nil {
		poisonAt = &f.Poison.ArmedAt
	}
	if f.Index != nil {
		indexAt = &f.Index.ArmedAt
	}
	if !due(poisonAt) && !due(indexAt) {
		return nil, nil // no halt came after what is armed
	}
	var outcomes []string
	faultsMu.Lock()
	defer faultsMu.Unlock()
	err = faultfile.Update(faultsFile, func(f *faultfile.Faults) {
		if p := f.Poison; p != nil {
			if at, ok := haltedSince(p.ArmedAt); ok {
				f.Poison = nil
				outcomes = append(outcomes, fmt.Sprintf("poison pill "+disarmedByHalt+"%s: it was armed at %s (%s) on object key %s",
					haltWhen(at), p.ArmedAt.Format(time.RFC3339), p.Reason, p.Key))
			}
		}
		if p := f.Index; p != nil {
			if at, ok := haltedSince(p.ArmedAt); ok {
				f.Index = nil
				outcomes = append(outcomes, fmt.Sprintf("index pill "+disarmedByHalt+"%s: it was armed at %s (%s) on %s/%s",
					haltWhen(at), p.ArmedAt.Format(time.RFC3339), p.Reason, p.Bucket, p.Key))
			}
		}
	})
	if err != nil {
		return nil, err
	}
	reason := "drills halted"
	if info.Reason != "" {
		reason += ": " + info.Reason
	}
	var errs []error
	for _, o := range outcomes {
		errs = append(errs, audit.Append(guard.Entry{Command: "drill halt", Reason: reason, Decision: guard.DecisionHalt, Outcome: o}))
	}
	return outcomes, errors.Join(errs...)
}

func haltWhen(at time.Time) string {
	if at.IsZero() {
		return ""
	}
	return " (set at " + at.UTC().Format(time.RFC3339) + ")"
}

// watchHalt disarms the pills of the faults file at faultsFile whenever a halt of the
// cluster in dir comes after them (disarmOnHalt), looking every interval until ctx
// ends. It reads the audit log only when the faults file or the log changed.
func watchHalt(ctx context.Context, dir, faultsFile string, audit *guard.Audit, interval time.Duration, onErr func(error)) {
	type stamp struct {
		faults, log time.Time
		size        int64
	}
	var last stamp
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		fi, err := os.Stat(faultsFile)
		if err == nil {
			var now stamp
			now.faults = fi.ModTime()
			if li, err := os.Stat(filepath.Join(dir, guard.AuditFileName)); err == nil {
				now.log, now.size = li.ModTime(), li.Size()
			}
			halted, _ := guard.Halted(dir)
			if halted || now != last {
				if _, err := disarmOnHalt(dir, faultsFile, audit); err != nil && onErr != nil {
					onErr(err)
				}
				// Stamp what was seen after disarming: its own audit entries are no
				// news for the next look.
				last = stamp{}
				if fi, err := os.Stat(faultsFile); err == nil {
					last.faults = fi.ModTime()
				}
				if li, err := os.Stat(filepath.Join(dir, guard.AuditFileName)); err == nil {
					last.log, last.size = li.ModTime(), li.Size()
				}
			}
		} else if !errors.Is(err, fs.ErrNotExist) && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
