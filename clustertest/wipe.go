package clustertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

// DataDir is where a node keeps its data ("" for nodes that keep none).
func (c *Cluster) DataDir(id string) string {
	n := c.Node(id)
	if n.Spec.Role == cell.RoleIndex || n.Spec.Role == cell.RoleStorage {
		return filepath.Join(c.Dir, id)
	}
	return ""
}

// WipeNode is a lost disk: it stops a storage node, deletes its data directory and
// starts it again, empty.
func (c *Cluster) WipeNode(id string) {
	c.t.Helper()
	if err := c.wipe(id); err != nil {
		c.t.Fatal(err)
	}
}

func (c *Cluster) wipe(id string) error {
	n := c.Node(id)
	if n.Spec.Role != cell.RoleStorage {
		return fmt.Errorf("%s is a %s node; only storage nodes are wiped", id, n.Spec.Role)
	}
	c.StopNode(id)
	if err := os.RemoveAll(c.DataDir(id)); err != nil {
		return fmt.Errorf("wipe %s: %w", id, err)
	}
	c.StartNode(id)
	return nil
}

var _ cell.Wiper = (*Control)(nil)

// WipeNode deletes the data directory of a stopped storage node (cell.Wiper).
func (k *Control) WipeNode(_ context.Context, id string) error {
	n, err := k.node(id)
	if err != nil {
		return err
	}
	if n.Spec.Role != cell.RoleStorage {
		return fmt.Errorf("wipe %s: only a storage node's data is wiped, not a %s node's", id, n.Spec.Role)
	}
	k.c.mu.Lock()
	running := n.done != nil
	k.c.mu.Unlock()
	if running {
		return fmt.Errorf("wipe %s: the node is running; stop it first", id)
	}
	if err := os.RemoveAll(k.c.DataDir(id)); err != nil {
		return fmt.Errorf("wipe %s: %w", id, err)
	}
	return nil
}

// operatorConns is one pool of operator connections for the cluster's life.
func (c *Cluster) operatorConns() *daemon.Conns {
	c.mu.Lock()
	conns := c.conns
	c.mu.Unlock()
	if conns != nil {
		return conns
	}
	conns = c.OperatorConns()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns == nil {
		c.conns = conns
	}
	return c.conns
}

// Repair returns a client of the Repair service of a cell's first placement node,
// which runs the cell's repair loop.
func (c *Cluster) Repair(cellID string) cellarv1.RepairClient {
	c.t.Helper()
	conns := c.operatorConns()
	cc, err := conns.Get(c.Node(cell.NodeID(cellID, cell.RolePlacement, 0)).GRPCAddr)
	if err != nil {
		c.t.Fatal(err)
	}
	return cellarv1.NewRepairClient(cc)
}
