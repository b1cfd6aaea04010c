package drill

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// Geometry of the comparison's availability strips, in the SVG's own units (the chart
// scales to the page's width). One strip per cell, every side on the same time axis.
const (
	cmpW      = 1400
	cmpLabelW = 130 // the cells' names
	cmpRightW = 20
	cmpStripH = 38
	cmpGap    = 8
	cmpMarkH  = 56 // the two rows of event labels above the strips
	cmpAxisH  = 44
	cmpFont   = 22
	cmpServed = "#37474f" // the share of a second's requests served
	cmpFailed = "#c62828" // the share that failed
	cmpEmpty  = "#eceff1" // no load in that second
)

// compareSpan is the seconds since the start of the load that both sides' charts
// cover: up to the last second either side has.
func (c *Comparison) compareSpan() float64 {
	end := 10.0
	for _, r := range []*Report{c.A.Report, c.B.Report} {
		start := float64(r.LoadStartMS) / 1000
		for _, pc := range r.PerCell {
			if n := len(pc.Series); n > 0 {
				end = math.Max(end, pc.Series[n-1].T-start+1)
			}
		}
	}
	return math.Ceil(end/10) * 10
}

// strips draws one side's per-cell availability, seconds since the start of its load
// on an axis of span seconds.
func (s CompareSide) strips(span float64) template.HTML {
	r := s.Report
	start := float64(r.LoadStartMS) / 1000
	pw := float64(cmpW - cmpLabelW - cmpRightW)
	x := func(t float64) float64 { return cmpLabelW + t/span*pw }
	h := cmpMarkH + len(r.PerCell)*(cmpStripH+cmpGap) + cmpAxisH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="strips" data-side="%s" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="availability per cell, side %s" font-family="system-ui,sans-serif">`,
		s.Name, cmpW, h, s.Name)
	top := func(i int) int { return cmpMarkH + i*(cmpStripH+cmpGap) }
	for i, pc := range r.PerCell {
		y := top(i)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="%d" font-weight="600" text-anchor="end">%s</text>`, cmpLabelW-12, y+cmpStripH/2+8, cmpFont, template.HTMLEscapeString(pc.Cell))
		b.WriteString(`<g class="strip" data-cell="` + template.HTMLEscapeString(pc.Cell) + `">`)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`, cmpLabelW, y, pw, cmpStripH, cmpEmpty)
		for _, p := range pc.Series {
			t := p.T - start
			if t < 0 || t >= span || p.Requests == 0 {
				continue
			}
			x0, w := x(t), pw/span+0.3
			failed := (1 - p.Availability) * cmpStripH
			if failed > 0 {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%.1f" fill="%s"/>`, x0, y, w, failed, cmpFailed)
			}
			if served := cmpStripH - failed; served > 0 {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x0, float64(y)+failed, w, served, cmpServed)
			}
		}
		b.WriteString(`</g>`)
	}
	// The moments a room looks for, across the strips. A label goes on the upper row
	// unless it would run into the last one there, then on the lower row; a label that
	// fits on neither is left out (its dashed line stays).
	bottom := top(len(r.PerCell)) - cmpGap
	rowEnd := [2]float64{-1e9, -1e9}
	for _, e := range r.Timeline {
		var label string
		switch e.Kind {
		case "QUORUM LOST":
			label = "quorum lost"
		case "RESTART FAILED":
			label = "wrong-order restart failed"
		case "RESTORED":
			label = "restored"
		default:
			continue
		}
		t := e.At.Seconds() - start
		if t < 0 || t > span {
			continue
		}
		xe := x(t)
		// The line starts below both rows of labels, so that it crosses none.
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#000" stroke-width="2" stroke-dasharray="6 5"/>`, xe, cmpMarkH-6, xe, bottom)
		// Text of this size is about 0.55 of its font size wide per character.
		w := float64(len(label))*float64(cmpFont-2)*0.55 + 12
		x0, x1, anchor := xe+4, xe+4+w, "start"
		if x1 > cmpW {
			x0, x1, anchor = xe-4-w, xe, "end"
		}
		for row := range rowEnd {
			if x0 < rowEnd[row] {
				continue
			}
			tx := xe + 4
			if anchor == "end" {
				tx = xe - 4
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="%d" text-anchor="%s">%s</text>`, tx, 20+row*26, cmpFont-2, anchor, label)
			rowEnd[row] = x1
			break
		}
	}
	// The shared time axis.
	ay := bottom + 8
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%.1f" y2="%d" stroke="#000" stroke-width="2"/>`, cmpLabelW, ay, cmpLabelW+pw, ay)
	step := 10.0
	if span > 150 {
		step = 30
	}
	for t := 0.0; t <= span; t += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#000" stroke-width="2"/>`, x(t), ay, x(t), ay+8)
		anchor := "middle"
		if t+step > span {
			anchor = "end"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="%d" text-anchor="%s">%s</text>`, x(t), ay+32, cmpFont-2, anchor, Clock(secondsDur(t)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// HTML writes the comparison as one self-contained page for a projector: both sides'
// figures in two columns, a one-line verdict each, and every cell's availability on
// one time axis.
func (c *Comparison) HTML(w io.Writer) error {
	span := c.compareSpan()
	type side struct {
		F      SideFigures
		Strips template.HTML
		Report string
	}
	data := struct {
		Title string
		Sides []side
	}{Title: c.Title}
	for _, s := range []CompareSide{c.A, c.B} {
		data.Sides = append(data.Sides, side{F: s.Figures(), Strips: s.strips(span), Report: strings.ToLower(s.Name) + "/report.html"})
	}
	return compareTemplate.Execute(w, data)
}

var compareTemplate = template.Must(template.New("compare").Funcs(template.FuncMap{
	"pct":   pctf,
	"span":  span,
	"join":  strings.Join,
	"lower": strings.ToLower,
	"ms":    func(ms int64) string { return span(time.Duration(ms) * time.Millisecond) },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body{font:24px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:20px auto;max-width:1500px;color:#111;padding:0 20px}
h1{font-size:40px;margin:0 0 16px}h2{font-size:30px;margin:30px 0 8px}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:28px}
.side{border:3px solid #cfd8dc;border-radius:10px;padding:14px 20px}
.side h2{margin:0 0 6px;font-size:32px}
.verdict{font-size:28px;font-weight:700;margin:6px 0 12px}
.fig{display:grid;grid-template-columns:auto 1fr;gap:4px 18px;align-items:baseline}
.fig .k{color:#37474f}.fig .v{font-size:32px;font-weight:700}
.bad{color:#c62828}.warn{color:#b45309}.off{background:#c62828;color:#fff;font-weight:800;padding:2px 10px;border-radius:4px;white-space:nowrap}
ul{margin:4px 0 0 0;padding-left:24px;font-size:20px}
.key{font-size:20px;color:#37474f}.sw{display:inline-block;width:20px;height:20px;vertical-align:-3px;margin:0 6px 0 14px}
a{color:#0d47a1}
</style></head><body>
<h1>{{.Title}}</h1>
<div class="cols">{{range .Sides}}
<section class="side" data-side="{{.F.Name}}">
<h2>{{.F.Name}}: {{.F.Setup}}{{if .F.GuardrailsOff}} <span class="off">NO GUARDRAILS</span>{{end}}</h2>
<p class="verdict {{.F.Severity}}" data-verdict>{{.F.Verdict}}</p>
<div class="fig">
<span class="k">requests failed</span><span class="v {{.F.Severity}}" data-failed-share>{{pct .F.FailedShare}}</span>
<span class="k">cells hit</span><span class="v" data-cells-hit>{{len .F.CellsHit}} of {{.F.Cells}}{{if .F.CellsHit}} ({{join .F.CellsHit ", "}}){{end}}</span>
<span class="k">time to recover</span><span class="v" data-recovery>{{if .F.Recovery}}{{span .F.Recovery}}{{if not .F.Restored}} (not back){{end}}{{else}}—{{end}}</span>
<span class="k">refused</span><span class="v" data-refused>{{len .F.Refused}}</span>
{{with .F.Poison}}<span class="k">tenants fully down</span><span class="v{{if .DownTenants}} bad{{end}}" data-tenants-down>{{pct .FullyDown}} <small>({{len .DownTenants}} of {{.Tenants}})</small></span>
<span class="k">formula</span><span class="v" data-formula>{{pct .Formula}} <small>{{.FormulaText}}</small></span>
<span class="k">partly affected</span><span class="v" data-tenants-partly>{{pct .PartlyAffected}}</span>
<span class="k">untouched</span><span class="v" data-tenants-untouched>{{pct .Untouched}}</span>
<span class="k">gateways crashed</span><span class="v" data-gateways-crashed>{{len .Crashed}} of {{.Gateways}}</span>
<span class="k">every tenant served again in</span><span class="v" data-poison-recovery>{{ms .RecoverMS}}</span>
{{end}}</div>
{{if .F.Refused}}<ul>{{range .F.Refused}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .F.WouldRefuse}}<p class="key">Let through, the guardrails being off:</p><ul class="bad">{{range .F.WouldRefuse}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p class="key"><a href="{{.Report}}">the full report of {{.F.Name}}</a></p>
</section>{{end}}
</div>
<h2>Availability per cell, on one time axis (since the load began)</h2>
<p class="key"><span class="sw" style="background:#37474f"></span>requests served<span class="sw" style="background:#c62828"></span>requests failed</p>
{{range .Sides}}<h2>{{.F.Name}}: {{.F.Setup}}</h2>
{{.Strips}}
{{end}}
</body></html>
`))

func secondsDur(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
