package cli

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

func TestIndexGroupsSummary(t *testing.T) {
	node := func(id, cellID string, st cell.State, leader bool, applied uint64) statusNode {
		return statusNode{Node: cell.Node{ID: id, Role: cell.RoleIndex, Cell: cellID, State: st, Leader: leader, AppliedIndex: applied}}
	}
	rows := []statusNode{
		node("cell-0-index-0", "cell-0", cell.StateReady, true, 100),
		node("cell-0-index-1", "cell-0", cell.StateReady, false, 97),
		node("cell-0-index-2", "cell-0", StateDown, false, 0),
		node("cell-1-index-0", "cell-1", cell.StateReady, false, 50),
		node("cell-1-index-1", "cell-1", StateDown, false, 0),
		node("cell-1-index-2", "cell-1", StateDown, false, 0),
		node("cell-2-index-0", "cell-2", cell.StateReady, false, 0), // unreplicated: no group
		{Node: cell.Node{ID: "cell-0-storage-0", Role: cell.RoleStorage, Cell: "cell-0", State: cell.StateReady}},
	}
	got := indexGroups(rows, declare(nil, rows))
	want := []indexGroup{
		{Cell: "cell-0", Size: 3, Up: 2, Leader: "cell-0-index-0", Quorum: true, MaxLag: 3},
		{Cell: "cell-1", Size: 3, Up: 1, Quorum: false},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d groups %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("group %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestStatusAfterQuorumLost: status run after two of cell-1's three index nodes died
// never sees them in the gossip; it must still count them, and judge cell-1's group as
// one of three without quorum, from the group size the index nodes gossip or from a
// topology.
func TestStatusAfterQuorumLost(t *testing.T) {
	topo := cell.Topology{Cells: 2, IndexNodes: 3, PlacementNodes: 1, StorageNodes: 2, Gateways: 1}
	seen := func(groupSize int) []cell.Node {
		var out []cell.Node
		for _, spec := range topo.Nodes() {
			if spec.ID == "cell-1-index-1" || spec.ID == "cell-1-index-2" {
				continue
			}
			n := cell.Node{ID: spec.ID, Role: spec.Role, Cell: spec.Cell, State: cell.StateReady}
			if spec.Role == cell.RoleIndex {
				n.GroupSize = groupSize
				n.Leader = spec.ID == "cell-0-index-0"
			}
			out = append(out, n)
		}
		return out
	}
	three := topo
	three.Cells = 3
	for _, tc := range []struct {
		name              string
		seen              []cell.Node
		topo              *cell.Topology
		total, ready      int
		groups, tableRows []string
	}{
		{"gossiped group size", seen(3), nil, 13, 11,
			[]string{"cell-0 3/3 leader cell-0-index-0 quorum", "cell-1 1/3 LOST"},
			[]string{"cell-1-index-1 down (never seen)", "11 of 13 nodes ready, 2 down"}},
		{"topology", seen(0), &topo, 13, 11,
			[]string{"cell-0 3/3 leader cell-0-index-0 quorum", "cell-1 1/3 LOST"},
			[]string{"cell-1-index-2 down (never seen)", "11 of 13 nodes ready, 2 down"}},
		{"topology with a cell never seen", seen(0), &three, 19, 11,
			[]string{"cell-0 3/3 leader cell-0-index-0 quorum", "cell-1 1/3 LOST", "cell-2 0/3 LOST"},
			[]string{"cell-2-storage-1 down (never seen)", "11 of 19 nodes ready, 8 down"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := buildReport(tc.seen, nil, tc.topo)
			if rep.Total != tc.total || rep.Ready != tc.ready || rep.Down != tc.total-tc.ready {
				t.Errorf("counts %d/%d ready, %d down; want %d/%d, %d down", rep.Ready, rep.Total, rep.Down, tc.ready, tc.total, tc.total-tc.ready)
			}
			var groups []string
			for _, g := range rep.IndexGroups {
				s := fmt.Sprintf("%s %d/%d", g.Cell, g.Up, g.Size)
				if g.Leader != "" {
					s += " leader " + g.Leader
				}
				if g.Quorum {
					s += " quorum"
				} else {
					s += " LOST"
				}
				groups = append(groups, s)
			}
			if !slices.Equal(groups, tc.groups) {
				t.Errorf("index groups %q, want %q", groups, tc.groups)
			}
			var buf bytes.Buffer
			printStatusTable(&buf, rep)
			squeezed := strings.Join(strings.Fields(buf.String()), " ") // columns aligned by spaces
			for _, want := range tc.tableRows {
				if !strings.Contains(squeezed, want) {
					t.Errorf("table lacks %q:\n%s", want, buf.String())
				}
			}
		})
	}
}
