package localcluster

import (
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

// A restart over an existing data directory with a layout that would send requests
// for existing buckets to the wrong place is refused, with what to do.
func TestSameLayout(t *testing.T) {
	base := cell.DefaultTopology()
	with := func(f func(*cell.Topology)) cell.Topology { t := base; f(&t); return t }
	mapped := with(func(t *cell.Topology) { t.MapNodes = 3 })
	for _, tc := range []struct {
		name     string
		was, now cell.Topology
		want     string // "" for allowed
	}{
		{"same", base, base, ""},
		{"more gateways", base, with(func(t *cell.Topology) { t.Gateways = 3 }), ""},
		{"map group added", base, mapped, "without a map group"},
		{"map group dropped", mapped, base, "--map-nodes 3"},
		{"map group resized", mapped, with(func(t *cell.Topology) { t.MapNodes = 5 }), ""},
		{"cells changed without a map", base, with(func(t *cell.Topology) { t.Cells = 2 }), "--cells 4"},
		{"cells changed with a map", mapped, with(func(t *cell.Topology) { t.MapNodes, t.Cells = 3, 5 }), ""},
		{"slots changed", base, with(func(t *cell.Topology) { t.Slots = 64 }), "1024 slots partitioned by bucket"},
		{"partition changed", base, with(func(t *cell.Topology) { t.Partition = cell.PartitionByKey }), "partitioned by bucket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sameLayout(tc.was, tc.now)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
