package bench

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
)

// rebuildColumns head the CSV file of the rebuild: the JSON names of RebuildRow's
// fields, in order.
var rebuildColumns = []string{"objects", "cells", "objects_per_cell", "runs", "first_serve_ms", "rebuild_ms", "all_cells_rebuild_ms",
	"rebuild_objects_per_s", "scan_objects_per_s", "ratio", "rebuild_objects_per_cpu_s", "scan_objects_per_cpu_s", "cpu_ratio",
	"heap_bytes_per_object", "map_bytes_per_object", "load_avg_1m"}

// fields is r as a CSV record under rebuildColumns.
func (r RebuildRow) fields() []string {
	f := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	return []string{strconv.Itoa(r.Objects), strconv.Itoa(r.Cells), strconv.Itoa(r.ObjectsPerCell), strconv.Itoa(r.Runs),
		f(r.FirstServeMS, 1), f(r.RebuildMS, 1), f(r.AllCellsRebuildMS, 1),
		f(r.RebuildObjectsPerS, 0), f(r.ScanObjectsPerS, 0), f(r.Ratio, 3),
		f(r.RebuildObjectsPerCPUS, 0), f(r.ScanObjectsPerCPUS, 0), f(r.CPURatio, 3),
		f(r.HeapBytesPerObject, 1), f(r.MapBytesPerObject, 1), f(r.LoadAvg, 2)}
}

// writeRebuildCSV writes rows to the file at path, a header line first.
func writeRebuildCSV(path string, rows []RebuildRow) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write the CSV: %w", err)
	}
	w := csv.NewWriter(f)
	w.Write(rebuildColumns)
	for _, r := range rows {
		w.Write(r.fields())
	}
	w.Flush()
	if err := errors.Join(w.Error(), f.Close()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteRebuildTable prints rows as a table for a terminal.
func WriteRebuildTable(w io.Writer, rows []RebuildRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "objects\tcells\tfirst serve ms\trebuilt ms/cell\tall cells ms\trebuild obj/s\tscan obj/s\tratio\tcpu ratio\theap B/obj\tmap B/obj\tload\t")
	for _, r := range rows {
		all := "-"
		if r.AllCellsRebuildMS > 0 {
			all = fmt.Sprintf("%.0f", r.AllCellsRebuildMS)
		}
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.0f\t%s\t%.0f\t%.0f\t%.2f\t%.2f\t%.0f\t%.0f\t%.1f\t\n",
			r.Objects, r.Cells, r.FirstServeMS, r.RebuildMS, all, r.RebuildObjectsPerS, r.ScanObjectsPerS,
			r.Ratio, r.CPURatio, r.HeapBytesPerObject, r.MapBytesPerObject, r.LoadAvg)
	}
	return tw.Flush()
}
