package bench

import (
	"strings"
	"testing"
)

func TestRebuildSVGWithoutRows(t *testing.T) {
	if s := rebuildSVG(nil); !strings.HasPrefix(s, "<svg") || !strings.HasSuffix(s, "</svg>\n") {
		t.Fatalf("empty chart: %q", s)
	}
}

func TestRebuildSVGDrawsOneLinePerCellCount(t *testing.T) {
	rows := []RebuildRow{
		{Objects: 1000, Cells: 1, RebuildMS: 50},
		{Objects: 10000, Cells: 1, RebuildMS: 400},
		{Objects: 1000, Cells: 4, RebuildMS: 20},
		{Objects: 10000, Cells: 4, RebuildMS: 110},
	}
	s := rebuildSVG(rows)
	if got := strings.Count(s, "<polyline"); got != 2 {
		t.Errorf("%d lines, want one per cell count (2)", got)
	}
	if got := strings.Count(s, "<circle"); got != len(rows) {
		t.Errorf("%d points, want one per row (%d)", got, len(rows))
	}
	for _, legend := range []string{">1 cell<", ">4 cells<"} {
		if !strings.Contains(s, legend) {
			t.Errorf("no legend %q", legend)
		}
	}
}
