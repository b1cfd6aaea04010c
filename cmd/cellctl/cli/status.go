package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/pki"
	"github.com/cellarsim/cellar/localcluster"
	"github.com/cellarsim/cellar/status"
)

// StateDown is the state status gives a node that cluster.json lists but the gossip
// does not (stopped, killed, crashed, or cut off), and a declared node never seen.
const StateDown = status.StateDown

type statusOptions struct {
	output   string
	dataDir  string
	join     []string
	bind     string
	wait     time.Duration
	topology string
	// gossipKey is the file of the cluster's gossip key (--gossip-key).
	gossipKey string

	// --serve: the live status page.
	serve      string
	staleAfter time.Duration
	interval   time.Duration
}

func newStatusCommand() *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every node of a cluster and its state, as the gossip sees it",
		Long: `status joins the cluster's gossip as an observer, waits briefly for the member list to
settle, prints every node per cell and tier (id, state, pid, addresses) and leaves. It
asks no gateway and no cell anything, so it works when every cell is down.

The gossip seeds come from DATA_DIR/cluster.json (written by 'cellctl up') or from
--join. A node that cluster.json lists but the gossip does not is shown as down.

Index quorum is judged against the group the cluster declares, not against the members
the gossip happens to list: the topology of --topology FILE, else cluster.json's, else
the group size each index node gossips. A declared node nobody has seen is listed as
down (never seen) and counted.

With --serve ADDR, status stays in the gossip and serves a live status page at
http://ADDR/ (and its data as JSON at /api/status): one tile per cell with each tier's
nodes and states, index quorum, the S3 operations the cell can serve, its request rate,
error rate and p99 (read from the gateways' /metrics), recent state changes and drill
events (DATA_DIR/audit.log), and how long each node took to become ready after its last
start. It probes every node itself and needs nothing else, so it keeps working when
every cell is down, and says so when its own view goes stale.`,
		Example: `  cellctl status
  cellctl status --output json --data-dir /tmp/cellar
  cellctl status --join 10.0.0.5:7946
  cellctl status --join 10.0.0.5:7946 --topology deploy/topology.yaml
  cellctl status --serve 127.0.0.1:8080`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(&o.output); err != nil {
				return err
			}
			if file, err := composeFile(cmd); err != nil || file != "" {
				return runComposeStatus(cmd, o, file, err)
			}
			if o.serve != "" {
				return runStatusServer(cmd, o)
			}
			return runStatus(cmd, o)
		},
	}
	f := cmd.Flags()
	outputFlag(cmd, &o.output)
	clusterFlag(cmd)
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir, "data directory of a cluster started by 'cellctl up' (its cluster.json)")
	f.StringSliceVar(&o.join, "join", nil, "gossip addresses to join instead of reading cluster.json (comma-separated)")
	f.StringVar(&o.bind, "bind", "127.0.0.1:0", "gossip address the observer listens on while it looks")
	f.DurationVar(&o.wait, "wait", 3*time.Second, "longest wait for the member list to settle")
	f.StringVar(&o.topology, "topology", "", "YAML topology file: the cluster's declared shape, to judge index quorum against (default: cluster.json's, else what the index nodes gossip)")
	f.StringVar(&o.gossipKey, "gossip-key", "", "file with the cluster's gossip key (default: DATA_DIR/pki/gossip.key when the cluster has one; with --join and no --data-dir, none)")
	f.StringVar(&o.serve, "serve", "", "serve the live status page on this address (host:port) until interrupted")
	f.DurationVar(&o.staleAfter, "stale-after", 5*time.Second, "with --serve: how long without word from the cluster before the page says its view is stale")
	f.DurationVar(&o.interval, "interval", time.Second, "with --serve: how often every node is probed")
	return cmd
}

// key is the gossip key the observer joins with: --gossip-key's, or the one in the
// data directory's pki/ (not with --join alone: that is another cluster), or none.
func (o statusOptions) key(cmd *cobra.Command) ([]byte, error) {
	if o.gossipKey != "" {
		return pki.LoadGossipKey(o.gossipKey)
	}
	if cmd.Flags().Changed("join") && !cmd.Flags().Changed("data-dir") {
		return nil, nil
	}
	return localcluster.GossipKey(o.dataDir)
}

// statusNode is one row of status: a node as the gossip reports it and, when
// cluster.json lists it, what the supervisor knows of its process.
type statusNode struct {
	cell.Node
	Process localcluster.ProcState `json:"process,omitempty"`
	// NeverSeen: the declared topology has the node, but neither the gossip nor
	// cluster.json lists it.
	NeverSeen bool `json:"never_seen,omitempty"`
}

// nodeStatus is what cell.JudgeCell needs to know of the node.
func (r statusNode) nodeStatus() cell.NodeStatus {
	st := cell.NodeStatus{ID: r.ID, Role: r.Role, Cell: r.Cell, Running: r.State != StateDown, Leader: r.Leader}
	if st.Running {
		st.State = r.State
	}
	return st
}

type statusReport struct {
	Nodes []statusNode `json:"nodes"`
	Total int          `json:"total"`
	Ready int          `json:"ready"`
	Down  int          `json:"down"`
	// IndexGroups describes each cell's replicated index (cells with more than one
	// index node).
	IndexGroups []indexGroup `json:"index_groups,omitempty"`
	// GuardrailsOff: the cluster's topology turns the guardrails off (teaching).
	GuardrailsOff bool `json:"guardrails_off,omitempty"`
}

// indexGroup is one cell's index replication group, judged against its declared size.
type indexGroup struct {
	Cell string `json:"cell"`
	// Size is the group's declared size; Up counts its ready members.
	Size   int    `json:"size"`
	Up     int    `json:"up"`
	Leader string `json:"leader,omitempty"`
	Quorum bool   `json:"quorum"`
	// MaxLag is how many log entries the furthest-behind ready node has yet to
	// apply, against the leader (as of their last gossip).
	MaxLag uint64 `json:"max_lag"`
}

// indexGroups summarises the replicated index group (more than one node declared) of
// each cell of decl, with cell.JudgeCell's verdict on its quorum.
func indexGroups(rows []statusNode, decl status.Declared) []indexGroup {
	var out []indexGroup
	for _, c := range decl.Cells() {
		if decl.Topology(c).IndexNodes < 2 {
			continue
		}
		var nodes []cell.NodeStatus
		for _, r := range rows {
			if r.Cell == c {
				nodes = append(nodes, r.nodeStatus())
			}
		}
		h := decl.Judge(c, nodes)
		g := indexGroup{Cell: c, Size: h.Index.Declared, Up: h.Index.Ready, Leader: h.Index.Leader, Quorum: h.Index.Held}
		var leaderApplied uint64
		for _, r := range rows {
			if r.ID == g.Leader {
				leaderApplied = r.AppliedIndex
			}
		}
		for _, r := range rows {
			if r.Role == cell.RoleIndex && r.Cell == c && r.State == cell.StateReady && r.AppliedIndex < leaderApplied {
				g.MaxLag = max(g.MaxLag, leaderApplied-r.AppliedIndex)
			}
		}
		out = append(out, g)
	}
	return out
}

// declare works out the shape the cells are judged against from topo (nil when there
// is none) and the nodes listed.
func declare(topo *cell.Topology, rows []statusNode) status.Declared {
	seen := make([]cell.Node, 0, len(rows))
	for _, r := range rows {
		if !r.NeverSeen {
			seen = append(seen, r.Node)
		}
	}
	return status.NewDeclared(topo, seen)
}

// declaredTopology is the topology of --topology, else the one in cluster.json, else
// nil (the view then goes by what the index nodes gossip).
func declaredTopology(o statusOptions, file *localcluster.ClusterFile) (*cell.Topology, error) {
	if o.topology != "" {
		t, err := cell.LoadTopology(o.topology)
		if err != nil {
			return nil, fmt.Errorf("--topology: %w", err)
		}
		return &t, nil
	}
	if file != nil && file.Topology.Cells > 0 {
		return &file.Topology.Topology, nil
	}
	return nil, nil
}

func runStatus(cmd *cobra.Command, o statusOptions) error {
	var (
		seeds []string
		file  *localcluster.ClusterFile
	)
	if cmd.Flags().Changed("join") {
		seeds = o.join
		if len(seeds) == 0 {
			return usageErrorf("--join needs at least one gossip address")
		}
	} else {
		f, err := runningClusterFile(o.dataDir)
		if err != nil {
			return err
		}
		file, seeds = f, f.GossipAddrs()
		if len(seeds) == 0 {
			return fmt.Errorf("%s lists no node to ask", localcluster.ClusterFileName)
		}
	}
	expect := 0
	if file != nil {
		for _, n := range file.Nodes {
			if n.Process == localcluster.ProcRunning || n.Process == localcluster.ProcStarting {
				expect++
			}
		}
	}
	topo, err := declaredTopology(o, file)
	if err != nil {
		return err
	}
	key, err := o.key(cmd)
	if err != nil {
		return err
	}
	seen, err := observe(cmd.Context(), o.bind, seeds, expect, o.wait, key)
	if err != nil {
		return err
	}
	rep := buildReport(seen, file, topo)
	rep.GuardrailsOff = file != nil && file.Topology.GuardrailsOff()
	out := cmd.OutOrStdout()
	if o.output == "json" {
		return printJSON(out, rep)
	}
	if rep.GuardrailsOff {
		printGuardrailsOff(out)
	}
	printStatusTable(out, rep)
	return nil
}

// observe joins the gossip as an observer through seeds, waits for the member list to
// settle (every expected node seen and a short quiet spell, or maxWait), and returns
// the members other than observers.
func observe(ctx context.Context, bind string, seeds []string, expect int, maxWait time.Duration, key []byte) ([]cell.Node, error) {
	m, err := cell.JoinCluster(cell.MembershipConfig{
		Self: cell.Node{
			ID: fmt.Sprintf("cellctl-status-%d", os.Getpid()), Role: cell.RoleObserver, State: cell.StateReady,
			PID: os.Getpid(), Started: time.Now(),
		},
		BindAddr:  bind,
		Logger:    slog.New(slog.DiscardHandler),
		SecretKey: key,
	})
	if err != nil {
		return nil, fmt.Errorf("start the observer's gossip: %w", err)
	}
	defer m.Leave(500 * time.Millisecond)
	if err := m.Join(seeds); err != nil {
		return nil, fmt.Errorf("no cluster is reachable: no member answered at %s", describeAddrs(seeds))
	}
	quiet := 300 * time.Millisecond
	deadline := time.NewTimer(maxWait)
	defer deadline.Stop()
	for {
		changed := m.Changed()
		nodes := members(m)
		if expect > 0 && len(nodes) >= expect {
			quiet = 100 * time.Millisecond
		}
		t := time.NewTimer(quiet)
		select {
		case <-changed:
			t.Stop()
		case <-t.C:
			return nodes, nil
		case <-deadline.C:
			t.Stop()
			return members(m), nil
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

func members(m *cell.Membership) []cell.Node {
	var out []cell.Node
	for _, n := range m.Nodes() {
		if n.Role != cell.RoleObserver {
			out = append(out, n)
		}
	}
	return out
}

func describeAddrs(addrs []string) string {
	if len(addrs) <= 3 {
		return strings.Join(addrs, ", ")
	}
	return fmt.Sprintf("%s and %d other addresses", strings.Join(addrs[:3], ", "), len(addrs)-3)
}

// buildReport merges the gossip's view with cluster.json's list of nodes, adds the
// declared nodes neither lists, and judges the index groups against topo (nil: against
// the group sizes the index nodes gossip).
func buildReport(seen []cell.Node, file *localcluster.ClusterFile, topo *cell.Topology) statusReport {
	byID := map[string]int{}
	var rows []statusNode
	for _, n := range seen {
		byID[n.ID] = len(rows)
		rows = append(rows, statusNode{Node: n})
	}
	if file != nil {
		for _, fn := range file.Nodes {
			if i, ok := byID[fn.ID]; ok {
				rows[i].Process = fn.Process
				continue
			}
			rows = append(rows, statusNode{
				Node: cell.Node{
					ID: fn.ID, Role: fn.Role, Cell: fn.Cell, State: StateDown,
					GRPCAddr: fn.GRPCAddr, AdminAddr: fn.AdminAddr, Gossip: fn.GossipAddr,
				},
				Process: fn.Process,
			})
		}
	}
	decl := declare(topo, rows)
	for _, c := range append(decl.Cells(), "") {
		for _, spec := range decl.NeverSeen(c) {
			rows = append(rows, statusNode{Node: cell.Node{ID: spec.ID, Role: spec.Role, Cell: spec.Cell, State: StateDown}, NeverSeen: true})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rowLess(rows[i].Node, rows[j].Node) })
	rep := statusReport{Nodes: rows, Total: len(rows)}
	for _, r := range rows {
		switch r.State {
		case cell.StateReady:
			rep.Ready++
		case StateDown:
			rep.Down++
		}
	}
	if rep.Nodes == nil {
		rep.Nodes = []statusNode{}
	}
	rep.IndexGroups = indexGroups(rows, decl)
	return rep
}

// rowLess orders nodes per cell (cell-2 before cell-10), per tier in start order, then
// by id; gateways and cell-less nodes come last.
func rowLess(a, b cell.Node) bool {
	if a.Cell != b.Cell {
		switch {
		case a.Cell == "":
			return false
		case b.Cell == "":
			return true
		}
		return naturalLess(a.Cell, b.Cell)
	}
	if ra, rb := roleRank(a.Role), roleRank(b.Role); ra != rb {
		return ra < rb
	}
	return naturalLess(a.ID, b.ID)
}

func roleRank(r cell.Role) int {
	for i, t := range cell.Tiers {
		if t == r {
			return i
		}
	}
	if r == cell.RoleGateway {
		return len(cell.Tiers)
	}
	return len(cell.Tiers) + 1
}

// naturalLess compares strings with runs of digits compared as numbers.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, _ := strconv.Atoi(a[:da])
			nb, _ := strconv.Atoi(b[:db])
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

func printStatusTable(out io.Writer, rep statusReport) {
	tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "CELL\tTIER\tNODE\tSTATE\tPID\tGRPC\tADMIN\tGOSSIP\tAGE")
	for _, r := range rep.Nodes {
		c := r.Cell
		if c == "" {
			c = "-"
		}
		state := string(r.State)
		if r.State == cell.StateRebuilding && r.Progress > 0 {
			state = fmt.Sprintf("%s %d%%", state, int(r.Progress*100))
		}
		switch {
		case r.NeverSeen:
			state = "down (never seen)"
		case r.State == StateDown && r.Process != "" && r.Process != localcluster.ProcRunning:
			state = fmt.Sprintf("down (%s)", r.Process)
		}
		if r.Leader {
			state += " (leader)"
		}
		pid, age := "-", "-"
		if r.PID > 0 {
			pid = strconv.Itoa(r.PID)
		}
		if !r.Started.IsZero() && r.Started.Unix() > 0 {
			age = shortAge(time.Since(r.Started))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			c, r.Role, r.ID, state, pid, dash(r.GRPCAddr), dash(r.AdminAddr), dash(r.Gossip), age)
	}
	tw.Flush()
	if len(rep.IndexGroups) > 0 {
		fmt.Fprintln(out)
		tw = tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, "INDEX GROUP\tUP\tLEADER\tQUORUM\tMAX LAG")
		for _, g := range rep.IndexGroups {
			quorum := "yes"
			if !g.Quorum {
				quorum = "LOST"
			}
			fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%s\t%d\n", g.Cell, g.Up, g.Size, dash(g.Leader), quorum, g.MaxLag)
		}
		tw.Flush()
	}
	fmt.Fprintf(out, "\n%d of %d nodes ready", rep.Ready, rep.Total)
	if rep.Down > 0 {
		fmt.Fprintf(out, ", %d down", rep.Down)
	}
	fmt.Fprintln(out)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortAge writes a duration the way kubectl does: 45s, 3m12s, 5h2m, 3d4h.
func shortAge(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 10*time.Minute:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// runningClusterFile reads the cluster file of a running 'cellctl up' cluster in
// dataDir, with the sentence a user needs when there is none or it is stopped.
func runningClusterFile(dataDir string) (*localcluster.ClusterFile, error) {
	f, err := localcluster.ReadClusterFile(dataDir)
	if errors.Is(err, localcluster.ErrNoClusterFile) {
		return nil, fmt.Errorf("no cluster found: %s has no %s (start one with 'cellctl up', or pass --join with gossip addresses)",
			dataDir, localcluster.ClusterFileName)
	}
	if err != nil {
		return nil, err
	}
	if !f.Running {
		return nil, fmt.Errorf("the cluster in %s is stopped (start it with 'cellctl up --data-dir %s')", dataDir, dataDir)
	}
	return f, nil
}
