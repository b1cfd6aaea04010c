package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// repairReading is one reading of a placement node's /status for the repair sampler.
type repairReading struct {
	at       float64 // on the drill's clock, in seconds
	cell, id string
	started  time.Time
	gauges   map[string]float64
}

// loseADiskReport is the lose-a-disk drill on three cells as a run would report it,
// its repair section made by the sampler from the placement nodes' readings: cell-0's
// second storage node is wiped at T+0:14 and refilled by two passes (180 objects, read
// during the pass and at its end, then 60); cell-1's loop passes with nothing to do; cell-2's scrubber finds and rewrites a
// corrupt copy, then its placement node restarts (its counters start again from 0)
// and makes one more pass; cell-2's second placement node stands by.
func loseADiskReport() *Report {
	start := time.Date(2017, 2, 28, 17, 37, 0, 0, time.UTC)
	before, restarted := start.Add(-time.Hour), start.Add(70*time.Second)
	r := &Report{Scenario: "lose-a-disk", Target: "cell-0", Cells: []string{"cell-0", "cell-1", "cell-2"}, Tested: []string{"cell-0"},
		Started: start, Took: at(96.5), Outcome: "completed", LoadStartMS: 2000}
	st := Stop{}
	st.EnsureDefaults()
	r.StopRule = st.Rule()
	ev := func(s float64, kind, cell, text string) {
		r.Timeline = append(r.Timeline, Event{At: at(s), Kind: kind, Cell: cell, Text: text})
	}
	ev(0, "START", "", "drill lose-a-disk on 3 cells, target cell-0")
	ev(0.3, "LOAD", "", "seeding 6 buckets with 20 objects each")
	ev(2, "LOAD", "", "40 requests/s for 1m30s over 6 buckets (mix GET=70,HEAD=20,LIST=10)")
	ev(12.1, "DRAIN", "cell-0", "drain of 1 storage node of cell-0 requested: cell-0-storage-1 (plan 3c0ffee1)")
	ev(13.9, "WIPE", "cell-0", "cell-0-storage-1: data directory deleted; the node starts empty")
	ev(14.2, "WIPE", "cell-0", "starting cell-0-storage-1 empty; the cell's repair refills it")
	ev(96.5, "END", "", "drill completed after 1m37s")
	r.load(loadResult(r.Cells, 90, 13, func(string, int) (int64, string) { return 0, "" }), 2*time.Second)

	g := func(passes, objects, bytes, found, fixed, under, took float64) map[string]float64 {
		return map[string]float64{"repair_leading": 1, gPasses: passes, gObjects: objects, gBytes: bytes,
			gCorruptFound: found, gCorruptRepaired: fixed, "repair_under_replicated": under, "repair_lost": 0,
			"repair_last_pass_seconds": took}
	}
	standby := map[string]float64{"repair_leading": 0}
	readings := []repairReading{
		{0, "cell-0", "cell-0-placement-0", before, g(40, 12, 12288, 0, 0, 0, 0.2)},
		{0, "cell-1", "cell-1-placement-0", before, g(40, 0, 0, 0, 0, 0, 0.2)},
		{0, "cell-2", "cell-2-placement-0", before, g(40, 3, 3072, 1, 1, 0, 0.2)},
		{0, "cell-2", "cell-2-placement-1", before, standby},
		{20, "cell-0", "cell-0-placement-0", before, g(40, 12, 12288, 0, 0, 0, 0.2)},
		{25, "cell-0", "cell-0-placement-0", before, g(40, 112, 114688, 0, 0, 0, 0.2)}, // the pass copies
		{31, "cell-0", "cell-0-placement-0", before, g(41, 192, 196608, 0, 0, 60, 10)},
		{31, "cell-1", "cell-1-placement-0", before, g(41, 0, 0, 0, 0, 0, 0.2)},
		{50, "cell-2", "cell-2-placement-0", before, g(40, 3, 4096, 2, 2, 0, 0.2)},
		{61, "cell-0", "cell-0-placement-0", before, g(42, 252, 258048, 0, 0, 0, 4)},
		{61, "cell-1", "cell-1-placement-0", before, g(42, 0, 0, 0, 0, 0, 0.2)},
		{75, "cell-2", "cell-2-placement-0", restarted, g(1, 0, 0, 0, 0, 0, 0.3)},
		{75, "cell-2", "cell-2-placement-1", before, standby},
		{91, "cell-0", "cell-0-placement-0", before, g(43, 252, 258048, 0, 0, 0, 0.3)},
	}
	s := newRepairSampler(start)
	for _, rd := range readings {
		evs := s.observe(rd.cell, rd.id, repairStatus{StartedUnixNano: rd.started.UnixNano(), Gauges: rd.gauges}, at(rd.at))
		r.Timeline = append(r.Timeline, evs...)
	}
	r.Repair = s.report(r.Cells)
	r.finish()
	return r
}

// A drill reports what each cell's repair loop did: a table in the terminal summary,
// report.json and the page; a timeline event for each pass that gave objects back a
// copy and each corrupt copy found; only the cells with something to repair.
func TestReportRepair(t *testing.T) {
	rep := loseADiskReport()
	var sum bytes.Buffer
	rep.Summary(&sum)
	golden(t, "lose-a-disk.summary.golden", sum.Bytes())

	if len(rep.Repair) != 2 || rep.Repair[0].Cell != "cell-0" || rep.Repair[1].Cell != "cell-2" {
		t.Fatalf("repair section %+v, want cell-0 and cell-2 (cell-1 had nothing to repair)", rep.Repair)
	}
	c0 := rep.Repair[0]
	want0 := RepairReport{Cell: "cell-0", Passes: 3, ObjectsRepaired: 240, BytesRepaired: 245760, RepairSeconds: 14,
		BytesPerSecond: 245760.0 / 14, UnderReplicated: 0, UnderReplicatedMax: 60}
	c0.Series = nil
	if !reflect.DeepEqual(c0, want0) {
		t.Errorf("cell-0 repair %+v, want %+v", c0, want0)
	}
	if n := len(rep.Repair[0].Series); n != 4 {
		t.Errorf("cell-0 series has %d points, want 4 (the first reading and three changes): %+v", n, rep.Repair[0].Series)
	}
	c2 := rep.Repair[1]
	if c2.Passes != 1 || c2.CorruptFound != 1 || c2.CorruptRepaired != 1 || c2.BytesRepaired != 1024 || c2.ObjectsRepaired != 0 {
		t.Errorf("cell-2 repair %+v, want 1 pass (after its restart), 1 corrupt copy found and rewritten, 1 KiB, no object", c2)
	}
	var kinds []string
	for _, e := range rep.Timeline {
		if e.Kind == "REPAIR" || e.Kind == "SCRUB" {
			kinds = append(kinds, Clock(e.At)+" "+e.Kind+" "+e.Cell)
		}
	}
	if got, want := strings.Join(kinds, ", "), "T+0:31 REPAIR cell-0, T+0:50 SCRUB cell-2, T+1:01 REPAIR cell-0"; got != want {
		t.Errorf("repair events %s, want %s", got, want)
	}

	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Repair []RepairReport `json:"repair"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Repair) != 2 || back.Repair[0].ObjectsRepaired != 240 || back.Repair[0].UnderReplicatedMax != 60 {
		t.Errorf("report.json holds repair %+v", back.Repair)
	}
	for _, key := range []string{`"objects_repaired":240`, `"bytes_repaired":245760`, `"corrupt_found":1`, `"corrupt_repaired":1`,
		`"under_replicated_at_end":0`, `"passes":3`, `"bytes_repaired_per_second":`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("report.json lacks %s", key)
		}
	}

	var page bytes.Buffer
	if err := rep.HTML(&page); err != nil {
		t.Fatal(err)
	}
	html := page.String()
	for _, want := range []string{"<h2>Repair</h2>", "<th>objects repaired</th>", `aria-label="objects repaired per cell"`,
		"<td>cell-0</td><td class=\"n\">3</td><td class=\"n\">240</td><td class=\"n\">240.0 KiB</td>", "cell-2 scrub: 1 corrupt copy found"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page does not show %q", want)
		}
	}

	// A drill with nothing to repair, or on a cluster the drill cannot read, has none of it.
	var plain bytes.Buffer
	s3Report().Summary(&plain)
	if strings.Contains(plain.String(), "Repair") {
		t.Errorf("a report without repair activity has a repair table")
	}
	page.Reset()
	if err := s3Report().HTML(&page); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page.String(), "<h2>Repair</h2>") {
		t.Errorf("a page without repair activity has a repair section")
	}
}

// repairCluster is a fakeCluster whose cell-0 placement node serves /status: its
// repair loop's counters before a refill at the first reading, after it at every
// later one.
type repairCluster struct {
	*fakeCluster
	addr string
}

func (c *repairCluster) AdminAddr(_ context.Context, id string) (string, error) {
	if id != "cell-0-placement-0" {
		return "", errors.New("no admin server")
	}
	return c.addr, nil
}

// The drill reads the placement nodes' repair figures through the cluster
// (AdminAddresser) when it starts and when it ends, and reports what was repaired
// in between.
func TestScenarioReadsRepairFigures(t *testing.T) {
	var reads atomic.Int64
	started := time.Now().Add(-time.Hour).UnixNano()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		g := map[string]float64{"repair_leading": 1, gPasses: 7, gObjects: 5, gBytes: 5120, "repair_under_replicated": 0}
		if reads.Add(1) > 1 {
			g = map[string]float64{"repair_leading": 1, gPasses: 8, gObjects: 45, gBytes: 46080, "repair_under_replicated": 0, "repair_last_pass_seconds": 0.5}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"started_unix_nano": started, "gauges": g})
	}))
	defer srv.Close()
	f := &fakeCluster{topo: region(), down: map[string]bool{}}
	c := &repairCluster{fakeCluster: f, addr: strings.TrimPrefix(srv.URL, "http://")}
	env := f.env(t)
	env.Cluster = c
	sc, err := ParseScenario([]byte("name: repair\ntarget: cell-0\nsteps:\n  - wait: 10ms\n"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := RunScenario(context.Background(), env, sc)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Repair) != 1 {
		t.Fatalf("repair section %+v, want cell-0 only", rep.Repair)
	}
	if c0 := rep.Repair[0]; c0.Cell != "cell-0" || c0.Passes != 1 || c0.ObjectsRepaired != 40 || c0.BytesRepaired != 40960 || c0.BytesPerSecond != 40960/0.5 {
		t.Errorf("cell-0 repair %+v, want 1 pass, 40 objects, 40 KiB at 80 KiB/s", c0)
	}
	if !strings.Contains(kinds(rep), "REPAIR") {
		t.Errorf("timeline %s has no REPAIR event", kinds(rep))
	}

	// A cluster the drill cannot read has no repair section.
	rep, err = RunScenario(context.Background(), f.env(t), sc)
	if err != nil || rep.Repair != nil {
		t.Errorf("%v, repair %+v, want none", err, rep.Repair)
	}
}
