package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cellarsim/cellar/internal/faultfile"
)

// Faults is what the drill tooling has armed in a cluster that allows faults, as the
// supervisor writes it to the faults file each gateway of such a cluster watches
// (--faults-file; see internal/faultfile). A gateway swallows only the poison pill
// (Faults.Poison): a request for an object whose key is Poison.Key crashes the gateway
// process that handles it, as a deterministic bug would, whichever tenant sends it and
// however often.
type Faults = faultfile.Faults

// PoisonPill is an armed poison pill.
type PoisonPill = faultfile.PoisonPill

// PoisonExitCode is how a gateway that swallowed the poison pill exits.
const PoisonExitCode = 86

// faultWatch keeps the faults file's current content, read again when it changes:
// every 100ms, and before each request, so that a request sent after the drill
// tooling armed a fault meets it.
type faultWatch struct {
	w    *faultfile.Watch
	log  *slog.Logger
	exit func(code int)
}

func newFaultWatch(path string, log *slog.Logger) *faultWatch {
	w := &faultWatch{w: faultfile.NewWatch(path), log: log, exit: os.Exit}
	if p := w.w.Current().Poison; p != nil {
		w.log.Warn("FAULT ARMED: poison pill; a request for its key crashes this gateway", "key", p.Key, "reason", p.Reason)
	}
	return w
}

// haltFileName is the kill switch of drills in the data directory that holds the
// faults file: while it is set, no fault is armed.
const haltFileName = faultfile.HaltFileName

func (w *faultWatch) load() *Faults {
	f, changed, err := w.w.Load()
	switch {
	case err != nil:
		w.log.Warn("faults file unreadable; keeping what was armed", "err", err)
	case changed && f.Poison != nil:
		w.log.Warn("FAULT ARMED: poison pill; a request for its key crashes this gateway", "key", f.Poison.Key, "reason", f.Poison.Reason)
	case changed && f.Index == nil:
		w.log.Info("faults disarmed")
	}
	return f
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
		if f := w.load(); f.Poison != nil && strings.HasSuffix(r.URL.Path, "/"+f.Poison.Key) {
			w.log.Error("POISON PILL: crashing on a request for the armed key, as a deterministic bug would",
				"key", f.Poison.Key, "method", r.Method, "path", r.URL.Path)
			w.exit(PoisonExitCode)
			panic(http.ErrAbortHandler)
		}
		next.ServeHTTP(rw, r)
	})
}
