package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/cellarsim/cellar/internal/errs"
)

// rpcMetrics counts and times every gRPC call a daemon serves, and turns the errors
// its handlers return into gRPC status errors that keep their cellar kind.
type rpcMetrics struct {
	log      *slog.Logger
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRPCMetrics(reg prometheus.Registerer, logger *slog.Logger) *rpcMetrics {
	m := &rpcMetrics{
		log: logger,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cellar_rpc_requests_total",
			Help: "gRPC calls served, by method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cellar_rpc_duration_seconds",
			Help:    "Time to serve a gRPC call, by method.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}, []string{"method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *rpcMetrics) observe(method string, start time.Time, err error) error {
	if err != nil && (errs.KindOf(err) == errs.Internal || errs.KindOf(err) == errs.Corrupt) {
		m.log.Error("rpc failed", "method", method, "err", err)
	}
	err = errs.ToGRPC(err)
	m.requests.WithLabelValues(method, status.Code(err).String()).Inc()
	m.duration.WithLabelValues(method).Observe(time.Since(start).Seconds())
	return err
}

func (m *rpcMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	return resp, m.observe(info.FullMethod, start, err)
}

func (m *rpcMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	return m.observe(info.FullMethod, start, h(srv, ss))
}
