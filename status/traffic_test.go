package status

import (
	"math"
	"strings"
	"testing"
	"time"
)

const gatewayExposition = `# HELP cellar_gateway_requests_total S3 requests.
# TYPE cellar_gateway_requests_total counter
cellar_gateway_requests_total{cell="cell-0",operation="GetObject",outcome="ok",tier="gateway"} 90
cellar_gateway_requests_total{cell="cell-0",operation="GetObject",outcome="NoSuchKey",tier="gateway"} 5
cellar_gateway_requests_total{cell="cell-0",operation="PutObject",outcome="ServiceUnavailable",tier="gateway"} 5
cellar_gateway_requests_total{cell="cell-1",operation="GetObject",outcome="SlowDown",tier="gateway"} 7
# HELP cellar_gateway_request_duration_seconds Time to serve.
# TYPE cellar_gateway_request_duration_seconds histogram
cellar_gateway_request_duration_seconds_bucket{cell="cell-0",operation="GetObject",tier="gateway",le="0.001"} 0
cellar_gateway_request_duration_seconds_bucket{cell="cell-0",operation="GetObject",tier="gateway",le="0.01"} 50
cellar_gateway_request_duration_seconds_bucket{cell="cell-0",operation="GetObject",tier="gateway",le="0.1"} 95
cellar_gateway_request_duration_seconds_bucket{cell="cell-0",operation="GetObject",tier="gateway",le="+Inf"} 95
cellar_gateway_request_duration_seconds_sum{cell="cell-0",operation="GetObject",tier="gateway"} 2
cellar_gateway_request_duration_seconds_count{cell="cell-0",operation="GetObject",tier="gateway"} 95
cellar_gateway_request_duration_seconds_bucket{cell="cell-0",operation="PutObject",tier="gateway",le="0.001"} 0
cellar_gateway_request_duration_seconds_bucket{cell="cell-0",operation="PutObject",tier="gateway",le="0.01"} 0
cellar_gateway_request_duration_seconds_bucket{cell="cell-0",operation="PutObject",tier="gateway",le="0.1"} 0
cellar_gateway_request_duration_seconds_bucket{cell="cell-0",operation="PutObject",tier="gateway",le="+Inf"} 5
cellar_gateway_request_duration_seconds_sum{cell="cell-0",operation="PutObject",tier="gateway"} 3
cellar_gateway_request_duration_seconds_count{cell="cell-0",operation="PutObject",tier="gateway"} 5
# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 12
`

func TestParseGatewayMetrics(t *testing.T) {
	got, err := parseGatewayMetrics(strings.NewReader(gatewayExposition))
	if err != nil {
		t.Fatal(err)
	}
	c0, c1 := got["cell-0"], got["cell-1"]
	if c0 == nil || c1 == nil {
		t.Fatalf("cells = %v, want cell-0 and cell-1", got)
	}
	if c0.requests != 100 || c0.errors != 5 {
		t.Errorf("cell-0 requests, errors = %v, %v; want 100, 5 (NoSuchKey is not a server error)", c0.requests, c0.errors)
	}
	if c1.requests != 7 || c1.errors != 7 {
		t.Errorf("cell-1 requests, errors = %v, %v; want 7, 7", c1.requests, c1.errors)
	}
	if c0.buckets[0.01] != 50 || c0.buckets[0.1] != 95 || c0.buckets[math.Inf(1)] != 100 {
		t.Errorf("cell-0 buckets = %v", c0.buckets)
	}
}

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct {
		name    string
		buckets map[float64]float64
		q       float64
		want    float64
		ok      bool
	}{
		{"empty", map[float64]float64{0.1: 0, inf: 0}, 0.99, 0, false},
		{"interpolated in the first bucket", map[float64]float64{0.1: 100, inf: 100}, 0.5, 0.05, true},
		{"interpolated in a later bucket", map[float64]float64{0.01: 50, 0.1: 100, inf: 100}, 0.99, 0.01 + 0.09*49/50, true},
		{"in +Inf gives the last bound", map[float64]float64{0.01: 50, 0.1: 90, inf: 100}, 0.99, 0.1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := quantile(tc.q, tc.buckets)
			if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("quantile = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func counters(reqs, errs float64, fast, total float64) map[string]*cellCounters {
	return map[string]*cellCounters{"cell-0": {
		requests: reqs, errors: errs,
		buckets: map[float64]float64{0.01: fast, math.Inf(1): total},
	}}
}

func TestTrafficMeterRatesAndResets(t *testing.T) {
	m := newTrafficMeter(5*time.Second, 10)
	t0 := time.Unix(1_800_000_000, 0)
	if got := m.compute(t0, []string{"cell-0"}); got != nil {
		t.Fatalf("no scrapes: traffic = %v, want nil", got)
	}
	m.add("gw-0", t0, counters(100, 10, 100, 100))
	if got := m.compute(t0, []string{"cell-0"}); got != nil {
		t.Fatalf("one scrape: traffic = %v, want nil (a rate needs two)", got)
	}
	m.add("gw-0", t0.Add(2*time.Second), counters(300, 30, 290, 300))
	tr := m.compute(t0.Add(2*time.Second), []string{"cell-0", "cell-1"})
	if tr == nil {
		t.Fatal("two scrapes: no traffic")
	}
	if got := tr["cell-0"].RequestsPerSecond; got != 100 {
		t.Errorf("rps = %v, want 100", got)
	}
	if got := tr["cell-0"].ErrorRatio; math.Abs(got-0.1) > 1e-9 {
		t.Errorf("error ratio = %v, want 0.1", got)
	}
	if p := tr["cell-0"].P99Seconds; p == nil || *p != 0.01 {
		t.Errorf("p99 = %v, want 0.01", p)
	}
	if got := tr["cell-1"]; got == nil || got.RequestsPerSecond != 0 {
		t.Errorf("cell-1 (no traffic) = %+v, want zero rates", got)
	}
	// The gateway restarts: its counters start again from zero.
	m.add("gw-0", t0.Add(4*time.Second), counters(50, 0, 50, 50))
	tr = m.compute(t0.Add(4*time.Second), []string{"cell-0"})
	if got := tr["cell-0"].RequestsPerSecond; got != (200.0+50)/4 {
		t.Errorf("rps across a reset = %v, want %v", got, (200.0+50)/4)
	}
	// The gateway stops answering: after a window there are no figures at all.
	if got := m.compute(t0.Add(10*time.Second), []string{"cell-0"}); got != nil {
		t.Errorf("gateway silent for a window: traffic = %v, want nil", got)
	}
}
