package cli

import (
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
	got := indexGroups(rows)
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
