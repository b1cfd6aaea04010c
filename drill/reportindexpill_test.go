package drill

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// indexPillReport is the index pill on the last of two cells as a run would report
// it: the pill armed at T+0:12, the client's write answered 503, the leader and the
// follower that won the next election crashed on applying it, the third index node
// stayed up without a quorum; cell-1 failed every request from T+0:13 to T+0:37 while
// cell-0 failed none; disarmed at T+0:35, the cell settled at T+0:37.
func indexPillReport() *Report {
	cells := []string{"cell-0", "cell-1"}
	r := &Report{Scenario: "index-pill", Description: "A write that crashes every index replica of one cell.",
		Target: "cell-1", Cells: cells, Tested: []string{"cell-1"},
		Started: time.Date(2017, 2, 28, 17, 37, 0, 0, time.UTC), Took: at(75.4), Outcome: "completed", LoadStartMS: 1100}
	st := Stop{}
	st.EnsureDefaults()
	r.StopRule = st.Rule()
	r.Timeline = []Event{
		{At: at(0), Kind: "START", Text: "drill index-pill on 2 cells, target cell-1"},
		{At: at(1.1), Kind: "LOAD", Text: "20 requests/s for 1m15s over 4 buckets (mix GET=70,PUT=30)"},
		{At: at(12.2), Kind: "POISON", Cell: "cell-1", Text: "index pill armed: a write of index-pill-3/index-pill-0a1b2c3d4e5f crashes every index node of cell-1 that applies it"},
		{At: at(12.9), Kind: "POISON", Cell: "cell-1", Text: "a client wrote index-pill-3/index-pill-0a1b2c3d4e5f: HTTP 503"},
		{At: at(24.6), Kind: "CRASHED", Cell: "cell-1", Text: "2 of 3 index nodes of cell-1 crashed applying the pill (cell-1-index-2,cell-1-index-0): its index group is down, the rest never learned the entry was committed and has no quorum"},
		{At: at(37.3), Kind: "RESTORED", Cell: "cell-1", Text: "index pill disarmed, 2 index nodes started again (the pill's write replayed and applied), cell-1 settled in 2.6s"},
		{At: at(75.4), Kind: "END", Text: "drill completed after 1m15s"},
	}
	res := loadResult(cells, 74, 10, func(c string, i int) (int64, string) {
		if c == "cell-1" && i >= 12 && i < 36 {
			return 10, "ServiceUnavailable"
		}
		return 0, ""
	})
	r.load(res, 1100*time.Millisecond)
	r.IndexPill = []IndexPillReport{{Cell: "cell-1", Bucket: "index-pill-3", Key: "index-pill-0a1b2c3d4e5f",
		Sender: "a client", WriteOutcome: "HTTP 503", ArmedAt: at(12.2),
		IndexNodes: []string{"cell-1-index-0", "cell-1-index-1", "cell-1-index-2"},
		Crashed:    []string{"cell-1-index-2", "cell-1-index-0"},
		DownAt:     at(12.8), DisarmedAt: at(34.7), RestoredAt: at(37.3), Restored: true}}
	r.finish()
	return r
}

// An index pill has a section of its own in the terminal summary, report.json and
// the page, as the gateways' pill does: when it was armed, the index nodes it
// crashed, how long the cell was down and when it was restored; and the verdict line
// says it in a few words.
func TestReportIndexPill(t *testing.T) {
	rep := indexPillReport()
	var sum bytes.Buffer
	rep.Summary(&sum)
	golden(t, "index-pill.summary.golden", sum.Bytes())
	var head bytes.Buffer
	if err := reportTemplate.ExecuteTemplate(&head, "headline", rep.headline()); err != nil {
		t.Fatal(err)
	}
	golden(t, "index-pill.headline.golden", head.Bytes())

	p := rep.IndexPill[0]
	if got, want := p.DownFor(), at(37.3)-at(12.8); got != want {
		t.Errorf("down for %s, want %s", got, want)
	}
	if got := p.standing(); len(got) != 1 || got[0] != "cell-1-index-1" {
		t.Errorf("standing %v, want cell-1-index-1", got)
	}
	if v := rep.Verdict(); !strings.Contains(v, "index pill: 2 of 3 index nodes of cell-1 crashed; cell-1 down 24s") {
		t.Errorf("verdict %q does not say what the index pill did", v)
	}

	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		IndexPill []map[string]any `json:"index_pill"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.IndexPill) != 1 {
		t.Fatalf("report.json holds %d index pill sections, want 1", len(back.IndexPill))
	}
	for key, want := range map[string]any{"cell": "cell-1", "armed_at_ns": float64(at(12.2)), "down_at_ns": float64(at(12.8)),
		"restored_at_ns": float64(at(37.3)), "restored": true, "write_outcome": "HTTP 503"} {
		if got := back.IndexPill[0][key]; got != want {
			t.Errorf("report.json index_pill.%s = %v, want %v", key, got, want)
		}
	}
	if got, _ := back.IndexPill[0]["nodes_crashed"].([]any); len(got) != 2 {
		t.Errorf("report.json index_pill.nodes_crashed = %v, want 2 nodes", got)
	}

	var page bytes.Buffer
	if err := rep.HTML(&page); err != nil {
		t.Fatal(err)
	}
	html := strings.ReplaceAll(page.String(), "&#43;", "+")
	for _, want := range []string{"<h2>Index pill: cell-1</h2>", "<th>armed at</th><td>T+0:12</td>",
		"2 of 3: cell-1-index-2, cell-1-index-0; cell-1-index-1 stayed up without a quorum",
		"<th>cell down for</th><td>24.5s (index quorum lost at T+0:13, settled again at T+0:37)</td>",
		"<th>restored at</th><td>T+0:37: 2.6s from disarming (T+0:35)"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page does not show %q", want)
		}
	}

	// A step that failed before the cell was restored says so.
	p.Restored, p.RestoredAt = false, 0
	rows := p.rows()
	if rows[3][1] != "from T+0:13 (index quorum lost), not restored by the step" || rows[4][1] != "no" {
		t.Errorf("rows of an index pill not restored: %q", rows)
	}
	if s := p.sentence(); !strings.HasSuffix(s, "cell-1 not restored") {
		t.Errorf("verdict part %q", s)
	}

	// Without an index pill, none of it.
	var plain bytes.Buffer
	s3Report().Summary(&plain)
	if strings.Contains(plain.String(), "Index pill") {
		t.Errorf("a report without an index pill has its section")
	}
}
