package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/cellarsim/cellar/cell"
)

// AdminAddresser is a cluster whose nodes' admin servers the drill can reach (cellctl
// up's, the in-process test cluster). Through it the drill reads, about once a second,
// the repair figures of each cell's placement nodes (their /status gauges, repair_*;
// see package cell/repair) and reports what each cell's repair loop did: RepairReport.
// On a cluster that is not one, the report has no repair section.
type AdminAddresser interface {
	// AdminAddr is the address (host:port) of node id's admin HTTP server.
	AdminAddr(ctx context.Context, id string) (string, error)
}

// RepairReport is what one cell's repair loop did while the drill ran, as the cell's
// leading placement node reports it. Counts are of the drill's time only: what the
// loop had done before the drill began is left out.
type RepairReport struct {
	Cell string `json:"cell"`
	// Passes is how many repair passes completed.
	Passes int64 `json:"passes"`
	// ObjectsRepaired is how many objects were given back a missing copy (a wiped node
	// refilled, a degraded write brought to its copy count); BytesRepaired is every
	// byte repair copied, corrupt copies rewritten included.
	ObjectsRepaired int64 `json:"objects_repaired"`
	BytesRepaired   int64 `json:"bytes_repaired"`
	// RepairSeconds is how long the passes that gave objects a copy took, and
	// BytesPerSecond the bytes repaired over that time: the refill rate.
	RepairSeconds  float64 `json:"repair_seconds"`
	BytesPerSecond float64 `json:"bytes_repaired_per_second"`
	// Corrupt copies the scrubber found, and those rewritten from a good copy.
	CorruptFound    int64 `json:"corrupt_found"`
	CorruptRepaired int64 `json:"corrupt_repaired"`
	// UnderReplicated is the objects below their copy count after the last pass of the
	// drill, UnderReplicatedMax the most after any of its passes; Lost the objects
	// with no copy left after the last pass (want 0).
	UnderReplicated    int64 `json:"under_replicated_at_end"`
	UnderReplicatedMax int64 `json:"under_replicated_max"`
	Lost               int64 `json:"lost_at_end"`
	// Series is the running totals, on the drill's clock, at the first reading and at
	// each reading where they changed.
	Series []RepairPoint `json:"series"`
}

// RepairPoint is a cell's repair totals at one reading.
type RepairPoint struct {
	T               float64 `json:"t_s"`
	ObjectsRepaired int64   `json:"objects_repaired"`
	BytesRepaired   int64   `json:"bytes_repaired"`
	UnderReplicated int64   `json:"under_replicated"`
}

// active reports whether the cell's repair had something to do during the drill.
func (c RepairReport) active() bool {
	return c.ObjectsRepaired > 0 || c.BytesRepaired > 0 || c.CorruptFound > 0 || c.UnderReplicatedMax > 0 || c.Lost > 0
}

// repairEvery is how often the repair figures are read.
const repairEvery = time.Second

// repairStatus is the part of a node's /status the repair sampler reads.
type repairStatus struct {
	StartedUnixNano int64              `json:"started_unix_nano"`
	Gauges          map[string]float64 `json:"gauges"`
}

// The repair counters the sampler follows, as the host's gauges name them.
const (
	gPasses          = "repair_passes"
	gObjects         = "repair_objects_repaired"
	gBytes           = "repair_bytes"
	gCorruptFound    = "repair_corrupt_found"
	gCorruptRepaired = "repair_corrupt_repaired"
)

var repairCounters = []string{gPasses, gObjects, gBytes, gCorruptFound, gCorruptRepaired}

// repairSampler follows the repair loops of the cells through the drill. Counters are
// kept per node and per incarnation of it, so that a placement node that restarts
// (its counters start again from 0) or a loop that moves to another placement node is
// counted right.
type repairSampler struct {
	mu    sync.Mutex
	start time.Time
	nodes map[string]*repairNode
	cells map[string]*RepairReport
	// pending is what each cell's running pass has copied so far: its counters rise
	// during a pass, and the pass is counted at its end.
	pending map[string]*pendingPass
}

type pendingPass struct{ objects, bytes int64 }

type repairNode struct {
	started int64 // the incarnation whose counters prev holds
	prev    map[string]float64
}

func newRepairSampler(start time.Time) *repairSampler {
	return &repairSampler{start: start, nodes: map[string]*repairNode{}, cells: map[string]*RepairReport{}, pending: map[string]*pendingPass{}}
}

// followRepair reads the repair figures now, then every repairEvery until ctx is done;
// the channel it returns is closed once it has stopped. A cluster that is not an
// AdminAddresser is not followed.
func (r *runner) followRepair(ctx context.Context) <-chan struct{} {
	if _, ok := r.env.Cluster.(AdminAddresser); !ok {
		done := make(chan struct{})
		close(done)
		return done
	}
	r.readRepair(ctx)
	return every(ctx, repairEvery, func() { r.readRepair(ctx) })
}

// readRepair reads the /status of each running placement node and takes in the
// figures of those that lead their cell's repair.
func (r *runner) readRepair(ctx context.Context) {
	admin, ok := r.env.Cluster.(AdminAddresser)
	if !ok {
		return
	}
	nctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	nodes, err := r.env.Cluster.Nodes(nctx)
	cancel()
	if err != nil {
		return
	}
	for _, n := range nodes {
		if n.Role != cell.RolePlacement || !n.Running {
			continue
		}
		addr, err := admin.AdminAddr(ctx, n.ID)
		if err != nil {
			continue
		}
		st, err := readRepairStatus(ctx, addr)
		if err != nil {
			continue
		}
		for _, e := range r.repair.observe(n.Cell, n.ID, st, r.since()) {
			r.event(e.Kind, e.Cell, e.Text)
		}
	}
}

// readRepairStatus reads a node's /status, within a second.
func readRepairStatus(ctx context.Context, addr string) (repairStatus, error) {
	var st repairStatus
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status of %s: %s", addr, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("status of %s: %w", addr, err)
	}
	return st, nil
}

// observe takes in one reading of placement node id of cellID at on the drill's clock,
// and returns the timeline events it makes: a pass that gave objects back a copy, a
// scrub that found corrupt copies. A node that does not lead its cell's repair is
// passed over.
func (s *repairSampler) observe(cellID, id string, st repairStatus, at time.Duration) []Event {
	if st.Gauges["repair_leading"] != 1 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[id]
	switch {
	case n == nil && time.Unix(0, st.StartedUnixNano).Before(s.start):
		// Running since before the drill: what it did before is not the drill's.
		n = &repairNode{started: st.StartedUnixNano, prev: st.Gauges}
	case n == nil, n.started != st.StartedUnixNano:
		// Started during the drill: everything it counted is the drill's.
		n = &repairNode{started: st.StartedUnixNano, prev: map[string]float64{}}
	}
	s.nodes[id] = n
	c := s.cells[cellID]
	if c == nil {
		c = &RepairReport{Cell: cellID}
		s.cells[cellID] = c
	}
	d := map[string]int64{}
	for _, k := range repairCounters {
		if v := int64(st.Gauges[k] - n.prev[k]); v > 0 {
			d[k] = v
		}
	}
	n.prev = st.Gauges
	c.Passes += d[gPasses]
	c.ObjectsRepaired += d[gObjects]
	c.BytesRepaired += d[gBytes]
	c.CorruptFound += d[gCorruptFound]
	c.CorruptRepaired += d[gCorruptRepaired]
	if st.Gauges[gPasses] > 0 {
		// The gauges of the last pass; none before the loop's first pass.
		c.UnderReplicated = int64(st.Gauges["repair_under_replicated"])
		c.UnderReplicatedMax = max(c.UnderReplicatedMax, c.UnderReplicated)
		c.Lost = int64(st.Gauges["repair_lost"])
	}
	p := s.pending[cellID]
	if p == nil {
		p = &pendingPass{}
		s.pending[cellID] = p
	}
	p.objects += d[gObjects]
	p.bytes += d[gBytes]
	var evs []Event
	if d[gPasses] > 0 {
		if p.objects > 0 {
			took := st.Gauges["repair_last_pass_seconds"]
			c.RepairSeconds += took
			if c.RepairSeconds > 0 {
				c.BytesPerSecond = float64(c.BytesRepaired) / c.RepairSeconds
			}
			evs = append(evs, Event{At: at, Kind: "REPAIR", Cell: cellID, Text: fmt.Sprintf(
				"%s repair pass %d: %d object%s given back a missing copy (%s, pass of %s); %d under-replicated, %d lost",
				cellID, int64(st.Gauges[gPasses]), p.objects, plural(int(p.objects)), HumanBytes(p.bytes),
				span(time.Duration(took*float64(time.Second))), c.UnderReplicated, c.Lost)})
		}
		*p = pendingPass{}
	}
	if d[gCorruptFound] > 0 || d[gCorruptRepaired] > 0 {
		evs = append(evs, Event{At: at, Kind: "SCRUB", Cell: cellID, Text: fmt.Sprintf(
			"%s scrub: %d corrupt cop%s found, %d rewritten from a good copy",
			cellID, d[gCorruptFound], yPlural(d[gCorruptFound]), d[gCorruptRepaired])})
	}
	pt := RepairPoint{T: at.Seconds(), ObjectsRepaired: c.ObjectsRepaired, BytesRepaired: c.BytesRepaired, UnderReplicated: c.UnderReplicated}
	if k := len(c.Series); k == 0 || c.Series[k-1].ObjectsRepaired != pt.ObjectsRepaired ||
		c.Series[k-1].BytesRepaired != pt.BytesRepaired || c.Series[k-1].UnderReplicated != pt.UnderReplicated {
		c.Series = append(c.Series, pt)
	}
	return evs
}

// report is the cells whose repair had something to do, in the topology's order.
func (s *repairSampler) report(cells []string) []RepairReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []RepairReport
	for _, id := range cells {
		if c := s.cells[id]; c != nil && c.active() {
			out = append(out, *c)
		}
	}
	return out
}

func yPlural(n int64) string {
	if n == 1 {
		return "y"
	}
	return "ies"
}

// HumanBytes writes n in B, KiB, MiB or GiB, to a tenth.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 2; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMG"[exp])
}

// repairRows is the repair table, a header and a row per cell, for the summary and
// the page.
func (r *Report) repairRows() [][]string {
	rows := [][]string{{"CELL", "PASSES", "OBJECTS REPAIRED", "BYTES REPAIRED", "REFILL RATE", "CORRUPT FOUND", "CORRUPT REPAIRED", "UNDER-REPLICATED AT END", "MOST UNDER-REPLICATED", "LOST AT END"}}
	for _, c := range r.Repair {
		rate := "-"
		if c.BytesPerSecond > 0 {
			rate = HumanBytes(int64(c.BytesPerSecond)) + "/s"
		}
		rows = append(rows, []string{c.Cell, fmt.Sprint(c.Passes), fmt.Sprint(c.ObjectsRepaired), HumanBytes(c.BytesRepaired), rate,
			fmt.Sprint(c.CorruptFound), fmt.Sprint(c.CorruptRepaired), fmt.Sprint(c.UnderReplicated), fmt.Sprint(c.UnderReplicatedMax), fmt.Sprint(c.Lost)})
	}
	return rows
}

// repairNote says where the repair figures come from and what the refill rate is.
const repairNote = "the repair loop of each cell's placement node during the drill, cells with something to repair only; refill rate: bytes repaired over the time of the passes that gave objects a copy"

// summaryRepair writes the repair table for a terminal.
func (r *Report) summaryRepair(w io.Writer) {
	if len(r.Repair) == 0 {
		return
	}
	fmt.Fprintf(w, "\nRepair (%s)\n", repairNote)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, row := range r.repairRows() {
		fmt.Fprintf(tw, "  %s\n", strings.Join(row, "\t"))
	}
	tw.Flush()
}

// repairChart draws each listed cell's objects repaired over the drill's clock as a
// step line, or nothing when no object was repaired.
func (r *Report) repairChart() template.HTML {
	top := 0.0
	for _, c := range r.Repair {
		top = math.Max(top, float64(c.ObjectsRepaired))
	}
	if top == 0 {
		return ""
	}
	maxY := niceMax(top)
	from, to := r.chartSpan()
	x := func(t float64) float64 { return plotL + (chartW-plotL-plotR)*(math.Max(t, from)-from)/(to-from) }
	y := func(v float64) float64 { return 8 + plotH*(1-math.Min(v, maxY)/maxY) }
	bottom := 8.0 + plotH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %.0f" width="100%%" role="img" aria-label="objects repaired per cell" font-family="system-ui,sans-serif">`, chartW, bottom+axisH)
	fmt.Fprintf(&b, `<rect x="%d" y="8" width="%d" height="%d" fill="#fafafa" stroke="#bbb"/>`, plotL, chartW-plotL-plotR, plotH)
	for i := 0; i <= 4; i++ {
		v := maxY * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e0e0e0"/>`, plotL, chartW-plotR, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="%d" text-anchor="end" fill="#444">%.0f</text>`, plotL-6, y(v)+5, fontAxis, v)
	}
	for _, t := range []float64{from, to} {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="%d" text-anchor="middle" fill="#444">%s</text>`,
			x(t), bottom+24, fontAxis, Clock(time.Duration(t*float64(time.Second))))
	}
	for i, c := range r.Repair {
		if len(c.Series) == 0 || c.ObjectsRepaired == 0 {
			continue
		}
		col := palette[i%len(palette)]
		if j := slices.IndexFunc(r.PerCell, func(p CellReport) bool { return p.Cell == c.Cell }); j >= 0 {
			col = palette[j%len(palette)] // the cell's colour in the other charts
		}
		var pts []string
		prev := c.Series[0]
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(prev.T), y(float64(prev.ObjectsRepaired))))
		for _, p := range c.Series[1:] {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f %.1f,%.1f", x(p.T), y(float64(prev.ObjectsRepaired)), x(p.T), y(float64(p.ObjectsRepaired))))
			prev = p
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(to), y(float64(prev.ObjectsRepaired))))
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="3" stroke-linejoin="round" points="%s"/>`, col, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="%d" font-weight="700" fill="%s">%s</text>`,
			chartW-plotR+10, y(float64(prev.ObjectsRepaired))+6, fontLabel, col, template.HTMLEscapeString(c.Cell))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
