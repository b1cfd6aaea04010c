package status

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The gateway series the status view reads.
const (
	metricRequests = "cellar_gateway_requests_total"
	metricDuration = "cellar_gateway_request_duration_seconds"
)

// serverErrors are the gateway outcomes that are the service's fault: what a cell
// that lost its index or its storage answers. Client errors (NoSuchKey, AccessDenied,
// a client that went away) do not count against a cell.
var serverErrors = map[string]bool{
	"ServiceUnavailable": true,
	"SlowDown":           true,
	"InternalError":      true,
}

// cellCounters are one cell's cumulative gateway counters in one scrape, summed over
// operations.
type cellCounters struct {
	requests float64
	errors   float64
	// buckets maps a histogram bucket's upper bound to its cumulative count.
	buckets map[float64]float64
}

// parseGatewayMetrics reads a Prometheus text exposition and returns the gateway's
// counters per cell. A node that exports no gateway series gives an empty map.
func parseGatewayMetrics(r io.Reader) (map[string]*cellCounters, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := map[string]*cellCounters{}
	get := func(c string) *cellCounters {
		cc := out[c]
		if cc == nil {
			cc = &cellCounters{buckets: map[float64]float64{}}
			out[c] = cc
		}
		return cc
	}
	if f := fams[metricRequests]; f != nil {
		for _, m := range f.GetMetric() {
			c := label(m, "cell")
			if c == "" || m.GetCounter() == nil {
				continue
			}
			v := m.GetCounter().GetValue()
			cc := get(c)
			cc.requests += v
			if serverErrors[label(m, "outcome")] {
				cc.errors += v
			}
		}
	}
	if f := fams[metricDuration]; f != nil {
		for _, m := range f.GetMetric() {
			c := label(m, "cell")
			h := m.GetHistogram()
			if c == "" || h == nil {
				continue
			}
			cc := get(c)
			hasInf := false
			for _, b := range h.GetBucket() {
				cc.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				hasInf = hasInf || math.IsInf(b.GetUpperBound(), 1)
			}
			if !hasInf {
				cc.buckets[math.Inf(1)] += float64(h.GetSampleCount())
			}
		}
	}
	return out, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// scrape is one reading of one gateway's counters.
type scrape struct {
	t     time.Time
	cells map[string]*cellCounters
}

// trafficMeter turns successive scrapes of the gateways' cumulative counters into
// per-cell rates and a p99 over a sliding window, the way Prometheus' rate() and
// histogram_quantile() would: counter resets (a restarted gateway) are taken as
// starting again from zero.
type trafficMeter struct {
	window  time.Duration
	history int
	sources map[string][]scrape // by gateway id, oldest first
	points  map[string][]TrafficPoint
}

func newTrafficMeter(window time.Duration, history int) *trafficMeter {
	return &trafficMeter{
		window: window, history: history,
		sources: map[string][]scrape{}, points: map[string][]TrafficPoint{},
	}
}

// add records a scrape of source at t.
func (m *trafficMeter) add(source string, t time.Time, cells map[string]*cellCounters) {
	m.sources[source] = append(m.sources[source], scrape{t: t, cells: cells})
}

// compute returns each cell's traffic at now over the window, forgetting scrapes that
// fell out of it, and appends a point to each cell's history. A nil map means no
// gateway was read at least twice within the window: there is no traffic data.
func (m *trafficMeter) compute(now time.Time, cells []string) map[string]*Traffic {
	type acc struct {
		reqs, errs float64
		buckets    map[float64]float64
	}
	sums := map[string]*acc{}
	for _, c := range cells {
		sums[c] = &acc{buckets: map[float64]float64{}}
	}
	usable := 0
	for src, ss := range m.sources {
		// Keep one scrape older than the window, so a full window is covered.
		cut := 0
		for cut+1 < len(ss) && now.Sub(ss[cut+1].t) >= m.window {
			cut++
		}
		ss = ss[cut:]
		if len(ss) > 0 && now.Sub(ss[len(ss)-1].t) > m.window {
			ss = nil // this gateway has not answered for a whole window
		}
		if len(ss) == 0 {
			delete(m.sources, src)
			continue
		}
		m.sources[src] = ss
		if len(ss) < 2 {
			continue
		}
		dt := ss[len(ss)-1].t.Sub(ss[0].t).Seconds()
		if dt <= 0 {
			continue
		}
		usable++
		for c, a := range sums {
			a.reqs += increase(ss, func(s scrape) float64 { return s.cells[c].getRequests() }) / dt
			a.errs += increase(ss, func(s scrape) float64 { return s.cells[c].getErrors() }) / dt
			for _, ub := range bucketBounds(ss, c) {
				a.buckets[ub] += increase(ss, func(s scrape) float64 { return s.cells[c].getBucket(ub) })
			}
		}
	}
	if usable == 0 {
		return nil
	}
	out := map[string]*Traffic{}
	for c, a := range sums {
		tr := &Traffic{
			WindowSeconds:     m.window.Seconds(),
			RequestsPerSecond: a.reqs,
			ErrorsPerSecond:   a.errs,
		}
		if a.reqs > 0 {
			tr.ErrorRatio = min(1, a.errs/a.reqs)
		}
		if q, ok := quantile(0.99, a.buckets); ok {
			tr.P99Seconds = &q
		}
		pts := append(m.points[c], TrafficPoint{Time: now, RequestsPerSecond: a.reqs, ErrorsPerSecond: a.errs})
		if len(pts) > m.history {
			pts = append([]TrafficPoint(nil), pts[len(pts)-m.history:]...)
		}
		m.points[c] = pts
		tr.History = pts
		out[c] = tr
	}
	return out
}

func (c *cellCounters) getRequests() float64 {
	if c == nil {
		return 0
	}
	return c.requests
}

func (c *cellCounters) getErrors() float64 {
	if c == nil {
		return 0
	}
	return c.errors
}

func (c *cellCounters) getBucket(ub float64) float64 {
	if c == nil {
		return 0
	}
	return c.buckets[ub]
}

// increase is how much a cumulative counter grew over the scrapes, counting a drop
// as a reset to zero.
func increase(ss []scrape, v func(scrape) float64) float64 {
	var inc float64
	prev := v(ss[0])
	for _, s := range ss[1:] {
		cur := v(s)
		if cur < prev {
			inc += cur
		} else {
			inc += cur - prev
		}
		prev = cur
	}
	return inc
}

func bucketBounds(ss []scrape, c string) []float64 {
	seen := map[float64]bool{}
	var out []float64
	for _, s := range ss {
		if cc := s.cells[c]; cc != nil {
			for ub := range cc.buckets {
				if !seen[ub] {
					seen[ub] = true
					out = append(out, ub)
				}
			}
		}
	}
	return out
}

// quantile estimates the q-quantile from cumulative histogram buckets (upper bound →
// count, +Inf included) by linear interpolation inside the bucket the rank falls in,
// as Prometheus' histogram_quantile does. It reports false when there are no
// observations.
func quantile(q float64, buckets map[float64]float64) (float64, bool) {
	bounds := make([]float64, 0, len(buckets))
	for ub := range buckets {
		bounds = append(bounds, ub)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return 0, false
	}
	total := buckets[bounds[len(bounds)-1]]
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, ub := range bounds {
		count := buckets[ub]
		if count >= rank {
			if math.IsInf(ub, 1) {
				return lower, true // the best that can be said: above the last bound
			}
			if count == below {
				return ub, true
			}
			return lower + (ub-lower)*(rank-below)/(count-below), true
		}
		lower, below = ub, count
	}
	return lower, true
}

// formatSeconds is used in events and tests: 1.234 s, 56 ms.
func formatSeconds(s float64) string {
	if s < 1 {
		return strconv.FormatFloat(s*1000, 'f', 0, 64) + " ms"
	}
	return strconv.FormatFloat(s, 'f', 1, 64) + " s"
}
