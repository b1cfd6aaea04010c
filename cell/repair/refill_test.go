package repair

import (
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
)

// TestAStorageNodeThatComesBackGetsAPass: the loop looks at the gossip every second
// and makes a pass at once when a storage node of its cell is ready that was not, or
// started again (a wiped or replaced node), so its refill does not wait an interval.
func TestAStorageNodeThatComesBackGetsAPass(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	node := func(id, cellID string, role cell.Role, st cell.State, started time.Time) cell.Node {
		return cell.Node{ID: id, Cell: cellID, Role: role, State: st, Started: started}
	}
	members := &changingMembers{}
	r, err := New(Options{Cell: "cell-0", Self: "cell-0-placement-0"}, members, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]time.Time{}
	steps := []struct {
		what  string
		nodes []cell.Node
		want  bool
	}{
		{"first look", []cell.Node{
			node("s0", "cell-0", cell.RoleStorage, cell.StateReady, t0),
			node("s1", "cell-0", cell.RoleStorage, cell.StateReady, t0),
		}, true},
		{"nothing changed", []cell.Node{
			node("s0", "cell-0", cell.RoleStorage, cell.StateReady, t0),
			node("s1", "cell-0", cell.RoleStorage, cell.StateReady, t0),
		}, false},
		{"s1 stopped", []cell.Node{
			node("s0", "cell-0", cell.RoleStorage, cell.StateReady, t0),
		}, false},
		{"s1 starting again", []cell.Node{
			node("s0", "cell-0", cell.RoleStorage, cell.StateReady, t0),
			node("s1", "cell-0", cell.RoleStorage, cell.StateStarting, t0.Add(time.Minute)),
		}, false},
		{"s1 ready again", []cell.Node{
			node("s0", "cell-0", cell.RoleStorage, cell.StateReady, t0),
			node("s1", "cell-0", cell.RoleStorage, cell.StateReady, t0.Add(time.Minute)),
		}, true},
		{"s0 restarted between two looks", []cell.Node{
			node("s0", "cell-0", cell.RoleStorage, cell.StateReady, t0.Add(2*time.Minute)),
			node("s1", "cell-0", cell.RoleStorage, cell.StateReady, t0.Add(time.Minute)),
		}, true},
		{"a storage node of another cell, and an index node, came", []cell.Node{
			node("s0", "cell-0", cell.RoleStorage, cell.StateReady, t0.Add(2*time.Minute)),
			node("s1", "cell-0", cell.RoleStorage, cell.StateReady, t0.Add(time.Minute)),
			node("x0", "cell-1", cell.RoleStorage, cell.StateReady, t0),
			node("i0", "cell-0", cell.RoleIndex, cell.StateReady, t0),
		}, false},
	}
	for _, s := range steps {
		members.nodes = s.nodes
		if got := r.storageReturned(seen); got != s.want {
			t.Errorf("%s: storageReturned = %v, want %v", s.what, got, s.want)
		}
	}
}

type changingMembers struct{ nodes []cell.Node }

func (m *changingMembers) Nodes() []cell.Node { return m.nodes }
