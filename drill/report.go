package drill

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/loadgen"
)

// Report is what a drill did and what it did to the cluster.
type Report struct {
	Scenario    string        `json:"scenario"`
	Description string        `json:"description,omitempty"`
	Target      string        `json:"target"`
	Cells       []string      `json:"cells"`
	Tested      []string      `json:"cells_acted_on"` // cells the drill's steps act on
	Started     time.Time     `json:"started"`
	Took        time.Duration `json:"took_ns"`
	Outcome     string        `json:"outcome"` // completed, checks failed, aborted, halted, failed
	Error       string        `json:"error,omitempty"`
	LeftDown    []string      `json:"left_down,omitempty"` // nodes the drill stopped and did not start again
	// Overrides is what the command line changed of the scenario's load step.
	Overrides *LoadOverride `json:"overrides,omitempty"`
	StopRule  string        `json:"stop_rule"` // the scenario's stop condition in words

	Timeline     []Event       `json:"timeline"`
	Checks       []Check       `json:"checks"`
	Guardrails   []Guardrail   `json:"guardrails"`
	NodeRestarts []NodeRestart `json:"node_restarts"`
	CellRestarts []CellRestart `json:"cell_restarts"`

	LoadStartMS int64        `json:"load_start_ms"` // when the load began, on the drill's clock
	Load        *LoadSummary `json:"load,omitempty"`
	PerCell     []CellReport `json:"per_cell"`
	Blast       BlastRadius  `json:"blast_radius"`
	// Downtime is how long each cell the drill acted on was down.
	Downtime []Downtime `json:"downtime"`
	// GuardrailsOff: the cluster's topology turned the guardrails off (teaching), so
	// nothing was refused.
	GuardrailsOff bool `json:"guardrails_off,omitempty"`
	// Poison is what each poison step measured.
	Poison []PoisonReport `json:"poison,omitempty"`
	// IndexPill is what each poison step of kind index did to its cell.
	IndexPill []IndexPillReport `json:"index_pill,omitempty"`
	// PerTenant is each tenant under the load, the worst first, and TenantCounts how
	// many were down, partly affected and untouched (a cluster with tenants only).
	PerTenant    []TenantReport `json:"per_tenant,omitempty"`
	TenantCounts *TenantCounts  `json:"tenant_counts,omitempty"`
	// Repair is what the repair loop of each cell with something to repair did while
	// the drill ran (a cluster whose nodes the drill can read only: AdminAddresser).
	Repair []RepairReport `json:"repair,omitempty"`
	// Move is what a move step did and what the load saw of it.
	Move *MoveReport `json:"move,omitempty"`
}

// Event is one line of the timeline.
type Event struct {
	At   time.Duration `json:"at_ns"` // since the drill began
	Kind string        `json:"kind"`
	Cell string        `json:"cell,omitempty"`
	Text string        `json:"text"`
}

// Clock writes a time since the drill began as T+m:ss.
func Clock(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("T+%d:%02d", s/60, s%60)
}

func (e Event) String() string { return fmt.Sprintf("%s %-15s %s", Clock(e.At), e.Kind, e.Text) }

// Check is an assertion of the scenario or an expectation of one of its actions.
type Check struct {
	At     time.Duration `json:"at_ns"`
	What   string        `json:"what"`
	OK     bool          `json:"ok"`
	Detail string        `json:"detail,omitempty"`
}

// Guardrail is a decision of the guardrail policy on a drain or a restart.
type Guardrail struct {
	At         time.Duration     `json:"at_ns"`
	Action     string            `json:"action"`
	Cell       string            `json:"cell"`
	Tier       string            `json:"tier"`
	Nodes      []string          `json:"nodes"`
	Cold       bool              `json:"cold,omitempty"`
	PlanID     string            `json:"plan_id"`
	Allowed    bool              `json:"allowed"`
	Override   string            `json:"override,omitempty"`
	Violations []guard.Violation `json:"violations,omitempty"`
}

// NodeRestart is one node's start, to ready (or failure).
type NodeRestart struct {
	At    time.Duration `json:"at_ns"`
	Cell  string        `json:"cell"`
	Node  string        `json:"node"`
	Tier  string        `json:"tier"`
	Took  time.Duration `json:"took_ns"`
	Error string        `json:"error,omitempty"`
}

// CellRestart is a restart of a cell that ended with the cell healthy.
type CellRestart struct {
	Cell  string        `json:"cell"`
	How   string        `json:"how"` // rolling or cold
	Order []string      `json:"order"`
	Nodes int           `json:"nodes"`
	Took  time.Duration `json:"took_ns"` // from the first stop to the cell healthy
}

// LoadSummary is the load the drill ran.
type LoadSummary struct {
	Rate     float64         `json:"rate"`
	Elapsed  time.Duration   `json:"elapsed_ns"`
	Overall  loadgen.Summary `json:"overall"`
	MaxLagMS float64         `json:"max_send_lag_ms"`
}

// CellReport is one cell under the drill's load.
type CellReport struct {
	Cell      string  `json:"cell"`
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	LoadShare float64 `json:"load_share"` // of all the drill's requests
	P99MS     float64 `json:"p99_ms"`
	Touched   bool    `json:"touched"` // some of its requests failed
	Hit       bool    `json:"hit"`     // in the blast radius: more than HitAbove of its requests failed
	ActedOn   bool    `json:"acted_on"`
	// Series is per second on the drill's clock: requests due, failed, availability
	// (share that succeeded; 1 in a second with no requests) and p99 latency.
	Series []SeriesPoint `json:"series"`
	// Unavailable is the seconds in which some of its requests failed.
	Unavailable int `json:"unavailable_seconds"`
}

// SeriesPoint is one second of one cell.
type SeriesPoint struct {
	T            float64 `json:"t_s"`
	Requests     int64   `json:"requests"`
	Errors       int64   `json:"errors"`
	Availability float64 `json:"availability"`
	P99MS        float64 `json:"p99_ms"`
}

// HitAbove is the share of a cell's requests that must fail for the cell to count as
// hit: a stray error, or a leader election of a second or two, does not put a cell in
// the blast radius of a drill that runs for minutes.
const HitAbove = 0.01

// BlastRadius is how far the drill's failures reached: the share of all requests
// that failed, and the cells hit, those where more than HitAbove of the requests
// failed.
type BlastRadius struct {
	Requests int64 `json:"requests"`
	Failed   int64 `json:"failed"`
	// FailedShare is the share of all requests that failed.
	FailedShare float64 `json:"failed_share"`
	// Cells are the cells hit; LoadShare the share of all the load that went to them:
	// the part of the service the drill put at risk.
	Cells     []string `json:"cells"`
	LoadShare float64  `json:"load_share"`
	HitAbove  float64  `json:"hit_above"`
	// Outside is failures in cells the drill did not act on (want 0), hit or not.
	Outside int64 `json:"failed_outside_cells_acted_on"`
}

// Definition says what the blast radius is, for the report.
func (b BlastRadius) Definition() string {
	return fmt.Sprintf("the share of all requests that failed, and the cells hit: a cell counts as hit when more than %s of its requests failed",
		pctf(b.HitAbove))
}

// How a cell's downtime is measured.
const (
	DownQuorum = "quorum" // from the index quorum lost to restored
	DownErrors = "errors" // from the first to the end of the last second with failed requests
)

// Downtime is how long a cell the drill acted on was down.
type Downtime struct {
	Cell     string        `json:"cell"`
	Basis    string        `json:"basis"`   // DownQuorum, or DownErrors for a cell that kept its quorum
	From     time.Duration `json:"from_ns"` // on the drill's clock
	To       time.Duration `json:"to_ns"`
	Restored bool          `json:"restored"` // false: still down when the drill ended
}

// Took is how long the cell was down.
func (d Downtime) Took() time.Duration { return d.To - d.From }

// Describe says how the downtime was measured.
func (d Downtime) Describe() string {
	end := "restored at " + Clock(d.To)
	if !d.Restored {
		end = "not restored when the drill ended"
	}
	if d.Basis == DownQuorum {
		return fmt.Sprintf("index quorum lost at %s, %s", Clock(d.From), end)
	}
	if d.Restored {
		end = "last at " + Clock(d.To-time.Second)
	}
	return fmt.Sprintf("seconds with failed requests: first at %s, %s", Clock(d.From), end)
}

func (r *Report) failedChecks() int {
	n := 0
	for _, c := range r.Checks {
		if !c.OK {
			n++
		}
	}
	return n
}

func ratio(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// load takes in the load's result; offset is when it began on the drill's clock.
func (r *Report) load(res *loadgen.Result, offset time.Duration) {
	r.Load = &LoadSummary{Rate: res.Config.Rate, Elapsed: res.Elapsed, Overall: res.Overall, MaxLagMS: res.MaxLagMS}
	secs := int(math.Ceil(res.Elapsed.Seconds()))
	r.PerCell = nil
	r.Blast = BlastRadius{Requests: res.Overall.Requests, Failed: res.Overall.Errors, FailedShare: res.Overall.ErrorRate(), HitAbove: HitAbove}
	var hit int64
	for _, name := range res.CellNames() {
		c := res.Cells[name]
		cr := CellReport{Cell: name, Requests: c.Requests, Errors: c.Errors, ErrorRate: c.ErrorRate(),
			LoadShare: ratio(c.Requests, res.Overall.Requests), Touched: c.Errors > 0, Hit: c.ErrorRate() > HitAbove,
			ActedOn: slices.Contains(r.Tested, name)}
		if c.Latency != nil {
			cr.P99MS = c.Latency.P99MS
		}
		for _, p := range c.Series {
			if p.T >= secs {
				break
			}
			av := 1.0
			if p.Requests > 0 {
				av = 1 - ratio(p.Errors, p.Requests)
			}
			if p.Errors > 0 {
				cr.Unavailable++
			}
			cr.Series = append(cr.Series, SeriesPoint{T: offset.Seconds() + float64(p.T), Requests: p.Requests, Errors: p.Errors, Availability: av, P99MS: p.P99MS})
		}
		if cr.Hit {
			r.Blast.Cells = append(r.Blast.Cells, name)
			hit += c.Requests
		}
		if !cr.ActedOn && len(r.Tested) > 0 {
			// A drill that acts on no cell (the poison pill acts on gateways) has no
			// outside.
			r.Blast.Outside += c.Errors
		}
		r.PerCell = append(r.PerCell, cr)
	}
	r.Blast.LoadShare = ratio(hit, res.Overall.Requests)
	r.loadTenants(res, secs)
}

// finish puts the timeline in order and measures what is measured from it.
func (r *Report) finish() {
	sort.SliceStable(r.Timeline, func(i, j int) bool { return r.Timeline[i].At < r.Timeline[j].At })
	if r.Timeline == nil {
		r.Timeline = []Event{}
	}
	r.Downtime = []Downtime{}
	for _, c := range r.Tested {
		if d, ok := r.downtime(c); ok {
			r.Downtime = append(r.Downtime, d)
		}
	}
}

// downtime measures how long cell c was down: from its index quorum first lost to
// last restored; or, when it kept its quorum, from the first to the end of the last
// second in which some of its requests failed.
func (r *Report) downtime(c string) (Downtime, bool) {
	d := Downtime{Cell: c, Basis: DownQuorum}
	lost := false
	for _, e := range r.Timeline {
		switch {
		case e.Cell != c:
		case e.Kind == "QUORUM LOST" && !lost:
			if d.To == 0 {
				d.From = e.At
			}
			lost = true
		case e.Kind == "QUORUM RESTORED" && lost:
			d.To, d.Restored, lost = e.At, true, false
		}
	}
	if lost {
		d.To, d.Restored = r.Took, false
	}
	if d.To > 0 {
		return d, true
	}
	for _, cr := range r.PerCell {
		if cr.Cell != c {
			continue
		}
		first, last := -1, -1
		for i, p := range cr.Series {
			if p.Errors > 0 {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		if first < 0 {
			return Downtime{}, false
		}
		sec := func(i int) time.Duration { return time.Duration(cr.Series[i].T * float64(time.Second)) }
		return Downtime{Cell: c, Basis: DownErrors, From: sec(first), To: sec(last) + time.Second, Restored: last < len(cr.Series)-1}, true
	}
	return Downtime{}, false
}

// Write writes report.json and report.html into dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "report.html"))
	if err != nil {
		return err
	}
	if err := r.HTML(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func pctf(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

// span writes a length of time to a tenth of a second, or to the second from a minute.
func span(d time.Duration) string {
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// Verdict is the report in one line: the outcome, the checks, the blast radius, and
// how long the cells acted on were down and took to restart.
func (r *Report) Verdict() string {
	head := strings.ToUpper(r.Outcome)
	if r.Outcome == "completed" {
		head = "PASSED"
	}
	var parts []string
	switch r.Outcome {
	case "aborted", "halted", "failed":
		parts = append(parts, strings.TrimPrefix(r.Error, ErrAborted.Error()+": "))
	}
	if n := len(r.Checks); n > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d checks passed", n-r.failedChecks(), n))
	}
	if r.Load != nil {
		s := r.Blast.sentence()
		if r.Move != nil && r.Blast.Failed == 0 {
			// The moved bucket's own load is counted in the move's part.
			s = "no request of the steady load failed"
		}
		parts = append(parts, s)
	}
	for _, p := range r.Poison {
		parts = append(parts, fmt.Sprintf("poison pill: %d of %d gateways crashed, %s of tenants fully down (formula %s)",
			len(p.Crashed), p.Gateways, pctf(p.FullyDown), pctf(p.Formula)))
	}
	for _, p := range r.IndexPill {
		parts = append(parts, p.sentence())
	}
	if r.Move != nil {
		parts = append(parts, r.Move.sentence())
	}
	for _, d := range r.Downtime {
		s := fmt.Sprintf("%s down %s", d.Cell, span(d.Took()))
		if !d.Restored {
			s = fmt.Sprintf("%s down %s and not restored", d.Cell, span(d.Took()))
		}
		for _, c := range r.CellRestarts {
			if c.Cell == d.Cell {
				s += ", restarted in " + span(c.Took)
			}
		}
		parts = append(parts, s)
	}
	return head + " — " + r.Scenario + ": " + strings.Join(parts, "; ")
}

// sentence is the blast radius in a few words.
func (b BlastRadius) sentence() string {
	if b.Failed == 0 {
		return "no request failed"
	}
	s := pctf(b.FailedShare) + " of requests failed"
	if len(b.Cells) > 0 {
		s += ", cells hit: " + strings.Join(b.Cells, ", ")
	} else {
		s += ", no cell hit"
	}
	if b.Outside > 0 {
		s += fmt.Sprintf(" (%d failed outside the cells acted on)", b.Outside)
	}
	return s
}

// Tile is one figure of the report's headline.
type Tile struct {
	Label  string `json:"label"`
	Value  string `json:"value"`
	Detail string `json:"detail,omitempty"`
	Tone   string `json:"tone,omitempty"` // "good", "bad", or "" for neither
}

// Headline is the figures a drill is judged by: the blast radius, how long each cell
// acted on was down, its restart time, and the checks.
func (r *Report) Headline() []Tile {
	var tiles []Tile
	if r.Load != nil {
		b := r.Blast
		t := Tile{Label: "Blast radius", Value: pctf(b.FailedShare),
			Detail: fmt.Sprintf("of requests failed (%d of %d); cells hit: %s", b.Failed, b.Requests, orNone(b.Cells))}
		if len(b.Cells) > 0 {
			t.Detail += fmt.Sprintf(", %s of the load", pctf(b.LoadShare))
		}
		if len(r.Tested) > 0 {
			t.Detail += fmt.Sprintf("; %d failed outside the cells acted on", b.Outside)
		}
		if b.Outside > 0 {
			t.Tone = "bad"
		}
		tiles = append(tiles, t)
	}
	if t, ok := r.tenantsTile(); ok {
		tiles = append(tiles, t)
	}
	if r.Move != nil {
		tiles = append(tiles, r.Move.tile())
	}
	for _, c := range r.Tested {
		t := Tile{Label: c + " down", Value: "0s", Detail: "index quorum held and no request failed"}
		for _, d := range r.Downtime {
			if d.Cell == c {
				t.Value, t.Detail = span(d.Took()), d.Describe()
				if !d.Restored {
					t.Tone = "bad"
				}
			}
		}
		tiles = append(tiles, t)
	}
	restarted := map[string]bool{}
	for _, c := range r.CellRestarts {
		restarted[c.Cell] = true
		tiles = append(tiles, Tile{Label: c.Cell + " restart", Value: span(c.Took),
			Detail: fmt.Sprintf("%s restart of %d nodes, %s: first stop to healthy", c.How, c.Nodes, strings.Join(c.Order, " → "))})
	}
	for _, c := range r.Tested {
		for _, e := range r.Timeline {
			if e.Cell == c && e.Kind == "RESTART FAILED" && !restarted[c] {
				tiles = append(tiles, Tile{Label: c + " restart", Value: "failed", Detail: "no restart brought the cell back", Tone: "bad"})
				restarted[c] = true
			}
		}
	}
	t := Tile{Label: "Checks", Value: "none", Detail: "the scenario checks nothing"}
	if n := len(r.Checks); n > 0 {
		failed := r.failedChecks()
		t = Tile{Label: "Checks", Value: fmt.Sprintf("%d of %d passed", n-failed, n), Detail: "all passed", Tone: "good"}
		if failed > 0 {
			t.Tone, t.Detail = "bad", fmt.Sprintf("%d failed", failed)
			for _, c := range r.Checks {
				if !c.OK {
					t.Detail += ", first: " + c.What
					break
				}
			}
		}
	}
	return append(tiles, t)
}

// loadLine says what the command line changed of the scenario's load, or "".
func (r *Report) loadLine() string {
	o := r.Overrides
	if o == nil {
		return ""
	}
	var parts []string
	if o.Rate > 0 {
		parts = append(parts, fmt.Sprintf("%g requests/s (--rate; the scenario has %g)", o.Rate, o.ScenarioRate))
	}
	if o.Duration > 0 {
		parts = append(parts, fmt.Sprintf("for %s (--duration; the scenario has %s)", o.Duration, o.ScenarioDuration))
	}
	return "Load set on the command line: " + strings.Join(parts, ", ")
}

// Summary writes the report for a terminal.
func (r *Report) Summary(w io.Writer) {
	if r.GuardrailsOff {
		fmt.Fprintf(w, "%s\n", guard.GuardrailsOffBanner)
	}
	fmt.Fprintln(w, r.Verdict())
	fmt.Fprintf(w, "  target %s of %d cells, took %s\n", r.Target, len(r.Cells), r.Took.Round(time.Second))
	if l := r.loadLine(); l != "" {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, t := range r.Headline() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", t.Label, t.Value, t.Detail)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if r.Load != nil {
		fmt.Fprintf(w, "  Blast radius: %s.\n", r.Blast.Definition())
	}
	if r.StopRule != "" {
		fmt.Fprintf(w, "  Stop rule: %s.\n", r.StopRule)
	}
	fmt.Fprintln(w, "\nTimeline")
	for _, e := range r.Timeline {
		fmt.Fprintf(w, "  %s\n", e)
	}
	if r.Load != nil {
		fmt.Fprintln(w, "\nPer cell")
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  CELL\tACTED ON\tHIT\tREQUESTS\tFAILED\tERROR %\tLOAD %\tSECONDS WITH ERRORS\tP99 MS")
		for _, c := range r.PerCell {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%.2f\t%.1f\t%d\t%.1f\n", c.Cell, yesNo(c.ActedOn), yesNo(c.Hit), c.Requests, c.Errors, 100*c.ErrorRate, 100*c.LoadShare, c.Unavailable, c.P99MS)
		}
		tw.Flush()
	}
	r.summaryTenants(w)
	r.summaryMove(w)
	r.summaryPoison(w)
	r.summaryIndexPill(w)
	r.summaryRepair(w)
	if len(r.NodeRestarts) > 0 {
		fmt.Fprintln(w, "\nRestart time per node (start to ready)")
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, n := range r.NodeRestarts {
			res := n.Took.Round(time.Millisecond).String()
			if n.Error != "" {
				res = "FAILED after " + res + ": " + n.Error
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", Clock(n.At), n.Node, res)
		}
		tw.Flush()
	}
	if len(r.CellRestarts) > 0 {
		fmt.Fprintln(w, "\nRestart time per cell (first stop to healthy)")
		for _, c := range r.CellRestarts {
			fmt.Fprintf(w, "  %s: %s restart of %d nodes (%s) in %s\n", c.Cell, c.How, c.Nodes, strings.Join(c.Order, " → "), c.Took.Round(time.Millisecond))
		}
	}
	if len(r.Guardrails) > 0 {
		fmt.Fprintln(w, "\nGuardrail decisions")
		for _, g := range r.Guardrails {
			fmt.Fprintf(w, "  %s %s\n", Clock(g.At), g.describe())
		}
	}
	if len(r.Checks) > 0 {
		fmt.Fprintf(w, "\nChecks: %d of %d passed\n", len(r.Checks)-r.failedChecks(), len(r.Checks))
		for _, c := range r.Checks {
			mark := "ok  "
			if !c.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "  %s %s: %s\n", mark, c.What, c.Detail)
		}
	}
	if len(r.LeftDown) > 0 {
		fmt.Fprintf(w, "\nLeft down by the drill: %s ('cellctl undrain' brings them back)\n", strings.Join(r.LeftDown, ", "))
	}
}

func (g Guardrail) describe() string {
	verdict := "allowed"
	switch {
	case !g.Allowed:
		verdict = "REFUSED"
	case g.Override != "":
		verdict = fmt.Sprintf("allowed by override %q", g.Override)
	}
	s := fmt.Sprintf("%s %s %s [%s] plan %s: %s", g.Action, g.Cell, g.Tier, strings.Join(g.Nodes, ", "), g.PlanID, verdict)
	for _, v := range g.Violations {
		lifted := ""
		if v.Lifted {
			lifted = " (lifted)"
		}
		s += fmt.Sprintf("; %s%s: %s", v.Rule, lifted, v.Message)
	}
	return s
}

func orNone(ss []string) string {
	if len(ss) == 0 {
		return "no cell"
	}
	return strings.Join(ss, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
