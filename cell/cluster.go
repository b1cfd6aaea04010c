package cell

import (
	"context"
	"errors"
	"time"
)

// Cluster is a running cluster as the tools that act on one see it: drills, benches,
// cellctl and tests. Its implementations are the cellctl up supervisor (child
// processes), the in-process test cluster, and containers; what a drill does is the
// same on each.
type Cluster interface {
	// Topology is the cluster's declared shape.
	Topology() Topology
	// Nodes is every declared node's status now, in the topology's order.
	Nodes(ctx context.Context) ([]NodeStatus, error)
	// StopNode stops a node gracefully and returns once its process has ended.
	StopNode(ctx context.Context, id string) error
	// KillNode ends a node at once, as a crash would (SIGKILL).
	KillNode(ctx context.Context, id string) error
	// StartNode starts a stopped node and returns once it is ready, or with an error
	// when ctx ends first (the node may then still be starting).
	StartNode(ctx context.Context, id string) error
}

// Pauser is a Cluster that can freeze a node without ending it (SIGSTOP, docker pause):
// the node keeps its sockets but answers nothing, as a hung host does.
type Pauser interface {
	PauseNode(ctx context.Context, id string) error
	UnpauseNode(ctx context.Context, id string) error
}

// Partitioner is a Cluster that can cut nodes off the network of their cell and join
// them back (containers on a network per cell). The nodes cut off together still reach
// one another, and the gateways and the gossip still reach every node: what is cut is
// the cell's own traffic, such as its index group's raft.
type Partitioner interface {
	// Partition cuts nodes, all of one cell, off the rest of their cell.
	Partition(ctx context.Context, nodes []string) error
	// Heal joins nodes cut off by Partition back to their cell; none named heals
	// every node cut off.
	Heal(ctx context.Context, nodes []string) error
}

// ErrUnsupported is returned for an action a cluster's backend cannot take.
var ErrUnsupported = errors.New("not supported by this cluster")

// JudgeCluster judges every cell of a cluster now.
func JudgeCluster(ctx context.Context, c Cluster) ([]CellHealth, error) {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	topo := c.Topology()
	var out []CellHealth
	for _, id := range topo.CellIDs() {
		out = append(out, JudgeCell(topo, id, nodes))
	}
	return out, nil
}

// WaitSettled returns once a cell of c is settled (see CellHealth.Settled), or with
// the last reason it was not when ctx ends first.
func WaitSettled(ctx context.Context, c Cluster, cellID string) error {
	return waitFor(ctx, func() error {
		nodes, err := c.Nodes(ctx)
		if err != nil {
			return err
		}
		return JudgeCell(c.Topology(), cellID, nodes).Settled()
	})
}

// waitFor polls cond until it returns nil or ctx ends, and then returns the last
// reason cond gave. A failure that only says ctx ended (a call cut short) does not
// replace the reason found before it.
func waitFor(ctx context.Context, cond func() error) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return last
		case <-t.C:
		}
	}
}

// Wiper is a Cluster that can lose a node's disk: WipeNode deletes the data directory
// of a storage node that is stopped (and refuses a running one), so that it starts
// again empty, as on a replaced disk.
type Wiper interface {
	WipeNode(ctx context.Context, id string) error
}
