package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

// A new cluster of up gets a map group of three; a topology file, --map-nodes, or the
// cluster already in the data directory decide otherwise.
func TestUpMapGroupDefault(t *testing.T) {
	dir := t.TempDir()
	topoFile := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(topoFile, []byte("cells: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "old")
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	writeClusterFile(t, old, cell.DefaultTopology(), "http://127.0.0.1:1")
	mapped := filepath.Join(dir, "mapped")
	if err := os.MkdirAll(mapped, 0o700); err != nil {
		t.Fatal(err)
	}
	withMap := cell.DefaultTopology()
	withMap.MapNodes = 3
	writeClusterFile(t, mapped, withMap, "http://127.0.0.1:1")
	mapFile := filepath.Join(dir, "map1.yaml")
	if err := os.WriteFile(mapFile, []byte("map_nodes: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"a new cluster", []string{"--data-dir", filepath.Join(dir, "new")}, 3},
		{"a new cluster, --map-nodes 0", []string{"--data-dir", filepath.Join(dir, "new"), "--map-nodes", "0"}, 0},
		{"a new cluster, --map-nodes 5", []string{"--data-dir", filepath.Join(dir, "new"), "--map-nodes", "5"}, 5},
		{"a topology file without map_nodes", []string{"--data-dir", filepath.Join(dir, "new"), "--topology", topoFile}, 0},
		{"a cluster that ran without a map group", []string{"--data-dir", old}, 0},
		{"a cluster that ran with a map group, a file that does not say", []string{"--data-dir", mapped, "--topology", topoFile}, 3},
		{"a file that says", []string{"--data-dir", mapped, "--topology", mapFile}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newUpCommand()
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			var o upOptions
			o.dataDir, _ = cmd.Flags().GetString("data-dir")
			o.topology, _ = cmd.Flags().GetString("topology")
			o.mapNodes, _ = cmd.Flags().GetInt("map-nodes")
			topo, err := upTopology(cmd, o)
			if err != nil {
				t.Fatal(err)
			}
			if topo.MapNodes != tc.want {
				t.Errorf("map_nodes %d, want %d", topo.MapNodes, tc.want)
			}
		})
	}
}
