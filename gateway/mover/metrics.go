package mover

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics of the moves a process runs. They belong to the
// process that runs moves (a 'cellctl up' supervisor), registered once in its own
// registry and shared by each Mover it makes.
type Metrics struct {
	objects, bytes prometheus.Counter
	duration       *prometheus.HistogramVec
	pause          prometheus.Histogram
	running        prometheus.Gauge
	retries        prometheus.Counter
}

// NewMetrics registers the movers' metrics in reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		objects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellar_move_objects_copied_total",
			Help: "Objects copied from a source cell to a target cell by bucket moves (a copy that a later pass replaces counts again).",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellar_move_bytes_copied_total",
			Help: "Bytes of objects copied by bucket moves.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cellar_move_duration_seconds",
			Help:    "Time of one bucket's move, from its start to its end, by outcome: done, undone (cancelled or failed before the cutover, rolled back) or failed (stopped with the bucket left mid-move, to resume).",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 16),
		}, []string{"outcome"}),
		pause: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cellar_move_cutover_pause_seconds",
			Help:    "How long a moved bucket's writes were fenced: from the write fence to the map's flip to the target cell.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cellar_moves_in_progress",
			Help: "Bucket moves running now.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellar_move_step_retries_total",
			Help: "Steps of bucket moves tried again after a failure (a node of the source or target cell away, the map group changing leader).",
		}),
	}
	for _, c := range []prometheus.Collector{m.objects, m.bytes, m.duration, m.pause, m.running, m.retries} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("mover metrics: %w", err)
		}
	}
	return m, nil
}

// The methods below do nothing on a nil *Metrics: a Mover without metrics.

func (m *Metrics) copied(bytes int64) {
	if m != nil {
		m.objects.Inc()
		m.bytes.Add(float64(bytes))
	}
}

func (m *Metrics) started() {
	if m != nil {
		m.running.Inc()
	}
}

func (m *Metrics) ended(outcome string, took float64) {
	if m != nil {
		m.running.Dec()
		m.duration.WithLabelValues(outcome).Observe(took)
	}
}

func (m *Metrics) paused(seconds float64) {
	if m != nil {
		m.pause.Observe(seconds)
	}
}

func (m *Metrics) retried() {
	if m != nil {
		m.retries.Inc()
	}
}
