package cell_test

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/testwait"
)

// The members a node lists follow every change, its own at once and another's as the
// gossip brings it, although the list is kept between changes; and a caller that
// changes the list it was given changes nothing for the next one.
func TestMembershipViewFollowsChanges(t *testing.T) {
	join := func(id string, seeds ...string) (*cell.Membership, func()) {
		m, err := cell.JoinCluster(cell.MembershipConfig{
			Self:     cell.Node{ID: id, Role: cell.RoleStorage, Cell: "cell-0", State: cell.StateStarting, Started: time.Now()},
			BindAddr: "127.0.0.1:0", Join: seeds, Fast: true, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		leave := sync.OnceFunc(func() { m.Leave(time.Second) })
		t.Cleanup(leave)
		return m, leave
	}
	a, _ := join("cell-0-storage-0")
	b, bLeaves := join("cell-0-storage-1", a.Addr())
	state := func(m *cell.Membership, id string) cell.State {
		n, _ := m.Find(id)
		return n.State
	}

	testwait.Until(t, time.Minute, "a sees b", func() bool { return state(a, "cell-0-storage-1") == cell.StateStarting })
	if got := a.Ready("cell-0", cell.RoleStorage); len(got) != 0 {
		t.Fatalf("ready before any node said so: %v", got)
	}
	a.SetState(cell.StateReady, 1)
	if got := a.Ready("cell-0", cell.RoleStorage); len(got) != 1 || got[0].ID != "cell-0-storage-0" {
		t.Fatalf("a's own state is not in its list at once: %v", got)
	}
	b.SetState(cell.StateReady, 1)
	testwait.Until(t, time.Minute, "a sees b ready", func() bool { return len(a.Ready("cell-0", cell.RoleStorage)) == 2 })

	nodes := a.Nodes()
	nodes[0].State = cell.StateDraining
	if got := state(a, nodes[0].ID); got != cell.StateReady {
		t.Fatalf("changing a list Nodes gave changed the membership: %s is %s", nodes[0].ID, got)
	}

	b.SetState(cell.StateDraining, 0)
	testwait.Until(t, time.Minute, "a sees b draining", func() bool { return state(a, "cell-0-storage-1") == cell.StateDraining })
	if got := a.Ready("cell-0", cell.RoleStorage); len(got) != 1 {
		t.Fatalf("a still lists b ready: %v", got)
	}
	bLeaves()
	testwait.Until(t, time.Minute, "a sees b gone", func() bool { _, ok := a.Find("cell-0-storage-1"); return !ok })
	if _, ok := a.Find("cell-0-storage-0"); !ok {
		t.Fatal("a does not find itself")
	}
}
