package drill

import (
	"cmp"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cellarsim/cellar/drill/guard"
)

// palette colours the cells in the charts.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// marker is how a timeline event is drawn across the charts: a dashed line with a
// short label.
type marker struct{ label, colour string }

// markers are the timeline events drawn across the charts.
var markers = map[string]marker{
	"DRAIN": {"drain", "#444"}, "REFUSED": {"refused", "#666"}, "DRAIN FAILED": {"drain failed", "#b00020"},
	"UNDRAIN": {"undrain", "#444"}, "KILL": {"kill", "#b00020"},
	"QUORUM LOST": {"quorum lost", "#b00020"}, "QUORUM RESTORED": {"quorum back", "#1b7f2a"},
	"RESTART": {"restart", "#444"}, "RESTART FAILED": {"restart failed", "#b00020"}, "RESTORED": {"restored", "#1b7f2a"},
	"ABORT": {"abort", "#b00020"}, "HALTED": {"halted", "#b00020"},
	"WIPE": {"wipe", "#b00020"}, "REPAIR": {"repair", "#1b7f2a"},
	"MOVE": {"move", "#444"}, "FENCE": {"write fence", "#b36b00"}, "CUTOVER": {"cutover", "#b36b00"}, "MOVED": {"moved", "#1b7f2a"}, "MOVE FAILED": {"move failed", "#b00020"},
}

// Chart geometry, in the SVG's own units (the chart scales to the page's width). The
// type is large: reports are shown on projectors.
const (
	chartW    = 1120
	plotL     = 80  // room for the value axis
	plotR     = 200 // room for the cells' names at the ends of their lines
	plotH     = 300
	laneH     = 26 // one row of action labels above the plot
	axisH     = 40
	fontAxis  = 16
	fontLabel = 18
)

// textWidth estimates the width of a label in the charts' sans-serif type.
func textWidth(s string, size float64) float64 {
	return float64(utf8.RuneCountInString(s)) * size * 0.58
}

// chartSpan is the time the charts cover, in seconds on the drill's clock: from the
// start of the load (seeding before it is set-up, not part of the drill's picture) to
// the end of the drill.
func (r *Report) chartSpan() (from, to float64) {
	from = float64(r.LoadStartMS) / 1000
	to = r.Took.Seconds()
	for _, c := range r.PerCell {
		if n := len(c.Series); n > 0 {
			to = math.Max(to, c.Series[n-1].T+1)
		}
	}
	if to <= from {
		to = from + 1
	}
	return from, to
}

// markerGroup is drill actions close enough in time to share one label.
type markerGroup struct {
	x      float64
	lines  []float64 // x of each action's line
	colour string
	text   []string
	lane   int
	labelX float64 // where the label is anchored
	anchor string  // at its start, or at its end (left of its line)
}

// markerGroups lays out the labels of the drill's actions in rows above the plot,
// each label beside its line and in the lowest row where it overlaps no other.
func (r *Report) markerGroups(x func(float64) float64, from float64) ([]*markerGroup, int) {
	var groups []*markerGroup
	for _, e := range r.Timeline {
		m, ok := markers[e.Kind]
		if !ok || e.At.Seconds() < from {
			continue
		}
		text := m.label
		if e.Cell != "" && !(len(r.Tested) == 1 && e.Cell == r.Tested[0]) {
			text += " " + e.Cell
		}
		xe := x(e.At.Seconds())
		if n := len(groups); n > 0 && xe-groups[n-1].x < 8 {
			g := groups[n-1]
			g.lines = append(g.lines, xe)
			if g.text[len(g.text)-1] != text {
				g.text = append(g.text, text)
			}
			continue
		}
		groups = append(groups, &markerGroup{x: xe, lines: []float64{xe}, colour: m.colour, text: []string{text}})
	}
	var laneEnd []float64 // the right end of the last label in each row
	for _, g := range groups {
		w := textWidth(strings.Join(g.text, " · "), fontLabel)
		left := g.x + 5
		g.labelX, g.anchor = left, "start"
		if left+w > chartW-4 {
			left = g.x - 5 - w
			g.labelX, g.anchor = g.x-5, "end"
		}
		g.lane = len(laneEnd)
		for i, end := range laneEnd {
			if end+12 <= left {
				g.lane = i
				break
			}
		}
		if g.lane == len(laneEnd) {
			laneEnd = append(laneEnd, 0)
		}
		laneEnd[g.lane] = left + w
	}
	return groups, len(laneEnd)
}

// chart draws one value per cell per second as labelled lines over the drill's clock,
// from the start of the load, with the drill's actions as labelled dashed lines.
func (r *Report) chart(title string, value func(SeriesPoint) float64, maxY float64, unit string) template.HTML {
	from, to := r.chartSpan()
	x := func(t float64) float64 { return plotL + (chartW-plotL-plotR)*(t-from)/(to-from) }
	groups, lanes := r.markerGroups(x, from)
	top := 8 + float64(lanes)*laneH
	bottom := top + plotH
	height := bottom + axisH
	y := func(v float64) float64 { return top + plotH*(1-math.Min(v, maxY)/maxY) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %.0f" width="100%%" role="img" aria-label="%s" font-family="system-ui,sans-serif">`,
		chartW, height, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%d" fill="#fafafa" stroke="#bbb"/>`, plotL, top, chartW-plotL-plotR, plotH)
	for i := 0; i <= 4; i++ {
		v := maxY * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e0e0e0"/>`, plotL, chartW-plotR, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="%d" text-anchor="end" fill="#444">%s</text>`, plotL-6, y(v)+5, fontAxis, fmtAxis(v, unit))
	}
	// Ticks of the time axis: the first step that makes 8 of them at most.
	var step float64
	for _, step = range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600} {
		if (to-from)/step <= 8 {
			break
		}
	}
	for t := math.Ceil(from/step) * step; t <= to; t += step {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#999"/>`, x(t), x(t), bottom, bottom+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="%d" text-anchor="middle" fill="#444">%s</text>`,
			x(t), bottom+24, fontAxis, Clock(time.Duration(t*float64(time.Second))))
	}
	for _, g := range groups {
		labelY := top - float64(g.lane)*laneH - 8
		for _, xl := range g.lines {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="5,4"/>`,
				xl, xl, labelY+4, bottom, g.colour)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="%d" font-weight="600" text-anchor="%s" fill="%s">%s</text>`,
			g.labelX, labelY, fontLabel, g.anchor, g.colour,
			template.HTMLEscapeString(strings.Join(g.text, " · ")))
	}
	type end struct {
		y    float64
		text string
		col  string
	}
	var ends []end
	for i, c := range r.PerCell {
		if len(c.Series) == 0 {
			continue
		}
		col := palette[i%len(palette)]
		var pts []string
		for _, p := range c.Series {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.T+0.5), y(value(p))))
		}
		width := 2.5
		text := c.Cell
		if c.ActedOn {
			width, text = 4, c.Cell+", acted on"
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="%.1f" stroke-linejoin="round" points="%s"/>`, col, width, strings.Join(pts, " "))
		ends = append(ends, end{y(value(c.Series[len(c.Series)-1])), text, col})
	}
	// Each line's name beside its end; names of lines that end close together are
	// moved apart, in the order of the lines.
	slices.SortStableFunc(ends, func(a, b end) int { return cmp.Compare(a.y, b.y) })
	for i := 1; i < len(ends); i++ {
		ends[i].y = math.Max(ends[i].y, ends[i-1].y+fontLabel+2)
	}
	if n := len(ends); n > 0 && ends[n-1].y > bottom {
		ends[n-1].y = bottom
		for i := n - 2; i >= 0; i-- {
			ends[i].y = math.Min(ends[i].y, ends[i+1].y-fontLabel-2)
		}
	}
	for _, e := range ends {
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="%d" font-weight="700" fill="%s">%s</text>`,
			chartW-plotR+10, e.y+6, fontLabel, e.col, template.HTMLEscapeString(e.text))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func fmtAxis(v float64, unit string) string {
	if unit == "%" {
		return fmt.Sprintf("%.0f%%", v)
	}
	if v >= 1000 {
		return fmt.Sprintf("%.1fs", v/1000)
	}
	return fmt.Sprintf("%.0f%s", v, unit)
}

// niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

type htmlCell struct {
	CellReport
	Colour string
}

// headline is what the top of the page shows: the verdict and the headline figures.
type headline struct {
	Outcome, Verdict string // the verdict, cut after its outcome
	Tone             string
	Tiles            []Tile
}

func (r *Report) headline() headline {
	tone := "bad"
	if r.Outcome == "completed" {
		tone = "good"
	}
	outcome, verdict, _ := strings.Cut(r.Verdict(), " — ")
	return headline{Outcome: outcome, Verdict: verdict, Tone: tone, Tiles: r.Headline()}
}

// HTML writes the report as one self-contained page: inline CSS and SVG, no scripts
// or assets from elsewhere.
func (r *Report) HTML(w io.Writer) error {
	maxP99 := 0.0
	var cells []htmlCell
	for i, c := range r.PerCell {
		for _, p := range c.Series {
			maxP99 = math.Max(maxP99, p.P99MS)
		}
		cells = append(cells, htmlCell{c, palette[i%len(palette)]})
	}
	data := struct {
		R           *Report
		Head        headline
		Cells       []htmlCell
		Avail, P99  template.HTML
		LoadStart   time.Duration
		Load        string
		Tenants     []TenantReport
		TenantsRest string
		RepairChart template.HTML
		RepairRows  [][]string
		Move        template.HTML
	}{R: r, Head: r.headline(), Cells: cells, RepairChart: r.repairChart(), RepairRows: r.repairRows(), Move: r.moveHTML(),
		Avail:     r.chart("availability per cell", func(p SeriesPoint) float64 { return 100 * p.Availability }, 100, "%"),
		P99:       r.chart("p99 latency per cell", func(p SeriesPoint) float64 { return p.P99MS }, niceMax(maxP99), "ms"),
		LoadStart: time.Duration(r.LoadStartMS) * time.Millisecond, Load: r.loadLine()}
	data.Tenants, data.TenantsRest = r.worstTenants()
	return reportTemplate.Execute(w, data)
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"clock": Clock,
	"pct":   pctf,
	"ms":    func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"join":  strings.Join,
	"kindClass": func(k string) string {
		switch k {
		case "QUORUM LOST", "REFUSED", "RESTART FAILED", "ERRORS", "ABORT", "HALTED", "CHECK FAILED", "KILL", "MOVE FAILED":
			return "bad"
		case "QUORUM RESTORED", "RESTORED", "RECOVERED", "CHECK OK", "REPAIR", "MOVED":
			return "good"
		case "OVERRIDE", "SCRUB", "WIPE", "FENCE", "CUTOVER":
			return "warn"
		}
		return ""
	},
	"describe":      func(g Guardrail) string { return g.describe() },
	"codes":         errorCodes,
	"rows":          func(p PoisonReport) [][2]string { return p.rows() },
	"indexPillRows": func(p IndexPillReport) [][2]string { return p.rows() },
	"guardrailsOff": func() string { return guard.GuardrailsOffBanner },
	"lower":         strings.ToLower,
	"repairNote":    func() string { return repairNote },
}).Parse(`{{define "headline"}}<p class="verdict"><span class="{{.Tone}}">{{.Outcome}}</span> — {{.Verdict}}</p>
<div class="tiles">{{range .Tiles}}
<div class="tile"><div class="label">{{.Label}}</div><div class="big {{.Tone}}">{{.Value}}</div><div class="detail">{{.Detail}}</div></div>{{end}}
</div>
{{end}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Drill {{.R.Scenario}}: {{.R.Outcome}}</title>
<style>
body{font:18px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1160px;color:#1a1a1a;padding:0 16px}
h1{font-size:34px;margin:0 0 4px}h2{font-size:26px;margin-top:36px;border-bottom:2px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;width:100%;font-size:17px}td,th{text-align:left;padding:5px 10px;border-bottom:1px solid #e4e4e4;vertical-align:top}
th{background:#f2f2f2}td.n{text-align:right;font-variant-numeric:tabular-nums}
.log td{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:15px}.log td:nth-child(-n+2){white-space:nowrap}
.bad{color:#b00020;font-weight:600}.good{color:#1b7f2a;font-weight:600}.warn{color:#b36b00;font-weight:600}
.verdict{font-size:24px;margin:12px 0 18px}.verdict span{font-weight:800}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(250px,1fr));gap:14px}
.tile{border:2px solid #ddd;border-radius:8px;padding:12px 16px}
.tile .label{font-size:20px;color:#444;font-weight:600}.big{font-size:44px;font-weight:700;line-height:1.15;margin:4px 0}.tile .detail{font-size:17px;color:#333}
.sw{display:inline-block;width:16px;height:16px;margin-right:6px;vertical-align:-2px}
.muted{color:#555}.note{font-size:17px;color:#333}
.off{background:#b00020;color:#fff;font-size:26px;font-weight:800;padding:12px 16px;border-radius:6px}
</style></head><body>
{{if .R.GuardrailsOff}}<p class="off">{{guardrailsOff}}</p>{{end}}
<h1>Drill {{.R.Scenario}}</h1>
<p class="muted">{{.R.Description}}</p>
{{template "headline" .Head}}
<p class="note">Started {{.R.Started.UTC.Format "2006-01-02 15:04:05"}} UTC on {{len .R.Cells}} cell(s), target <b>{{.R.Target}}</b>, took {{ms .R.Took}}.{{if .Load}} {{.Load}}.{{end}}</p>
{{if .R.Load}}<p class="note"><b>Blast radius</b>: {{.R.Blast.Definition}}.</p>{{end}}
{{if .R.StopRule}}<p class="note"><b>Stop rule</b>: {{.R.StopRule}}.</p>{{end}}
{{if .R.Load}}
<h2>Availability per cell</h2>
<p class="note">Share of each second's requests that succeeded. The time axis is the drill's clock from the start of the load ({{clock .LoadStart}}; before it the buckets were seeded); dashed lines are the drill's actions and changes of index quorum.</p>
{{.Avail}}
<h2>p99 latency per cell</h2>
{{.P99}}
<h2>Blast radius per cell</h2>
<table><tr><th>cell</th><th>acted on</th><th>hit</th><th>requests</th><th>failed</th><th>error rate</th><th>share of load</th><th>seconds with errors</th><th>p99</th></tr>
{{range .Cells}}<tr><td><i class="sw" style="background:{{.Colour}}"></i>{{.Cell}}</td><td>{{if .ActedOn}}yes{{else}}no{{end}}</td><td class="{{if .Hit}}bad{{end}}">{{if .Hit}}yes{{else}}no{{end}}</td><td class="n">{{.Requests}}</td><td class="n {{if .Errors}}bad{{end}}">{{.Errors}}</td><td class="n">{{pct .ErrorRate}}</td><td class="n">{{pct .LoadShare}}</td><td class="n">{{.Unavailable}}</td><td class="n">{{printf "%.1f" .P99MS}} ms</td></tr>
{{end}}</table>
{{end}}
{{if .R.TenantCounts}}<h2>Blast radius per tenant</h2>
<p class="note">{{.R.TenantCounts}}. The worst first.</p>
<table><tr><th>tenant</th><th>hit</th><th>requests</th><th>failed</th><th>error rate</th><th>share of failures</th><th>seconds with errors</th><th>error codes</th></tr>
{{range .Tenants}}<tr><td>{{.Tenant}}</td><td class="{{if .Hit}}bad{{end}}">{{if .Down}}down{{else if .Hit}}yes{{else}}no{{end}}</td><td class="n">{{.Requests}}</td><td class="n {{if .Errors}}bad{{end}}">{{.Errors}}</td><td class="n">{{pct .ErrorRate}}</td><td class="n">{{pct .FailedShare}}</td><td class="n">{{.Unavailable}}</td><td>{{codes .ErrorCodes}}</td></tr>
{{end}}</table>{{if .TenantsRest}}<p class="note">And {{.TenantsRest}}.</p>{{end}}
{{end}}
{{.Move}}
{{range .R.Poison}}<h2>Poison pill: {{.Sharding}} sharding</h2>
<table>{{range rows .}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>
{{end}}
{{range .R.IndexPill}}<h2>Index pill: {{.Cell}}</h2>
<table>{{range indexPillRows .}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>
{{end}}
{{if .R.Repair}}<h2>Repair</h2>
<p class="note">From {{repairNote}}.{{if .RepairChart}} Objects given back a missing copy, on the drill's clock:{{end}}</p>
{{.RepairChart}}
<table>{{range $i, $row := .RepairRows}}<tr>{{range $j, $v := $row}}{{if eq $i 0}}<th>{{lower $v}}</th>{{else if eq $j 0}}<td>{{$v}}</td>{{else}}<td class="n">{{$v}}</td>{{end}}{{end}}</tr>
{{end}}</table>
{{end}}
<h2>Timeline</h2>
<table class="log">{{range .R.Timeline}}<tr><td>{{clock .At}}</td><td class="{{kindClass .Kind}}">{{.Kind}}</td><td>{{.Text}}</td></tr>
{{end}}</table>
{{if .R.NodeRestarts}}<h2>Restart time per node</h2>
<table><tr><th>at</th><th>cell</th><th>tier</th><th>node</th><th>start to ready</th></tr>
{{range .R.NodeRestarts}}<tr><td>{{clock .At}}</td><td>{{.Cell}}</td><td>{{.Tier}}</td><td>{{.Node}}</td><td class="n {{if .Error}}bad{{end}}">{{if .Error}}failed after {{ms .Took}}: {{.Error}}{{else}}{{ms .Took}}{{end}}</td></tr>
{{end}}</table>{{end}}
{{if .R.CellRestarts}}<h2>Restart time per cell</h2>
<table><tr><th>cell</th><th>how</th><th>order</th><th>nodes</th><th>first stop to healthy</th></tr>
{{range .R.CellRestarts}}<tr><td>{{.Cell}}</td><td>{{.How}}</td><td>{{join .Order " → "}}</td><td class="n">{{.Nodes}}</td><td class="n">{{ms .Took}}</td></tr>
{{end}}</table>{{end}}
{{if .R.Guardrails}}<h2>Guardrail decisions</h2>
<table><tr><th>at</th><th>decision</th></tr>
{{range .R.Guardrails}}<tr><td>{{clock .At}}</td><td class="{{if not .Allowed}}bad{{else if .Override}}warn{{end}}">{{describe .}}</td></tr>
{{end}}</table>{{end}}
{{if .R.Checks}}<h2>Checks</h2>
<table>{{range .R.Checks}}<tr><td>{{clock .At}}</td><td class="{{if .OK}}good{{else}}bad{{end}}">{{if .OK}}ok{{else}}FAILED{{end}}</td><td>{{.What}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>{{end}}
{{if .R.LeftDown}}<p class="bad">Left down by the drill: {{join .R.LeftDown ", "}}</p>{{end}}
</body></html>
`))
