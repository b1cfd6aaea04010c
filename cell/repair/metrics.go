package repair

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	under, lost                   prometheus.Gauge
	repaired, bytes, scrubbed     prometheus.Counter
	corruptFound, corruptRepaired prometheus.Counter
	gcBlobs, gcBytes, passes      prometheus.Counter
	expired                       prometheus.Counter // lifecycle expiration (lifecycle.go)
}

func newMetrics() *metrics {
	return &metrics{
		under: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cellar_repair_under_replicated_objects",
			Help: "Objects of the cell below their copy count at the end of the last repair pass."}),
		lost: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cellar_repair_lost_objects",
			Help: "Objects with no copy on any storage node the last pass could list."}),
		repaired: prometheus.NewCounter(prometheus.CounterOpts{Name: "cellar_repair_objects_repaired_total",
			Help: "Objects given back a missing copy."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "cellar_repair_bytes_total",
			Help: "Bytes copied by repair (missing, under-replicated and corrupt copies); its rate is the repair bandwidth."}),
		scrubbed: prometheus.NewCounter(prometheus.CounterOpts{Name: "cellar_repair_scrubbed_bytes_total",
			Help: "Bytes of copies verified by the scrubber."}),
		corruptFound: prometheus.NewCounter(prometheus.CounterOpts{Name: "cellar_repair_corrupt_found_total",
			Help: "Corrupt copies the scrubber found."}),
		corruptRepaired: prometheus.NewCounter(prometheus.CounterOpts{Name: "cellar_repair_corrupt_repaired_total",
			Help: "Corrupt copies rewritten from a good copy."}),
		gcBlobs: prometheus.NewCounter(prometheus.CounterOpts{Name: "cellar_repair_gc_deleted_blobs_total",
			Help: "Orphan blobs deleted by garbage collection."}),
		gcBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "cellar_repair_gc_deleted_bytes_total",
			Help: "Bytes of orphan blobs deleted by garbage collection."}),
		passes: prometheus.NewCounter(prometheus.CounterOpts{Name: "cellar_repair_passes_total",
			Help: "Repair passes completed."}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Name: "cellar_lifecycle_expired_total",
			Help: "Objects deleted because their bucket's lifecycle rules expired them."}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.under, m.lost, m.repaired, m.bytes, m.scrubbed, m.corruptFound, m.corruptRepaired, m.gcBlobs, m.gcBytes, m.passes, m.expired}
}

func (m *metrics) passDone(res PassResult) {
	m.under.Set(float64(res.UnderReplicated))
	m.lost.Set(float64(res.Lost))
	m.passes.Inc()
}

// Register registers the loop's metrics with reg.
func (r *Repairer) Register(reg prometheus.Registerer) error {
	for _, c := range r.m.collectors() {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Gauges are the loop's numbers for the host's /status (status page: repair_*).
func (r *Repairer) Gauges() map[string]float64 {
	last, passes := r.Last()
	if !r.Leading() {
		return map[string]float64{"repair_leading": 0}
	}
	return map[string]float64{
		"repair_leading":           1,
		"repair_passes":            float64(passes),
		"repair_under_replicated":  float64(last.UnderReplicated),
		"repair_lost":              float64(last.Lost),
		"repair_objects":           float64(last.Objects),
		"repair_objects_repaired":  counterValue(r.m.repaired),
		"repair_bytes":             counterValue(r.m.bytes),
		"repair_corrupt_found":     counterValue(r.m.corruptFound),
		"repair_corrupt_repaired":  counterValue(r.m.corruptRepaired),
		"repair_gc_deleted_blobs":  counterValue(r.m.gcBlobs),
		"repair_last_pass_seconds": last.Took.Seconds(),
	}
}
