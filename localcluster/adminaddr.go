package localcluster

import (
	"context"
	"fmt"
)

// The admin address of a node, for drills that read the nodes' own figures (their
// /status): see drill.AdminAddresser.

// AdminAddr is the admin address of node id, as cluster.json records it (a node
// keeps its addresses across restarts).
func (a *Attached) AdminAddr(_ context.Context, id string) (string, error) {
	file, err := ReadClusterFile(a.dir)
	if err != nil {
		return "", err
	}
	for _, n := range file.Nodes {
		if n.ID == id {
			return n.AdminAddr, nil
		}
	}
	return "", fmt.Errorf("%w %q", ErrUnknownNode, id)
}

// AdminAddr is the admin address of node id.
func (c Supervised) AdminAddr(_ context.Context, id string) (string, error) {
	n, ok := c.s.Node(id)
	if !ok {
		return "", fmt.Errorf("%w %q", ErrUnknownNode, id)
	}
	return n.AdminAddr, nil
}
