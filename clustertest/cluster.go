// Package clustertest runs a whole cellar cluster inside one test process: every
// daemon of a topology, each on its own 127.0.0.1 ports and data directory, joined by
// real gossip and talking real gRPC. Tests stop and start single nodes to watch what a
// cell does without them, and talk to the gateway with a real S3 client.
package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cellarsim/cellar/internal/testwait"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/testaddr"
	"github.com/cellarsim/cellar/node"
)

// Cluster is a running in-process cluster.
type Cluster struct {
	t        testing.TB
	Topology cell.Topology
	Dir      string
	logs     *nodeLogs

	// SnapshotThreshold and TrailingLogs tune the index groups' raft log compaction
	// for nodes started after they are set (0: raft's defaults).
	SnapshotThreshold, TrailingLogs uint64
	// RepairInterval and GCGrace set the placement nodes' repair loop (--repair-interval,
	// --gc-grace) for nodes started after they are set (0: the defaults).
	RepairInterval, GCGrace time.Duration

	mu    sync.Mutex
	conns *daemon.Conns // to call nodes' gRPC services from the test (see Repair)
	nodes map[string]*Node
	order []string
	join  []string
}

// Node is one daemon of the cluster, with addresses that stay the same across restarts.
type Node struct {
	Spec                                    cell.NodeSpec
	GRPCAddr, AdminAddr, GossipAddr, S3Addr string
	RaftAddr                                string // index nodes of a replicated index

	cancel context.CancelFunc
	done   chan error
	ending chan struct{} // closed when a crashed run has ended (see crash)
}

// Start runs every node of topo and waits until the gateway sees all of them ready.
// A topology without credentials gets new ones (cell.NewCredentials): clients sign
// with the cluster's Topology. The cluster stops when the test ends.
//
// Options, if any, change the cluster before its nodes start (such as RepairInterval).
func Start(t testing.TB, topo cell.Topology, options ...func(*Cluster)) *Cluster {
	t.Helper()
	holdMachine(t)
	if topo.AccessKey == "" && topo.SecretKey == "" {
		var err error
		if topo.AccessKey, topo.SecretKey, err = cell.NewCredentials(); err != nil {
			t.Fatal(err)
		}
	}
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, Topology: topo, Dir: t.TempDir(), nodes: map[string]*Node{}, logs: newNodeLogs()}
	for _, o := range options {
		o(c)
	}
	for _, spec := range topo.Nodes() {
		n := &Node{Spec: spec, GRPCAddr: freeAddr(t), AdminAddr: freeAddr(t), GossipAddr: freeAddr(t)}
		if spec.Role == cell.RoleGateway {
			n.S3Addr = freeAddr(t)
		}
		if (spec.Role == cell.RoleIndex && topo.IndexNodes > 1) || spec.Role == cell.RoleMap {
			n.RaftAddr = freeAddr(t)
		}
		if spec.Role == cell.RoleIndex || spec.Role == cell.RoleGateway {
			c.join = append(c.join, n.GossipAddr)
		}
		c.nodes[spec.ID] = n
		c.order = append(c.order, spec.ID)
	}
	t.Cleanup(func() {
		c.StopAll()
		if t.Failed() {
			t.Logf("the nodes that logged a warning or an error, their last lines:\n%s", c.logs.tails(c.order))
		}
	})
	c.initPKI()
	// The gossip seeds first, and the others once a seed listens, so that they find
	// one when they join rather than serving alone until their next rejoin.
	seed := func(id string) bool { r := c.nodes[id].Spec.Role; return r == cell.RoleIndex || r == cell.RoleGateway }
	for _, id := range c.order {
		if seed(id) {
			c.StartNode(id)
		}
	}
	testwait.Succeeds(t, patience, "a gossip seed listens", func() error {
		var err error
		for _, addr := range c.join {
			var conn net.Conn
			if conn, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
				return conn.Close()
			}
		}
		return err
	})
	for _, id := range c.order {
		if !seed(id) {
			c.StartNode(id)
		}
	}
	c.WaitReady(c.order...)
	return c
}

// freeAddr returns an address a node keeps across restarts.
func freeAddr(t testing.TB) string { return testaddr.Free(t) }

// Node returns a node by id.
func (c *Cluster) Node(id string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[id]
	if !ok {
		c.t.Fatalf("no node %s", id)
	}
	return n
}

// Gateway returns the first gateway.
func (c *Cluster) Gateway() *Node { return c.Node(cell.NodeID("", cell.RoleGateway, 0)) }

// S3Endpoint is the URL of the first gateway.
func (c *Cluster) S3Endpoint() string { return "http://" + c.Gateway().S3Addr }

// StartNode runs a node (again) on its addresses and data directory.
func (c *Cluster) StartNode(id string) {
	c.t.Helper()
	n := c.Node(id)
	c.mu.Lock()
	ending := n.ending
	c.mu.Unlock()
	if ending != nil {
		<-ending // a crashed run lets go of the node's addresses first
	}
	c.mu.Lock()
	if n.done != nil {
		c.mu.Unlock()
		c.t.Fatalf("node %s is running", id)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	n.cancel, n.done = cancel, done
	c.mu.Unlock()

	spec := node.Spec{
		ID: id, Role: n.Spec.Role, Cell: n.Spec.Cell,
		GRPCAddr: n.GRPCAddr, AdminAddr: n.AdminAddr, GossipAddr: n.GossipAddr,
		Join: c.join, FastGossip: true, StopTimeout: 2 * time.Second,
		S3Addr: n.S3Addr, RaftAddr: n.RaftAddr,
	}
	if spec.Role == cell.RoleIndex || spec.Role == cell.RoleStorage || spec.Role == cell.RoleMap {
		spec.DataDir = filepath.Join(c.Dir, id)
	}
	if spec.Role == cell.RoleGateway && c.Topology.MapNodes > 0 {
		spec.StateDir = filepath.Join(c.Dir, id)
	}
	if spec.Role == cell.RolePlacement {
		spec.Repair, spec.GCGrace = c.Topology.Repair, c.GCGrace
		if c.RepairInterval != 0 {
			spec.Repair.Interval = c.RepairInterval
		}
	}
	if n.RaftAddr != "" && spec.Role == cell.RoleIndex {
		spec.SnapshotThreshold, spec.TrailingLogs = c.SnapshotThreshold, c.TrailingLogs
		spec.ReadLease = c.Topology.ReadLeaseOn()
		spec.Peers = node.IndexPeers(c.Topology, n.Spec.Cell, func(id string) string { return c.nodes[id].RaftAddr })
	}
	if spec.Role == cell.RoleMap {
		spec.Peers = node.MapPeers(c.Topology, func(id string) string { return c.nodes[id].RaftAddr })
	}
	if dir := c.PKIDir(); dir != "" {
		spec = spec.WithPKI(dir)
	}
	opts := node.RunOptions{Logger: c.logs.logger(id), Topology: &c.Topology}
	if (spec.Role == cell.RoleGateway || spec.Role == cell.RoleIndex) && c.Topology.Faults {
		spec.FaultsFile = c.FaultsFile()
		opts.Crash = func(int) { go c.crash(id) }
	}
	go func() { done <- node.Run(ctx, spec, opts) }()
}

// StopNode stops a node gracefully and waits until it has stopped.
func (c *Cluster) StopNode(id string) {
	c.t.Helper()
	n := c.Node(id)
	c.mu.Lock()
	cancel, done := n.cancel, n.done
	n.cancel, n.done = nil, nil
	c.mu.Unlock()
	if done == nil {
		return
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			c.t.Errorf("node %s stopped with: %v", id, err)
		}
	case <-time.After(15 * time.Second):
		buf := make([]byte, 1<<20)
		c.t.Fatalf("node %s did not stop within 15s; goroutines:\n%s", id, buf[:runtime.Stack(buf, true)])
	}
}

// StopAll stops every node, gateways first and index nodes last.
func (c *Cluster) StopAll() {
	for i := len(c.order) - 1; i >= 0; i-- {
		c.StopNode(c.order[i])
	}
}

// patience bounds how long a test waits for the cluster to reach a state. It is long
// because a 2-core machine running -race beside other work can take over a minute to
// start a cluster; a healthy cluster gets there in seconds, and the wait returns then.
const patience = 3 * time.Minute

// WaitReady waits until the gateway's gossip view shows the nodes ready and each of
// their cells settled (cell.CellHealth.Settled): its index group holding quorum, every
// running node of it ready, and every running placement node of it seeing the cell's
// running storage nodes ready too. (Placement allocates from its own gossip view, which
// can lag the gateway's by seconds on a busy machine: until it has caught up, a PUT can
// be refused for too few storage nodes.)
func (c *Cluster) WaitReady(ids ...string) {
	c.t.Helper()
	c.waitView(patience, func(view map[string]cell.Node) error {
		nodes, err := c.Control().Nodes(context.Background())
		if err != nil {
			return err
		}
		judged := map[string]bool{} // each cell once, however many of its nodes are asked for
		for _, id := range ids {
			if view[id].State != cell.StateReady {
				return fmt.Errorf("%s is %q", id, view[id].State)
			}
			if cellID := c.Node(id).Spec.Cell; cellID != "" && !judged[cellID] {
				judged[cellID] = true
				if err := cell.JudgeCell(c.Topology, cellID, nodes).Settled(); err != nil {
					return err
				}
				if err := c.placementSeesStorage(cellID, nodes); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// placementSeesStorage says whether every running placement node of a cell sees each
// running storage node of the cell ready in its own gossip view.
func (c *Cluster) placementSeesStorage(cellID string, nodes []cell.NodeStatus) error {
	for _, p := range nodes {
		if p.Cell != cellID || p.Role != cell.RolePlacement || !p.Running {
			continue
		}
		view, err := c.memberView(c.Node(p.ID).AdminAddr)
		if err != nil {
			return fmt.Errorf("%s: %w", p.ID, err)
		}
		for _, s := range nodes {
			if s.Cell == cellID && s.Role == cell.RoleStorage && s.Running && view[s.ID].State != cell.StateReady {
				return fmt.Errorf("%s sees %s as %q", p.ID, s.ID, view[s.ID].State)
			}
		}
	}
	return nil
}

// Leader returns the leader of a cell's index group in view ("" if none), as
// cell.JudgeCell finds it: a ready index node of the cell that says it leads.
func (c *Cluster) Leader(view map[string]cell.Node, cellID string) string {
	var nodes []cell.NodeStatus
	for _, n := range view {
		nodes = append(nodes, cell.NodeStatus{ID: n.ID, Role: n.Role, Cell: n.Cell, Running: true, State: n.State, Leader: n.Leader})
	}
	return cell.JudgeCell(c.Topology, cellID, nodes).Index.Leader
}

// WaitGone waits until the gateway's gossip view no longer shows the nodes ready.
func (c *Cluster) WaitGone(ids ...string) {
	c.t.Helper()
	c.waitView(patience, func(view map[string]cell.Node) error {
		for _, id := range ids {
			if view[id].State == cell.StateReady {
				return fmt.Errorf("%s is still ready", id)
			}
		}
		return nil
	})
}

func (c *Cluster) waitView(timeout time.Duration, ok func(map[string]cell.Node) error) {
	c.t.Helper()
	testwait.Succeeds(c.t, timeout, "the gateway's view of the cluster is as expected", func() error {
		view, err := c.GatewayView()
		if err != nil {
			return err
		}
		return ok(view)
	})
}

// GatewayView is the gateway's gossip view, by node id.
func (c *Cluster) GatewayView() (map[string]cell.Node, error) {
	return c.memberView(c.Gateway().AdminAddr)
}

// adminClient asks nodes' admin endpoints; a node that does not answer in time is
// asked again by the wait that called it, rather than holding it past its patience.
var adminClient = &http.Client{Timeout: 5 * time.Second}

// memberView is the gossip view of the node with this admin address, by node id.
func (c *Cluster) memberView(adminAddr string) (map[string]cell.Node, error) {
	resp, err := adminClient.Get("http://" + adminAddr + "/members")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var nodes []cell.Node
	if err := json.NewDecoder(resp.Body).Decode(&nodes); err != nil {
		return nil, err
	}
	view := map[string]cell.Node{}
	for _, n := range nodes {
		view[n.ID] = n
	}
	return view, nil
}

// S3 returns an aws-sdk-go-v2 client for the first gateway, path-style.
func (c *Cluster) S3(optFns ...func(*s3.Options)) *s3.Client {
	opts := []func(*s3.Options){func(o *s3.Options) {
		o.BaseEndpoint = aws.String(c.S3Endpoint())
		o.UsePathStyle = true
		o.Region = "us-east-1"
		o.Credentials = credentials.NewStaticCredentialsProvider(c.Topology.AccessKey, c.Topology.SecretKey, "")
		o.RetryMaxAttempts = 1
	}}
	return s3.New(s3.Options{}, append(opts, optFns...)...)
}

// BucketsPerCell returns, for each cell, n bucket names whose home is that cell.
func BucketsPerCell(topo cell.Topology, cellOf func(string) string, n int) map[string][]string {
	out := map[string][]string{}
	for i := 0; ; i++ {
		name := fmt.Sprintf("bucket-%03d", i)
		c := cellOf(name)
		if len(out[c]) < n {
			out[c] = append(out[c], name)
		}
		full := len(out) == topo.Cells
		for _, bs := range out {
			full = full && len(bs) == n
		}
		if full {
			return out
		}
	}
}
