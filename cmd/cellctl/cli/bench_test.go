package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/bench"
)

func TestBenchRebuild(t *testing.T) {
	if testing.Short() {
		t.Skip("starts index nodes as processes")
	}
	bin := cellctlBinary(t)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "bench", "rebuild", "--objects", "3000,5000", "--cells", "1,2", "--runs", "2", "--output", "json", "--dir", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	var rows []bench.RebuildRow
	if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
		t.Fatalf("output is not JSON rows: %v\n%s", err, stdout.String())
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4", len(rows))
	}
	for _, r := range rows {
		if r.FirstServeMS <= 0 || r.RebuildMS <= 0 || r.ScanObjectsPerS <= 0 || r.RebuildObjectsPerS <= 0 || r.Ratio <= 0 || r.HeapBytesPerObject <= 0 {
			t.Errorf("row %+v has an empty measurement", r)
		}
		if r.Runs != 2 {
			t.Errorf("row %+v: %d runs, want the 2 asked for", r, r.Runs)
		}
		if (r.Cells > 1) != (r.AllCellsRebuildMS > 0) {
			t.Errorf("row %+v: all-cells restart measured only with several cells", r)
		}
	}
	// The fields the JSON output promises.
	var raw []map[string]any
	json.Unmarshal(stdout.Bytes(), &raw)
	for _, k := range []string{"objects", "cells", "first_serve_ms", "rebuild_ms", "rebuild_objects_per_s", "scan_objects_per_s", "ratio", "heap_bytes_per_object"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("JSON rows lack %q", k)
		}
	}
	csv, err := os.ReadFile(filepath.Join(dir, "rebuild.csv"))
	if err != nil || len(strings.Split(strings.TrimSpace(string(csv)), "\n")) != 5 {
		t.Fatalf("rebuild.csv: %v\n%s", err, csv)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "rebuild.svg"))
	if err != nil || !strings.HasPrefix(string(svg), "<svg") || !strings.Contains(string(svg), "2 cells") {
		t.Fatalf("rebuild.svg: %v\n%.300s", err, svg)
	}
	if !strings.Contains(stderr.String(), "run 2 of 2") {
		t.Errorf("no progress per run on stderr:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "seeding 5000 objects into 2 cells") {
		t.Errorf("no seeding progress on stderr:\n%s", stderr.String())
	}
}

// TestBenchUsageErrors: a bench command line out of range is a usage error,
// named by its flag, and nothing runs.
func TestBenchUsageErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bench")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rebuild", "--dir", dir, "--output", "yaml"}, `--output "yaml": want text or json`},
		{[]string{"rebuild", "--dir", dir, "--runs", "0"}, "--runs: 0 is not between 1 and 100"},
		{[]string{"rebuild", "--dir", dir, "--pending", "wait"}, `--pending "wait": want pebble or slowdown`},
		{[]string{"rebuild", "--dir", dir, "--objects", "10,-1"}, "--objects: -1 is not a positive count"},
		{[]string{"rebuild", "--dir", dir, "--cells", "257"}, "--cells: 257 is not between 1 and 256"},
		{[]string{"catchup", "--output", "yaml"}, `--output "yaml": want text or json`},
		{[]string{"catchup", "--writes", "0"}, "--writes 0: want 1 to 10000000"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			code, _, stderr := run(t, append([]string{"bench"}, tc.args...)...)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d (stderr %q)", code, ExitUsage, stderr)
			}
			checkOneLine(t, stderr, tc.want)
		})
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused bench created its directory (%v)", err)
	}
}
