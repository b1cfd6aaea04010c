package clustertest

import (
	"context"
	"fmt"
	"time"

	"github.com/cellarsim/cellar/cell"
)

// Control is the in-process cluster as a cell.Cluster: what drills, the guardrail
// workflow and the tests that use them act on, as they act on a cellctl up cluster.
type Control struct{ c *Cluster }

var _ cell.Cluster = (*Control)(nil)

// Control returns the cluster as a cell.Cluster.
func (c *Cluster) Control() *Control { return &Control{c} }

// Topology is the cluster's declared shape.
func (k *Control) Topology() cell.Topology { return k.c.Topology }

// Nodes is every node of a cell, running or not, as the first gateway's gossip sees
// it. Gateways are left out: they belong to no cell.
func (k *Control) Nodes(context.Context) ([]cell.NodeStatus, error) {
	view, err := k.c.GatewayView()
	if err != nil {
		return nil, fmt.Errorf("ask the gateway for its view: %w", err)
	}
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	var out []cell.NodeStatus
	for _, id := range k.c.order {
		n := k.c.nodes[id]
		if n.Spec.Role == cell.RoleGateway {
			continue
		}
		g, seen := view[id]
		s := cell.NodeStatus{ID: id, Role: n.Spec.Role, Cell: n.Spec.Cell, Running: n.done != nil}
		if seen {
			s.State, s.Leader = g.State, g.Leader
		}
		out = append(out, s)
	}
	return out, nil
}

// StopNode stops a node gracefully and returns once it has stopped.
func (k *Control) StopNode(_ context.Context, id string) error {
	if _, err := k.node(id); err != nil {
		return err
	}
	k.c.StopNode(id)
	return nil
}

// KillNode ends a node. In one process there is no SIGKILL: the node's context is
// cancelled, which ends it as abruptly as its own code allows.
func (k *Control) KillNode(ctx context.Context, id string) error { return k.StopNode(ctx, id) }

// StartNode starts a stopped node and returns once the gateway sees it ready, or
// with an error when ctx ends first (the node then keeps starting, as a process would).
func (k *Control) StartNode(ctx context.Context, id string) error {
	n, err := k.node(id)
	if err != nil {
		return err
	}
	k.c.mu.Lock()
	running := n.done != nil
	k.c.mu.Unlock()
	if running {
		return fmt.Errorf("%s is running already", id)
	}
	k.c.StartNode(id)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if view, err := k.c.GatewayView(); err == nil && view[id].State == cell.StateReady {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not become ready: %w", id, ctx.Err())
		case <-t.C:
		}
	}
}

func (k *Control) node(id string) (*Node, error) {
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	n, ok := k.c.nodes[id]
	if !ok {
		return nil, fmt.Errorf("no node %s in this cluster", id)
	}
	return n, nil
}
