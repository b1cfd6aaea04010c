package clustertest

import (
	"context"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/gateway/mover"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/pki"
	"github.com/cellarsim/cellar/internal/testwait"
	"github.com/cellarsim/cellar/router"
)

// Mover returns a mover of the cluster's buckets that reaches it as a 'cellctl up'
// supervisor's does: a gossip view of its own, and the supervisor's certificate
// (issued from the cluster's CA when TLS is on), the only one allowed to fence a
// bucket and change its entry in the cell map. It waits until the mover sees the map
// group's leader and every cell's index, and is closed when the test ends. The
// cluster's topology needs a map group (MapNodes).
func (c *Cluster) Mover(tb testing.TB) *mover.Mover {
	tb.Helper()
	m, _ := c.moverAs(tb, "supervisor-mover")
	return m
}

// moverAs is Mover with its gossip id, and the router it reaches the cluster through.
func (c *Cluster) moverAs(tb testing.TB, id string) (*mover.Mover, *router.Router) {
	tb.Helper()
	members, err := cell.JoinCluster(cell.MembershipConfig{
		Self:     cell.Node{ID: id, Role: cell.RoleObserver, State: cell.StateReady, Started: time.Now()},
		BindAddr: "127.0.0.1:0", Join: c.join, Fast: true, SecretKey: c.GossipKey(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { members.Leave(time.Second) })
	conns := daemon.NewConns(router.CallDeadline(5 * time.Second))
	if dir := c.PKIDir(); dir != "" {
		if _, err := pki.Init(dir, pki.InitOptions{Cluster: "clustertest", Members: []pki.Member{
			{Identity: pki.Identity{Role: pki.RoleSupervisor, Node: pki.RoleSupervisor}}}}); err != nil {
			tb.Fatal(err)
		}
		conns = daemon.NewTLSConns(c.Creds(pki.RoleSupervisor).ClientTLS(), router.CallDeadline(5*time.Second))
	}
	tb.Cleanup(conns.Close)
	rt := router.New(c.Topology, members, conns)
	testwait.Succeeds(tb, patience, "the mover sees the map group's leader and every cell's index", func() error {
		if _, err := rt.MapGroup(true); err != nil {
			return err
		}
		for _, id := range c.Topology.CellIDs() {
			if _, err := rt.Index(id); err != nil {
				return err
			}
		}
		return nil
	})
	nodes := func(context.Context) ([]cell.NodeStatus, error) {
		var out []cell.NodeStatus
		for _, n := range members.Nodes() {
			out = append(out, cell.NodeStatus{ID: n.ID, Role: n.Role, Cell: n.Cell, Running: true, State: n.State, Leader: n.Leader})
		}
		return out, nil
	}
	return &mover.Mover{Router: rt, Topology: c.Topology, Nodes: nodes, Log: c.logs.logger("mover")}, rt
}
