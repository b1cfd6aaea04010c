package drill

import (
	"context"
	"fmt"
	"strings"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
)

// WipeStep loses the disk of storage nodes of a cell: each is drained through the
// guardrails (refused below the storage floor like any drain), its data directory is
// deleted, and it is started again, empty, as after a disk replacement. The cell's
// repair loop then refills it from the other copies (see package cell/repair).
//
//   - wipe: {nodes: [cell-0-storage-1]}
//   - wipe: {count: 1}             # one storage node of the target cell
//
// It needs a cluster that can wipe a node's data (cell.Wiper): cellctl up's, the
// in-process test cluster.
type WipeStep struct {
	Cell     string   `yaml:"cell" json:"cell,omitempty"`
	Count    int      `yaml:"count" json:"count,omitempty"`
	Nodes    []string `yaml:"nodes" json:"nodes,omitempty"`
	Override string   `yaml:"override" json:"override,omitempty"`
	Expect   string   `yaml:"expect" json:"expect,omitempty"` // done (default) or refused
}

func (r *runner) wipe(ctx context.Context, w *WipeStep) error {
	c, err := r.cell(w.Cell)
	if err != nil {
		return err
	}
	wiper, ok := r.env.Cluster.(cell.Wiper)
	if !ok {
		return fmt.Errorf("this cluster cannot wipe a node's data (it is not a cellctl up or in-process cluster)")
	}
	nodes := w.Nodes
	if len(nodes) == 0 {
		states, err := r.states(ctx)
		if err != nil {
			return err
		}
		for _, n := range states {
			if n.Cell == c && n.Role == cell.RoleStorage && n.Ready() && len(nodes) < w.Count {
				nodes = append(nodes, n.ID)
			}
		}
		if len(nodes) < w.Count {
			return fmt.Errorf("%s has %d storage node%s up, fewer than %d to wipe", c, len(nodes), plural(len(nodes)), w.Count)
		}
	}
	// Taking the node out is a drain of it, judged by the guardrails like any other.
	if err := r.drain(ctx, &DrainStep{Cell: c, Tier: string(cell.RoleStorage), Nodes: nodes, Override: w.Override, Expect: w.Expect}); err != nil {
		return err
	}
	for _, id := range nodes {
		if !r.ctl.isDown(id) {
			return nil // refused (or failed): the check is in the report; nothing is wiped
		}
	}
	for _, id := range nodes {
		if err := wiper.WipeNode(ctx, id); err != nil {
			r.check("wipe of "+id, false, err.Error())
			return nil
		}
		_ = r.audit.Append(guard.Entry{Command: r.env.Command, Reason: "drill " + r.sc.Name, Decision: guard.DecisionStep,
			Cell: c, Node: id, Outcome: "data directory wiped"})
		r.event("WIPE", c, id+": data directory deleted; the node starts empty")
	}
	r.event("WIPE", c, "starting "+strings.Join(nodes, ", ")+" empty; the cell's repair refills it")
	return r.undrain(ctx, &UndrainStep{Cell: c})
}
