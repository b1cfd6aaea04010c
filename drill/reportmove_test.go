package drill

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

var threeCells = []string{"cell-0", "cell-1", "cell-2"}

// moveSamples is the requests of a move drill: a steady 10 requests a second per cell
// for 40 s, and the noisy bucket's 20 a second, answered by cell-0 until the map
// flipped at 23.5 s and by cell-2 after; from the write fence (22 s) to the flip one in
// four of its requests (its writes) fails with 503 and the others wait 120 ms.
func moveSamples() []moveSample {
	var out []moveSample
	for ms := 0; ms < 40_000; ms += 100 {
		at := time.Duration(ms) * time.Millisecond
		for _, c := range threeCells {
			out = append(out, moveSample{due: at, took: 8 * time.Millisecond, cell: c, bucket: "drill-" + c})
		}
	}
	for i, ms := 0, 0; ms < 40_000; i, ms = i+1, ms+50 {
		at := time.Duration(ms) * time.Millisecond
		s := moveSample{due: at, took: 10 * time.Millisecond, cell: "cell-0", bucket: "noisy-1"}
		switch {
		case at >= 23500*time.Millisecond:
			s.cell = "cell-2"
		case at >= 22*time.Second && i%4 == 0:
			s.code, s.took = "ServiceUnavailable", 3*time.Millisecond
		case at >= 22*time.Second:
			s.took = 120 * time.Millisecond
		}
		out = append(out, s)
	}
	return out
}

// moveReport is a move-noisy-tenant drill as a run would report it.
func moveReport() *Report {
	r := &Report{Scenario: "move-noisy-tenant", Description: "A noisy tenant is given a cell of its own.",
		Target: "cell-0", Cells: threeCells, Tested: []string{"cell-0", "cell-2"},
		Started: time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC), Took: at(52.1), Outcome: "completed", LoadStartMS: 10_000}
	st := Stop{}
	st.EnsureDefaults()
	r.StopRule = st.Rule()
	ev := func(s float64, kind, cell, text string) {
		r.Timeline = append(r.Timeline, Event{At: at(s), Kind: kind, Cell: cell, Text: text})
	}
	ev(0, "START", "", "drill move-noisy-tenant on 3 cells, target cell-0")
	ev(0.2, "LOAD", "", "seeding 12 buckets with 20 objects each")
	ev(9.8, "LOAD", "cell-0", "noisy tenant: bucket noisy-1 in cell-0, 20 requests/s of its own")
	ev(10, "LOAD", "", "30 requests/s for 2m0s over 12 buckets (mix GET=50,PUT=20,HEAD=15,LIST=10,DELETE=5)")
	ev(20.1, "MOVE", "cell-0", "move of bucket noisy-1 from cell-0 to cell-2 requested: 400 objects, 400.0 KiB (plan 3c1e0a9b7f21)")
	ev(20.2, "MOVE", "cell-0", `move of bucket noisy-1 from cell-0 to cell-2 confirmed (plan 3c1e0a9b7f21, reason "drill move-noisy-tenant"): copying while it serves`)
	ev(32, "FENCE", "cell-0", "writes to noisy-1 fenced in cell-0 after 431 objects copied; the last changes are copied")
	ev(33.2, "CUTOVER", "cell-2", "cell-0 refuses noisy-1; the cell map flips it to cell-2")
	ev(33.5, "FLIPPED", "cell-2", "the cell map sends noisy-1 to cell-2; cell-0's copy is reclaimed")
	ev(34.1, "MOVED", "cell-2", "move of bucket noisy-1 from cell-0 to cell-2 done: 433 objects (433.0 KiB) copied in 3 passes, in 13.9s; writes paused 1.52s")
	ev(52.1, "END", "", "drill completed after 52s")
	r.Guardrails = []Guardrail{{At: at(20.1), Action: "move", Cell: "cell-0", Tier: "to cell-2", Nodes: []string{"noisy-1"}, PlanID: "3c1e0a9b7f21", Allowed: true}}
	r.load(loadResult(threeCells, 40, 10, func(string, int) (int64, string) { return 0, "" }), 10*time.Second)
	r.Move = &MoveReport{Bucket: "noisy-1", Source: "cell-0", Target: "cell-2", PlanID: "3c1e0a9b7f21", Reason: "drill move-noisy-tenant",
		Outcome: "done", ObjectsPlanned: 400, BytesPlanned: 400 << 10, Objects: 433, Bytes: 433 << 10, Passes: 3,
		WritePause: 1520 * time.Millisecond, Took: at(13.9), Start: at(20.2), Fence: at(32), Cutover: at(33.2), Flipped: at(33.5), End: at(34.1), ServedBy: "cell-2"}
	// The samples are on the load's clock; the drill's is 10 s ahead.
	samples := moveSamples()
	for i := range samples {
		samples[i].due += 10 * time.Second
	}
	r.Move.measure(samples, threeCells, 10*time.Second, 50*time.Second)
	r.finish()
	return r
}

func TestMoveWindows(t *testing.T) {
	m := moveReport().Move
	load := map[string]MoveCellLoad{}
	for _, c := range m.PerCell {
		load[c.Cell] = c
	}
	// Before: cell-0 serves its steady 10/s and the noisy 20/s; after, cell-2 does.
	for _, tc := range []struct {
		cell                    string
		before, after           float64
		movedBefore, movedAfter float64
	}{
		{"cell-0", 30, 10, 20, 0},
		{"cell-1", 10, 10, 0, 0},
		{"cell-2", 10, 30, 0, 20},
	} {
		got := load[tc.cell]
		near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
		if !near(got.Before, tc.before) || !near(got.After, tc.after) || !near(got.MovedBefore, tc.movedBefore) || !near(got.MovedAfter, tc.movedAfter) {
			t.Errorf("%s: %+v, want before %g (moved %g), after %g (moved %g)", tc.cell, got, tc.before, tc.movedBefore, tc.after, tc.movedAfter)
		}
	}
	// Everyone else: every request of the 13.9 s, none failed.
	if o := m.Others; o.Errors != 0 || o.Requests != 3*139 || o.P99MS != 8 {
		t.Errorf("everyone else %+v, want 417 requests, none failed, p99 8 ms", o)
	}
	// The moved bucket fails its PUTs only between the fence and the flip.
	if mv := m.Moved; mv.Requests != 278 || mv.Errors != 8 || mv.ErrorCodes["ServiceUnavailable"] != 8 || mv.P50MS != 10 || mv.MaxMS != 120 {
		t.Errorf("moved bucket %+v, want 278 requests, 8 ServiceUnavailable, p50 10 ms, max 120 ms", mv)
	}
	// From the fence to 0.5 s after the flip: 30 requests fenced (8 PUTs failed, 22
	// reads waited 120 ms) and 10 served by the target.
	if c := m.CutoverWindow; c.Requests != 40 || c.Errors != 8 || c.P50MS != 120 || c.MaxMS != 120 {
		t.Errorf("cutover %+v, want 40 requests from 32 s to 34 s, 8 failed, p50 and max 120 ms", c)
	}
}

func TestMoveReportGolden(t *testing.T) {
	rep := moveReport()
	var sum bytes.Buffer
	rep.Summary(&sum)
	golden(t, "move-noisy-tenant.summary.golden", sum.Bytes())
	var head bytes.Buffer
	if err := reportTemplate.ExecuteTemplate(&head, "headline", rep.headline()); err != nil {
		t.Fatal(err)
	}
	golden(t, "move-noisy-tenant.headline.golden", head.Bytes())
	var html bytes.Buffer
	if err := rep.HTML(&html); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Move of bucket noisy-1: cell-0 → cell-2", "<th>moved bucket before</th>", "moved bucket, cutover", ">cutover cell-2<"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("the HTML report has no %q", want)
		}
	}
}
