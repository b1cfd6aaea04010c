package localcluster

import (
	"context"
	"fmt"
	"os"

	"github.com/cellarsim/cellar/cell"
)

// A lost disk, for drills (cell.Wiper): the data directory of a stopped storage node
// is deleted, and the node starts empty when it is started again.

var (
	_ cell.Wiper = (*Attached)(nil)
	_ cell.Wiper = Supervised{}
)

// WipeNode deletes the data directory of a stopped storage node of the cluster in
// a.dir (the node's directory is on this machine: a cellctl up cluster).
func (a *Attached) WipeNode(_ context.Context, id string) error {
	file, err := ReadClusterFile(a.dir)
	if err != nil {
		return err
	}
	for _, n := range file.Nodes {
		if n.ID == id {
			return wipe(n)
		}
	}
	return fmt.Errorf("%w %q", ErrUnknownNode, id)
}

// WipeNode deletes the data directory of a stopped storage node.
func (c Supervised) WipeNode(_ context.Context, id string) error {
	p := c.s.proc(id)
	if p == nil {
		return fmt.Errorf("%w %q", ErrUnknownNode, id)
	}
	c.s.mu.Lock()
	n, running := p.node, p.running
	c.s.mu.Unlock()
	if running {
		return fmt.Errorf("wipe %s: the node is running; stop it first", id)
	}
	return wipe(n)
}

func wipe(n Node) error {
	switch {
	case n.Role != cell.RoleStorage:
		return fmt.Errorf("wipe %s: only a storage node's data is wiped, not a %s node's", n.ID, n.Role)
	case n.Process == ProcRunning || n.Process == ProcStarting:
		return fmt.Errorf("wipe %s: the node is running; stop it first", n.ID)
	case n.DataDir == "":
		return fmt.Errorf("wipe %s: the node has no data directory", n.ID)
	}
	if err := os.RemoveAll(n.DataDir); err != nil {
		return fmt.Errorf("wipe %s: %w", n.ID, err)
	}
	return nil
}
