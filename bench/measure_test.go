package bench

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/cellarsim/cellar/cell/index/seed"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{7}, 7},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{900, 100, 110}, 110}, // one slow run does not move it
	} {
		in := append([]float64(nil), tc.in...)
		if got := median(in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("median reordered its argument: %v", in)
		}
	}
}

func TestPerOfNothingMeasuredIsZero(t *testing.T) {
	if got := per(10, 0); got != 0 {
		t.Errorf("per(10, 0) = %v, want 0", got)
	}
	if got := per(10, 4); got != 2.5 {
		t.Errorf("per(10, 4) = %v, want 2.5", got)
	}
}

// TestScanCellsCountsEveryCellsObjects: the reference scan reads the objects of
// every database it is given, and nothing else (the buckets seeding creates).
func TestScanCellsCountsEveryCellsObjects(t *testing.T) {
	base := t.TempDir()
	counts := []int{300, 700}
	var dirs []string
	for i, n := range counts {
		dir := filepath.Join(base, indexNodeID(i))
		if err := seed.Seed(dir, seed.Options{Bucket: seed.Bucket(i), Objects: n, TableObjects: 128}); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	n, _, _, err := scanCells(dirs)
	if err != nil || n != 1000 {
		t.Fatalf("scanCells = %d, %v; want 1000 objects", n, err)
	}
	if _, _, _, err := scanCells([]string{filepath.Join(base, "missing")}); err == nil {
		t.Fatal("scanCells of a missing database: no error")
	}
}
