package s3bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Report is what Run measured: one row per operation and size.
type Report struct {
	Concurrency int           `json:"concurrency"`
	Duration    time.Duration `json:"duration_ns"`
	Passes      int           `json:"passes"`
	Started     time.Time     `json:"started"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	// Load is the machine's load average (1, 5, 15 min) at the end, where known.
	Load []float64 `json:"load_average,omitempty"`
	Rows []Row     `json:"rows"`
}

// Row is one operation on objects of one size: the median of the passes of each
// target, cellar's figures as ratios to the reference's, and every pass.
type Row struct {
	Op        string               `json:"op"`
	Size      int64                `json:"size_bytes"`
	SizeText  string               `json:"size"`
	Cellar    Measure              `json:"cellar"`
	Reference Measure              `json:"reference"`
	Ratio     Ratio                `json:"ratio"`
	Passes    map[string][]Measure `json:"passes"`
}

// Measure is one target's figures. In a row's median, Ops, Errors and ErrorCodes are
// the totals of the passes; the rates and latencies are medians.
type Measure struct {
	Ops        int64            `json:"ops"`
	Errors     int64            `json:"errors"`
	ErrorCodes map[string]int64 `json:"error_codes,omitempty"`
	Seconds    float64          `json:"seconds"`
	OpsPerSec  float64          `json:"ops_per_sec"`
	MiBPerSec  float64          `json:"mib_per_sec"`
	P50MS      float64          `json:"p50_ms"`
	P99MS      float64          `json:"p99_ms"`
	MaxMS      float64          `json:"max_ms"`
}

// Ratio is cellar's figure over the reference's: above 1 is more throughput (or more
// latency) than the reference.
type Ratio struct {
	OpsPerSec float64 `json:"ops_per_sec"`
	MiBPerSec float64 `json:"mib_per_sec"`
	P50       float64 `json:"p50"`
	P99       float64 `json:"p99"`
	Max       float64 `json:"max"`
}

// WriteTable prints the report for a terminal: per operation and size, cellar's
// figures, the reference's, and the ratio of the two.
func WriteTable(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "%d clients, %v per operation and size, median of %d interleaved passes (ran %s)",
		r.Concurrency, r.Duration, r.Passes, r.Elapsed.Round(time.Second))
	if len(r.Load) == 3 {
		fmt.Fprintf(w, "; load average %.2f %.2f %.2f", r.Load[0], r.Load[1], r.Load[2])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "OP\tSIZE\tTARGET\tOPS/S\tMIB/S\tP50 MS\tP99 MS\tMAX MS\tERRORS\t")
	for _, row := range r.Rows {
		line := func(name string, m Measure) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t\n", row.Op, row.SizeText, name,
				m.OpsPerSec, m.MiBPerSec, m.P50MS, m.P99MS, m.MaxMS, m.Errors)
		}
		line(TargetCellar, row.Cellar)
		line(TargetReference, row.Reference)
		q := row.Ratio
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t\t\n", row.Op, row.SizeText, "ratio",
			q.OpsPerSec, q.MiBPerSec, q.P50, q.P99, q.Max)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "ratio: cellar / reference. The reference keeps one fsynced copy of each object in a file on the same disk:")
	fmt.Fprintln(w, "a floor for one durable copy, not a product. Throughput ratios above 1 beat it; latency ratios below 1 do.")
	return nil
}
