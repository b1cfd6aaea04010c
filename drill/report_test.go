package drill

import (
	"bytes"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/loadgen"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", path, got)
	}
}

func at(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// loadResult is a load of secs seconds at perCell requests a second in every cell;
// fail says how many of a cell's requests failed in second i, and with which code.
func loadResult(cells []string, secs int, perCell int64, fail func(cell string, i int) (int64, string)) *loadgen.Result {
	res := &loadgen.Result{Config: loadgen.Config{Rate: float64(perCell) * float64(len(cells))}, Elapsed: at(float64(secs)),
		Cells: map[string]loadgen.CellResult{}}
	res.Overall.ErrorCodes = map[string]int64{}
	for _, c := range cells {
		cr := loadgen.CellResult{Summary: loadgen.Summary{ErrorCodes: map[string]int64{}, Latency: &loadgen.Latency{P99MS: 12.5}}}
		for i := range secs {
			n, code := fail(c, i)
			p99 := 12.5
			if n > 0 {
				p99 = 480
			}
			cr.Series = append(cr.Series, loadgen.Point{T: i, Requests: perCell, Errors: n, P99MS: p99})
			cr.Requests += perCell
			cr.Errors += n
			if n > 0 {
				cr.ErrorCodes[code] += n
				res.Overall.ErrorCodes[code] += n
			}
		}
		cr.OK = cr.Requests - cr.Errors
		res.Overall.Requests += cr.Requests
		res.Overall.Errors += cr.Errors
		res.Cells[c] = cr
	}
	res.Overall.OK = res.Overall.Requests - res.Overall.Errors
	return res
}

var fourCells = []string{"cell-0", "cell-1", "cell-2", "cell-3"}

// s3Report is the 2017 drill on four cells as a run would report it: the mistyped
// drain refused, then overridden; cell-3 loses its index quorum; the restart in the
// wrong order fails, the one in dependency order brings the cell back; cell-1 has one
// stray timeout, and a check fails. The load was lowered on the command line.
func s3Report() *Report {
	r := &Report{Scenario: "s3-2017", Description: "The S3 outage of 28 February 2017, replayed on one cell.",
		Target: "cell-3", Cells: fourCells, Tested: []string{"cell-3"},
		Started: time.Date(2017, 2, 28, 17, 37, 0, 0, time.UTC), Took: at(97.4), Outcome: "checks failed",
		Error:       "drill checks failed: 1 of 9",
		Overrides:   &LoadOverride{Rate: 32, ScenarioRate: 100, Duration: 2 * time.Minute, ScenarioDuration: 5 * time.Minute},
		LoadStartMS: 7300}
	st := Stop{}
	st.EnsureDefaults()
	r.StopRule = st.Rule()
	ev := func(s float64, kind, cell, text string) {
		r.Timeline = append(r.Timeline, Event{At: at(s), Kind: kind, Cell: cell, Text: text})
	}
	check := func(s float64, ok bool, what, detail string) {
		r.Checks = append(r.Checks, Check{At: at(s), What: what, OK: ok, Detail: detail})
		kind := "CHECK OK"
		if !ok {
			kind = "CHECK FAILED"
		}
		ev(s, kind, "", what+": "+detail)
	}
	ev(0, "START", "", "drill s3-2017 on 4 cells, target cell-3")
	ev(0.4, "LOAD", "", "seeding 8 buckets with 20 objects each")
	ev(7.3, "LOAD", "", "32 requests/s for 2m0s over 8 buckets (mix GET=50,PUT=20,HEAD=15,LIST=10,DELETE=5)")
	check(15.4, true, "error rate of cell-0, cell-1, cell-2, cell-3 over the last 5s below 1.0%", "cell-0 0/40 failed (0.0%), cell-1 0/40 failed (0.0%), cell-2 0/40 failed (0.0%), cell-3 0/40 failed (0.0%)")
	ev(15.5, "DRAIN", "cell-3", "drain of 2 index nodes of cell-3 requested: cell-3-index-1, cell-3-index-2 (plan 5be1c0de)")
	ev(15.5, "REFUSED", "cell-3", "refused: floor: cell-3 index would keep 1 of 3 nodes, below its floor of 2")
	check(15.5, true, "drain of 2 index nodes of cell-3 is refused", "refused: floor: cell-3 index would keep 1 of 3 nodes, below its floor of 2")
	ev(15.6, "DRAIN", "cell-3", "drain of 2 index nodes of cell-3 requested: cell-3-index-1, cell-3-index-2 (plan 7ac3e11f)")
	ev(15.6, "OVERRIDE", "cell-3", `floor lifted ("replaying 2017: the mistyped drain"): cell-3 index would keep 1 of 3 nodes, below its floor of 2`)
	ev(15.7, "STOP", "cell-3", "stop cell-3-index-1: stopped in 1.9s")
	ev(17.7, "STOP", "cell-3", "stop cell-3-index-2: stopped in 2.1s")
	ev(19.9, "QUORUM LOST", "cell-3", "cell-3 index: 1 of 3 nodes ready, no leader")
	check(19.9, true, "drain of 2 index nodes of cell-3 is done", "done")
	ev(19.9, "DRAINED", "cell-3", "drain of 2 index nodes of cell-3 done in 4.4s")
	ev(20.3, "ERRORS", "cell-3", "cell-3: 8 of 8 requests failed in the last second (ServiceUnavailable=8)")
	check(20.4, true, "quorum of cell-3 lost", "as expected")
	check(28.4, true, "error rate of cell-3 over the last 5s above 50.0%", "cell-3 40/40 failed (100.0%)")
	check(28.4, false, "error rate of cell-0, cell-1, cell-2 over the last 15s below 0.1%", "cell-0 0/120 failed (0.0%), cell-1 1/120 failed (0.8%), cell-2 0/120 failed (0.0%)")
	ev(28.5, "RESTART", "cell-3", "cold restart of cell-3 (placement → index) requested: cell-3-index-0, cell-3-index-1, cell-3-index-2, cell-3-placement-0 (plan 0d5e4a11)")
	ev(38.6, "RESTART FAILED", "cell-3", "cold restart of cell-3 (placement → index) failed: cell-3-placement-0 not ready after 10s: no ready index in cell-3")
	check(38.6, true, "cold restart of cell-3 (placement → index) is failed", "failed: cell-3-placement-0 not ready after 10s: no ready index in cell-3")
	ev(38.7, "RESTART", "cell-3", "cold restart of cell-3 (index → placement → storage) requested: 6 nodes (plan 9f00ba12)")
	ev(24.5, "ERRORS", "cell-1", "cell-1: 1 of 8 requests failed in the last second (Timeout=1)")
	ev(25.5, "RECOVERED", "cell-1", "cell-1: every request of the last second succeeded")
	ev(44.6, "QUORUM RESTORED", "cell-3", "cell-3 index has a leader again, 24.7s after it lost quorum")
	ev(45.4, "RECOVERED", "cell-3", "cell-3: every request of the last second succeeded")
	ev(51.1, "RESTORED", "cell-3", "cold restart of cell-3 (index → placement → storage) done: 6 nodes ready, cell-3 healthy, in 12.4s")
	check(51.1, true, "cold restart of cell-3 (index → placement → storage) is done", "done")
	check(51.2, true, "quorum of cell-3 held", "as expected")
	ev(97.4, "END", "", "drill checks failed after 1m37s")
	r.Guardrails = []Guardrail{
		{At: at(15.5), Action: "drain", Cell: "cell-3", Tier: "index", Nodes: []string{"cell-3-index-1", "cell-3-index-2"}, PlanID: "5be1c0de",
			Violations: []guard.Violation{{Rule: guard.RuleFloor, Message: "cell-3 index would keep 1 of 3 nodes, below its floor of 2"}}},
		{At: at(15.6), Action: "drain", Cell: "cell-3", Tier: "index", Nodes: []string{"cell-3-index-1", "cell-3-index-2"}, PlanID: "7ac3e11f",
			Allowed: true, Override: "replaying 2017: the mistyped drain",
			Violations: []guard.Violation{{Rule: guard.RuleFloor, Message: "cell-3 index would keep 1 of 3 nodes, below its floor of 2", Lifted: true}}},
	}
	r.NodeRestarts = []NodeRestart{
		{At: at(40.9), Cell: "cell-3", Node: "cell-3-index-0", Tier: "index", Took: at(2.2)},
		{At: at(42.8), Cell: "cell-3", Node: "cell-3-index-1", Tier: "index", Took: at(1.9)},
		{At: at(44.6), Cell: "cell-3", Node: "cell-3-index-2", Tier: "index", Took: at(1.8)},
		{At: at(47.0), Cell: "cell-3", Node: "cell-3-placement-0", Tier: "placement", Took: at(2.4)},
		{At: at(49.1), Cell: "cell-3", Node: "cell-3-storage-0", Tier: "storage", Took: at(2.1)},
		{At: at(51.1), Cell: "cell-3", Node: "cell-3-storage-1", Tier: "storage", Took: at(2.0)},
	}
	r.CellRestarts = []CellRestart{{Cell: "cell-3", How: "cold", Order: []string{"index", "placement", "storage"}, Nodes: 6, Took: at(12.4)}}
	// Load seconds 13 to 37 are T+0:20 to T+0:45 on the drill's clock.
	r.load(loadResult(fourCells, 90, 8, func(c string, i int) (int64, string) {
		switch {
		case c == "cell-3" && i >= 13 && i < 38:
			return 8, "ServiceUnavailable"
		case c == "cell-1" && i == 17:
			return 1, "Timeout"
		}
		return 0, ""
	}), 7300*time.Millisecond)
	r.finish()
	return r
}

// abortedReport is a drill aborted by its stop rule: a rolling restart of cell-3 kept
// its quorum and failed a few requests, while cell-1, not acted on, kept failing.
func abortedReport() *Report {
	r := &Report{Scenario: "smoke", Target: "cell-3", Cells: fourCells, Tested: []string{"cell-3"},
		Started: time.Date(2017, 2, 28, 17, 37, 0, 0, time.UTC), Took: at(34.2), Outcome: "aborted", LoadStartMS: 3100}
	st := Stop{}
	st.EnsureDefaults()
	r.StopRule = st.Rule()
	reason := "cell-1, not acted on, failed 37.5% of its requests over the last 5s, above 5.0% for 15s in a row"
	r.Error = ErrAborted.Error() + ": " + reason
	r.Timeline = []Event{
		{At: at(0), Kind: "START", Text: "drill smoke on 4 cells, target cell-3"},
		{At: at(3.1), Kind: "LOAD", Text: "40 requests/s for 2m0s over 8 buckets (mix GET=50,PUT=20,HEAD=15,LIST=10,DELETE=5)"},
		{At: at(7.2), Kind: "RESTART", Cell: "cell-3", Text: "rolling restart of cell-3 (index) requested: cell-3-index-0, cell-3-index-1, cell-3-index-2 (plan 4c0ffee1)"},
		{At: at(9.3), Kind: "ERRORS", Cell: "cell-3", Text: "cell-3: 2 of 10 requests failed in the last second (ServiceUnavailable=2)"},
		{At: at(14.2), Kind: "ERRORS", Cell: "cell-1", Text: "cell-1: 4 of 10 requests failed in the last second (ServiceUnavailable=4)"},
		{At: at(15.3), Kind: "RECOVERED", Cell: "cell-3", Text: "cell-3: every request of the last second succeeded"},
		{At: at(16.0), Kind: "RESTORED", Cell: "cell-3", Text: "rolling restart of cell-3 (index) done: 3 nodes ready, cell-3 healthy, in 8.8s"},
		{At: at(30.2), Kind: "ABORT", Cell: "cell-1", Text: reason},
		{At: at(34.2), Kind: "END", Text: "drill aborted after 34s"},
	}
	r.CellRestarts = []CellRestart{{Cell: "cell-3", How: "rolling", Order: []string{"index"}, Nodes: 3, Took: at(8.8)}}
	r.load(loadResult(fourCells, 31, 10, func(c string, i int) (int64, string) {
		switch {
		case c == "cell-3" && (i == 6 || i == 9 || i == 11):
			return 2, "ServiceUnavailable"
		case c == "cell-1" && i >= 11:
			return 4, "ServiceUnavailable"
		}
		return 0, ""
	}), 3100*time.Millisecond)
	r.finish()
	return r
}

func TestReportGolden(t *testing.T) {
	for name, rep := range map[string]*Report{"s3-2017": s3Report(), "aborted": abortedReport()} {
		t.Run(name, func(t *testing.T) {
			var sum bytes.Buffer
			rep.Summary(&sum)
			golden(t, name+".summary.golden", sum.Bytes())
			var head bytes.Buffer
			if err := reportTemplate.ExecuteTemplate(&head, "headline", rep.headline()); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".headline.golden", head.Bytes())
		})
	}
}

// The blast radius counts a cell as hit only above HitAbove of its requests failed;
// one stray error elsewhere leaves it out, though it is still counted as failed.
func TestBlastRadius(t *testing.T) {
	b := s3Report().Blast
	if !slices.Equal(b.Cells, []string{"cell-3"}) || b.LoadShare != 0.25 || b.Outside != 1 || b.Failed != 201 {
		t.Errorf("blast radius %+v, want cell-3 alone, a quarter of the load, 1 failure outside it", b)
	}
	for _, c := range s3Report().PerCell {
		if want := c.Cell == "cell-3"; c.Hit != want || c.Touched != (c.Cell == "cell-3" || c.Cell == "cell-1") {
			t.Errorf("%s: hit %v, touched %v", c.Cell, c.Hit, c.Touched)
		}
	}
}

// The acted-on cell was down from its quorum lost to restored; a cell that kept its
// quorum, from its first to the end of its last second with failed requests.
func TestDowntime(t *testing.T) {
	for _, tc := range []struct {
		rep  *Report
		want Downtime
	}{
		{s3Report(), Downtime{Cell: "cell-3", Basis: DownQuorum, From: at(19.9), To: at(44.6), Restored: true}},
		{abortedReport(), Downtime{Cell: "cell-3", Basis: DownErrors, From: at(9.1), To: at(15.1), Restored: true}},
	} {
		if len(tc.rep.Downtime) != 1 || tc.rep.Downtime[0] != tc.want {
			t.Errorf("%s: downtime %+v, want %+v", tc.rep.Scenario, tc.rep.Downtime, tc.want)
		}
	}
}

var (
	svgText     = regexp.MustCompile(`<text [^>]*font-size="(\d+)"[^>]*>([^<]*)</text>`)
	svgDashed   = regexp.MustCompile(`<line x1="([\d.]+)"[^>]*stroke-dasharray`)
	svgPolyline = regexp.MustCompile(`<polyline [^>]*points="([\d.]+),`)
)

// Every line of the charts has its name written beside it in large type, and the
// time axis begins with the load, not with the seeding before it.
func TestChartsLabelEveryLine(t *testing.T) {
	rep := s3Report()
	svg := string(rep.chart("availability", func(p SeriesPoint) float64 { return 100 * p.Availability }, 100, "%"))
	labels := map[string]bool{}
	for _, m := range svgText.FindAllStringSubmatch(svg, -1) {
		if size, _ := strconv.Atoi(m[1]); size < 16 {
			t.Errorf("text %q in %dpx type", m[2], size)
		}
		labels[m[2]] = true
	}
	for _, want := range []string{"cell-0", "cell-1", "cell-2", "cell-3, acted on",
		"drain · refused · drain", "quorum lost", "restart", "restart failed · restart", "quorum back", "restored"} {
		if !labels[want] {
			t.Errorf("no label %q among %v", want, slices.Sorted(maps.Keys(labels)))
		}
	}
	for _, m := range svgPolyline.FindAllStringSubmatch(svg, -1) {
		if x, _ := strconv.ParseFloat(m[1], 64); x < plotL {
			t.Errorf("a line begins at x=%s, left of the plot (%d)", m[1], plotL)
		}
	}
	if strings.Contains(svg, ">T+0:00<") || !strings.Contains(svg, ">T+0:15<") {
		t.Errorf("the time axis does not begin at the load (T+0:07)")
	}
	actions := 0
	for _, e := range rep.Timeline {
		if _, ok := markers[e.Kind]; ok {
			actions++
		}
	}
	if n := len(svgDashed.FindAllString(svg, -1)); n != actions || n == 0 {
		t.Errorf("%d dashed lines, want one per drill action and quorum change (%d)", n, actions)
	}
}

// Labels of actions close in time are stacked in rows so that none overlaps another.
func TestMarkerLabelsDoNotOverlap(t *testing.T) {
	rep := s3Report()
	from, to := rep.chartSpan()
	x := func(t float64) float64 { return plotL + (chartW-plotL-plotR)*(t-from)/(to-from) }
	groups, lanes := rep.markerGroups(x, from)
	if lanes < 2 {
		t.Errorf("%d rows of labels for actions a second apart", lanes)
	}
	type span struct{ l, r float64 }
	rows := map[int][]span{}
	for _, g := range groups {
		w := textWidth(strings.Join(g.text, " · "), fontLabel)
		s := span{g.labelX, g.labelX + w}
		if g.anchor == "end" {
			s = span{g.labelX - w, g.labelX}
		}
		for _, o := range rows[g.lane] {
			if s.l < o.r && o.l < s.r {
				t.Errorf("label %q overlaps another in row %d", strings.Join(g.text, " · "), g.lane)
			}
		}
		rows[g.lane] = append(rows[g.lane], s)
	}
}
