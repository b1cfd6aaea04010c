package status

import (
	"github.com/prometheus/client_golang/prometheus"
)

// viewCollector exports the status view as Prometheus series, so that what the page
// shows (node readiness as probed from outside, index quorum, cell health, restart
// times) can also be graphed and alerted on. The daemons cannot say they are down;
// the status server, probing them from elsewhere, can.
type viewCollector struct {
	view        func() Snapshot
	nodeUp      *prometheus.Desc
	nodeReady   *prometheus.Desc
	nodeRestart *prometheus.Desc
	quorum      *prometheus.Desc
	cellHealth  *prometheus.Desc
	stale       *prometheus.Desc
	contactAge  *prometheus.Desc
}

func newViewCollector(view func() Snapshot) *viewCollector {
	nodeLabels := []string{"node", "tier", "cell"}
	return &viewCollector{
		view: view,
		nodeUp: prometheus.NewDesc("cellar_status_node_up",
			"1 when the node answers its /readyz (in any state), 0 when it is down.", nodeLabels, nil),
		nodeReady: prometheus.NewDesc("cellar_status_node_ready",
			"1 when the node's /readyz says ready, 0 otherwise.", nodeLabels, nil),
		nodeRestart: prometheus.NewDesc("cellar_status_node_ready_duration_seconds",
			"Time from the node's last start to its becoming ready.", nodeLabels, nil),
		quorum: prometheus.NewDesc("cellar_status_index_quorum",
			"1 while the cell's index group holds quorum: a majority of its declared nodes ready and, in a group of more than one, a leader.", []string{"cell"}, nil),
		cellHealth: prometheus.NewDesc("cellar_status_cell_health",
			`1 for the cell's current health ("serving", "degraded", "down", "unknown"), 0 for the others.`, []string{"cell", "health"}, nil),
		stale: prometheus.NewDesc("cellar_status_view_stale",
			"1 when the status view has heard nothing from the cluster for its stale-after time.", nil, nil),
		contactAge: prometheus.NewDesc("cellar_status_last_contact_age_seconds",
			"Time since the status view last heard from any node, by gossip or probe.", nil, nil),
	}
}

func (c *viewCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.nodeUp, c.nodeReady, c.nodeRestart, c.quorum, c.cellHealth, c.stale, c.contactAge} {
		ch <- d
	}
}

func (c *viewCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.view()
	b := func(ok bool) float64 {
		if ok {
			return 1
		}
		return 0
	}
	node := func(n NodeView) {
		labels := []string{n.ID, string(n.Role), n.Cell}
		ch <- prometheus.MustNewConstMetric(c.nodeUp, prometheus.GaugeValue, b(n.State != StateDown), labels...)
		ch <- prometheus.MustNewConstMetric(c.nodeReady, prometheus.GaugeValue, b(n.State == "ready"), labels...)
		if n.ReadySeconds != nil {
			ch <- prometheus.MustNewConstMetric(c.nodeRestart, prometheus.GaugeValue, *n.ReadySeconds, labels...)
		}
	}
	for _, cv := range s.Cells {
		ch <- prometheus.MustNewConstMetric(c.quorum, prometheus.GaugeValue, b(cv.Index.Quorum), cv.ID)
		for _, h := range []string{HealthServing, HealthDegraded, HealthDown, HealthUnknown} {
			ch <- prometheus.MustNewConstMetric(c.cellHealth, prometheus.GaugeValue, b(cv.Health == h), cv.ID, h)
		}
		for _, tv := range cv.Tiers {
			for _, n := range tv.Nodes {
				node(n)
			}
		}
	}
	for _, n := range s.Gateways {
		node(n)
	}
	ch <- prometheus.MustNewConstMetric(c.stale, prometheus.GaugeValue, b(s.Stale))
	ch <- prometheus.MustNewConstMetric(c.contactAge, prometheus.GaugeValue, s.LastContactAgeSeconds)
}
