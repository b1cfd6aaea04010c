package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill"
	"github.com/cellarsim/cellar/localcluster"
)

// clusterView is what drill commands know of a running cluster: its nodes' states,
// and when one cell is healthy.
type clusterView interface {
	// States is every node's state now: up means its process runs and it is ready.
	States(ctx context.Context) ([]drill.NodeState, error)
	// WaitHealthy returns once every node of the cell whose process runs is ready and
	// its index group has a leader, or an error when ctx ends first.
	WaitHealthy(ctx context.Context, cellID string) error
	Close()
}

// openClusterView returns the view of the cluster in a data directory; tests replace it.
var openClusterView = func(ctx context.Context, dataDir string, file *localcluster.ClusterFile) (clusterView, error) {
	return joinGossipView(ctx, dataDir, file)
}

// gossipView watches the cluster's gossip as an observer and reads process states from
// cluster.json (re-read on every look, since the supervisor rewrites it).
type gossipView struct {
	dir  string
	topo cell.Topology
	m    *cell.Membership
}

func joinGossipView(ctx context.Context, dataDir string, file *localcluster.ClusterFile) (*gossipView, error) {
	m, err := cell.JoinCluster(cell.MembershipConfig{
		Self: cell.Node{
			ID: fmt.Sprintf("cellctl-drill-%d", os.Getpid()), Role: cell.RoleObserver, State: cell.StateReady,
			PID: os.Getpid(), Started: time.Now(),
		},
		BindAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, fmt.Errorf("start the observer's gossip: %w", err)
	}
	seeds := file.GossipAddrs()
	if err := m.Join(seeds); err != nil {
		m.Leave(200 * time.Millisecond)
		return nil, fmt.Errorf("no cluster is reachable: no member answered at %s", describeAddrs(seeds))
	}
	v := &gossipView{dir: dataDir, topo: file.Topology.Topology, m: m}
	// Let the member list fill in: until every running node is seen, or a few seconds.
	want := 0
	for _, n := range file.Nodes {
		if n.Process == localcluster.ProcRunning {
			want++
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if len(members(m)) >= want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return v, nil
}

func (v *gossipView) Close() { v.m.Leave(500 * time.Millisecond) }

func (v *gossipView) States(ctx context.Context) ([]drill.NodeState, error) {
	file, err := localcluster.ReadClusterFile(v.dir)
	if err != nil {
		return nil, err
	}
	return mergeStates(file.Nodes, members(v.m)), nil
}

// mergeStates combines what the supervisor says of each process with what the gossip
// says of each node: a node is up when its process runs and the gossip has it ready.
func mergeStates(procs []localcluster.Node, seen []cell.Node) []drill.NodeState {
	gossip := map[string]cell.Node{}
	for _, n := range seen {
		gossip[n.ID] = n
	}
	var out []drill.NodeState
	for _, p := range procs {
		g, ok := gossip[p.ID]
		running := p.Process == localcluster.ProcRunning || p.Process == localcluster.ProcStarting
		out = append(out, drill.NodeState{
			ID: p.ID, Role: p.Role, Cell: p.Cell,
			Up:     running && ok && g.State == cell.StateReady,
			Leader: ok && g.Leader && g.State == cell.StateReady,
		})
	}
	return out
}

func (v *gossipView) WaitHealthy(ctx context.Context, cellID string) error {
	var last error
	for {
		last = v.healthy(cellID)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// healthy says why a cell is not healthy (nil when it is).
func (v *gossipView) healthy(cellID string) error {
	file, err := localcluster.ReadClusterFile(v.dir)
	if err != nil {
		return err
	}
	return cellHealth(v.topo, cellID, file.Nodes, members(v.m))
}

// cellHealth: every node of the cell whose process runs is ready in the gossip, every
// node that is stopped has left it, and the index group (when replicated) has a leader.
func cellHealth(topo cell.Topology, cellID string, procs []localcluster.Node, seen []cell.Node) error {
	gossip := map[string]cell.Node{}
	for _, n := range seen {
		gossip[n.ID] = n
	}
	leader := false
	for _, p := range procs {
		if p.Cell != cellID {
			continue
		}
		g, ok := gossip[p.ID]
		ready := ok && g.State == cell.StateReady
		switch p.Process {
		case localcluster.ProcRunning, localcluster.ProcStarting:
			if !ready {
				state := "not seen"
				if ok {
					state = string(g.State)
				}
				return fmt.Errorf("%s is %s", p.ID, state)
			}
		default:
			if ready {
				return fmt.Errorf("%s is stopped but still shown ready", p.ID)
			}
		}
		leader = leader || (ready && p.Role == cell.RoleIndex && g.Leader)
	}
	if topo.IndexNodes > 1 && !leader {
		return errors.New("its index has no leader")
	}
	return nil
}
