package drill

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// The move section of a report: what a move step did, and what the load saw of it.

// moveSentence is the move in a few words, for the verdict.
func (m *MoveReport) sentence() string {
	s := fmt.Sprintf("move of %s to %s %s", m.Bucket, m.Target, m.Outcome)
	if m.Outcome == "done" {
		s += fmt.Sprintf(" in %s, writes paused %s", span(m.Took), m.WritePause.Round(time.Millisecond))
		if m.Others != nil {
			s += fmt.Sprintf(", %d of %d requests of other buckets failed", m.Others.Errors, m.Others.Requests)
		}
		if m.Moved != nil && m.Moved.Errors > 0 {
			s += fmt.Sprintf(", and %d of %d of the moved bucket's own", m.Moved.Errors, m.Moved.Requests)
		}
	}
	return s
}

// tile is the move's figure in the report's headline.
func (m *MoveReport) tile() Tile {
	t := Tile{Label: "Move of " + m.Bucket, Value: m.Outcome, Detail: fmt.Sprintf("%s → %s", orDash(m.Source), m.Target)}
	switch m.Outcome {
	case "done":
		t.Value = span(m.Took)
		t.Detail += fmt.Sprintf(", %d objects; writes paused %s", m.Objects, m.WritePause.Round(time.Millisecond))
		if m.Others != nil {
			t.Detail += fmt.Sprintf("; other buckets: %d of %d failed", m.Others.Errors, m.Others.Requests)
			if m.Others.Errors > 0 {
				t.Tone = "bad"
			}
		}
	case "refused":
	default:
		t.Tone = "bad"
	}
	return t
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fineClock writes a time since the drill began as T+m:ss.s: a move's cutover lasts
// less than a second.
func fineClock(d time.Duration) string {
	d = d.Round(100 * time.Millisecond)
	return fmt.Sprintf("T+%d:%04.1f", int(d/time.Minute), (d % time.Minute).Seconds())
}

// phases are the move's phases on the drill's clock, for the summary.
func (m *MoveReport) phases() string {
	var parts []string
	for _, p := range []struct {
		name string
		at   time.Duration
	}{{"start", m.Start}, {"write fence", m.Fence}, {"cutover", m.Cutover}, {"map flipped", m.Flipped}, {"end", m.End}} {
		if p.at > 0 {
			parts = append(parts, p.name+" "+fineClock(p.at))
		}
	}
	return strings.Join(parts, ", ")
}

// windowRows are the moved bucket's and everyone else's requests while it moved.
func (m *MoveReport) windowRows() [][]string {
	rows := [][]string{{"REQUESTS", "DUE", "FAILED", "ERROR CODES", "P50 MS", "P99 MS", "MAX MS"}}
	add := func(who, due string, w *WindowStats) {
		if w == nil {
			return
		}
		codes := "-"
		if len(w.ErrorCodes) > 0 {
			codes = errorCodes(w.ErrorCodes)
		}
		rows = append(rows, []string{who, due, fmt.Sprintf("%d of %d", w.Errors, w.Requests), codes,
			fmt.Sprintf("%.1f", w.P50MS), fmt.Sprintf("%.1f", w.P99MS), fmt.Sprintf("%.1f", w.MaxMS)})
	}
	during := fmt.Sprintf("%s to %s", fineClock(m.Start), fineClock(m.End))
	add("moved bucket", during, m.Moved)
	add("everyone else", during, m.Others)
	if m.CutoverWindow != nil {
		add("moved bucket, cutover", fmt.Sprintf("%s to %s", fineClock(m.Fence), fineClock(m.Flipped+CutoverGrace)), m.CutoverWindow)
	}
	return rows
}

// cellRows are the load per cell before, during and after the move.
func (m *MoveReport) cellRows() [][]string {
	rows := [][]string{{"CELL", "BEFORE", "DURING", "AFTER", "MOVED BUCKET BEFORE", "MOVED BUCKET AFTER"}}
	for _, c := range m.PerCell {
		rows = append(rows, []string{c.Cell, fmt.Sprintf("%.1f", c.Before), fmt.Sprintf("%.1f", c.During), fmt.Sprintf("%.1f", c.After),
			fmt.Sprintf("%.1f", c.MovedBefore), fmt.Sprintf("%.1f", c.MovedAfter)})
	}
	return rows
}

// moveNote says what the move section's tables count.
const moveNote = "Requests per second by the cell that answered them, all buckets (the moved one too), before the move, while it ran and after it. " +
	"The per-cell tables above count the steady load only (everyone else); the moved bucket's requests are counted here. " +
	"A request counts in the window it was due in; its latency runs from when it was due. The cutover window runs from the write fence to " +
	"0.5 s after the cell map flipped, while the gateways learn the new map. The load's client does not retry: a 503 of the write fence is an error here."

// summaryMove writes the move section for a terminal.
func (r *Report) summaryMove(w io.Writer) {
	m := r.Move
	if m == nil {
		return
	}
	fmt.Fprintf(w, "\nMove of bucket %s from %s to %s (plan %s, reason %q): %s\n", m.Bucket, orDash(m.Source), m.Target, orDash(m.PlanID), m.Reason, m.Outcome)
	if m.Error != "" {
		fmt.Fprintf(w, "  %s\n", m.Error)
	}
	fmt.Fprintf(w, "  planned %d objects (%s); copied %d objects (%s) in %d passes, in %s; writes paused %s\n",
		m.ObjectsPlanned, sizeText(m.BytesPlanned), m.Objects, sizeText(m.Bytes), m.Passes, span(m.Took), m.WritePause.Round(time.Millisecond))
	if p := m.phases(); p != "" {
		fmt.Fprintf(w, "  %s\n", p)
	}
	if m.ServedBy != "" {
		fmt.Fprintf(w, "  afterwards the bucket is served by %s\n", m.ServedBy)
	}
	if len(m.PerCell) > 0 {
		fmt.Fprintln(w, "\n  Load per cell around the move (requests/s)")
		table(w, m.cellRows())
	}
	if m.Moved != nil {
		fmt.Fprintln(w, "\n  While it moved")
		table(w, m.windowRows())
	}
}

// table writes rows as an indented table.
func table(w io.Writer, rows [][]string) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, row := range rows {
		fmt.Fprintf(tw, "  %s\n", strings.Join(row, "\t"))
	}
	tw.Flush()
}

// moveHTML is the move section of the HTML report.
func (r *Report) moveHTML() template.HTML {
	m := r.Move
	if m == nil {
		return ""
	}
	var b strings.Builder
	err := moveTemplate.Execute(&b, struct {
		M      *MoveReport
		Phases string
		Cells  [][]string
		Window [][]string
		Note   string
	}{m, m.phases(), m.cellRows(), m.windowRows(), moveNote})
	if err != nil {
		return template.HTML(template.HTMLEscapeString("move section: " + err.Error()))
	}
	return template.HTML(b.String())
}

var moveTemplate = template.Must(template.New("move").Funcs(template.FuncMap{
	"lower": strings.ToLower,
	"size":  sizeText,
	"ms":    func(d time.Duration) string { return d.Round(time.Millisecond).String() },
}).Parse(`<h2>Move of bucket {{.M.Bucket}}: {{.M.Source}} → {{.M.Target}}</h2>
<p class="note">Plan <b>{{.M.PlanID}}</b>, reason “{{.M.Reason}}”: <b class="{{if eq .M.Outcome "done"}}good{{else}}bad{{end}}">{{.M.Outcome}}</b>{{if .M.Error}} ({{.M.Error}}){{end}}.
Planned {{.M.ObjectsPlanned}} objects ({{size .M.BytesPlanned}}); copied {{.M.Objects}} objects ({{size .M.Bytes}}) in {{.M.Passes}} passes, in {{ms .M.Took}}; writes paused {{ms .M.WritePause}}.
{{if .Phases}}Phases: {{.Phases}}.{{end}}{{if .M.ServedBy}} Afterwards the bucket is served by <b>{{.M.ServedBy}}</b>.{{end}}</p>
{{if .M.PerCell}}<h3>Load per cell around the move (requests/s)</h3>
<table>{{range $i, $row := .Cells}}<tr>{{range $j, $v := $row}}{{if eq $i 0}}<th>{{lower $v}}</th>{{else if eq $j 0}}<td>{{$v}}</td>{{else}}<td class="n">{{$v}}</td>{{end}}{{end}}</tr>
{{end}}</table>{{end}}
{{if .M.Moved}}<h3>While it moved</h3>
<table>{{range $i, $row := .Window}}<tr>{{range $j, $v := $row}}{{if eq $i 0}}<th>{{lower $v}}</th>{{else if lt $j 2}}<td>{{$v}}</td>{{else if eq $j 3}}<td>{{$v}}</td>{{else}}<td class="n">{{$v}}</td>{{end}}{{end}}</tr>
{{end}}</table>{{end}}
<p class="note">{{.Note}}</p>
`))
