package composecluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/deploy"
	"github.com/cellarsim/cellar/localcluster"
)

// Errors a caller may want to tell apart; each comes wrapped in a sentence that says
// what to do.
var (
	// ErrNoDocker: no docker command, or the Docker daemon does not answer.
	ErrNoDocker = errors.New("Docker does not answer")
	// ErrNotRunning: the compose project has no running container.
	ErrNotRunning = errors.New("the compose project is not running")
	// ErrUnknownNode: a node id the cluster does not have.
	ErrUnknownNode = errors.New("unknown node")
)

// Options tune Open. The zero value finds everything itself.
type Options struct {
	// Docker is the docker command (default "docker", from PATH).
	Docker string
	// Project is the compose project name (default: $COMPOSE_PROJECT_NAME, else the
	// project whose containers were created from the compose file's directory, else
	// that directory's name as compose derives it).
	Project string
}

// Cluster is a running compose project as a cell.Cluster (and a cell.Pauser). Its
// methods are safe for concurrent use.
type Cluster struct {
	file, dir, project string
	docker             string
	topo               cell.Topology

	mu  sync.Mutex
	ids map[string]string // node id → container id

	// The last docker inspect, reused for a moment: a drill samples the nodes four
	// times a second, and a busy Docker engine takes a while to answer.
	imu    sync.Mutex
	seenAt time.Time
	seen   map[string]container

	// adminPort is the nodes' admin port in their containers (0: deploy.AdminPort).
	adminPort int
}

// inspectFor is how long one docker inspect of the containers is reused.
const inspectFor = 750 * time.Millisecond

// forget drops the last docker inspect: a node was just acted on.
func (c *Cluster) forget() {
	c.imu.Lock()
	c.seenAt = time.Time{}
	c.imu.Unlock()
}

var (
	_ cell.Cluster = (*Cluster)(nil)
	_ cell.Pauser  = (*Cluster)(nil)
)

// Open finds the running compose project of the compose file (the topology is the
// topology.yaml beside it, which the gateways read too). It fails with one sentence,
// and changes nothing, when Docker does not answer or the project has no container.
func Open(ctx context.Context, file string, o Options) (*Cluster, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("no compose file %s", file)
	}
	dir := filepath.Dir(abs)
	topoPath := filepath.Join(dir, "topology.yaml")
	topo, err := cell.LoadTopology(topoPath)
	if err != nil {
		return nil, fmt.Errorf("the topology of %s (%s): %w", file, topoPath, err)
	}
	c := &Cluster{file: file, dir: dir, docker: o.Docker, topo: topo}
	if c.docker == "" {
		c.docker = "docker"
	}
	if err := c.ping(ctx); err != nil {
		return nil, err
	}
	c.project = c.projectName(ctx, o.Project)
	if err := c.refresh(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// projectName is the project given, else $COMPOSE_PROJECT_NAME, else the project of
// the containers created from the compose file's directory, else the directory's name.
func (c *Cluster) projectName(ctx context.Context, given string) string {
	if given != "" {
		return given
	}
	if p := os.Getenv("COMPOSE_PROJECT_NAME"); p != "" {
		return p
	}
	if p := c.projectOfDir(ctx); p != "" {
		return p
	}
	return DefaultProject(c.dir)
}

// AuditDirOf is the audit directory of the compose project of file (see
// Cluster.AuditDir), found without the project running: the kill switch must be
// settable when Docker does not answer.
func AuditDirOf(ctx context.Context, file string, o Options) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("no compose file %s", file)
	}
	c := &Cluster{file: file, dir: filepath.Dir(abs), docker: o.Docker}
	if c.docker == "" {
		c.docker = "docker"
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c.project = c.projectName(qctx, o.Project)
	return c.AuditDir()
}

// DefaultProject is the project name compose gives the files in dir: the directory's
// name, lower case, with only letters, digits, '-' and '_' kept.
func DefaultProject(dir string) string {
	return regexp.MustCompile(`[^a-z0-9_-]`).ReplaceAllString(strings.ToLower(filepath.Base(dir)), "")
}

// ping checks that the docker command exists and its daemon answers.
func (c *Cluster) ping(ctx context.Context) error {
	if _, err := exec.LookPath(c.docker); err != nil {
		return fmt.Errorf("%w: no %s command on PATH (install Docker, or give the compose cluster another way)", ErrNoDocker, c.docker)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := c.run(ctx, "version", "--format", "{{.Server.Version}}"); err != nil {
		return fmt.Errorf("%w: %s; start the Docker daemon", ErrNoDocker, firstLine(err.Error()))
	}
	return nil
}

// projectOfDir is the project of the running containers whose compose working
// directory is the compose file's, or "" when none is or more than one project is.
func (c *Cluster) projectOfDir(ctx context.Context) string {
	out, err := c.run(ctx, "ps", "--all", "--filter", "label=com.docker.compose.project.working_dir="+c.dir,
		"--format", `{{.Label "com.docker.compose.project"}}`)
	if err != nil {
		return ""
	}
	projects := map[string]bool{}
	for _, p := range strings.Fields(out) {
		projects[p] = true
	}
	if len(projects) != 1 {
		return ""
	}
	for p := range projects {
		return p
	}
	return ""
}

// refresh lists the project's containers: one per node of the topology.
func (c *Cluster) refresh(ctx context.Context) error {
	out, err := c.run(ctx, "ps", "--all", "--no-trunc", "--filter", "label=com.docker.compose.project="+c.project,
		"--format", `{{.ID}} {{.Label "com.docker.compose.service"}} {{.State}}`)
	if err != nil {
		return fmt.Errorf("%w: docker ps: %s", ErrNoDocker, firstLine(err.Error()))
	}
	ids := map[string]string{}
	running := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		ids[f[1]] = f[0]
		if len(f) > 2 && (f[2] == "running" || f[2] == "paused") {
			running++
		}
	}
	known := 0
	for _, n := range c.topo.Nodes() {
		if _, ok := ids[n.ID]; ok {
			known++
		}
	}
	if known == 0 || running == 0 {
		return fmt.Errorf("%w: compose project %q (%s) has no running container; start it with 'docker-compose -f %s up -d' (or set COMPOSE_PROJECT_NAME to the project's name)",
			ErrNotRunning, c.project, c.file, c.file)
	}
	c.mu.Lock()
	c.ids = ids
	c.mu.Unlock()
	return nil
}

// Project is the compose project's name.
func (c *Cluster) Project() string { return c.project }

// File is the compose file, as given to Open.
func (c *Cluster) File() string { return c.file }

// Topology is the cluster's declared shape: the topology.yaml beside the compose file.
func (c *Cluster) Topology() cell.Topology { return c.topo }

// AuditDir is where cellctl keeps the audit log, the kill switch and the drill reports
// of this compose project: ~/.cellar/compose-<project> (created when missing).
func (c *Cluster) AuditDir() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("the audit directory of a compose cluster is in the home directory: %w", err)
	}
	dir := filepath.Join(home, ".cellar", "compose-"+c.project)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

// container is one node's container, as docker inspect shows it.
type container struct {
	ID    string `json:"Id"`
	State struct {
		Status  string `json:"Status"`
		Running bool   `json:"Running"`
		Paused  bool   `json:"Paused"`
	} `json:"State"`
	Config struct {
		Env    []string          `json:"Env"`
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
	NetworkSettings struct {
		Networks map[string]struct {
			IPAddress string `json:"IPAddress"`
		} `json:"Networks"`
		Ports map[string][]struct {
			HostIP   string `json:"HostIp"`
			HostPort string `json:"HostPort"`
		} `json:"Ports"`
	} `json:"NetworkSettings"`
}

func (k container) service() string { return k.Config.Labels["com.docker.compose.service"] }

// serving: the container's process runs and is not frozen.
func (k container) serving() bool { return k.State.Running && !k.State.Paused }

// inspect returns the containers of every node of the topology, by node id.
func (c *Cluster) inspect(ctx context.Context) (map[string]container, error) {
	c.imu.Lock()
	defer c.imu.Unlock()
	if time.Since(c.seenAt) < inspectFor {
		return c.seen, nil
	}
	c.mu.Lock()
	var ids []string
	for _, n := range c.containers() {
		if id, ok := c.ids[n.ID]; ok {
			ids = append(ids, id)
		}
	}
	c.mu.Unlock()
	// Its own deadline, not the caller's: on a busy engine one inspect takes seconds,
	// and the next caller takes its answer.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	out, err := c.run(ictx, append([]string{"inspect", "--type", "container"}, ids...)...)
	if err != nil {
		// A container removed meanwhile (compose down, up again): list them again.
		if strings.Contains(err.Error(), "No such container") {
			if rerr := c.refresh(ctx); rerr != nil {
				return nil, rerr
			}
		}
		return nil, fmt.Errorf("docker inspect: %s", firstLine(err.Error()))
	}
	var list []container
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("docker inspect: %w", err)
	}
	byNode := map[string]container{}
	for _, k := range list {
		byNode[k.service()] = k
	}
	c.seen, c.seenAt = byNode, time.Now()
	return byNode, nil
}

// allNodes is every node of the topology, the gateways included.
func (c *Cluster) allNodes() []cell.NodeSpec { return c.topo.Nodes() }

// containers is every container inspect looks at: the nodes, and the front routers
// (one of which publishes the S3 port when the topology has them).
func (c *Cluster) containers() []cell.NodeSpec {
	return append(c.topo.Nodes(), c.topo.RouterNodes()...)
}

func (c *Cluster) frontNetwork() string { return c.network(deploy.FrontNetwork) }

func (c *Cluster) network(name string) string { return c.project + "_" + name }

// Procs is every node with its container's state, as the control endpoint of
// localcluster lists processes: running (or paused, shown as stopped: it serves
// nothing), stopped, or killed.
func (c *Cluster) Procs() []localcluster.Node {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ks, err := c.inspect(ctx)
	if err != nil {
		return nil
	}
	return c.procs(ks)
}

func (c *Cluster) procs(ks map[string]container) []localcluster.Node {
	var out []localcluster.Node
	for _, n := range c.allNodes() {
		k := ks[n.ID]
		p := localcluster.Node{ID: n.ID, Role: n.Role, Cell: n.Cell, Process: localcluster.ProcStopped,
			GRPCAddr:   net.JoinHostPort(deploy.FrontHost(n.ID), strconv.Itoa(deploy.GRPCPort)),
			AdminAddr:  net.JoinHostPort(deploy.FrontHost(n.ID), strconv.Itoa(deploy.AdminPort)),
			GossipAddr: net.JoinHostPort(deploy.FrontHost(n.ID), strconv.Itoa(deploy.GossipPort)),
		}
		switch {
		case k.serving():
			p.Process = localcluster.ProcRunning
		case k.State.Status == "exited" || k.State.Status == "dead":
			p.Process = localcluster.ProcExited
		}
		out = append(out, p)
	}
	return out
}

// Nodes is every node of a cell: its container's state (a paused container counts as
// not running: it serves nothing), and its gossip state and leadership as a running
// node's /members shows them (the gateways are asked first).
func (c *Cluster) Nodes(ctx context.Context) ([]cell.NodeStatus, error) {
	ks, err := c.inspect(ctx)
	if err != nil {
		return nil, err
	}
	seen := c.gossip(ctx, ks)
	if seen == nil && slices.ContainsFunc(c.allNodes(), func(n cell.NodeSpec) bool { return ks[n.ID].serving() }) {
		// Not a cluster with every node down: a view that has not been read.
		return nil, errors.New("no running node of the compose project answered with its member list")
	}
	return localcluster.MergeStatus(c.procs(ks), seen), nil
}

// Members is the gossip's member list, as the first running node that serves one
// shows it (nil when none does), and every node with its container's state.
func (c *Cluster) Members(ctx context.Context) ([]cell.Node, []localcluster.Node, error) {
	ks, err := c.inspect(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c.gossip(ctx, ks), c.procs(ks), nil
}

// gossip is the member list of the first running node that serves one.
func (c *Cluster) gossip(ctx context.Context, ks map[string]container) []cell.Node {
	front := c.frontNetwork()
	order := slices.Clone(c.allNodes())
	slices.SortStableFunc(order, func(a, b cell.NodeSpec) int {
		return boolInt(a.Role != cell.RoleGateway) - boolInt(b.Role != cell.RoleGateway)
	})
	for _, n := range order {
		k, ok := ks[n.ID]
		if !ok || !k.serving() {
			continue
		}
		ip := k.NetworkSettings.Networks[front].IPAddress
		if ip == "" {
			continue
		}
		if nodes, err := localcluster.GossipOf(context.WithoutCancel(ctx), net.JoinHostPort(ip, strconv.Itoa(c.nodeAdminPort()))); err == nil {
			return nodes
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Access is how S3 clients reach the cluster: the port the S3 front publishes on the
// host (the first front router when the topology has routers, else the first gateway;
// deploy.Compose publishes that one) and the credentials it was started with.
type Access struct {
	Endpoint             string
	AccessKey, SecretKey string
	Region               string
}

// Access reads the S3 endpoint and credentials from the container that publishes the
// S3 port: a front router's, else a gateway's.
func (c *Cluster) Access(ctx context.Context) (Access, error) {
	ks, err := c.inspect(ctx)
	if err != nil {
		return Access{}, err
	}
	front := c.topo.RouterNodes()
	for _, n := range c.allNodes() {
		if n.Role == cell.RoleGateway {
			front = append(front, n)
		}
	}
	for _, n := range front {
		k, ok := ks[n.ID]
		if !ok {
			continue
		}
		if a, ok := accessOf(k, c.topo.Region); ok {
			return a, nil
		}
	}
	what := "gateway"
	if c.topo.Routers > 0 {
		what = "front router or gateway"
	}
	return Access{Region: c.topo.Region}, fmt.Errorf("%w: no %s of compose project %q publishes its S3 port", ErrNotRunning, what, c.project)
}

// accessOf is the S3 endpoint container k publishes on the host, with the credentials
// of its environment; false if it publishes none.
func accessOf(k container, region string) (Access, bool) {
	a := Access{Region: region}
	for _, b := range k.NetworkSettings.Ports[fmt.Sprintf("%d/tcp", deploy.S3Port)] {
		if b.HostPort != "" && a.Endpoint == "" {
			host := b.HostIP
			if host == "" || host == "0.0.0.0" {
				host = "127.0.0.1"
			}
			a.Endpoint = "http://" + net.JoinHostPort(host, b.HostPort)
		}
	}
	if a.Endpoint == "" {
		return a, false
	}
	for _, e := range k.Config.Env {
		if v, ok := strings.CutPrefix(e, cell.EnvAccessKey+"="); ok {
			a.AccessKey = v
		}
		if v, ok := strings.CutPrefix(e, cell.EnvSecretKey+"="); ok {
			a.SecretKey = v
		}
	}
	return a, true
}

// node returns the container id of a node, or an error naming the nodes there are.
func (c *Cluster) node(id string) (string, cell.NodeSpec, error) {
	for _, n := range c.allNodes() {
		if n.ID == id {
			c.mu.Lock()
			cid, ok := c.ids[id]
			c.mu.Unlock()
			if !ok {
				return "", n, fmt.Errorf("%w: compose project %q has no container for %s", ErrUnknownNode, c.project, id)
			}
			return cid, n, nil
		}
	}
	return "", cell.NodeSpec{}, fmt.Errorf("%w: no node %q in %s (nodes are named like %s)", ErrUnknownNode, id, c.file,
		strings.Join(exampleIDs(c.topo), ", "))
}

func exampleIDs(t cell.Topology) []string {
	var out []string
	for _, n := range t.Nodes() {
		if len(out) < 3 && (len(out) == 0 || n.Role != cell.Role(out[len(out)-1])) {
			out = append(out, n.ID)
		}
	}
	return out
}

// act runs one docker command on a node's container; a paused container is unpaused
// first (Docker neither stops nor kills a frozen one).
func (c *Cluster) act(ctx context.Context, id string, args ...string) error {
	cid, _, err := c.node(id)
	if err != nil {
		return err
	}
	if args[0] != "unpause" && args[0] != "pause" {
		if out, err := c.run(ctx, "inspect", "--type", "container", "--format", "{{.State.Paused}}", cid); err == nil && strings.TrimSpace(out) == "true" {
			if _, err := c.run(ctx, "unpause", cid); err != nil {
				return fmt.Errorf("unpause %s: %s", id, firstLine(err.Error()))
			}
		}
	}
	defer c.forget()
	if _, err := c.run(ctx, append(args, cid)...); err != nil {
		return fmt.Errorf("docker %s %s: %s", args[0], id, firstLine(err.Error()))
	}
	return nil
}

// StopNode stops a node's container gracefully (SIGTERM, then SIGKILL after 10s).
func (c *Cluster) StopNode(ctx context.Context, id string) error {
	return c.act(ctx, id, "stop", "--time", "10")
}

// KillNode kills a node's container with SIGKILL, as a crash would.
func (c *Cluster) KillNode(ctx context.Context, id string) error {
	return c.act(ctx, id, "kill", "--signal", "KILL")
}

// StartNode starts a node's container (or unpauses it) and returns once the node
// gossips ready, or with an error when ctx ends first.
func (c *Cluster) StartNode(ctx context.Context, id string) error {
	if err := c.act(ctx, id, "start"); err != nil {
		return err
	}
	return c.waitNode(ctx, id, func(s cell.NodeStatus) bool { return s.Ready() }, "ready")
}

// PauseNode freezes a node's container (docker pause): it keeps its sockets and
// answers nothing, as a hung host does.
func (c *Cluster) PauseNode(ctx context.Context, id string) error { return c.act(ctx, id, "pause") }

// UnpauseNode thaws a node's container.
func (c *Cluster) UnpauseNode(ctx context.Context, id string) error {
	return c.act(ctx, id, "unpause")
}

// waitNode polls the nodes until id satisfies ok.
func (c *Cluster) waitNode(ctx context.Context, id string, ok func(cell.NodeStatus) bool, what string) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		nodes, err := c.Nodes(ctx)
		if err == nil {
			for _, n := range nodes {
				if n.ID == id && ok(n) {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s started but not %s: %w", id, what, ctx.Err())
		case <-t.C:
		}
	}
}

// run runs the docker command and returns its output; its error carries stderr.
func (c *Cluster) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.docker, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return stdout.String(), errors.New(msg)
	}
	return stdout.String(), nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
