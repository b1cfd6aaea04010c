package bench

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
)

// rebuildSVG plots the rebuild time of one cell (RebuildMS) against the objects in
// the whole cluster, one line per cell count, on log-log axes, as a self-contained
// SVG document.
func rebuildSVG(rows []RebuildRow) string {
	const (
		width, height            = 760, 460
		left, right, top, bottom = 80, 170, 50, 60
	)
	plotW, plotH := float64(width-left-right), float64(height-top-bottom)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">Index rebuild: process start to complete map, per cell</text>`+"\n", left)
	if len(rows) == 0 {
		b.WriteString("</svg>\n")
		return b.String()
	}
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		xmin, xmax = math.Min(xmin, float64(r.Objects)), math.Max(xmax, float64(r.Objects))
		ymin, ymax = math.Min(ymin, r.RebuildMS), math.Max(ymax, r.RebuildMS)
	}
	// Whole decades around the data.
	x0, x1 := math.Floor(math.Log10(xmin)), math.Ceil(math.Log10(xmax))
	if x1 == x0 {
		x1++
	}
	y0, y1 := math.Floor(math.Log10(math.Max(ymin, 1))), math.Ceil(math.Log10(math.Max(ymax, 1)))
	if y1 == y0 {
		y1++
	}
	px := func(v float64) float64 { return float64(left) + (math.Log10(v)-x0)/(x1-x0)*plotW }
	py := func(v float64) float64 {
		return float64(top) + plotH - (math.Log10(math.Max(v, 1))-y0)/(y1-y0)*plotH
	}
	// Grid and axes.
	for d := x0; d <= x1; d++ {
		x := px(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, top, x, height-bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, height-bottom+18, countLabel(math.Pow(10, d)))
	}
	for d := y0; d <= y1; d++ {
		y := py(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, width-right, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-8, y+4, msLabel(math.Pow(10, d)))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", left, top, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">objects in the cluster (log)</text>`+"\n", float64(left)+plotW/2, height-16)
	fmt.Fprintf(&b, `<text transform="translate(20 %.0f) rotate(-90)" text-anchor="middle">rebuild time of one cell (log)</text>`+"\n", float64(top)+plotH/2)

	// One line per cell count.
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"}
	var cellCounts []int
	for _, r := range rows {
		if !slices.Contains(cellCounts, r.Cells) {
			cellCounts = append(cellCounts, r.Cells)
		}
	}
	slices.Sort(cellCounts)
	for k, c := range cellCounts {
		color := colors[k%len(colors)]
		var pts []RebuildRow
		for _, r := range rows {
			if r.Cells == c {
				pts = append(pts, r)
			}
		}
		slices.SortFunc(pts, func(a, b RebuildRow) int { return a.Objects - b.Objects })
		var path []string
		for _, p := range pts {
			path = append(path, fmt.Sprintf("%.1f,%.1f", px(float64(p.Objects)), py(p.RebuildMS)))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(path, " "), color)
		for _, p := range pts {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s</title></circle>`+"\n",
				px(float64(p.Objects)), py(p.RebuildMS), color,
				html.EscapeString(fmt.Sprintf("%d objects, %d cells: %.0f ms per cell, first serve %.0f ms", p.Objects, p.Cells, p.RebuildMS, p.FirstServeMS)))
		}
		ly := top + 10 + 22*k
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", width-right+16, ly, width-right+40, ly, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%d cell%s</text>`+"\n", width-right+46, ly+4, c, plural(c))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func countLabel(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%gG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

func msLabel(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%gs", v/1000)
	}
	return fmt.Sprintf("%gms", v)
}
