package drill

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway/mover"
	"github.com/cellarsim/cellar/loadgen"
)

// MoveStep moves a bucket to another cell while the load runs, as 'cellctl move'
// does: it asks the component that moves buckets (the supervisor's control endpoint)
// for the plan, then confirms that plan's id with the drill's reason. The guardrails,
// the kill switch and the audit log apply as they do to any move: the component
// enforces them, not the drill.
//
//   - load: {rate: 60, duration: 1m, noisy: {rate: 40}}
//   - wait: 15s
//   - move: {bucket: noisy, to: last}
//
// The report's move section (MoveReport) shows the load per cell before, during and
// after the move, the errors and p99 of the moved bucket and of everyone else while
// it moved, and the cutover on the timeline.
type MoveStep struct {
	// Bucket is the bucket to move: "noisy" (the default) is the load step's noisy
	// bucket; any other name is moved as it is.
	Bucket string `yaml:"bucket" json:"bucket,omitempty"`
	// To is the target cell: a cell id, "first" or "last" (the default).
	To     string `yaml:"to" json:"to,omitempty"`
	Expect string `yaml:"expect" json:"expect,omitempty"` // done (default) or refused
}

// NoisyBucket is the bucket name a move step gives to mean the load's noisy bucket.
const NoisyBucket = "noisy"

// NoisyLoad is a noisy tenant beside the load step's steady load: one bucket of its
// own, created and seeded in Cell, with a load of its own at Rate for as long as the
// steady load runs.
type NoisyLoad struct {
	Rate float64 `yaml:"rate" json:"rate"`
	// Cell is where the bucket is created: a cell id, "first" or "last" (default: the
	// scenario's target).
	Cell string `yaml:"cell" json:"cell,omitempty"`
	Mix  string `yaml:"mix" json:"mix,omitempty"` // as cellctl load --mix (default: the load step's)
	// Keys is how many objects the bucket is seeded with (default: the load step's).
	Keys int `yaml:"keys" json:"keys,omitempty"`
}

// BucketMover is a cluster that moves buckets between cells through the guardrail
// workflow of the component that acts: the supervisor's control endpoint of a
// 'cellctl up' cluster (localcluster.Attached), which plans, checks the kill switch,
// the confirmation and the reason, audits and runs the move.
type BucketMover interface {
	// MoveBucket asks for the move of bucket to cell to: a dry run when confirm is "",
	// else the plan confirm names, run for reason. show is given the plan before
	// anything is done, progress where the copy is as it goes. The error is told
	// apart as for any plan: guard.ErrRefused, guard.ErrHalted, *guard.StaleError...
	MoveBucket(ctx context.Context, bucket, to, confirm, reason string,
		show func(*guard.Plan), progress func(mover.Progress)) (*guard.Result, []mover.Stats, error)
}

// MoveReport is what a move step did, and what the load saw of it.
type MoveReport struct {
	Bucket  string `json:"bucket"`
	Source  string `json:"source"`
	Target  string `json:"target"`
	PlanID  string `json:"plan_id"`
	Reason  string `json:"reason"`
	Outcome string `json:"outcome"` // done, refused, failed (undone before its cutover), halted
	Error   string `json:"error,omitempty"`
	// What the plan found to copy, and what the move copied.
	ObjectsPlanned int64         `json:"objects_planned"`
	BytesPlanned   int64         `json:"bytes_planned"`
	Objects        int64         `json:"objects_copied"`
	Bytes          int64         `json:"bytes_copied"`
	Passes         int           `json:"passes"`
	WritePause     time.Duration `json:"write_pause_ns"`
	Took           time.Duration `json:"took_ns"`
	// On the drill's clock: the confirmed move's start, its write fence, the start of
	// its cutover, the map's flip and its end (0 for a phase it did not reach).
	Start   time.Duration `json:"start_ns"`
	Fence   time.Duration `json:"fence_ns,omitempty"`
	Cutover time.Duration `json:"cutover_ns,omitempty"`
	Flipped time.Duration `json:"flipped_ns,omitempty"`
	End     time.Duration `json:"end_ns"`
	// ServedBy is the cell that answered the bucket once the move was over.
	ServedBy string `json:"served_by,omitempty"`

	// PerCell is every cell's load (all buckets, the moved one too) before, during
	// and after the move, in requests per second, by the cell that answered.
	PerCell []MoveCellLoad `json:"per_cell"`
	// Moved is the moved bucket's requests due while it moved, Others everyone
	// else's; CutoverWindow the moved bucket's requests due from the write fence to
	// CutoverGrace after the map flipped.
	Moved         *WindowStats `json:"moved_bucket,omitempty"`
	Others        *WindowStats `json:"everyone_else,omitempty"`
	CutoverWindow *WindowStats `json:"cutover,omitempty"`
}

// CutoverGrace is how long after the map's flip a request to the moved bucket still
// counts as the cutover's: the gateways learn the new map in that time.
const CutoverGrace = 500 * time.Millisecond

// MoveCellLoad is one cell's load around a move, in requests per second.
type MoveCellLoad struct {
	Cell   string  `json:"cell"`
	Before float64 `json:"before_rps"`
	During float64 `json:"during_rps"`
	After  float64 `json:"after_rps"`
	// MovedBefore and MovedAfter are the moved bucket's share of it.
	MovedBefore float64 `json:"moved_before_rps"`
	MovedAfter  float64 `json:"moved_after_rps"`
}

// WindowStats is a group of requests due in a window of the drill.
type WindowStats struct {
	Requests   int64            `json:"requests"`
	Errors     int64            `json:"errors"`
	ErrorCodes map[string]int64 `json:"error_codes,omitempty"`
	P50MS      float64          `json:"p50_ms"`
	P99MS      float64          `json:"p99_ms"`
	MaxMS      float64          `json:"max_ms"`
}

// moveSample is one request of the drill's loads, on the drill's clock.
type moveSample struct {
	due    time.Duration
	took   time.Duration
	cell   string
	code   string
	bucket string
}

// maxMoveSamples bounds what a drill keeps of its requests (at the load's 5000
// requests a second, some 7 minutes).
const maxMoveSamples = 2_000_000

// moveMeter keeps every request of the drill's loads, for the move's windows.
type moveMeter struct {
	start   time.Time
	mu      sync.Mutex
	samples []moveSample
}

func (m *moveMeter) add(o loadgen.Outcome) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.samples) >= maxMoveSamples {
		return
	}
	m.samples = append(m.samples, moveSample{due: o.Due.Sub(m.start), took: o.Took, cell: o.Cell, code: o.Code, bucket: o.Bucket})
}

// stats are the samples that keep, in a window [from, to).
func stats(samples []moveSample, from, to time.Duration, keep func(moveSample) bool) *WindowStats {
	w := &WindowStats{}
	var lat []time.Duration
	for _, s := range samples {
		if s.due < from || s.due >= to || !keep(s) {
			continue
		}
		w.Requests++
		lat = append(lat, s.took)
		if s.code != "" {
			w.Errors++
			if w.ErrorCodes == nil {
				w.ErrorCodes = map[string]int64{}
			}
			w.ErrorCodes[s.code]++
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		q := func(p float64) float64 {
			i := int(p*float64(len(lat))+0.5) - 1
			return ms(lat[min(max(i, 0), len(lat)-1)])
		}
		w.P50MS, w.P99MS, w.MaxMS = q(0.50), q(0.99), ms(lat[len(lat)-1])
	}
	return w
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// noisyBucket names the noisy bucket of a run started at start, one whose home is
// cellID.
func (r *runner) noisyBucket(cellID string) string {
	names, home := loadgen.Buckets(r.env.Topology, "noisy-"+r.start.UTC().Format("150405"), 1)
	for _, n := range names {
		if home[n] == cellID {
			return n
		}
	}
	return names[0] // partitioned by key: any bucket spans every cell
}

// seedNoisy creates and seeds the noisy bucket, and returns the config of its load
// beside the steady one (cfg).
func (r *runner) seedNoisy(ctx context.Context, cfg loadgen.Config, n *NoisyLoad) (*loadgen.Config, error) {
	c, err := r.cell(n.Cell)
	if err != nil {
		return nil, err
	}
	name := r.noisyBucket(c)
	cfg.Buckets, cfg.BucketCell = []string{name}, map[string]string{name: c}
	cfg.Rate, cfg.Observe = n.Rate, nil
	if n.Keys > 0 {
		cfg.Keys = n.Keys
	}
	if n.Mix != "" {
		m, err := loadgen.ParseMix(n.Mix)
		if err != nil {
			return nil, err
		}
		cfg.Mix = m
	}
	if err := loadgen.Seed(ctx, cfg); err != nil {
		return nil, fmt.Errorf("seed the noisy bucket %s: %w", name, err)
	}
	r.mu.Lock()
	r.noisyName = name
	r.mu.Unlock()
	r.event("LOAD", c, fmt.Sprintf("noisy tenant: bucket %s in %s, %g requests/s of its own", name, c, n.Rate))
	return &cfg, nil
}

// move runs a move step.
func (r *runner) move(ctx context.Context, s *MoveStep) error {
	bm, ok := r.env.Cluster.(BucketMover)
	if !ok {
		return errors.New("this cluster cannot move buckets: moves run on a 'cellctl up' cluster with a map group")
	}
	to, err := resolveCell(r.env.Topology.CellIDs(), s.To, "last")
	if err != nil {
		return err
	}
	bucket := s.Bucket
	if bucket == "" || bucket == NoisyBucket {
		r.mu.Lock()
		bucket = r.noisyName
		r.mu.Unlock()
		if bucket == "" {
			return errors.New("no noisy bucket to move: the load step has no noisy load")
		}
	}
	reason := "drill " + r.sc.Name
	mr := &MoveReport{Bucket: bucket, Target: to, Reason: reason, Outcome: "refused"}
	r.mu.Lock()
	r.rep.Move = mr
	r.mu.Unlock()
	var plan *guard.Plan
	what := func(p *guard.Plan) string {
		return fmt.Sprintf("move of bucket %s from %s to %s", bucket, p.MoveDetail.Source, to)
	}
	show := func(p *guard.Plan) {
		if p.MoveDetail == nil {
			return
		}
		plan = p
		d := p.MoveDetail
		r.mu.Lock()
		mr.Source, mr.PlanID, mr.ObjectsPlanned, mr.BytesPlanned = d.Source, p.ID, d.Objects, d.Bytes
		r.mu.Unlock()
		r.decision(Guardrail{At: r.since(), Action: "move", Cell: d.Source, Tier: "to " + to, Nodes: []string{bucket}, PlanID: p.ID,
			Allowed: p.Allowed(), Violations: p.Violations})
	}
	// The dry run: the plan, judged now.
	_, _, err = bm.MoveBucket(ctx, bucket, to, "", reason, show, nil)
	switch {
	case plan == nil && err != nil:
		return fmt.Errorf("plan the move of %s: %w", bucket, err)
	case errors.Is(err, guard.ErrHalted):
		mr.Outcome = "halted"
		return err
	case plan == nil || (err != nil && !errors.Is(err, guard.ErrRefused)):
		return fmt.Errorf("plan the move of %s: %v", bucket, err)
	}
	r.event("MOVE", plan.MoveDetail.Source, fmt.Sprintf("%s requested: %d objects, %s (plan %s)",
		what(plan), plan.MoveDetail.Objects, sizeText(plan.MoveDetail.Bytes), plan.ID))
	if !plan.Allowed() || errors.Is(err, guard.ErrRefused) {
		reason := plan.RefusalText()
		r.event("REFUSED", plan.MoveDetail.Source, reason)
		r.expect(what(plan), s.Expect, ExpectRefused, ": "+reason)
		return nil
	}

	// The confirmed move, with the phases on the timeline.
	start := r.since()
	r.mu.Lock()
	mr.Start, mr.Outcome = start, "failed"
	r.mu.Unlock()
	r.event("MOVE", plan.MoveDetail.Source, fmt.Sprintf("%s confirmed (plan %s, reason %q): copying while it serves", what(plan), plan.ID, reason))
	seen := map[string]bool{}
	progress := func(p mover.Progress) {
		if seen[p.Step] {
			return
		}
		seen[p.Step] = true
		now := r.since()
		switch p.Step {
		case "fence":
			r.mu.Lock()
			mr.Fence = now
			r.mu.Unlock()
			r.event("FENCE", plan.MoveDetail.Source, fmt.Sprintf("writes to %s fenced in %s after %d objects copied; the last changes are copied", bucket, plan.MoveDetail.Source, p.Objects))
		case "cutover":
			r.mu.Lock()
			mr.Cutover = now
			r.mu.Unlock()
			r.event("CUTOVER", to, fmt.Sprintf("%s refuses %s; the cell map flips it to %s", plan.MoveDetail.Source, bucket, to))
		case "reclaim":
			r.mu.Lock()
			mr.Flipped = now
			r.mu.Unlock()
			r.event("FLIPPED", to, fmt.Sprintf("the cell map sends %s to %s; %s's copy is reclaimed", bucket, to, plan.MoveDetail.Source))
		}
	}
	_, moved, err := bm.MoveBucket(ctx, bucket, to, plan.ID, reason, nil, progress)
	end := r.since()
	r.mu.Lock()
	mr.End, mr.Took = end, end-start
	for _, st := range moved {
		if st.Bucket == bucket {
			mr.Objects, mr.Bytes, mr.Passes, mr.WritePause, mr.Took = st.Objects, st.Bytes, st.Passes, st.WritePause, st.Took
		}
	}
	r.mu.Unlock()
	switch {
	case errors.Is(err, guard.ErrHalted):
		mr.Outcome, mr.Error = "halted", err.Error()
		return err
	case errors.Is(err, guard.ErrRefused):
		mr.Outcome, mr.Error = "refused", err.Error()
		r.event("REFUSED", plan.MoveDetail.Source, err.Error())
		r.expect(what(plan), s.Expect, ExpectRefused, ": "+err.Error())
		return nil
	case err != nil:
		mr.Error = err.Error()
		r.event("MOVE FAILED", plan.MoveDetail.Source, fmt.Sprintf("%s failed: %v", what(plan), err))
		r.expect(what(plan), s.Expect, ExpectFailed, ": "+err.Error())
		return nil
	}
	mr.Outcome = "done"
	r.event("MOVED", to, fmt.Sprintf("%s done: %d objects (%s) copied in %d passes, in %s; writes paused %s",
		what(plan), mr.Objects, sizeText(mr.Bytes), mr.Passes, span(mr.Took), mr.WritePause.Round(time.Millisecond)))
	r.expect(what(plan), s.Expect, ExpectDone, "")
	served, err := r.servedBy(ctx, bucket, to)
	mr.ServedBy = served
	detail := "answered by " + served
	if err != nil {
		detail = err.Error()
	}
	r.check(fmt.Sprintf("bucket %s is served by %s", bucket, to), served == to, detail)
	return nil
}

// servedBy asks the gateway for the bucket until the cell that answers is want, or
// for HealthTimeout, and returns the cell that answered last.
func (r *runner) servedBy(ctx context.Context, bucket, want string) (string, error) {
	var cellHeader atomic.Value
	cellHeader.Store("")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := s3.New(s3.Options{
		BaseEndpoint: aws.String(r.env.Load.Endpoint), UsePathStyle: true, Region: r.env.Load.Region,
		Credentials: credentials.NewStaticCredentialsProvider(r.env.Load.AccessKey, r.env.Load.SecretKey, ""),
		HTTPClient:  &http.Client{Transport: headerTransport{tr, &cellHeader}, Timeout: 5 * time.Second}, Retryer: aws.NopRetryer{},
	})
	deadline := time.Now().Add(r.env.HealthTimeout)
	for {
		_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), MaxKeys: aws.Int32(1)})
		got := cellHeader.Load().(string)
		if err == nil && got == want {
			return got, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return got, fmt.Errorf("last answer from %q: %w", got, err)
			}
			return got, nil
		}
		if err := sleep(ctx, r.env.SampleEvery); err != nil {
			return got, err
		}
	}
}

// headerTransport keeps the x-cellar-cell header of the last response.
type headerTransport struct {
	next http.RoundTripper
	cell *atomic.Value
}

func (t headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if resp != nil {
		t.cell.Store(resp.Header.Get(loadgen.HeaderCell))
	}
	return resp, err
}

// measure takes the move's windows from what the loads sent: loadStart and loadEnd
// are when the loads began and ended, on the drill's clock.
func (m *MoveReport) measure(samples []moveSample, cells []string, loadStart, loadEnd time.Duration) {
	if m.Start == 0 || m.End == 0 {
		return
	}
	all := func(moveSample) bool { return true }
	moved := func(s moveSample) bool { return s.bucket == m.Bucket }
	m.Moved = stats(samples, m.Start, m.End, moved)
	m.Others = stats(samples, m.Start, m.End, func(s moveSample) bool { return !moved(s) })
	if m.Fence > 0 && m.Flipped > 0 {
		m.CutoverWindow = stats(samples, m.Fence, m.Flipped+CutoverGrace, moved)
	}
	rate := func(n int64, from, to time.Duration) float64 {
		if to <= from {
			return 0
		}
		return float64(n) / (to - from).Seconds()
	}
	count := func(c string, from, to time.Duration, keep func(moveSample) bool) int64 {
		var n int64
		for _, s := range samples {
			if s.cell == c && s.due >= from && s.due < to && keep(s) {
				n++
			}
		}
		return n
	}
	m.PerCell = nil
	for _, c := range cells {
		m.PerCell = append(m.PerCell, MoveCellLoad{Cell: c,
			Before:      rate(count(c, loadStart, m.Start, all), loadStart, m.Start),
			During:      rate(count(c, m.Start, m.End, all), m.Start, m.End),
			After:       rate(count(c, m.End, loadEnd, all), m.End, loadEnd),
			MovedBefore: rate(count(c, loadStart, m.Start, moved), loadStart, m.Start),
			MovedAfter:  rate(count(c, m.End, loadEnd, moved), m.End, loadEnd),
		})
	}
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
