package index

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

// How an index daemon shows its rebuild: progress in the gossip state, gauges in
// /status, metrics.

// rebuildGCPercent is the GOGC of an index daemon while it rebuilds.
const rebuildGCPercent = 400

// rebuildView publishes the rebuild of store through d.
type rebuildView struct {
	d       *daemon.Daemon
	store   *Store
	since   time.Duration // from the daemon's start to the start of Open
	heapEnd atomic.Uint64 // Go heap in use after the rebuild, after a collection
}

// serveRebuild registers store's metrics and gauges with d; openStart is when the
// daemon began to open the store.
func serveRebuild(d *daemon.Daemon, store *Store, openStart time.Time) *rebuildView {
	v := &rebuildView{d: d, store: store, since: openStart.Sub(time.Unix(0, d.Status().StartedUnixNano))}
	registerMetrics(d.Metrics, v)
	d.SetGauges(v.gauges)
	return v
}

// wait publishes the progress until the rebuild ends or ctx is done.
func (v *rebuildView) wait(ctx context.Context) error {
	// The rebuild keeps nearly everything it allocates, so a collection at every
	// doubling of the heap finds little garbage and only costs the rebuild CPU.
	// Collect less often until it is done (this process holds one store).
	if old := debug.SetGCPercent(rebuildGCPercent); old < 0 || old > rebuildGCPercent {
		debug.SetGCPercent(old)
	} else {
		defer debug.SetGCPercent(old)
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-v.store.Ready():
			if err := v.store.RebuildErr(); err != nil {
				return err
			}
			st := v.store.Stats()
			v.d.Log.Info("index rebuilt", "objects", st.Objects, "corrupt", st.Corrupt,
				"ranges", st.Ranges, "workers", st.Workers, "open", st.Open.Round(time.Millisecond), "plan", st.Plan.Round(time.Millisecond),
				"first_serve", (v.since + st.FirstServe).Round(time.Millisecond),
				"took", st.Duration.Round(time.Millisecond))
			// The heap after a collection is what the map really holds; measure it
			// beside serving, not before.
			go func() {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				v.heapEnd.Store(ms.HeapAlloc)
				v.d.Log.Info("heap after the rebuild", "heap_bytes", ms.HeapAlloc, "map_bytes", v.store.objects.MemBytes())
			}()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			v.d.SetState(cell.StateRebuilding, v.ratio())
		}
	}
}

func (v *rebuildView) ratio() float64 {
	loaded, total := v.store.Progress()
	if total <= 0 {
		return 0
	}
	return min(float64(loaded)/float64(total), 0.999)
}

func (v *rebuildView) gauges() map[string]float64 {
	st := v.store.Stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	g := map[string]float64{
		"objects":                  float64(v.store.Len()),
		"objects_loaded":           float64(st.Objects),
		"objects_estimated":        float64(st.Estimated),
		"rebuild_progress":         v.ratio(),
		"rebuild_seconds":          st.Duration.Seconds(),
		"rebuild_open_seconds":     st.Open.Seconds(),
		"rebuild_plan_seconds":     st.Plan.Seconds(),
		"rebuild_ranges":           float64(st.Ranges),
		"rebuild_ranges_loaded":    float64(st.Loaded),
		"corrupt_records":          float64(st.Corrupt),
		"heap_alloc_bytes":         float64(ms.HeapAlloc),
		"since_start_open_seconds": v.since.Seconds(),
		"applied_index":            float64(v.store.AppliedIndex()),
	}
	if st.Done {
		g["rebuild_progress"] = 1
		g["map_bytes"] = float64(v.store.objects.MemBytes())
		if h := v.heapEnd.Load(); h > 0 {
			g["heap_after_rebuild_bytes"] = float64(h)
		}
	}
	if st.FirstServe > 0 {
		g["first_serve_seconds"] = (v.since + st.FirstServe).Seconds()
	}
	return g
}

func registerMetrics(reg prometheus.Registerer, v *rebuildView) {
	s := v.store
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	reg.MustRegister(
		gauge("cellar_index_objects", "Objects in the index's in-memory map.",
			func() float64 { return float64(s.Len()) }),
		gauge("cellar_index_rebuild_objects_loaded", "Objects loaded from Pebble by the rebuild so far.",
			func() float64 { return float64(s.Stats().Objects) }),
		gauge("cellar_index_rebuild_progress_ratio", "Share of the expected objects the rebuild has loaded (1 when done).",
			func() float64 {
				if s.Stats().Done {
					return 1
				}
				return v.ratio()
			}),
		gauge("cellar_index_rebuild_duration_seconds", "How long the rebuild of the in-memory map from Pebble took (so far, while it runs).",
			func() float64 { return s.Stats().Duration.Seconds() }),
		gauge("cellar_index_rebuild_first_serve_seconds", "From the daemon's start to the first key range it could serve reads for.",
			func() float64 {
				if fs := s.Stats().FirstServe; fs > 0 {
					return (v.since + fs).Seconds()
				}
				return 0
			}),
		gauge("cellar_index_corrupt_records", "Records that failed their checksum in the rebuild.",
			func() float64 { return float64(s.Stats().Corrupt) }),
	)
}
