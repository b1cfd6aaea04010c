package router

import (
	"testing"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

type members []cell.Node

func (m members) Nodes() []cell.Node { return m }

func (m members) Ready(cellID string, role cell.Role) []cell.Node {
	var out []cell.Node
	for _, n := range m {
		if n.Cell == cellID && n.Role == role && n.State == cell.StateReady {
			out = append(out, n)
		}
	}
	return out
}

func TestIndexOfARebuildingCell(t *testing.T) {
	rebuilding := cell.Node{ID: "cell-0-index-0", Role: cell.RoleIndex, Cell: "cell-0", State: cell.StateRebuilding, GRPCAddr: "127.0.0.1:1"}
	for _, tc := range []struct {
		name       string
		indexNodes int
		nodes      members
		ok         bool
	}{
		{"standalone node rebuilding: reads go to it", 1, members{rebuilding}, true},
		{"group member rebuilding: not before it has joined its group", 3, members{rebuilding}, false},
		{"standalone node starting", 1, members{{ID: "cell-0-index-0", Role: cell.RoleIndex, Cell: "cell-0", State: cell.StateStarting, GRPCAddr: "127.0.0.1:1"}}, false},
		{"other cell rebuilding", 1, members{{ID: "cell-1-index-0", Role: cell.RoleIndex, Cell: "cell-1", State: cell.StateRebuilding, GRPCAddr: "127.0.0.1:1"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo := cell.DefaultTopology()
			topo.IndexNodes = tc.indexNodes
			conns := daemon.NewConns()
			defer conns.Close()
			_, err := New(topo, tc.nodes, conns).Index("cell-0")
			if (err == nil) != tc.ok {
				t.Fatalf("Index: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestStorageOfAReadOnlyNode: a storage node that cannot write still serves reads and
// deletes, so the router reaches it; a node that is starting or draining it does not.
func TestStorageOfAReadOnlyNode(t *testing.T) {
	node := func(state cell.State) members {
		return members{{ID: "cell-0-storage-0", Role: cell.RoleStorage, Cell: "cell-0", State: state, GRPCAddr: "127.0.0.1:1"}}
	}
	for _, tc := range []struct {
		nodes  members
		cellID string
		ok     bool
	}{
		{node(cell.StateReady), "cell-0", true},
		{node(cell.StateReadOnly), "cell-0", true},
		{node(cell.StateStarting), "cell-0", false},
		{node(cell.StateDraining), "cell-0", false},
		{node(cell.StateReady), "cell-1", false},
	} {
		t.Run(string(tc.nodes[0].State)+" in "+tc.cellID, func(t *testing.T) {
			conns := daemon.NewConns()
			defer conns.Close()
			_, err := New(cell.DefaultTopology(), tc.nodes, conns).Storage(tc.cellID, "cell-0-storage-0")
			if (err == nil) != tc.ok {
				t.Fatalf("Storage: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
