package loadgen

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// CellUnknown is the cell of a request that no cell answered and whose bucket's cell
// is not known.
const CellUnknown = "unknown"

// Histogram range: 10µs to 2 minutes, in microseconds.
const (
	histMin = 10
	histMax = int64(2 * time.Minute / time.Microsecond)
)

// sample is the outcome of one request.
type sample struct {
	op      string
	cell    string
	due     time.Duration // since the start of the run
	latency time.Duration // from due to done
	code    string        // "" for success, else the S3 error code or a transport error
	tenant  string        // the tenant that sent it; "" without tenants
}

// counter is the outcome of a group of requests.
type counter struct {
	hist   *hdrhistogram.Histogram
	ok     int64
	errors map[string]int64
}

func newCounter(sig int) *counter {
	return &counter{hist: hdrhistogram.New(histMin, histMax, sig), errors: map[string]int64{}}
}

func (c *counter) add(s sample) {
	us := min(max(s.latency.Microseconds(), histMin), histMax)
	_ = c.hist.RecordValue(us)
	if s.code == "" {
		c.ok++
	} else {
		c.errors[s.code]++
	}
}

func (c *counter) summary() Summary {
	out := Summary{Requests: c.ok, OK: c.ok}
	for _, n := range c.errors {
		out.Requests += n
		out.Errors += n
	}
	if len(c.errors) > 0 {
		out.ErrorCodes = maps.Clone(c.errors)
	}
	if c.hist.TotalCount() > 0 {
		out.Latency = latencyOf(c.hist)
	}
	return out
}

// recorder gathers the samples of a run.
type recorder struct {
	mu       sync.Mutex
	all      *counter
	byOp     map[string]*counter
	byCell   map[string]*counter
	byCellOp map[string]map[string]*counter
	seconds  map[string]map[int]*counter // cell → second of the run (by due time)
	tenants  map[string]*tenantCounter
}

// tenantCounter is what one tenant's requests did, in all and per second.
type tenantCounter struct {
	all     *counter
	seconds map[int]*counter
}

func newRecorder() *recorder {
	return &recorder{
		all: newCounter(3), byOp: map[string]*counter{}, byCell: map[string]*counter{},
		byCellOp: map[string]map[string]*counter{}, seconds: map[string]map[int]*counter{},
		tenants: map[string]*tenantCounter{},
	}
}

func get[K comparable](m map[K]*counter, k K, sig int) *counter {
	c, ok := m[k]
	if !ok {
		c = newCounter(sig)
		m[k] = c
	}
	return c
}

func (r *recorder) add(s sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all.add(s)
	get(r.byOp, s.op, 3).add(s)
	get(r.byCell, s.cell, 3).add(s)
	if r.byCellOp[s.cell] == nil {
		r.byCellOp[s.cell] = map[string]*counter{}
	}
	get(r.byCellOp[s.cell], s.op, 3).add(s)
	if r.seconds[s.cell] == nil {
		r.seconds[s.cell] = map[int]*counter{}
	}
	get(r.seconds[s.cell], int(s.due/time.Second), 2).add(s)
	if s.tenant != "" {
		tc := r.tenants[s.tenant]
		if tc == nil {
			tc = &tenantCounter{all: newCounter(2), seconds: map[int]*counter{}}
			r.tenants[s.tenant] = tc
		}
		tc.all.add(s)
		get(tc.seconds, int(s.due/time.Second), 1).add(s)
	}
}

// tenantResult is the result per tenant, with a point for every second of the run;
// nil without tenants.
func (r *recorder) tenantResult(seconds int) map[string]TenantResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.tenants) == 0 {
		return nil
	}
	out := map[string]TenantResult{}
	for name, tc := range r.tenants {
		tr := TenantResult{Summary: tc.all.summary()}
		last := seconds - 1
		for sec := range tc.seconds {
			last = max(last, sec)
		}
		for sec := 0; sec <= last; sec++ {
			p := Point{T: sec}
			if sc, ok := tc.seconds[sec]; ok {
				s := sc.summary()
				p.Requests, p.Errors = s.Requests, s.Errors
				if s.Latency != nil {
					p.P99MS = s.Latency.P99MS
				}
			}
			tr.Series = append(tr.Series, p)
		}
		out[name] = tr
	}
	return out
}

// TenantResult is what one tenant's requests did.
type TenantResult struct {
	Summary
	Series []Point `json:"series"`
}

// snapshot returns the totals so far (for the progress line).
func (r *recorder) snapshot() (all Summary, cells map[string]Summary) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cells = map[string]Summary{}
	for c, cnt := range r.byCell {
		cells[c] = cnt.summary()
	}
	return r.all.summary(), cells
}

// result builds the per-cell, per-operation and per-second results; seconds is the
// length of the run in whole seconds, so that every cell's series has a point for
// every second, quiet ones included.
func (r *recorder) result(seconds int) (overall Summary, ops map[string]Summary, cells map[string]CellResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops = map[string]Summary{}
	for op, c := range r.byOp {
		ops[op] = c.summary()
	}
	cells = map[string]CellResult{}
	for name, c := range r.byCell {
		cr := CellResult{Summary: c.summary(), Ops: map[string]Summary{}}
		for op, oc := range r.byCellOp[name] {
			cr.Ops[op] = oc.summary()
		}
		last := seconds - 1
		for sec := range r.seconds[name] {
			last = max(last, sec)
		}
		for sec := 0; sec <= last; sec++ {
			p := Point{T: sec}
			if sc, ok := r.seconds[name][sec]; ok {
				s := sc.summary()
				p.Requests, p.Errors = s.Requests, s.Errors
				if s.Latency != nil {
					p.P99MS = s.Latency.P99MS
				}
			}
			cr.Series = append(cr.Series, p)
		}
		cells[name] = cr
	}
	return r.all.summary(), ops, cells
}

// Summary is the outcome of a group of requests.
type Summary struct {
	Requests   int64            `json:"requests"`
	OK         int64            `json:"ok"`
	Errors     int64            `json:"errors"`
	ErrorCodes map[string]int64 `json:"error_codes,omitempty"`
	Latency    *Latency         `json:"latency,omitempty"`
}

// ErrorRate is the share of requests that failed (0 when there were none).
func (s Summary) ErrorRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Requests)
}

// Latency is a latency distribution in milliseconds, measured from when each request
// was due.
type Latency struct {
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p999_ms"`
	MaxMS  float64 `json:"max_ms"`
}

func latencyOf(h *hdrhistogram.Histogram) *Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return &Latency{
		MeanMS: h.Mean() / 1000, P50MS: ms(h.ValueAtQuantile(50)), P90MS: ms(h.ValueAtQuantile(90)),
		P99MS: ms(h.ValueAtQuantile(99)), P999MS: ms(h.ValueAtQuantile(99.9)), MaxMS: ms(h.Max()),
	}
}

// CellResult is what one cell served.
type CellResult struct {
	Summary
	Ops    map[string]Summary `json:"ops"`
	Series []Point            `json:"series"`
}

// Point is one second of a cell's load: requests due in that second, how many of them
// failed, and their p99 latency.
type Point struct {
	T        int     `json:"t"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	P99MS    float64 `json:"p99_ms"`
}

// Result is the outcome of a run.
type Result struct {
	Config    Config                `json:"config"`
	Started   time.Time             `json:"started"`
	Elapsed   time.Duration         `json:"elapsed_ns"`
	Scheduled int                   `json:"scheduled"`
	Overall   Summary               `json:"overall"`
	Ops       map[string]Summary    `json:"ops"`
	Cells     map[string]CellResult `json:"cells"`
	// Tenants is the result per tenant, when the load was sent by tenants.
	Tenants map[string]TenantResult `json:"tenants,omitempty"`
	// MaxLagMS is how late, at worst, a request was sent after it was due: high when
	// the load generator itself could not keep up.
	MaxLagMS float64 `json:"max_send_lag_ms"`
}

// CellNames lists the cells of the result in order.
func (r *Result) CellNames() []string {
	return slices.Sorted(maps.Keys(r.Cells))
}
