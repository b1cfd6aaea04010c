package index_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell/index"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/internal/linearkv"
	"github.com/cellarsim/cellar/internal/testaddr"
)

// The randomized fault test of a cell's index group: clients write, overwrite, delete
// and read a few keys while nodes are stopped and started (one, two, all three at
// once, or the leader); the history is then checked for linearizability with
// porcupine, and the three nodes' Pebble stores are compared.
//
// A failing run prints its seed; CELLAR_FAULT_SEED=<seed> replays the same schedule of
// faults and the same client choices (timing still varies from run to run).
// CELLAR_ARTIFACTS=<dir> is where the visualization of a failing history goes (a new
// temporary directory otherwise). CELLAR_TEST_LOG=1 shows the nodes' logs.

const (
	faultNodes      = 3
	faultKeys       = 5
	faultClients    = 4
	faultBucket     = "fault-bucket"
	maxOpsPerClient = 1500             // bounds the history, whatever the speed
	clientPhaseMax  = 20 * time.Second // hard bound on the workload, faults or not
	faultPhaseMax   = 15 * time.Second // no fault starts after this
	callTimeout     = time.Second      // one RPC to one node
	opTimeout       = 2 * time.Second  // one operation, over every node it tries
	checkTimeout    = 30 * time.Second // porcupine
	// Writes of unknown outcome are bounded per key (about: clients that check the
	// count at once may each add one more): each one may take effect at any
	// later moment, so it overlaps every later operation on its key, and porcupine's
	// search grows with them. A put whose value no read saw is dropped before the
	// check (linearkv.Check), a delete never is: once a key has maxUnknownDeletes,
	// clients put instead of deleting it, and once it has maxUnknownWrites of either,
	// they only read it.
	maxUnknownDeletes = 2
	maxUnknownWrites  = 30
)

func TestIndexGroupIsLinearizableUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("randomized fault test: skipped with -short")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CELLAR_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CELLAR_FAULT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with CELLAR_FAULT_SEED=%d)", seed, seed)
	checkLinearizableUnder(t, seed, func(fc *faultCluster) {
		plan := planFaults(rand.New(rand.NewPCG(seed, 0)))
		var desc []string
		for _, f := range plan {
			desc = append(desc, f.String())
		}
		t.Logf("fault plan: %s", strings.Join(desc, "; "))
		faultStart := time.Now()
		done := fc.runFaults(plan, faultStart.Add(faultPhaseMax))
		t.Logf("%d of %d faults done in %v", done, len(plan), time.Since(faultStart).Round(time.Millisecond))
	})
}

// TestIndexGroupIsLinearizableAcrossLeadershipTransfers hands the leadership from node
// to node while clients read and write, the way drills and rolling restarts do, and
// checks the history with porcupine. The leader serves reads under its read lease
// between transfers, and must drop it before each one.
func TestIndexGroupIsLinearizableAcrossLeadershipTransfers(t *testing.T) {
	if testing.Short() {
		t.Skip("randomized leadership test: skipped with -short")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CELLAR_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CELLAR_FAULT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with CELLAR_FAULT_SEED=%d)", seed, seed)
	var leaseReads float64
	checkLinearizableUnder(t, seed, func(fc *faultCluster) {
		rng := rand.New(rand.NewPCG(seed, 0))
		transfers, failures := 0, 0
		until := time.Now().Add(faultPhaseMax)
		for i := 0; i < 12 && time.Now().Before(until); i++ {
			// Let the leader serve until it has answered some reads under its lease
			// (a few seconds at most), then hand over: to a named node or to whichever
			// raft picks; now and then the leader stops instead (a graceful stop hands
			// over too).
			before := fc.leaseReads()
			grown := func() float64 {
				sum := 0.0
				for n, v := range fc.leaseReads() {
					sum += max(0, v-before[n]) // a restarted node counts from 0
				}
				return sum
			}
			want := float64(5 + rng.IntN(50))
			poll, deadline := time.NewTicker(50*time.Millisecond), time.Now().Add(5*time.Second)
			for grown() < want && time.Now().Before(deadline) {
				<-poll.C
			}
			poll.Stop()
			leaseReads += grown()
			l := fc.waitLeader(5 * time.Second)
			if l < 0 {
				continue
			}
			if rng.IntN(6) == 0 {
				fc.stop(l)
				fc.waitLeader(10 * time.Second) // the other two elect one of them
				fc.start(l)
				fc.t.Logf("transfer %d: stopped and started the leader %d", i, l)
				continue
			}
			to := ""
			if rng.IntN(2) == 0 {
				to = fc.nodes[(l+1+rng.IntN(faultNodes-1))%faultNodes].id
			}
			err := fc.transfer(l, to)
			if err != nil {
				failures++
			} else {
				transfers++
			}
			fc.t.Logf("transfer %d: from %d to %q: %v", i, l, to, err)
		}
		t.Logf("%d transfers, %d failed; %.0f reads served under a lease meanwhile", transfers, failures, leaseReads)
		if transfers == 0 {
			t.Errorf("seed %d: no transfer succeeded", seed)
		}
	})
	if leaseReads == 0 {
		t.Errorf("seed %d: no read was served under a lease: the test did not exercise it", seed)
	}
}

// checkLinearizableUnder starts a group, runs clients while disturb does its worst to
// it, and checks the history with porcupine and the replicas against each other.
func checkLinearizableUnder(t *testing.T, seed uint64, disturb func(fc *faultCluster)) {
	start := time.Now()

	fc := newFaultCluster(t)
	for i := range fc.nodes {
		fc.start(i)
	}
	t.Cleanup(fc.stopAll)

	// The bucket, created through whichever node leads.
	if err := fc.untilOK(30*time.Second, func(ctx context.Context, c cellarv1.IndexClient) error {
		_, err := c.CreateBucket(ctx, &cellarv1.CreateBucketRequest{Name: faultBucket})
		if errs.Is(err, errs.BucketExists) { // an earlier attempt did it
			return nil
		}
		return err
	}); err != nil {
		t.Fatalf("seed %d: create the bucket: %v", seed, err)
	}
	t.Logf("group up, bucket created after %v", time.Since(start).Round(time.Millisecond))

	h := linearkv.NewHistory()
	keys := make([]string, faultKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}

	// Clients, until the faults are over (and a little after), bounded in time and count.
	clientCtx, stopClients := context.WithTimeout(context.Background(), clientPhaseMax)
	var wg sync.WaitGroup
	defer func() { stopClients(); wg.Wait() }()
	for c := 0; c < faultClients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fc.runClient(clientCtx, c, rand.New(rand.NewPCG(seed, uint64(c+1))), keys, h)
		}()
	}

	faultStart := time.Now()
	disturb(fc)
	time.Sleep(500 * time.Millisecond) // a little traffic on the healed group
	stopClients()
	wg.Wait()

	// Every node is up again (runFaults starts what it stops). Read every key once more,
	// in the history: these reads come after every other operation returned, so
	// porcupine also checks that every acknowledged write is reflected in the final
	// state (a lost acknowledged write makes the history non-linearizable).
	final := map[string]string{}
	for _, k := range keys {
		var got string
		err := fc.untilOK(30*time.Second, func(ctx context.Context, c cellarv1.IndexClient) error {
			call := h.Now()
			v, err := lookup(ctx, c, k)
			if err == nil {
				h.Add(faultClients, linearkv.Input{Op: linearkv.Get, Key: k}, linearkv.Output{Value: v}, call, h.Now())
				got = v
			}
			return err
		})
		if err != nil {
			t.Fatalf("seed %d: final read of %s: %v", seed, k, err)
		}
		final[k] = got
	}
	ops := h.Ops()
	t.Logf("workload %v", time.Since(faultStart).Round(time.Millisecond))
	if stats := logStats(t, ops); stats.Acked == 0 {
		t.Fatalf("seed %d: the group served almost nothing (%s)", seed, stats)
	}

	checkStart := time.Now()
	res := linearkv.Check(ops, checkTimeout)
	t.Logf("porcupine: %v in %v", res, time.Since(checkStart).Round(time.Millisecond))
	switch res {
	case porcupine.Illegal:
		t.Fatalf("seed %d: the history is not linearizable; %s", seed, saveArtifacts(seed, ops))
	case porcupine.Unknown:
		t.Fatalf("seed %d: porcupine gave no answer within %v; %s", seed, checkTimeout, saveArtifacts(seed, ops))
	}
	// The same, spelled out: no acknowledged write is lost.
	if lost := linearkv.LostWrites(ops, final); len(lost) > 0 {
		t.Fatalf("seed %d: acknowledged writes missing from the final state: %s", seed, strings.Join(lost, "; "))
	}

	// The three replicas hold the same records: let the followers apply what the leader
	// committed, stop everything, and open each node's Pebble.
	fc.waitApplied(15 * time.Second)
	fc.stopAll()
	var first map[string]string
	for i, n := range fc.nodes {
		recs := storeRecords(t, n.dir, keys, fc.log)
		if !maps.Equal(recs, final) {
			t.Errorf("seed %d: %s's Pebble holds %v; the group answered %v", seed, n.id, recs, final)
		}
		if i == 0 {
			first = recs
		} else if !maps.Equal(recs, first) {
			t.Errorf("seed %d: %s's Pebble holds %v, %s's %v", seed, n.id, recs, fc.nodes[0].id, first)
		}
	}
	var snaps []string
	for _, n := range fc.nodes {
		ents, _ := os.ReadDir(filepath.Join(n.dir, "raft-snapshots", "snapshots"))
		snaps = append(snaps, fmt.Sprintf("%s %d", n.id, len(ents)))
	}
	t.Logf("raft snapshots kept: %s; total %v", strings.Join(snaps, ", "), time.Since(start).Round(time.Millisecond))
}

// --- the history ---

// failedReads counts the reads that got no answer: they tell nothing and stay out of
// the history.
var failedReads atomic.Int64

// logStats reports what the history holds.
func logStats(t *testing.T, ops []porcupine.Operation) linearkv.Stats {
	st := linearkv.Count(ops)
	t.Logf("history: %s; %d failed reads dropped", st, failedReads.Swap(0))
	return st
}

// --- the cluster ---

type faultNode struct {
	id, dir                                   string
	grpcAddr, adminAddr, gossipAddr, raftAddr string

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
}

type faultCluster struct {
	t      *testing.T
	log    *slog.Logger
	nodes  []*faultNode
	peers  []string
	conns  *daemon.Conns
	leader atomic.Int32 // the node that answered last: tried first
	// Each key's writes of unknown outcome (see maxUnknownWrites).
	unknownWrites, unknownDeletes [faultKeys]atomic.Int32
}

func newFaultCluster(t *testing.T) *faultCluster {
	level, out := slog.LevelWarn, io.Writer(io.Discard)
	if os.Getenv("CELLAR_TEST_LOG") != "" {
		level, out = slog.LevelDebug, os.Stderr
	}
	fc := &faultCluster{t: t, log: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level})), conns: daemon.NewConns()}
	t.Cleanup(fc.conns.Close)
	dir := t.TempDir()
	for i := 0; i < faultNodes; i++ {
		n := &faultNode{
			id: fmt.Sprintf("index-%d", i), dir: filepath.Join(dir, fmt.Sprintf("index-%d", i)),
			grpcAddr: fixedAddr(t), adminAddr: fixedAddr(t), gossipAddr: fixedAddr(t), raftAddr: fixedAddr(t),
		}
		fc.nodes = append(fc.nodes, n)
		fc.peers = append(fc.peers, n.id+"="+n.raftAddr)
	}
	return fc
}

func fixedAddr(t *testing.T) string { return testaddr.Free(t) }

func (fc *faultCluster) start(i int) {
	n := fc.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	n.cancel, n.done = cancel, done
	cfg := index.Config{
		Options: daemon.Options{
			NodeID: n.id, Cell: "cell-0", GRPCAddr: n.grpcAddr, AdminAddr: n.adminAddr, GossipAddr: n.gossipAddr,
			// No gossip Join: the group needs none (raft has its peers), and a joined
			// daemon's rejoin loop reads memberlist nodes through cell.Membership.Nodes
			// without memberlist's lock while gossip rewrites them in place (memberlist
			// issue 306), which -race reports under this much churn.
			FastGossip: true, Logger: fc.log, StopTimeout: 2 * time.Second,
		},
		DataDir: n.dir, RaftAddr: n.raftAddr, Peers: fc.peers,
		SnapshotThreshold: 64, TrailingLogs: 16,
		// The read lease is off by default; these histories check it.
		ReadLease: true,
	}
	go func() { done <- index.Run(ctx, cfg) }()
}

// stop stops node i gracefully and waits for it.
func (fc *faultCluster) stop(i int) {
	n := fc.nodes[i]
	n.mu.Lock()
	cancel, done := n.cancel, n.done
	n.cancel, n.done = nil, nil
	n.mu.Unlock()
	if done == nil {
		return
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			fc.t.Errorf("%s stopped with: %v", n.id, err)
		}
	case <-time.After(20 * time.Second):
		buf := make([]byte, 1<<20)
		fc.t.Errorf("%s did not stop within 20s; goroutines:\n%s", n.id, buf[:runtime.Stack(buf, true)])
	}
}

// stopSet stops the nodes at once.
func (fc *faultCluster) stopSet(ids []int) {
	var wg sync.WaitGroup
	for _, i := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); fc.stop(i) }()
	}
	wg.Wait()
}

func (fc *faultCluster) stopAll() { fc.stopSet([]int{0, 1, 2}) }

func (fc *faultCluster) client(addr string) (cellarv1.IndexClient, error) {
	cc, err := fc.conns.Get(addr)
	if err != nil {
		return nil, err
	}
	return cellarv1.NewIndexClient(cc), nil
}

// untilOK calls f on the nodes in turn, leader first, until it succeeds or timeout.
func (fc *faultCluster) untilOK(timeout time.Duration, f func(context.Context, cellarv1.IndexClient) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		first := int(fc.leader.Load())
		for j := 0; j < faultNodes; j++ {
			i := (first + j) % faultNodes
			c, err := fc.client(fc.nodes[i].grpcAddr)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			err = f(ctx, c)
			cancel()
			if err == nil {
				fc.leader.Store(int32(i))
				return nil
			}
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no success within %v: %w", timeout, last)
}

// lookup reads a key: its object id, "" when absent.
func lookup(ctx context.Context, c cellarv1.IndexClient, key string) (string, error) {
	r, err := c.Lookup(ctx, &cellarv1.LookupRequest{Bucket: faultBucket, Key: key})
	if errs.Is(err, errs.NoSuchKey) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return string(r.GetLocation().GetObjectId()), nil
}

// notApplied tells a write error that means the write was certainly not applied: the
// node refused it before handing it to raft (not the leader, still rebuilding), or the
// call never left this process (the node is down). Any other failure leaves the write's
// outcome unknown, and it must not be retried: a retry could apply it twice, around
// another client's write.
func notApplied(err error) bool {
	s := err.Error()
	return strings.Contains(s, "not its cell's leader") || strings.Contains(s, "has no leader") ||
		errs.Is(err, errs.SlowDown) || strings.Contains(s, "connection refused")
}

// leaderHint returns the node a "not the leader" answer names, or -1.
func (fc *faultCluster) leaderHint(err error) int {
	_, rest, ok := strings.Cut(err.Error(), "(the leader is ")
	if !ok {
		return -1
	}
	id, _, _ := strings.Cut(rest, ")")
	for i, n := range fc.nodes {
		if n.id == id {
			return i
		}
	}
	return -1
}

// outcome is what became of an operation.
type outcome uint8

const (
	done    outcome = iota // it returned a result
	unknown                // a write that may or may not have been applied
	failed                 // a read that got no answer, or a write every node refused
)

// do runs one operation against whichever node leads, within opTimeout.
func (fc *faultCluster) do(in linearkv.Input) (linearkv.Output, outcome) {
	deadline := time.Now().Add(opTimeout)
	next := int(fc.leader.Load())
	for tries := 0; time.Now().Before(deadline) && tries < 30; tries++ {
		i := next
		next = (i + 1) % faultNodes
		c, err := fc.client(fc.nodes[i].grpcAddr)
		if err != nil {
			break
		}
		ctx, cancel := context.WithDeadline(context.Background(), minTime(deadline, time.Now().Add(callTimeout)))
		var v string
		switch in.Op {
		case linearkv.Get:
			v, err = lookup(ctx, c, in.Key)
		case linearkv.Put:
			var r *cellarv1.CommitResponse
			r, err = c.Commit(ctx, &cellarv1.CommitRequest{
				Location:      &cellarv1.Location{Bucket: faultBucket, Key: in.Key, ObjectId: []byte(in.Value), Size: 1},
				RequireBucket: true,
			})
			v = string(r.GetPrevious().GetObjectId())
		case linearkv.Delete:
			var r *cellarv1.DeleteResponse
			r, err = c.Delete(ctx, &cellarv1.DeleteRequest{Bucket: faultBucket, Key: in.Key})
			v = string(r.GetPrevious().GetObjectId())
		}
		cancel()
		if err == nil {
			fc.leader.Store(int32(i))
			return linearkv.Output{Value: v, Previous: in.Op != linearkv.Get}, done
		}
		if in.Op != linearkv.Get && !notApplied(err) {
			return linearkv.Output{Unknown: true}, unknown
		}
		if h := fc.leaderHint(err); h >= 0 && h != i {
			next = h
		} else if next == int(fc.leader.Load()) || tries%faultNodes == faultNodes-1 {
			time.Sleep(30 * time.Millisecond) // every node said no: give the group a moment
		}
	}
	return linearkv.Output{}, failed
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// runClient runs random operations until ctx is done or it has done its share.
func (fc *faultCluster) runClient(ctx context.Context, id int, rng *rand.Rand, keys []string, h *linearkv.History) {
	for n := 0; n < maxOpsPerClient && ctx.Err() == nil; n++ {
		k := rng.IntN(len(keys))
		in := linearkv.Input{Key: keys[k]}
		switch p := rng.IntN(10); {
		case p < 4 || fc.unknownWrites[k].Load() >= maxUnknownWrites:
			in.Op = linearkv.Get
		case p < 8 || fc.unknownDeletes[k].Load() >= maxUnknownDeletes:
			in.Op = linearkv.Put
			in.Value = fmt.Sprintf("c%d-%d", id, n)
		default:
			in.Op = linearkv.Delete
		}
		call := h.Now()
		out, res := fc.do(in)
		ret := h.Now()
		switch {
		case res == done:
			h.Add(id, in, out, call, ret)
		case res == unknown:
			// It may take effect at any time after its call, or never.
			h.AddUnknown(id, in, call)
			if in.Op != linearkv.Get {
				fc.unknownWrites[k].Add(1)
			}
			if in.Op == linearkv.Delete {
				fc.unknownDeletes[k].Add(1)
			}
		case in.Op == linearkv.Get:
			failedReads.Add(1) // a failed read tells nothing
		default:
			// a write every node refused before raft saw it: it did not happen
		}
	}
}

// --- faults ---

type faultKind uint8

const (
	stopOne faultKind = iota
	stopTwo
	stopAll
	stopLeader
)

type fault struct {
	kind  faultKind
	nodes []int // for stopLeader, the node stopped if no leader is found
	down  time.Duration
	pause time.Duration // after the restart, before the next fault
}

func (f fault) String() string {
	name := [...]string{"stop one", "stop two (quorum lost)", "stop all", "stop the leader"}[f.kind]
	return fmt.Sprintf("%s %v for %v, then %v", name, f.nodes, f.down, f.pause)
}

// planFaults draws 8 to 12 faults.
func planFaults(rng *rand.Rand) []fault {
	n := 8 + rng.IntN(5)
	out := make([]fault, n)
	for i := range out {
		f := fault{
			down:  time.Duration(50+rng.IntN(400)) * time.Millisecond,
			pause: time.Duration(150+rng.IntN(400)) * time.Millisecond,
		}
		perm := rng.Perm(faultNodes)
		switch p := rng.IntN(100); {
		case p < 30:
			f.kind, f.nodes = stopOne, perm[:1]
		case p < 52:
			f.kind, f.nodes = stopTwo, perm[:2]
		case p < 72:
			f.kind, f.nodes = stopAll, perm
		default:
			f.kind, f.nodes = stopLeader, perm[:1]
		}
		out[i] = f
	}
	return out
}

// runFaults runs the plan, starting no fault after until, and returns how many ran.
// Every node it stops is running again when it returns.
func (fc *faultCluster) runFaults(plan []fault, until time.Time) int {
	for i, f := range plan {
		if time.Now().After(until) {
			return i
		}
		nodes := f.nodes
		if f.kind == stopLeader {
			if l := fc.findLeader(); l >= 0 {
				nodes = []int{l}
			}
		}
		began := time.Now()
		fc.stopSet(nodes)
		stopped := time.Since(began)
		time.Sleep(f.down)
		for _, n := range nodes {
			fc.start(n)
		}
		// Let the group elect a leader (raft's election timeouts are a second or two)
		// before the pause, so that the clients also see a healthy group between
		// faults; but not for long, a fault may come before the group is back.
		back := time.Now()
		leader := fc.waitLeader(2 * time.Second)
		fc.t.Logf("fault %d: %s: stopped %v in %v; leader %d after %v", i, f, nodes,
			stopped.Round(time.Millisecond), leader, time.Since(back).Round(time.Millisecond))
		time.Sleep(f.pause)
	}
	return len(plan)
}

func (fc *faultCluster) groupStatus(i int) (*cellarv1.GroupStatusResponse, error) {
	cc, err := fc.conns.Get(fc.nodes[i].grpcAddr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	return cellarv1.NewNodeAdminClient(cc).GroupStatus(ctx, &cellarv1.GroupStatusRequest{})
}

// transfer asks node i to hand its leadership to the node with id to (any, if empty).
func (fc *faultCluster) transfer(i int, to string) error {
	cc, err := fc.conns.Get(fc.nodes[i].grpcAddr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = cellarv1.NewNodeAdminClient(cc).TransferLeadership(ctx, &cellarv1.TransferLeadershipRequest{Id: to})
	return err
}

// leaseReads returns how many reads each node served under a read lease (its metrics;
// 0 for a node that does not answer).
func (fc *faultCluster) leaseReads() []float64 {
	sum := make([]float64, len(fc.nodes))
	for i, n := range fc.nodes {
		resp, err := http.Get("http://" + n.adminAddr + "/metrics")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, `cellar_index_leader_reads_total{by="lease"`) {
				f, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
				sum[i] += f
			}
		}
	}
	return sum
}

// findLeader returns the node that says it leads, or -1.
func (fc *faultCluster) findLeader() int {
	for i := range fc.nodes {
		if st, err := fc.groupStatus(i); err == nil && st.RaftState == "leader" {
			return i
		}
	}
	return -1
}

// waitLeader waits up to timeout for a node that says it leads, and returns it (or -1).
func (fc *faultCluster) waitLeader(timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		if l := fc.findLeader(); l >= 0 || time.Now().After(deadline) {
			return l
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitApplied waits until every node has applied the same log index.
func (fc *faultCluster) waitApplied(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	var seen []uint64
	for time.Now().Before(deadline) {
		seen = seen[:0]
		for i := range fc.nodes {
			st, err := fc.groupStatus(i)
			if err != nil {
				seen = append(seen, 0)
				continue
			}
			seen = append(seen, st.AppliedIndex)
		}
		if seen[0] > 0 && seen[0] == seen[1] && seen[1] == seen[2] {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fc.t.Logf("applied indexes still differ after %v: %v", timeout, seen)
}

// storeRecords opens a stopped node's Pebble and returns the object id of every key
// ("" when absent), checking that its bucket listing agrees with its lookups.
func storeRecords(t *testing.T, dir string, keys []string, log *slog.Logger) map[string]string {
	t.Helper()
	s, err := index.Open(dir, log)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	defer s.Close()
	if _, err := s.GetBucket(faultBucket); err != nil {
		t.Errorf("%s: bucket: %v", dir, err)
	}
	out := map[string]string{}
	for _, k := range keys {
		loc, err := s.Lookup(faultBucket, k)
		switch {
		case errs.Is(err, errs.NoSuchKey):
			out[k] = ""
		case err != nil:
			t.Errorf("%s: lookup %s: %v", dir, k, err)
		default:
			out[k] = string(loc.ObjectId)
		}
	}
	res, err := s.List(faultBucket, index.ListOptions{})
	if err != nil {
		t.Fatalf("%s: list: %v", dir, err)
	}
	listed := map[string]string{}
	for _, e := range res.Entries {
		listed[e.Key] = string(e.ObjectId)
	}
	for _, k := range keys {
		if v, ok := listed[k]; ok != (out[k] != "") || v != out[k] {
			t.Errorf("%s: %s listed as %q (listed: %v), looked up as %q", dir, k, v, ok, out[k])
		}
	}
	if len(listed) > len(keys) {
		t.Errorf("%s: lists %d keys, only %d were ever written", dir, len(listed), len(keys))
	}
	return out
}

// saveArtifacts writes the visualization and the history of a failed check into
// CELLAR_ARTIFACTS (a new temporary directory if unset) and says where they are.
func saveArtifacts(seed uint64, ops []porcupine.Operation) string {
	return linearkv.Save(os.Getenv("CELLAR_ARTIFACTS"), fmt.Sprintf("fault-%d", seed), ops, checkTimeout)
}
