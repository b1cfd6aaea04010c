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

	Timeline     []Event       `json:"timeline"`
	Checks       []Check       `json:"checks"`
	Guardrails   []Guardrail   `json:"guardrails"`
	NodeRestarts []NodeRestart `json:"node_restarts"`
	CellRestarts []CellRestart `json:"cell_restarts"`

	LoadStartMS int64        `json:"load_start_ms"` // when the load began, on the drill's clock
	Load        *LoadSummary `json:"load,omitempty"`
	PerCell     []CellReport `json:"per_cell"`
	Blast       BlastRadius  `json:"blast_radius"`
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

// BlastRadius is how far the drill's failures reached.
type BlastRadius struct {
	Requests int64 `json:"requests"`
	Failed   int64 `json:"failed"`
	// FailedShare is the share of all requests that failed.
	FailedShare float64 `json:"failed_share"`
	// Cells are the cells where some request failed; LoadShare the share of all the
	// load that went to them: the part of the service the drill put at risk.
	Cells     []string `json:"cells"`
	LoadShare float64  `json:"load_share"`
	// Outside is failures in cells the drill did not act on (want 0).
	Outside int64 `json:"failed_outside_cells_acted_on"`
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
	r.Blast = BlastRadius{Requests: res.Overall.Requests, Failed: res.Overall.Errors, FailedShare: res.Overall.ErrorRate()}
	var touched int64
	for _, name := range res.CellNames() {
		c := res.Cells[name]
		cr := CellReport{Cell: name, Requests: c.Requests, Errors: c.Errors, ErrorRate: c.ErrorRate(),
			LoadShare: ratio(c.Requests, res.Overall.Requests), Touched: c.Errors > 0, ActedOn: slices.Contains(r.Tested, name)}
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
		if cr.Touched {
			r.Blast.Cells = append(r.Blast.Cells, name)
			touched += c.Requests
			if !cr.ActedOn {
				r.Blast.Outside += c.Errors
			}
		}
		r.PerCell = append(r.PerCell, cr)
	}
	r.Blast.LoadShare = ratio(touched, res.Overall.Requests)
}

func (r *Report) finish() {
	sort.SliceStable(r.Timeline, func(i, j int) bool { return r.Timeline[i].At < r.Timeline[j].At })
	if r.Timeline == nil {
		r.Timeline = []Event{}
	}
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

// Summary writes the report for a terminal.
func (r *Report) Summary(w io.Writer) {
	fmt.Fprintf(w, "drill %s: %s in %s (target %s)\n", r.Scenario, r.Outcome, r.Took.Round(time.Second), r.Target)
	if r.Error != "" {
		fmt.Fprintf(w, "  %s\n", r.Error)
	}
	fmt.Fprintln(w, "\nTimeline")
	for _, e := range r.Timeline {
		fmt.Fprintf(w, "  %s\n", e)
	}
	if r.Load != nil {
		b := r.Blast
		fmt.Fprintf(w, "\nBlast radius: %d of %d requests failed (%s); failures in %s, %s of the load; %d failed outside the cells acted on\n",
			b.Failed, b.Requests, pctf(b.FailedShare), orNone(b.Cells), pctf(b.LoadShare), b.Outside)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  CELL\tACTED ON\tREQUESTS\tFAILED\tERROR %\tLOAD %\tSECONDS WITH ERRORS\tP99 MS")
		for _, c := range r.PerCell {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%.2f\t%.1f\t%d\t%.1f\n", c.Cell, yesNo(c.ActedOn), c.Requests, c.Errors, 100*c.ErrorRate, 100*c.LoadShare, c.Unavailable, c.P99MS)
		}
		tw.Flush()
	}
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
