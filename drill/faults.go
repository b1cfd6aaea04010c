package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
)

// The network and freeze faults of a drill: partition and heal (on a cell.Partitioner,
// such as the compose cluster), pause and unpause (on a cell.Pauser). Like a kill, each
// is a fault rather than a removal of capacity: it is not planned against the floors,
// but the kill switch is checked before it and every node it acts on is audited.

// faultState is what the drill's faults did: the nodes cut off and paused, the index
// leader each cell last had, and the node a partition or pause took from each cell
// (its leader when it took the leader).
type faultState struct {
	cut, paused map[string]bool
	leaders     map[string]string
	taken       map[string]string
}

// fault returns the step's partition, heal, pause or unpause, or nil.
func (s Step) fault() *FaultStep {
	for _, f := range []*FaultStep{s.Partition, s.Heal, s.Pause, s.Unpause} {
		if f != nil {
			return f
		}
	}
	return nil
}

// ErrCannotFault is returned, before anything runs, for a scenario with a fault its
// cluster cannot take.
var ErrCannotFault = errors.New("this cluster cannot take the scenario's faults")

// canFault refuses a scenario whose partition or pause steps its cluster cannot take.
func canFault(c cell.Cluster, sc *Scenario) error {
	_, parts := c.(cell.Partitioner)
	_, pauses := c.(cell.Pauser)
	for i, st := range sc.Steps {
		switch {
		case (st.Partition != nil || st.Heal != nil) && !parts:
			return fmt.Errorf("%w: step %d (%s): a cluster of processes on one host cannot cut networks; run it on containers, with --cluster compose:deploy/docker-compose.yml",
				ErrCannotFault, i+1, st.Kind())
		case (st.Pause != nil || st.Unpause != nil) && !pauses:
			return fmt.Errorf("%w: step %d (%s): this cluster cannot pause nodes; run it on containers, with --cluster compose:deploy/docker-compose.yml",
				ErrCannotFault, i+1, st.Kind())
		}
	}
	return nil
}

// fault runs a partition, heal, pause or unpause step.
func (r *runner) fault(ctx context.Context, st Step) error {
	f := st.fault()
	c, err := r.cell(f.Cell)
	if err != nil {
		return err
	}
	kind := st.Kind()
	var nodes []string
	switch {
	case st.Heal != nil || st.Unpause != nil:
		nodes = f.Nodes
		if len(nodes) == 0 {
			nodes = r.faulted(kind == "heal", f.Cell, c)
		}
		if len(nodes) == 0 {
			r.event(strings.ToUpper(kind), c, "no node the drill took is left to "+kind)
			return nil
		}
	default:
		if nodes, err = r.faultNodes(ctx, c, f); err != nil {
			return err
		}
	}
	leader := r.leaderNow(ctx, c)
	started := time.Now()
	switch kind {
	case "partition":
		err = r.env.Cluster.(cell.Partitioner).Partition(ctx, nodes)
	case "heal":
		err = r.env.Cluster.(cell.Partitioner).Heal(ctx, nodes)
	case "pause", "unpause":
		p := r.env.Cluster.(cell.Pauser)
		for _, id := range nodes {
			if kind == "pause" {
				err = p.PauseNode(ctx, id)
			} else {
				err = p.UnpauseNode(ctx, id)
			}
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		_ = r.audit.Append(guard.Entry{Command: r.env.Command, Reason: "drill " + r.sc.Name, Decision: guard.DecisionAborted, Cell: c,
			Outcome: fmt.Sprintf("%s of %s failed: %v", kind, strings.Join(nodes, ", "), err)})
		return fmt.Errorf("%s %s: %w", kind, strings.Join(nodes, ", "), err)
	}
	r.mu.Lock()
	fs := &r.faults
	if fs.cut == nil {
		fs.cut, fs.paused, fs.taken = map[string]bool{}, map[string]bool{}, map[string]string{}
	}
	for _, id := range nodes {
		switch kind {
		case "partition":
			fs.cut[id] = true
		case "heal":
			delete(fs.cut, id)
		case "pause":
			fs.paused[id] = true
		case "unpause":
			delete(fs.paused, id)
		}
	}
	if kind == "partition" || kind == "pause" {
		fs.taken[c] = nodes[0]
		if slices.Contains(nodes, leader) {
			fs.taken[c] = leader
		}
	}
	r.mu.Unlock()
	outcome := map[string]string{"partition": "cut off the rest of its cell", "heal": "joined to its cell again",
		"pause": "paused (frozen)", "unpause": "unpaused"}[kind]
	for _, id := range nodes {
		_ = r.audit.Append(guard.Entry{Command: r.env.Command, Reason: "drill " + r.sc.Name, Decision: guard.DecisionStep,
			Cell: cellOfNode(r.env.Topology, id), Node: id, Outcome: outcome})
	}
	what := strings.Join(nodes, ", ")
	if slices.Contains(nodes, leader) {
		what = strings.Replace(what, leader, leader+" (index leader)", 1)
	}
	text := map[string]string{
		"partition": fmt.Sprintf("%s cut off the rest of %s in %s", what, c, time.Since(started).Round(time.Millisecond)),
		"heal":      fmt.Sprintf("%s joined to %s again in %s", what, c, time.Since(started).Round(time.Millisecond)),
		"pause":     fmt.Sprintf("%s paused in %s", what, time.Since(started).Round(time.Millisecond)),
		"unpause":   fmt.Sprintf("%s unpaused in %s", what, time.Since(started).Round(time.Millisecond)),
	}[kind]
	r.event(strings.ToUpper(kind), c, text)
	return nil
}

// faultNodes picks the nodes of a partition or pause step.
func (r *runner) faultNodes(ctx context.Context, c string, f *FaultStep) ([]string, error) {
	if len(f.Nodes) > 0 {
		for _, id := range f.Nodes {
			if cellOfNode(r.env.Topology, id) == "" {
				return nil, fmt.Errorf("no node %q in a cell of this cluster", id)
			}
		}
		return f.Nodes, nil
	}
	states, err := r.states(ctx)
	if err != nil {
		return nil, err
	}
	if f.Leader {
		for _, n := range states {
			if n.Cell == c && n.Role == cell.RoleIndex && n.Leader && n.Ready() {
				return []string{n.ID}, nil
			}
		}
		return nil, fmt.Errorf("%s's index has no leader to take", c)
	}
	var followers, leaders []string
	for _, n := range states {
		if n.Cell == c && string(n.Role) == f.Tier && n.Ready() {
			if n.Leader {
				leaders = append(leaders, n.ID)
			} else {
				followers = append(followers, n.ID)
			}
		}
	}
	all := append(followers, leaders...)
	if len(all) < f.Count {
		return nil, fmt.Errorf("%s has %d %s node%s ready, fewer than %d", c, len(all), f.Tier, plural(len(all)), f.Count)
	}
	return all[:f.Count], nil
}

// faulted lists the nodes the drill cut off (or paused) and has not brought back, of
// cell c when the step names a cell, else of every cell.
func (r *runner) faulted(cut bool, named, c string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.faults.paused
	if cut {
		set = r.faults.cut
	}
	var out []string
	for id := range set {
		if named == "" || cellOfNode(r.env.Topology, id) == c {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// leaderNow is the index leader of cell c as the cluster shows it now ("" for none).
func (r *runner) leaderNow(ctx context.Context, c string) string {
	states, err := r.states(ctx)
	if err != nil {
		return ""
	}
	return cell.JudgeCell(r.env.Topology, c, states).Index.Leader
}

// leaderSeen records the index leader a sample shows for cell c, and puts a change of
// leader on the timeline.
func (r *runner) leaderSeen(c, leader string) {
	if leader == "" {
		return // no leader: the quorum events say so
	}
	r.mu.Lock()
	if r.faults.leaders == nil {
		r.faults.leaders = map[string]string{}
	}
	prev := r.faults.leaders[c]
	r.faults.leaders[c] = leader
	r.mu.Unlock()
	if prev != "" && prev != leader {
		r.event("LEADER", c, fmt.Sprintf("%s index: %s leads now (was %s)", c, leader, prev))
	}
}

// assertLeader checks that each cell's index has a leader other than the node the
// drill's last partition or pause took, and that the node taken leads no more.
func (r *runner) assertLeader(ctx context.Context, cells []string, a *AssertStep) error {
	deadline := time.Now().Add(time.Duration(a.Within))
	what := fmt.Sprintf("index leader of %s moved", strings.Join(cells, ", "))
	for {
		var bad, good []string
		states, err := r.states(ctx)
		for _, c := range cells {
			r.mu.Lock()
			old := r.faults.taken[c]
			r.mu.Unlock()
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", c, err))
				continue
			}
			h := cell.JudgeCell(r.env.Topology, c, states)
			r.leaderSeen(c, h.Index.Leader)
			oldLeads := slices.ContainsFunc(states, func(n cell.NodeStatus) bool { return n.ID == old && n.Leader })
			switch {
			case old == "":
				bad = append(bad, c+": no partition or pause step took a node of it")
			case h.Index.Leader == "":
				bad = append(bad, c+": no leader")
			case h.Index.Leader == old || oldLeads:
				bad = append(bad, fmt.Sprintf("%s: %s still leads", c, old))
			default:
				good = append(good, fmt.Sprintf("%s leads %s; %s, taken from it, leads no more and refuses reads and writes (not its cell's leader)",
					h.Index.Leader, c, old))
			}
		}
		if len(bad) == 0 {
			r.check(what, true, strings.Join(good, "; "))
			return nil
		}
		if time.Now().After(deadline) {
			r.check(what, false, strings.Join(bad, "; "))
			return nil
		}
		if err := sleep(ctx, r.env.SampleEvery); err != nil {
			return err
		}
	}
}

// leftFaulted puts the nodes the drill left cut off or paused on the timeline and in
// the report's list of nodes left down.
func (r *runner) leftFaulted() {
	cut, paused := r.faulted(true, "", ""), r.faulted(false, "", "")
	if len(cut) == 0 && len(paused) == 0 {
		return
	}
	var parts []string
	if len(cut) > 0 {
		parts = append(parts, "cut off: "+strings.Join(cut, ", "))
	}
	if len(paused) > 0 {
		parts = append(parts, "paused: "+strings.Join(paused, ", "))
	}
	r.event("LEFT", "", "the drill ends with nodes "+strings.Join(parts, "; "))
	r.mu.Lock()
	for _, id := range append(cut, paused...) {
		if !slices.Contains(r.rep.LeftDown, id) {
			r.rep.LeftDown = append(r.rep.LeftDown, id)
		}
	}
	r.mu.Unlock()
}
