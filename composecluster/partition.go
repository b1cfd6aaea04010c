package composecluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/deploy"
)

var _ cell.Partitioner = (*Cluster)(nil)

// cutNetwork is the network that nodes of a cell cut off together share.
func (c *Cluster) cutNetwork(cellID string) string {
	return c.network(deploy.CellNetwork(cellID) + "-cut")
}

// Partition cuts nodes, all of one cell, off the rest of their cell: it disconnects
// them from the cell's network, and when there are two or more, connects them to a
// network of their own under the same names, so that they still reach one another.
// They stay on the front network. A cell that already has nodes cut off is refused
// (heal them first), and so is a node of no cell, before anything is changed.
func (c *Cluster) Partition(ctx context.Context, nodes []string) error {
	c.forget()
	defer c.forget()
	if len(nodes) == 0 {
		return errors.New("partition: name the nodes to cut off")
	}
	cellID := ""
	var cids []string
	for _, id := range nodes {
		cid, n, err := c.node(id)
		if err != nil {
			return err
		}
		switch {
		case n.Cell == "":
			return fmt.Errorf("partition: %s belongs to no cell; only a cell's nodes can be cut off their cell", id)
		case cellID != "" && n.Cell != cellID:
			return fmt.Errorf("partition: %s is in %s and %s in %s; the nodes cut off together are of one cell", nodes[0], cellID, id, n.Cell)
		}
		cellID = n.Cell
		cids = append(cids, cid)
	}
	cut, err := c.Cut(ctx)
	if err != nil {
		return err
	}
	var already []string
	for _, id := range cut {
		if cellOf(c.topo, id) == cellID {
			already = append(already, id)
		}
	}
	if len(already) > 0 {
		return fmt.Errorf("partition: %s already has %s cut off; heal first", cellID, strings.Join(already, ", "))
	}
	if len(nodes) == len(c.cellNodes(cellID)) {
		return fmt.Errorf("partition: that is every node of %s; cut off some of them", cellID)
	}
	cellNet, cutNet := c.network(deploy.CellNetwork(cellID)), c.cutNetwork(cellID)
	if len(nodes) > 1 {
		_, _ = c.run(ctx, "network", "rm", cutNet) // one left from an interrupted heal
		if _, err := c.run(ctx, "network", "create", "--label", "com.docker.compose.project="+c.project,
			"--label", LabelCutOf+"="+cellID, cutNet); err != nil {
			return fmt.Errorf("partition: docker network create %s: %s", cutNet, firstLine(err.Error()))
		}
	}
	for i, id := range nodes {
		if _, err := c.run(ctx, "network", "disconnect", cellNet, cids[i]); err != nil {
			return fmt.Errorf("partition: cut %s off %s: %s", id, cellNet, firstLine(err.Error()))
		}
		if len(nodes) > 1 {
			if _, err := c.run(ctx, "network", "connect", "--alias", deploy.CellHost(id, cellID), cutNet, cids[i]); err != nil {
				return fmt.Errorf("partition: join %s to %s: %s", id, cutNet, firstLine(err.Error()))
			}
		}
	}
	return nil
}

// LabelCutOf labels the network of nodes cut off their cell together with the cell.
const LabelCutOf = "io.cellar.cut-of"

// Heal joins nodes cut off by Partition back to their cell's network (none named:
// every node cut off), and removes the networks of the nodes cut off together.
func (c *Cluster) Heal(ctx context.Context, nodes []string) error {
	c.forget()
	defer c.forget()
	cut, err := c.Cut(ctx)
	if err != nil {
		return err
	}
	if len(nodes) == 0 {
		nodes = cut
	}
	cells := map[string]bool{}
	for _, id := range nodes {
		cid, n, err := c.node(id)
		if err != nil {
			return err
		}
		if !slices.Contains(cut, id) {
			continue // not cut off: nothing to heal
		}
		cells[n.Cell] = true
		_, _ = c.run(ctx, "network", "disconnect", c.cutNetwork(n.Cell), cid) // when cut off with others
		if _, err := c.run(ctx, "network", "connect", "--alias", deploy.CellHost(id, n.Cell), c.network(deploy.CellNetwork(n.Cell)), cid); err != nil {
			return fmt.Errorf("heal: join %s to %s again: %s", id, c.network(deploy.CellNetwork(n.Cell)), firstLine(err.Error()))
		}
	}
	c.forget()
	for cellID := range cells {
		still, err := c.Cut(ctx)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(still, func(id string) bool { return cellOf(c.topo, id) == cellID }) {
			_, _ = c.run(ctx, "network", "rm", c.cutNetwork(cellID)) // absent when one node was cut off
		}
	}
	return nil
}

// Cut lists the nodes of a cell that are not on their cell's network now.
func (c *Cluster) Cut(ctx context.Context) ([]string, error) {
	ks, err := c.inspect(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range c.allNodes() {
		k, ok := ks[n.ID]
		if !ok || n.Cell == "" {
			continue
		}
		if _, on := k.NetworkSettings.Networks[c.network(deploy.CellNetwork(n.Cell))]; !on {
			out = append(out, n.ID)
		}
	}
	return out, nil
}

func (c *Cluster) cellNodes(cellID string) []string {
	var out []string
	for _, n := range c.allNodes() {
		if n.Cell == cellID {
			out = append(out, n.ID)
		}
	}
	return out
}

func cellOf(t cell.Topology, id string) string {
	for _, n := range t.Nodes() {
		if n.ID == id {
			return n.Cell
		}
	}
	return ""
}
