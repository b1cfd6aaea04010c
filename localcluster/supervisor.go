//go:build unix

package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/testaddr"
	"github.com/cellarsim/cellar/node"
)

// ProcState is what the supervisor knows about a node's process. Whether the node is
// ready now is for gossip (or the node's /readyz) to say.
type ProcState string

const (
	ProcStarting ProcState = "starting" // started, not yet ready
	ProcRunning  ProcState = "running"  // became ready; still running
	ProcStopped  ProcState = "stopped"  // stopped on purpose, or not started yet
	ProcKilled   ProcState = "killed"   // killed on purpose (KillNode)
	ProcExited   ProcState = "exited"   // died on its own; see LastExit and its log
)

// Node is one node of the local cluster: who it is, where it listens, and its process.
type Node struct {
	ID         string    `json:"id"`
	Role       cell.Role `json:"role"`
	Cell       string    `json:"cell,omitempty"`
	Process    ProcState `json:"process"`
	PID        int       `json:"pid,omitempty"`
	GRPCAddr   string    `json:"grpc_addr"`
	AdminAddr  string    `json:"admin_addr"`
	GossipAddr string    `json:"gossip_addr"`
	S3Addr     string    `json:"s3_addr,omitempty"`   // gateways
	RaftAddr   string    `json:"raft_addr,omitempty"` // index nodes of a replicated index
	DataDir    string    `json:"data_dir,omitempty"`  // index and storage nodes
	LogFile    string    `json:"log_file"`
	Started    time.Time `json:"started,omitzero"`
	// ReadyMS is how long the last start took to become ready, in milliseconds.
	ReadyMS int64 `json:"ready_ms,omitempty"`
	// LastExit is how the last process of this node ended ("exit status 1", "signal: killed").
	LastExit string `json:"last_exit,omitempty"`
}

// Errors a caller may want to tell apart.
var (
	ErrDirInUse    = errors.New("data directory in use")
	ErrUnknownNode = errors.New("unknown node")
	ErrStopped     = errors.New("cluster stopped")
)

// Options tune a Supervisor. The zero value is usable.
type Options struct {
	// FastGossip gives every node short gossip timers (--fast-gossip).
	FastGossip bool
	// LogFormat of the children's logs: "text" (default) or "json".
	LogFormat string
	// ReadyTimeout bounds how long one node may take to become ready (default 2m).
	ReadyTimeout time.Duration
	// StopTimeout is how long a node has to stop after SIGTERM before it gets SIGKILL
	// (default 10s).
	StopTimeout time.Duration
	// Command gives the program and leading arguments that run a node of a role; the
	// node's flags follow them. Default: this executable, "daemon", role.
	Command func(role cell.Role) (path string, args []string)
	// Env is added to the children's environment.
	Env []string
	// Progress receives one line per event a person watching wants to see: a node
	// started and ready, stopped, died. Nil discards them.
	Progress io.Writer
	// OnExit is called when a node's process ends without being asked to.
	OnExit func(n Node, err error)
	// Tenants makes the cluster that many tenants (see clusterTenants), when its
	// topology declares none.
	Tenants int
}

// Supervisor runs the nodes of one topology as child processes.
type Supervisor struct {
	opts     Options
	topo     cell.Topology
	dir      string
	topoFile string
	lock     *os.File
	started  time.Time
	endpoint string
	// madeCredentials: this start made the cluster's credentials.
	madeCredentials bool
	// pkiDir holds the cluster's certificates and gossip key; "" when TLS is off.
	pkiDir string

	mu      sync.Mutex
	procs   map[string]*proc
	order   []string // node ids in topology order
	stopped bool
	control controlEndpoint // set by ServeControl

	outMu  sync.Mutex
	saveMu sync.Mutex
}

// proc is one node and its current process, guarded by Supervisor.mu.
type proc struct {
	node     Node
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process has been reaped
	running  bool
	stopping bool // asked to stop: its end is no surprise
	killing  bool
}

// Start starts every node of topo as a child process, with its data under dir, and
// returns once all are ready: index nodes first, then storage, placement, and the
// gateways last, each tier gated on every node of it answering /readyz. (Storage comes
// before placement so that placement finds its cell's storage up when it starts.)
//
// If a node dies or does not become ready in time, or ctx ends, Start stops what it
// started and returns an error.
func Start(ctx context.Context, topo cell.Topology, dir string, opts Options) (*Supervisor, error) {
	if err := topo.ValidateShape(); err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	if opts.LogFormat == "" {
		opts.LogFormat = "text"
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 2 * time.Minute
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 10 * time.Second
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Command == nil {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own executable: %w", err)
		}
		opts.Command = func(role cell.Role) (string, []string) { return exe, []string{"daemon", string(role)} }
	}
	if topo.S3Addr == "" {
		topo.S3Addr = "127.0.0.1:9000"
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := privateDir(abs, opts.Progress); err != nil {
		return nil, err
	}
	lock, err := lockDir(abs)
	if err != nil {
		return nil, err
	}
	switch f, err := ReadClusterFile(abs); {
	case err == nil:
		if err := sameLayout(f.Topology.Topology, topo); err != nil {
			unlockDir(lock)
			return nil, err
		}
	case !errors.Is(err, ErrNoClusterFile):
		// A cluster.json that cannot be read says nothing of the layout the data
		// directory holds: starting over it could send requests to the wrong place.
		unlockDir(lock)
		return nil, fmt.Errorf("%w (fix or remove it to start this data directory)", err)
	}
	made, err := clusterCredentials(abs, &topo)
	if err == nil {
		err = clusterTenants(abs, &topo, opts.Tenants)
	}
	// A fault armed before the last stop is not armed any more.
	_ = os.Remove(filepath.Join(abs, FaultsFileName))
	if err == nil {
		err = topo.Validate()
	}
	if err != nil {
		unlockDir(lock)
		return nil, fmt.Errorf("topology: %w", err)
	}
	s := &Supervisor{
		opts: opts, topo: topo, dir: abs, lock: lock, started: time.Now(), madeCredentials: made,
		topoFile: filepath.Join(abs, "topology.yaml"), procs: map[string]*proc{},
	}
	if topo.TLS {
		if err := s.initPKI(); err != nil {
			unlockDir(lock)
			return nil, err
		}
	} else {
		s.printf("WARNING: TLS IS OFF (tls: false): gRPC and raft between the nodes are plain TCP with no certificates and the gossip is\n" +
			"not encrypted; any local process can read and change objects and cluster state. For teaching and benchmarks only.\n")
	}
	if err := s.plan(); err != nil {
		unlockDir(lock)
		return nil, err
	}
	if err := s.writeTopology(); err != nil {
		unlockDir(lock)
		return nil, err
	}
	s.save()
	if err := s.startAll(ctx); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), 2*opts.StopTimeout)
		defer cancel()
		_ = s.Stop(stopCtx)
		return nil, err
	}
	return s, nil
}

// sameLayout refuses to start a cluster over a data directory that ran with another
// layout, where the change would answer 404 (or 503) for buckets that exist, or split
// a raft group:
//   - a map group started over a cluster that had none would not know its buckets
//     (ListBuckets and bucket lookups would miss them); a cluster that drops its map
//     group would look for a moved bucket in its slot's cell, where it no longer is;
//   - a raft group (the map group, a cell's index group) of another size: new members
//     would bootstrap a group of their own, and nothing adds them to the running one;
//   - other slots or partitioning send keys to other cells than those that hold them;
//   - without a map group, other cells do too; with one, the map says where each slot
//     and bucket is, so cells may be added (they get no slots until buckets are moved
//     to them) but not removed.
func sameLayout(was, now cell.Topology) error {
	const fresh = "or use a new --data-dir"
	switch {
	case was.MapNodes == 0 && now.MapNodes > 0:
		return fmt.Errorf("this data directory holds a cluster without a map group: starting one now (map_nodes: %d) would leave its buckets out of the map; start it with --map-nodes 0, %s", now.MapNodes, fresh)
	case was.MapNodes > 0 && now.MapNodes == 0:
		return fmt.Errorf("this data directory holds a cluster with a map group of %d: without it, moved buckets would be looked for in the wrong cell; start it with --map-nodes %d, %s", was.MapNodes, was.MapNodes, fresh)
	case was.MapNodes != now.MapNodes:
		return fmt.Errorf("this data directory holds a cluster with a map group of %d: a group of %d would not be the same raft group (new members would start one of their own); start it with --map-nodes %d, %s", was.MapNodes, now.MapNodes, was.MapNodes, fresh)
	case was.IndexNodes != now.IndexNodes:
		return fmt.Errorf("this data directory holds a cluster of %d index nodes per cell: with %d, each cell's index group would not be the same raft group; start it with --index-nodes %d, %s", was.IndexNodes, now.IndexNodes, was.IndexNodes, fresh)
	case was.Slots != now.Slots || was.Partition != now.Partition:
		return fmt.Errorf("this data directory holds a cluster of %d slots partitioned by %s: with %d by %s, keys would be looked for in other cells than those that hold them; keep its topology, %s", was.Slots, was.Partition, now.Slots, now.Partition, fresh)
	case was.MapNodes == 0 && was.Cells != now.Cells:
		return fmt.Errorf("this data directory holds a cluster of %d cell%s: with %d, buckets would be looked for in other cells than those that hold them; start it with --cells %d, %s", was.Cells, plural(was.Cells), now.Cells, was.Cells, fresh)
	case now.Cells < was.Cells:
		return fmt.Errorf("this data directory holds a cluster of %d cells: with %d, the buckets and slots its map gives the cells left out would be unreachable; move them first (cellctl move), or start it with --cells %d", was.Cells, now.Cells, was.Cells)
	}
	return nil
}

// plan gives every node of the topology its addresses, directories and log file.
func (s *Supervisor) plan() error {
	var prev map[string]Node
	if f, err := ReadClusterFile(s.dir); err == nil {
		prev = map[string]Node{}
		for _, n := range f.Nodes {
			prev[n.ID] = n
		}
	}
	ports := testaddr.NewPicker()

	s3host, s3port, err := net.SplitHostPort(s.topo.S3Addr)
	if err != nil {
		return fmt.Errorf("S3 address %q is not host:port", s.topo.S3Addr)
	}
	if l, err := net.Listen("tcp", s.topo.S3Addr); err != nil {
		return fmt.Errorf("S3 address %s is in use (is another cluster running? pick another with --s3-addr)", s.topo.S3Addr)
	} else {
		l.Close()
	}
	var p int
	if _, err := fmt.Sscan(s3port, &p); err == nil {
		ports.Reserve(p)
	}
	clientHost := s3host
	if clientHost == "" || clientHost == "0.0.0.0" || clientHost == "::" {
		clientHost = "127.0.0.1"
	}
	s.endpoint = "http://" + net.JoinHostPort(clientHost, s3port)

	addr := func(old string, udp bool) (string, error) {
		if a, ok := ports.Reuse(old, udp); ok {
			return a, nil
		}
		return ports.Pick(udp)
	}
	for _, spec := range append(s.topo.Nodes(), s.topo.RouterNodes()...) {
		old := prev[spec.ID]
		n := Node{
			ID: spec.ID, Role: spec.Role, Cell: spec.Cell, Process: ProcStopped,
			LogFile: filepath.Join(s.dir, "logs", spec.ID+".log"),
		}
		if n.GRPCAddr, err = addr(old.GRPCAddr, false); err != nil {
			return err
		}
		if n.AdminAddr, err = addr(old.AdminAddr, false); err != nil {
			return err
		}
		if n.GossipAddr, err = addr(old.GossipAddr, true); err != nil {
			return err
		}
		if (spec.Role == cell.RoleIndex && s.topo.IndexNodes > 1) || spec.Role == cell.RoleMap {
			if n.RaftAddr, err = addr(old.RaftAddr, false); err != nil {
				return err
			}
		}
		switch spec.Role {
		case cell.RoleIndex, cell.RoleStorage, cell.RoleMap:
			n.DataDir = filepath.Join(s.dir, spec.ID)
		case cell.RoleGateway, cell.RoleRouter:
			// The first router, or with none the first gateway, is the S3 endpoint.
			if first := s.topo.Routers == 0 || spec.Role == cell.RoleRouter; first && len(s.idsOfLocked(spec.Role)) == 0 {
				n.S3Addr = s.topo.S3Addr
			} else if n.S3Addr, err = addr(old.S3Addr, false); err != nil {
				return err
			}
		}
		s.procs[n.ID] = &proc{node: n}
		s.order = append(s.order, n.ID)
	}
	return nil
}

func (s *Supervisor) idsOfLocked(role cell.Role) []string {
	var ids []string
	for _, id := range s.order {
		if s.procs[id].node.Role == role {
			ids = append(ids, id)
		}
	}
	return ids
}

func (s *Supervisor) gatewaysLocked() []string {
	var ids []string
	for _, id := range s.order {
		if s.procs[id].node.Role == cell.RoleGateway {
			ids = append(ids, id)
		}
	}
	return ids
}

// writeTopology writes the topology the gateways read (--topology). It holds the
// cluster's credentials, so only its owner may read it.
func (s *Supervisor) writeTopology() error {
	b, err := yaml.Marshal(s.topo)
	if err != nil {
		return err
	}
	b = append([]byte("# Written by the cellar supervisor at every start; edits here are overwritten.\n"), b...)
	return writePrivate(s.topoFile, b)
}

// privateDir creates the data directory dir and its logs/ for the owner only (0700):
// it holds the cluster's credentials and control token. An existing directory that is
// empty or a cluster's is narrowed to 0700; any other is left as it is, with a
// warning when others may look into it (the files with secrets are 0600).
func privateDir(dir string, progress io.Writer) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("data directory: %w", err)
	case fi.Mode().Perm()&0o077 != 0:
		entries, _ := os.ReadDir(dir)
		if _, err := os.Stat(filepath.Join(dir, ClusterFileName)); err == nil || len(entries) == 0 {
			if err := os.Chmod(dir, 0o700); err != nil {
				return fmt.Errorf("data directory: %w", err)
			}
		} else {
			fmt.Fprintf(progress, "warning: other users can list %s (mode %s); the cluster's credentials in it are readable by you only\n",
				dir, fi.Mode().Perm())
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	return nil
}

// startOrder is the order in which tiers start; stopOrder the order in which they stop.
var (
	startOrder = []cell.Role{cell.RoleIndex, cell.RoleStorage, cell.RolePlacement, cell.RoleMap, cell.RoleGateway, cell.RoleRouter}
	stopOrder  = []cell.Role{cell.RoleRouter, cell.RoleGateway, cell.RoleMap, cell.RoleStorage, cell.RolePlacement, cell.RoleIndex}
)

func (s *Supervisor) startAll(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := true
	for _, role := range startOrder {
		ids := s.idsOf(role)
		if len(ids) == 0 {
			continue
		}
		s.printf("starting %d %s node%s\n", len(ids), role, plural(len(ids)))
		var (
			wg       sync.WaitGroup
			errOnce  sync.Once
			firstErr error
		)
		fail := func(err error) {
			errOnce.Do(func() { firstErr = err; cancel() })
		}
		for _, id := range ids {
			p := s.proc(id)
			if err := s.launch(p); err != nil {
				fail(err)
				break
			}
			if first {
				// Every other node joins the gossip through the first one: let it
				// listen before the others look for it.
				first = false
				if err := s.waitGossip(ctx, p); err != nil {
					fail(err)
					break
				}
			}
			wg.Go(func() {
				if err := s.waitReady(ctx, p); err != nil {
					fail(err)
				}
			})
		}
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
	}
	if err := s.waitLeaders(ctx); err != nil {
		return err
	}
	s.printf("all %d nodes ready in %s\n", len(s.order), roundDur(time.Since(s.started)))
	return nil
}

// waitLeaders waits until the first gateway sees a leader in every cell's index group
// (when the index is replicated): a node is ready once it has rebuilt, but its cell
// serves only once its group has elected a leader.
func (s *Supervisor) waitLeaders(ctx context.Context) error {
	if s.topo.IndexNodes < 2 || len(s.idsOf(cell.RoleGateway)) == 0 {
		return nil
	}
	deadline := time.Now().Add(s.opts.ReadyTimeout)
	for {
		var missing []string
		if health, err := cell.JudgeCluster(ctx, s.Cluster()); err == nil {
			for _, h := range health {
				if !h.Index.Held {
					missing = append(missing, h.Cell)
				}
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the index of %s has no leader after %s", strings.Join(missing, ", "), s.opts.ReadyTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func (s *Supervisor) printf(format string, args ...any) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.opts.Progress, format, args...)
}

func (s *Supervisor) idsOf(role cell.Role) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, id := range s.order {
		if s.procs[id].node.Role == role {
			ids = append(ids, id)
		}
	}
	return ids
}

func (s *Supervisor) proc(id string) *proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.procs[id]
}

// seedsLocked picks up to five gossip addresses for id to join: running index nodes
// first (ready before starting), then other running nodes.
func (s *Supervisor) seedsLocked(id string) []string {
	rank := func(p *proc) int {
		r := 0
		if p.node.Role != cell.RoleIndex {
			r += 2
		}
		if p.node.Process != ProcRunning {
			r++
		}
		return r
	}
	var cands []*proc
	for _, oid := range s.order {
		if p := s.procs[oid]; oid != id && p.running {
			cands = append(cands, p)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return rank(cands[i]) < rank(cands[j]) })
	var seeds []string
	for _, p := range cands {
		if len(seeds) == 5 {
			break
		}
		seeds = append(seeds, p.node.GossipAddr)
	}
	return seeds
}

// specLocked describes p's node as its daemon is started now: with the supervisor's
// topology file and log format, and the running nodes to join.
func (s *Supervisor) specLocked(p *proc) node.Spec {
	n := p.node
	spec := node.Spec{
		ID: n.ID, Role: n.Role, Cell: n.Cell,
		GRPCAddr: n.GRPCAddr, AdminAddr: n.AdminAddr, GossipAddr: n.GossipAddr,
		Join: s.seedsLocked(n.ID), FastGossip: s.opts.FastGossip, LogFormat: s.opts.LogFormat,
		DataDir: n.DataDir, S3Addr: n.S3Addr, RaftAddr: n.RaftAddr,
	}
	if n.Role == cell.RolePlacement {
		spec.Repair = s.topo.Repair
	}
	if n.Role == cell.RoleIndex {
		spec.ReadLease = s.topo.ReadLeaseOn()
	}
	if n.Role == cell.RoleGateway {
		spec.TopologyFile = s.topoFile
		if s.topo.MapNodes > 0 {
			spec.StateDir = filepath.Join(s.dir, n.ID) // the gateway's cached cell map
		}
	}
	if s.pkiDir != "" {
		spec = spec.WithPKI(s.pkiDir)
	}
	spec = s.routerSpecLocked(spec)
	if n.RaftAddr != "" && n.Role == cell.RoleIndex {
		// Every index node of the cell starts with the same initial group.
		spec.Peers = node.IndexPeers(s.topo, n.Cell, func(id string) string { return s.procs[id].node.RaftAddr })
	}
	if n.Role == cell.RoleMap {
		spec.Peers = node.MapPeers(s.topo, func(id string) string { return s.procs[id].node.RaftAddr })
	}
	return spec
}

// launch starts p's process; it does not wait for it to be ready.
func (s *Supervisor) launch(p *proc) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return ErrStopped
	}
	if p.running {
		s.mu.Unlock()
		return fmt.Errorf("%s is already running (pid %d)", p.node.ID, p.node.PID)
	}
	n := p.node
	path, lead := s.opts.Command(n.Role)
	args := append(append([]string(nil), lead...), s.specLocked(p).Args()...)
	s.mu.Unlock()

	if n.DataDir != "" {
		if err := os.MkdirAll(n.DataDir, 0o700); err != nil {
			return fmt.Errorf("start %s: %w", n.ID, err)
		}
	}
	logf, err := os.OpenFile(n.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start %s: open log: %w", n.ID, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), s.opts.Env...)
	cmd.SysProcAttr = childAttr()
	err = cmd.Start()
	logf.Close() // the child has its own copy
	if err != nil {
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	p.cmd, p.done, p.running = cmd, done, true
	p.stopping, p.killing = false, false
	p.node.PID, p.node.Process, p.node.Started, p.node.ReadyMS = cmd.Process.Pid, ProcStarting, time.Now(), 0
	s.mu.Unlock()
	go s.reap(p, cmd, done)
	s.save()
	return nil
}

// reap waits for a process to end and records how.
func (s *Supervisor) reap(p *proc, cmd *exec.Cmd, done chan struct{}) {
	err := cmd.Wait()
	s.mu.Lock()
	p.running = false
	p.node.PID = 0
	p.node.LastExit = exitString(err)
	surprise := false
	switch {
	case p.killing:
		p.node.Process = ProcKilled
	case p.stopping:
		p.node.Process = ProcStopped
	default:
		p.node.Process = ProcExited
		surprise = true
	}
	n := p.node
	stopped := s.stopped
	s.mu.Unlock()
	if surprise {
		s.printf("%s (pid %d) exited unexpectedly: %s; the other nodes keep running (log: %s)\n",
			n.ID, cmd.Process.Pid, n.LastExit, n.LogFile)
		if s.opts.OnExit != nil {
			s.opts.OnExit(n, err)
		}
	}
	if !stopped {
		s.save()
	}
	close(done)
}

func exitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// waitGossip waits until p's gossip port accepts connections.
func (s *Supervisor) waitGossip(ctx context.Context, p *proc) error {
	s.mu.Lock()
	addr, done := p.node.GossipAddr, p.done
	s.mu.Unlock()
	deadline := time.Now().Add(s.opts.ReadyTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if err := s.pause(ctx, p, done, deadline, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// pause sleeps a little while p's process runs, ctx lasts and the deadline is ahead.
func (s *Supervisor) pause(ctx context.Context, p *proc, done <-chan struct{}, deadline time.Time, d time.Duration) error {
	if time.Now().After(deadline) {
		return fmt.Errorf("%s did not become ready within %s; see %s", p.node.ID, s.opts.ReadyTimeout, p.node.LogFile)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s: %w", p.node.ID, ctx.Err())
	case <-done:
		s.mu.Lock()
		n := p.node
		s.mu.Unlock()
		return fmt.Errorf("%s exited before it was ready (%s); see %s", n.ID, n.LastExit, n.LogFile)
	case <-t.C:
		return nil
	}
}

var readyClient = &http.Client{Timeout: 2 * time.Second}

// waitReady polls p's /readyz until it answers 200, then records the time it took.
func (s *Supervisor) waitReady(ctx context.Context, p *proc) error {
	s.mu.Lock()
	url := "http://" + p.node.AdminAddr + "/readyz"
	done, started, pid := p.done, p.node.Started, p.node.PID
	s.mu.Unlock()
	deadline := started.Add(s.opts.ReadyTimeout)
	wait := 10 * time.Millisecond
	for {
		if ready(ctx, url) {
			break
		}
		if err := s.pause(ctx, p, done, deadline, wait); err != nil {
			return err
		}
		wait = min(wait*2, 100*time.Millisecond)
	}
	took := time.Since(started)
	s.mu.Lock()
	if p.done == done && p.running {
		p.node.Process = ProcRunning
		p.node.ReadyMS = took.Milliseconds()
	}
	n := p.node
	s.mu.Unlock()
	s.printf("  %-24s ready in %-8s (pid %d)\n", n.ID, roundDur(took), pid)
	s.save()
	return nil
}

func ready(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := readyClient.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop stops every node: gateways first, then storage, placement and index nodes, each
// tier's nodes together, each with SIGTERM and, after StopTimeout (or at once when ctx
// ends), SIGKILL. It then rewrites cluster.json without pids and releases the data
// directory. Stop is safe to call more than once.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()
	for _, role := range stopOrder {
		var wg sync.WaitGroup
		for _, id := range s.idsOf(role) {
			p := s.proc(id)
			wg.Go(func() {
				took, ok := s.stop(ctx, p, false)
				if !ok {
					return
				}
				verb := "stopped"
				if n, _ := s.Node(id); n.Process == ProcKilled || n.LastExit != "exit status 0" {
					verb = "killed "
				}
				s.printf("  %s %-24s in %s\n", verb, id, roundDur(took))
			})
		}
		wg.Wait()
	}
	s.saveStopped()
	unlockDir(s.lock)
	return nil
}

// stop ends p's process and waits for it; ok is false if it was not running.
func (s *Supervisor) stop(ctx context.Context, p *proc, kill bool) (took time.Duration, ok bool) {
	s.mu.Lock()
	if !p.running {
		s.mu.Unlock()
		return 0, false
	}
	p.stopping = true
	p.killing = p.killing || kill
	cmd, done := p.cmd, p.done
	s.mu.Unlock()

	start := time.Now()
	if kill {
		s.kill(cmd)
		<-done
		return time.Since(start), true
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(s.opts.StopTimeout)
	defer t.Stop()
	select {
	case <-done:
		return time.Since(start), true
	case <-t.C:
		s.printf("  %s did not stop within %s; killing it\n", p.node.ID, s.opts.StopTimeout)
	case <-ctx.Done():
	}
	s.mu.Lock()
	p.killing = true
	s.mu.Unlock()
	s.kill(cmd)
	<-done
	return time.Since(start), true
}

// kill sends SIGKILL to a child and to the process group it leads.
func (s *Supervisor) kill(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// StopNode stops one node gracefully (SIGTERM, then SIGKILL after StopTimeout or when
// ctx ends) and waits for its process to end. Stopping a node that is not running is
// not an error.
func (s *Supervisor) StopNode(ctx context.Context, id string) error {
	p, err := s.lookup(id)
	if err != nil {
		return err
	}
	s.stop(ctx, p, false)
	s.save()
	return nil
}

// KillNode kills one node with SIGKILL, as a crash would, and waits for its process to
// end. The supervisor does not report it as unexpected.
func (s *Supervisor) KillNode(id string) error {
	p, err := s.lookup(id)
	if err != nil {
		return err
	}
	s.stop(context.Background(), p, true)
	s.save()
	return nil
}

// StartNode starts a node that is not running, on its old addresses and data
// directory, joining the gossip through the nodes that run, and waits until it is ready.
// If it does not become ready before ctx ends or ReadyTimeout passes, StartNode returns
// an error and leaves the process running (it may still be rebuilding).
func (s *Supervisor) StartNode(ctx context.Context, id string) error {
	p, err := s.lookup(id)
	if err != nil {
		return err
	}
	if err := s.launch(p); err != nil {
		return err
	}
	return s.waitReady(ctx, p)
}

func (s *Supervisor) lookup(id string) (*proc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.procs[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownNode, id)
	}
	return p, nil
}

// Nodes lists every node in topology order (per tier, per cell; gateways last).
func (s *Supervisor) Nodes() []Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Node, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.procs[id].node)
	}
	return out
}

// Node returns the node with this id.
func (s *Supervisor) Node(id string) (Node, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.procs[id]
	if !ok {
		return Node{}, false
	}
	return p.node, true
}

// CellNodes lists the nodes of a role in a cell; a cellID of "" with RoleGateway lists
// the gateways.
func (s *Supervisor) CellNodes(cellID string, role cell.Role) []Node {
	var out []Node
	for _, n := range s.Nodes() {
		if n.Cell == cellID && n.Role == role {
			out = append(out, n)
		}
	}
	return out
}

// S3Endpoint is the URL of the first gateway's S3 API, e.g. http://127.0.0.1:9000.
func (s *Supervisor) S3Endpoint() string { return s.endpoint }

// Topology is the topology the cluster runs.
func (s *Supervisor) Topology() cell.Topology { return s.topo }

// Dir is the cluster's data directory, absolute.
func (s *Supervisor) Dir() string { return s.dir }

// MadeCredentials reports whether this start made the cluster's credentials (a new
// cluster given none): they are then shown once, and 'cellctl credentials' shows them
// again.
func (s *Supervisor) MadeCredentials() bool { return s.madeCredentials }

// GossipSeeds lists gossip addresses of running nodes (index nodes first), to join the
// cluster's gossip from outside, as an observer does.
func (s *Supervisor) GossipSeeds() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seedsLocked("")
}

// ClusterFile returns what cluster.json says now.
func (s *Supervisor) ClusterFile() *ClusterFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fileLocked()
}

func (s *Supervisor) fileLocked() *ClusterFile {
	f := &ClusterFile{
		Version: 1, Running: !s.stopped, SupervisorPID: os.Getpid(), Started: s.started, Updated: time.Now(),
		DataDir: s.dir, S3Endpoint: s.endpoint, AccessKey: s.topo.AccessKey, SecretKey: s.topo.SecretKey,
		Region: s.topo.Region, FastGossip: s.opts.FastGossip, Topology: Topology{s.topo},
	}
	for _, id := range s.order {
		f.Nodes = append(f.Nodes, s.procs[id].node)
	}
	f.ControlAddr, f.ControlToken, f.ControlTLS = s.control.addr, s.control.token, s.control.tls
	return f
}

// save rewrites cluster.json; a failure is reported on the progress output, since the
// cluster runs on without it.
func (s *Supervisor) save() {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	f := s.fileLocked()
	s.mu.Unlock()
	if err := f.write(s.dir); err != nil {
		s.printf("warning: %v\n", err)
	}
}

// saveStopped writes the final cluster.json: not running, no pids.
func (s *Supervisor) saveStopped() {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	f := s.fileLocked()
	s.mu.Unlock()
	f.Running, f.SupervisorPID = false, 0
	f.ControlAddr, f.ControlToken, f.ControlTLS = "", "", false
	for i := range f.Nodes {
		f.Nodes[i].PID = 0
	}
	if err := f.write(s.dir); err != nil {
		s.printf("warning: %v\n", err)
	}
}
