package storage

import (
	"context"
	"errors"
	"fmt"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

// Run is storaged: it serves the Storage service for the blobs in cfg.DataDir until ctx
// is done, then stops gracefully. The node gossips state starting while it opens and
// recovers its data directory (calls meanwhile get Unavailable), then ready; read-only
// (with the reason on /readyz) whenever it cannot write (see health.go).
//
// Run has no way to report its addresses: pass listeners in cfg.Options (GRPCListener,
// AdminListener) to know them, as tests do.
func Run(ctx context.Context, cfg Config) error {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	d, err := daemon.New(cfg.Options)
	if err != nil {
		return err
	}
	srv := newServer(nil, d.Log)
	srv.idle = cfg.StreamIdleTimeout
	cellarv1.RegisterStorageServer(d.GRPC, srv)
	cellarv1.RegisterBlobsServer(d.GRPC, blobsServer{s: srv})
	if err := d.Start(); err != nil {
		return err
	}

	st, err := Open(cfg.DataDir)
	if err != nil {
		return errors.Join(err, d.Stop(nil))
	}
	rec := st.Recovery()
	d.Log.Info("storage opened", "dir", cfg.DataDir, "blobs", rec.Blobs, "used_bytes", rec.UsedBytes,
		"temp_removed", rec.TempRemoved, "took", rec.Took)
	if rec.Stray > 0 {
		d.Log.Warn("files in the blob directories that are not blobs; left alone", "count", rec.Stray)
	}
	if err := st.RegisterMetrics(d.Metrics); err != nil {
		return errors.Join(fmt.Errorf("storage: metrics: %w", err), d.Stop(st.Close))
	}
	d.SetGauges(func() map[string]float64 {
		s := st.Stats()
		return map[string]float64{"blobs": float64(s.Blobs), "used_bytes": float64(s.UsedBytes)}
	})
	if cfg.Faults != nil {
		st.InjectFaults(*cfg.Faults)
	}
	srv.store.Store(st)
	if err := st.Probe(cfg.MinFreeBytes); err != nil {
		d.Log.Error("storage node cannot write; it serves reads only until it can", "err", err)
		d.SetStateWhy(cell.StateReadOnly, err.Error())
	} else {
		d.SetState(cell.StateReady, 1)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go watchWrites(wctx, d, st, cfg.ProbeInterval, cfg.MinFreeBytes)
	return d.Wait(ctx, st.Close)
}
