package bench

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestWriteRebuildCSV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rebuild.csv")
	rows := []RebuildRow{
		{Objects: 1000, Cells: 1, ObjectsPerCell: 1000, Runs: 3, RebuildMS: 12.34, Ratio: 0.5},
		{Objects: 1000, Cells: 4, ObjectsPerCell: 250, Runs: 3, AllCellsRebuildMS: 40, LoadAvg: 1.5},
	}
	if err := writeRebuildCSV(path, rows); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 3 {
		t.Fatalf("%d lines, want a header and 2 rows", len(records))
	}
	if !slices.Equal(records[0], rebuildColumns) {
		t.Errorf("header %v", records[0])
	}
	at := func(rec []string, col string) string { return rec[slices.Index(rebuildColumns, col)] }
	for _, c := range []struct {
		rec       []string
		col, want string
	}{
		{records[1], "objects_per_cell", "1000"},
		{records[1], "rebuild_ms", "12.3"},
		{records[1], "ratio", "0.500"},
		{records[2], "cells", "4"},
		{records[2], "all_cells_rebuild_ms", "40.0"},
		{records[2], "load_avg_1m", "1.50"},
	} {
		if got := at(c.rec, c.col); got != c.want {
			t.Errorf("%s = %q, want %q", c.col, got, c.want)
		}
	}
}

func TestWriteRebuildTable(t *testing.T) {
	var b bytes.Buffer
	rows := []RebuildRow{{Objects: 1000, Cells: 1, RebuildMS: 12}, {Objects: 1000, Cells: 4, AllCellsRebuildMS: 40}}
	if err := WriteRebuildTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "rebuilt ms/cell") {
		t.Fatalf("table:\n%s", b.String())
	}
	// The all-cells column shows "-" where it was not measured.
	if f := strings.Fields(lines[1]); f[4] != "-" {
		t.Errorf("row of one cell: all cells %q, want -", f[4])
	}
	if f := strings.Fields(lines[2]); f[4] != "40" {
		t.Errorf("row of four cells: all cells %q, want 40", f[4])
	}
}

func TestWriteCatchUpTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCatchUpTable(&b, []CatchUpRow{{Writes: 20, WritesPerS: 100, ReadyMS: 5, CatchUpMS: 9, Snapshot: true}}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 2 || !slices.Equal(strings.Fields(lines[1]), []string{"20", "100", "5", "9", "true"}) {
		t.Fatalf("table:\n%s", b.String())
	}
}

// TestRebuildColumnsAreTheJSONNames: the CSV and the JSON output name each
// measure the same way.
func TestRebuildColumnsAreTheJSONNames(t *testing.T) {
	rt := reflect.TypeFor[RebuildRow]()
	var names []string
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		names = append(names, name)
	}
	if !slices.Equal(names, rebuildColumns) {
		t.Fatalf("JSON names %v\nCSV columns %v", names, rebuildColumns)
	}
	if got := len(RebuildRow{}.fields()); got != len(rebuildColumns) {
		t.Fatalf("a CSV record has %d fields, the header %d", got, len(rebuildColumns))
	}
}
