package storage

import (
	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics exports the store's counts to reg. The daemon passes d.Metrics, which
// adds the cell and tier labels.
func (s *Store) RegisterMetrics(reg prometheus.Registerer) error {
	load := func(v interface{ Load() int64 }) func() float64 {
		return func() float64 { return float64(v.Load()) }
	}
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "cellar_storage_written_bytes_total",
			Help: "Object bytes written durably by this storage node.",
		}, load(&s.written)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "cellar_storage_read_bytes_total",
			Help: "Object bytes read, checked and sent by this storage node.",
		}, load(&s.read)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "cellar_storage_corrupt_blocks_total",
			Help: "Blocks (or blob footers) that failed their checksum when read.",
		}, load(&s.corrupt)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellar_storage_blobs",
			Help: "Blobs stored on this node.",
		}, load(&s.blobs)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellar_storage_used_bytes",
			Help: "Size on disk of the blobs stored on this node, checksums included.",
		}, load(&s.used)),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
