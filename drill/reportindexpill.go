package drill

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// IndexPillReport is what a poison step of kind index did to its cell, as the gateway
// pill's PoisonReport is for the gateways: the pill armed, the index nodes it crashed,
// how long the cell was down and when it was restored. Times are on the drill's clock.
type IndexPillReport struct {
	Cell   string `json:"cell"`
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	// Sender is who wrote the pill's object ("tenant NAME", or "a client" on a cluster
	// without tenants), and WriteOutcome what that write got ("HTTP 503", "no answer",
	// "answered").
	Sender       string `json:"sender"`
	WriteOutcome string `json:"write_outcome"`
	// ArmedAt is when the pill was armed.
	ArmedAt time.Duration `json:"armed_at_ns"`
	// IndexNodes are the index nodes of the cell, and Crashed those that ended on
	// applying the pill's write, in the order they were seen down.
	IndexNodes []string `json:"index_nodes"`
	Crashed    []string `json:"nodes_crashed"`
	// DownAt is when a majority of the index nodes were seen down (the cell's index
	// lost its quorum), DisarmedAt when the pill was disarmed and RestoredAt when the
	// cell was settled again after its index nodes were started: the cell was down
	// from DownAt to RestoredAt. Restored is false when it was not (the step failed
	// first); RestoredAt is then zero.
	DownAt     time.Duration `json:"down_at_ns"`
	DisarmedAt time.Duration `json:"disarmed_at_ns,omitempty"`
	RestoredAt time.Duration `json:"restored_at_ns,omitempty"`
	Restored   bool          `json:"restored"`
}

// DownFor is how long the cell was down: from its index losing its quorum to the cell
// settled again (0 when it was not restored).
func (p IndexPillReport) DownFor() time.Duration {
	if !p.Restored || p.DownAt == 0 {
		return 0
	}
	return p.RestoredAt - p.DownAt
}

// standing are the index nodes the pill did not crash: those that never learned the
// entry was committed.
func (p IndexPillReport) standing() []string {
	var out []string
	for _, n := range p.IndexNodes {
		if !slices.Contains(p.Crashed, n) {
			out = append(out, n)
		}
	}
	return out
}

// sentence is the index pill in the verdict line, which says how long the cell was
// down besides (Downtime).
func (p IndexPillReport) sentence() string {
	s := fmt.Sprintf("index pill: %d of %d index nodes of %s crashed", len(p.Crashed), len(p.IndexNodes), p.Cell)
	if !p.Restored {
		s += fmt.Sprintf(", %s not restored", p.Cell)
	}
	return s
}

// rows is the index pill report as label and value, for the summary and the page.
func (p IndexPillReport) rows() [][2]string {
	crashed := fmt.Sprintf("%d of %d: %s", len(p.Crashed), len(p.IndexNodes), cmp.Or(strings.Join(p.Crashed, ", "), "none"))
	if rest := p.standing(); len(rest) > 0 && len(p.Crashed) > 0 {
		crashed += fmt.Sprintf("; %s stayed up without a quorum (never learned the entry was committed)", strings.Join(rest, ", "))
	}
	down := "not down"
	switch {
	case p.DownAt > 0 && p.Restored:
		down = fmt.Sprintf("%s (index quorum lost at %s, settled again at %s)", span(p.DownFor()), Clock(p.DownAt), Clock(p.RestoredAt))
	case p.DownAt > 0:
		down = fmt.Sprintf("from %s (index quorum lost), not restored by the step", Clock(p.DownAt))
	}
	restored := "no"
	if p.Restored {
		restored = fmt.Sprintf("%s: %s from disarming (%s) to the cell settled, the pill's write replayed", Clock(p.RestoredAt),
			span(p.RestoredAt-p.DisarmedAt), Clock(p.DisarmedAt))
	}
	return [][2]string{
		{"object", fmt.Sprintf("%s/%s, written by %s: %s", p.Bucket, p.Key, p.Sender, p.WriteOutcome)},
		{"armed at", Clock(p.ArmedAt)},
		{"nodes crashed", crashed},
		{"cell down for", down},
		{"restored at", restored},
	}
}

// summaryIndexPill writes what each index pill did, for a terminal.
func (r *Report) summaryIndexPill(w io.Writer) {
	for _, p := range r.IndexPill {
		fmt.Fprintf(w, "\nIndex pill (%s, %d index nodes)\n", p.Cell, len(p.IndexNodes))
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, row := range p.rows() {
			fmt.Fprintf(tw, "  %s\t%s\n", row[0], row[1])
		}
		tw.Flush()
	}
}
