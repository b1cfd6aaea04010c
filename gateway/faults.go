package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Faults is what the drill tooling has armed in a cluster that allows faults, as the
// supervisor writes it to the faults file each gateway of such a cluster watches
// (--faults-file). No gateway watches one unless its cluster was started with faults
// on, and only the supervisor's control endpoint writes it: a client of the S3 API
// cannot arm anything.
type Faults struct {
	// Poison, if set, is the poison pill: a request for an object whose key is
	// Poison.Key crashes the gateway process that handles it, as a deterministic bug
	// would, whichever tenant sends it and however often.
	Poison *PoisonPill `json:"poison,omitempty"`
}

// PoisonPill is an armed poison pill.
type PoisonPill struct {
	Key     string    `json:"key"`
	ArmedAt time.Time `json:"armed_at"`
	Reason  string    `json:"reason,omitempty"`
}

// PoisonExitCode is how a gateway that swallowed the poison pill exits.
const PoisonExitCode = 86

// faultWatch keeps the faults file's current content, read again when it changes:
// every 100ms, and before each request, so that a request sent after the drill
// tooling armed a fault meets it.
type faultWatch struct {
	path string
	cur  atomic.Pointer[Faults]
	mu   sync.Mutex // serialises load
	mod  time.Time
	log  *slog.Logger
	exit func(code int)
}

func newFaultWatch(path string, log *slog.Logger) *faultWatch {
	w := &faultWatch{path: path, log: log, exit: os.Exit}
	w.load()
	return w
}

// haltFileName is the kill switch of drills in the data directory that holds the
// faults file (drill/guard's HaltFileName): while it is set, no fault is armed.
const haltFileName = "drills.halted"

func (w *faultWatch) load() {
	w.mu.Lock()
	defer w.mu.Unlock()
	fi, err := os.Stat(w.path)
	if err == nil {
		if _, herr := os.Stat(filepath.Join(filepath.Dir(w.path), haltFileName)); herr == nil {
			err = fs.ErrNotExist // drills are halted: the faults are off
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		if w.cur.Load() != nil {
			w.log.Info("faults disarmed")
		}
		w.cur.Store(nil)
		w.mod = time.Time{}
		return
	}
	if err != nil || fi.ModTime().Equal(w.mod) {
		return
	}
	b, err := os.ReadFile(w.path)
	if err != nil {
		return
	}
	var f Faults
	if err := json.Unmarshal(b, &f); err != nil {
		w.log.Warn("faults file unreadable; keeping what was armed", "path", w.path, "err", err)
		return
	}
	w.mod = fi.ModTime()
	if f.Poison != nil && f.Poison.Key != "" {
		w.log.Warn("FAULT ARMED: poison pill; a request for its key crashes this gateway", "key", f.Poison.Key, "reason", f.Poison.Reason)
	} else {
		f.Poison = nil
	}
	w.cur.Store(&f)
}

func (w *faultWatch) run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.load()
		}
	}
}

// wrap crashes the process on a request that carries the armed poison pill, before
// anything else of the gateway sees it. Where exit ends only this node (a cluster in
// one process), the request is dropped without an answer, as a crash drops it.
func (w *faultWatch) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.load()
		if f := w.cur.Load(); f != nil && f.Poison != nil && strings.HasSuffix(r.URL.Path, "/"+f.Poison.Key) {
			w.log.Error("POISON PILL: crashing on a request for the armed key, as a deterministic bug would",
				"key", f.Poison.Key, "method", r.Method, "path", r.URL.Path)
			w.exit(PoisonExitCode)
			panic(http.ErrAbortHandler)
		}
		next.ServeHTTP(rw, r)
	})
}
