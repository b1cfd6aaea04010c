package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cellarsim/cellar/cell"
)

// Attached is a running cellctl up cluster as a cell.Cluster, seen from another
// process: its nodes' processes as the supervisor says in cluster.json (re-read on
// every look, since the supervisor rewrites it), their states as the gossip says
// (this process joins it as an observer), and its nodes acted on through the
// supervisor's control endpoint.
type Attached struct {
	dir     string
	topo    cell.Topology
	m       *cell.Membership
	control *Control
}

var _ cell.Cluster = (*Attached)(nil)

// Running reads the cluster.json of a running cluster in dataDir, or says how to
// start one.
func Running(dataDir string) (*ClusterFile, error) {
	file, err := ReadClusterFile(dataDir)
	if errors.Is(err, ErrNoClusterFile) {
		return nil, fmt.Errorf("no cluster in %s: start one with 'cellctl up --data-dir %s'", dataDir, dataDir)
	}
	if err != nil {
		return nil, err
	}
	if !file.Running {
		return nil, fmt.Errorf("the cluster in %s is not running: start it with 'cellctl up --data-dir %s'", dataDir, dataDir)
	}
	if file.DataDir == "" {
		file.DataDir = dataDir
	}
	return file, nil
}

// Attach joins the gossip of the running cluster file describes as an observer and
// returns it as a cell.Cluster. It waits until every running node is seen, or a few
// seconds. Its node actions go to the supervisor's control endpoint, which judges each
// against the guardrails and audits it: as a step of the plan the call's context
// carries (guard.StepOf), or else as who says. Close leaves the gossip.
func Attach(ctx context.Context, file *ClusterFile, who Caller) (*Attached, error) {
	control, err := NewControl(file)
	if err != nil && !errors.Is(err, ErrNoControl) {
		return nil, err
	}
	if control != nil {
		control.Caller = who
	}
	key, err := GossipKey(file.DataDir)
	if err != nil {
		return nil, err
	}
	m, err := cell.JoinCluster(cell.MembershipConfig{
		Self: cell.Node{
			ID: fmt.Sprintf("cellctl-%d", os.Getpid()), Role: cell.RoleObserver, State: cell.StateReady,
			PID: os.Getpid(), Started: time.Now(),
		},
		BindAddr:  "127.0.0.1:0",
		Logger:    slog.New(slog.DiscardHandler),
		SecretKey: key,
	})
	if err != nil {
		return nil, fmt.Errorf("start the observer's gossip: %w", err)
	}
	seeds := file.GossipAddrs()
	if err := m.Join(seeds); err != nil {
		m.Leave(200 * time.Millisecond)
		return nil, fmt.Errorf("no cluster is reachable: no member answered at %s", strings.Join(seeds, ", "))
	}
	a := &Attached{dir: file.DataDir, topo: file.Topology.Topology, m: m, control: control}
	want := 0
	for _, n := range file.Nodes {
		if n.Process == ProcRunning {
			want++
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil && len(a.members()) < want {
		time.Sleep(50 * time.Millisecond)
	}
	return a, nil
}

// Close leaves the gossip.
func (a *Attached) Close() { a.m.Leave(500 * time.Millisecond) }

// Topology is the cluster's declared shape.
func (a *Attached) Topology() cell.Topology { return a.topo }

// Nodes is every node of a cell, with its process state from cluster.json and its
// gossip state.
func (a *Attached) Nodes(context.Context) ([]cell.NodeStatus, error) {
	file, err := ReadClusterFile(a.dir)
	if err != nil {
		return nil, err
	}
	return MergeStatus(file.Nodes, a.members()), nil
}

// MergeStatus combines what the supervisor says of each process with what the gossip
// says of each node. Gateways are left out: they belong to no cell.
func MergeStatus(procs []Node, seen []cell.Node) []cell.NodeStatus {
	gossip := map[string]cell.Node{}
	for _, n := range seen {
		gossip[n.ID] = n
	}
	var out []cell.NodeStatus
	for _, p := range procs {
		if p.Role == cell.RoleGateway || p.Role == cell.RoleRouter {
			continue
		}
		s := cell.NodeStatus{ID: p.ID, Role: p.Role, Cell: p.Cell,
			Running: p.Process == ProcRunning || p.Process == ProcStarting}
		if g, ok := gossip[p.ID]; ok {
			s.State, s.Leader = g.State, g.Leader
		}
		out = append(out, s)
	}
	return out
}

// members is what the gossip shows, observers left out.
func (a *Attached) members() []cell.Node {
	var out []cell.Node
	for _, n := range a.m.Nodes() {
		if n.Role != cell.RoleObserver {
			out = append(out, n)
		}
	}
	return out
}

// StopNode stops a node gracefully through the supervisor.
func (a *Attached) StopNode(ctx context.Context, id string) error {
	if a.control == nil {
		return ErrNoControl
	}
	return a.control.StopNode(ctx, id)
}

// KillNode kills a node with SIGKILL through the supervisor.
func (a *Attached) KillNode(ctx context.Context, id string) error {
	if a.control == nil {
		return ErrNoControl
	}
	return a.control.KillNode(ctx, id)
}

// StartNode starts a node through the supervisor and returns once it is ready.
func (a *Attached) StartNode(ctx context.Context, id string) error {
	if a.control == nil {
		return ErrNoControl
	}
	return a.control.StartNode(ctx, id)
}

// Supervised is the supervisor's own cluster as a cell.Cluster: its processes as it
// runs them, their states as the first running gateway's gossip view shows them.
type Supervised struct{ s *Supervisor }

var _ cell.Cluster = Supervised{}

// Cluster returns the supervisor's cluster as a cell.Cluster.
func (s *Supervisor) Cluster() Supervised { return Supervised{s} }

// Topology is the cluster's declared shape.
func (c Supervised) Topology() cell.Topology { return c.s.topo }

// Nodes is every node of a cell with its process state and its gossip state, as the
// first running gateway that answers sees it, or, with no gateway answering, the
// first running node that does (with none answering, no node is seen).
func (c Supervised) Nodes(ctx context.Context) ([]cell.NodeStatus, error) {
	procs := c.s.Nodes()
	// Gateways first: they belong to no cell, so a drill leaves them alone.
	asked := slices.Clone(procs)
	slices.SortStableFunc(asked, func(a, b Node) int {
		return boolInt(a.Role != cell.RoleGateway) - boolInt(b.Role != cell.RoleGateway)
	})
	var seen []cell.Node
	for _, n := range asked {
		if n.Process != ProcRunning {
			continue
		}
		var err error
		if seen, err = GossipOf(ctx, n.AdminAddr); err == nil {
			break
		}
	}
	return MergeStatus(procs, seen), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// GossipOf is the gossip view a node serves at /members on its admin address, asked
// within 2 s.
func GossipOf(ctx context.Context, adminAddr string) ([]cell.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/members", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("members of %s: %s", adminAddr, resp.Status)
	}
	var nodes []cell.Node
	if err := json.NewDecoder(resp.Body).Decode(&nodes); err != nil {
		return nil, fmt.Errorf("members of %s: %w", adminAddr, err)
	}
	return nodes, nil
}

// StopNode stops a node gracefully.
func (c Supervised) StopNode(ctx context.Context, id string) error { return c.s.StopNode(ctx, id) }

// KillNode kills a node with SIGKILL.
func (c Supervised) KillNode(_ context.Context, id string) error { return c.s.KillNode(id) }

// StartNode starts a node and returns once it is ready.
func (c Supervised) StartNode(ctx context.Context, id string) error { return c.s.StartNode(ctx, id) }
