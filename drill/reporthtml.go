package drill

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// palette colours the cells in the charts.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// markerKinds are the timeline events drawn as lines across the charts.
var markerKinds = map[string]string{
	"DRAIN": "#555", "REFUSED": "#999", "QUORUM LOST": "#d62728", "QUORUM RESTORED": "#2ca02c",
	"RESTART": "#555", "RESTART FAILED": "#d62728", "RESTORED": "#2ca02c", "KILL": "#d62728", "ABORT": "#d62728", "HALTED": "#d62728",
}

const (
	chartW, chartH         = 860, 220
	padL, padR, padT, padB = 56, 16, 14, 30
)

// chart draws one value per cell per second as lines over the drill's clock.
func (r *Report) chart(title string, value func(SeriesPoint) float64, maxY float64, unit string) template.HTML {
	span := r.Took.Seconds()
	if span <= 0 {
		span = 1
	}
	x := func(t float64) float64 { return padL + (chartW-padL-padR)*t/span }
	y := func(v float64) float64 { return padT + (chartH-padT-padB)*(1-math.Min(v, maxY)/maxY) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`, chartW, chartH, chartW, chartH, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#fafafa" stroke="#ccc"/>`, padL, padT, chartW-padL-padR, chartH-padT-padB)
	for i := 0; i <= 4; i++ {
		v := maxY * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e4e4e4"/>`, padL, chartW-padR, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#555">%s</text>`, padL-4, y(v)+4, fmtAxis(v, unit))
	}
	step := 10.0
	for span/step > 12 {
		step *= 2
	}
	for t := 0.0; t <= span; t += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#555">%s</text>`, x(t), chartH-padB+16, Clock(time.Duration(t*float64(time.Second))))
	}
	for _, e := range r.Timeline {
		col, ok := markerKinds[e.Kind]
		if !ok {
			continue
		}
		xe := x(e.At.Seconds())
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s" stroke-dasharray="3,3"><title>%s</title></line>`,
			xe, xe, padT, chartH-padB, col, template.HTMLEscapeString(e.String()))
	}
	for i, c := range r.PerCell {
		if len(c.Series) == 0 {
			continue
		}
		var pts []string
		for _, p := range c.Series {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.T+0.5), y(value(p))))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>`,
			palette[i%len(palette)], strings.Join(pts, " "), template.HTMLEscapeString(c.Cell))
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
		R             *Report
		Cells         []htmlCell
		Avail, P99    template.HTML
		Failed, Total int
	}{R: r, Cells: cells,
		Avail: r.chart("availability per cell", func(p SeriesPoint) float64 { return 100 * p.Availability }, 100, "%"),
		P99:   r.chart("p99 latency per cell", func(p SeriesPoint) float64 { return p.P99MS }, niceMax(maxP99), "ms"),
		Total: len(r.Checks), Failed: r.failedChecks()}
	return reportTemplate.Execute(w, data)
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"clock": Clock,
	"pct":   pctf,
	"ms":    func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"join":  strings.Join,
	"kindClass": func(k string) string {
		switch k {
		case "QUORUM LOST", "REFUSED", "RESTART FAILED", "ERRORS", "ABORT", "HALTED", "CHECK FAILED", "KILL":
			return "bad"
		case "QUORUM RESTORED", "RESTORED", "RECOVERED", "CHECK OK":
			return "good"
		case "OVERRIDE":
			return "warn"
		}
		return ""
	},
	"describe": func(g Guardrail) string { return g.describe() },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Drill {{.R.Scenario}}: {{.R.Outcome}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:900px;color:#222;padding:0 12px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{text-align:left;padding:3px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.log td{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}.log td:nth-child(-n+2){white-space:nowrap}
.bad{color:#b00020;font-weight:600}.good{color:#1b7f2a;font-weight:600}.warn{color:#b36b00;font-weight:600}
.big{font-size:28px;font-weight:700}.tiles{display:flex;gap:12px;flex-wrap:wrap}.tile{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:150px}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
.muted{color:#666}
</style></head><body>
<h1>Drill {{.R.Scenario}}</h1>
<p class="muted">{{.R.Description}}</p>
<p>Started {{.R.Started.UTC.Format "2006-01-02 15:04:05"}} UTC on {{len .R.Cells}} cell(s), target <b>{{.R.Target}}</b>; <b class="{{if eq .R.Outcome "completed"}}good{{else}}bad{{end}}">{{.R.Outcome}}</b> after {{ms .R.Took}}.{{if .R.Error}} <span class="bad">{{.R.Error}}</span>{{end}}</p>
{{if .R.Load}}
<div class="tiles">
<div class="tile"><div class="muted">requests failed</div><div class="big">{{pct .R.Blast.FailedShare}}</div>{{.R.Blast.Failed}} of {{.R.Blast.Requests}}</div>
<div class="tile"><div class="muted">blast radius</div><div class="big">{{pct .R.Blast.LoadShare}}</div>of the load, in {{if .R.Blast.Cells}}{{join .R.Blast.Cells ", "}}{{else}}no cell{{end}}</div>
<div class="tile"><div class="muted">failed outside the cells acted on</div><div class="big {{if .R.Blast.Outside}}bad{{else}}good{{end}}">{{.R.Blast.Outside}}</div>requests</div>
<div class="tile"><div class="muted">checks</div><div class="big {{if .Failed}}bad{{else}}good{{end}}">{{.Total | printf "%d"}}{{if .Failed}} / {{.Failed}} failed{{end}}</div>{{if not .Failed}}all passed{{end}}</div>
</div>
<h2>Availability per cell</h2>
<p class="legend">{{range .Cells}}<span><i class="sw" style="background:{{.Colour}}"></i>{{.Cell}}{{if .ActedOn}} (acted on){{end}}</span>{{end}}<span class="muted">dashed: drill actions and quorum changes</span></p>
{{.Avail}}
<h2>p99 latency per cell</h2>
{{.P99}}
<h2>Blast radius per cell</h2>
<table><tr><th>cell</th><th>acted on</th><th>requests</th><th>failed</th><th>error rate</th><th>share of load</th><th>seconds with errors</th><th>p99</th></tr>
{{range .Cells}}<tr><td><i class="sw" style="background:{{.Colour}}"></i>{{.Cell}}</td><td>{{if .ActedOn}}yes{{else}}no{{end}}</td><td class="n">{{.Requests}}</td><td class="n {{if .Errors}}bad{{end}}">{{.Errors}}</td><td class="n">{{pct .ErrorRate}}</td><td class="n">{{pct .LoadShare}}</td><td class="n">{{.Unavailable}}</td><td class="n">{{printf "%.1f" .P99MS}} ms</td></tr>
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
