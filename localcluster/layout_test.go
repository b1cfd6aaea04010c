package localcluster

import (
	"context"
	"os"
	"path/filepath"
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
		{"map group grown", mapped, with(func(t *cell.Topology) { t.MapNodes = 5 }), "--map-nodes 3"},
		{"map group shrunk", mapped, with(func(t *cell.Topology) { t.MapNodes = 1 }), "--map-nodes 3"},
		{"index group resized", base, with(func(t *cell.Topology) { t.IndexNodes = 5 }), "--index-nodes 3"},
		{"cells changed without a map", base, with(func(t *cell.Topology) { t.Cells = 2 }), "--cells 4"},
		{"cells added with a map", mapped, with(func(t *cell.Topology) { t.MapNodes, t.Cells = 3, 5 }), ""},
		{"cells removed with a map", mapped, with(func(t *cell.Topology) { t.MapNodes, t.Cells = 3, 2 }), "--cells 4"},
		{"partition changed with a map", mapped, with(func(t *cell.Topology) { t.MapNodes, t.Partition = 3, cell.PartitionByKey }), "partitioned by bucket"},
		{"slots changed with a map", mapped, with(func(t *cell.Topology) { t.MapNodes, t.Slots = 3, 64 }), "1024 slots"},
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

// Start itself refuses, before it makes anything: over a cluster.json that cannot be
// read, and over one of another layout.
func TestStartRefusesAnotherLayout(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
	}{
		{"unreadable cluster.json", "{not json", "fix or remove it"},
		{"another cell count", `{"version":1,"topology":{"cells":2}}`, "--cells 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, ClusterFileName), []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			topo := cell.DefaultTopology()
			topo.S3Addr = "127.0.0.1:0"
			_, err := Start(context.Background(), topo, dir, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v, want an error saying %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "pki")); !os.IsNotExist(err) {
				t.Errorf("a refused start made its certificates: %v", err)
			}
		})
	}
}
