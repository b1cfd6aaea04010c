package router

import (
	"testing"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

type members []cell.Node

func (m members) Nodes() []cell.Node { return m }

func (m members) Find(id string) (cell.Node, bool) {
	for _, node := range m {
		if node.ID == id {
			return node, true
		}
	}
	return cell.Node{}, false
}

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

// TestIndexLeaderIsTheNewestClaim: while a dead or cut-off leader is still in the
// gossip beside the one its peers elected after it, the router sends the cell's index
// work to the new one, which has applied more, whatever order the gossip lists them in.
func TestIndexLeaderIsTheNewestClaim(t *testing.T) {
	old := cell.Node{ID: "cell-0-index-0", Role: cell.RoleIndex, Cell: "cell-0", State: cell.StateReady, GRPCAddr: "127.0.0.1:1", Leader: true, AppliedIndex: 40}
	follower := cell.Node{ID: "cell-0-index-1", Role: cell.RoleIndex, Cell: "cell-0", State: cell.StateReady, GRPCAddr: "127.0.0.1:2", AppliedIndex: 41}
	elected := cell.Node{ID: "cell-0-index-2", Role: cell.RoleIndex, Cell: "cell-0", State: cell.StateReady, GRPCAddr: "127.0.0.1:3", Leader: true, AppliedIndex: 42}
	for _, order := range []members{{old, follower, elected}, {elected, follower, old}, {follower, elected, old}} {
		conns := daemon.NewConns()
		addr, err := New(cell.DefaultTopology(), order, conns).indexAddr("cell-0")
		conns.Close()
		if err != nil || addr != elected.GRPCAddr {
			t.Errorf("gossip order %s, %s, %s: index at %q (%v), want the elected leader at %s",
				order[0].ID, order[1].ID, order[2].ID, addr, err, elected.GRPCAddr)
		}
	}
}
