package s3

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus series; a nil *metrics records nothing.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	tenants  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	return &metrics{
		requests: registerOrReuse(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cellar_gateway_requests_total",
			Help: "S3 requests handled by the gateway, by operation, serving cell and outcome " +
				`("ok", the S3 error code returned, or "ClientClosedRequest" when the client went away or cancelled ` +
				`the request before its answer was complete, which is no failure of the cell).`,
		}, []string{"operation", "cell", "outcome"})),
		duration: registerOrReuse(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cellar_gateway_request_duration_seconds",
			Help: "Time to serve an S3 request, body transfer included, by operation and serving cell.",
			// 1 ms to about a minute: object transfers of 100 MiB and more take seconds.
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 13),
		}, []string{"operation", "cell"})),
		tenants: registerOrReuse(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cellar_gateway_tenant_requests_total",
			Help: "S3 requests handled by the gateway, by tenant (the owner of the access key that signed it; " +
				`"-" for a key that is no tenant's) and outcome, when the cluster declares tenants.`,
		}, []string{"tenant", "outcome"})),
	}
}

// registerOrReuse registers c, or returns the identical collector already registered
// (several handlers may share one registry).
func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("gateway: registering metrics: " + err.Error())
	}
	return c
}

func (m *metrics) observe(op, cell, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(op, cell, outcome).Inc()
	m.duration.WithLabelValues(op, cell).Observe(d.Seconds())
}

// observeTenant counts a request under its tenant.
func (m *metrics) observeTenant(tenant, outcome string) {
	if m == nil || m.tenants == nil {
		return
	}
	m.tenants.WithLabelValues(tenant, outcome).Inc()
}

// NoTenant is the tenant label of a request signed with a key that is no tenant's: the
// cluster's own key, an unknown key, or none.
const NoTenant = "-"

func tenantLabel(tenants map[string]string, accessKey string) string {
	if name, ok := tenants[accessKey]; ok {
		return name
	}
	return NoTenant
}
