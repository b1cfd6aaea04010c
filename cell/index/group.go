package index

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/internal/pki"
	"github.com/cellarsim/cellar/internal/raftpebble"
)

// A cell's index is a replication group of index nodes, kept consistent by
// hashicorp/raft: every write is a command in the group's log, acknowledged once a
// majority has it on disk and the leader has applied it; reads are served by the
// leader while it holds a read lease (lease.go), or after it confirms it still leads.
// A group that loses its majority stops serving, exactly as the 2017 index did when
// too many of its servers were removed.

// applyTimeout bounds how long a write waits for the group; a group without a
// majority fails writes after it, and the gateway answers 503.
const applyTimeout = 1500 * time.Millisecond

// group is this node's member of its cell's replication group.
type group struct {
	id    string
	r     *raft.Raft
	store *Store
	trans *raft.NetworkTransport
	log   *slog.Logger
	// size is how many members the group was declared with (its initial peers),
	// gossiped so that any observer can tell how many make a majority.
	size int
	// serving is true while this node leads and has applied every entry of earlier
	// terms (a barrier in its own term), so reads from its map are up to date;
	// servingTerm is that term: serving means nothing in any other.
	serving     atomic.Bool
	servingTerm atomic.Uint64
	// lease lets the leader serve reads without asking its followers each time; nil
	// when the node was started with lease reads off.
	lease *readLease
	// holdStop ends the transport's vote hold (votehold.go).
	holdStop chan struct{}
	// reads counts the reads let through, by how: "lease" or "verify".
	reads *prometheus.CounterVec
	// leaderChanges counts the times this node started to lead; summed over a
	// cell's nodes it is the number of leader changes the cell went through.
	leaderChanges prometheus.Counter
}

// Peer is one initial member of a group: node id and raft address.
type Peer = raftpebble.Peer

// ParsePeers parses "id=host:port,id=host:port".
func ParsePeers(specs []string) ([]Peer, error) { return raftpebble.ParsePeers(specs) }

type groupConfig struct {
	NodeID            string
	DataDir           string
	RaftAddr          string // bind address
	Advertise         string // address peers use; defaults to the bound address
	Peers             []Peer
	SnapshotThreshold uint64
	TrailingLogs      uint64
	Logger            *slog.Logger
	// TLS, when set, puts raft on mutual TLS between the index nodes of Cell.
	TLS  *pki.Creds
	Cell string
	// ReadLease makes the leader answer reads under a lease (lease.go) instead of
	// verifying its leadership with a majority for every read.
	ReadLease bool
}

func openGroup(cfg groupConfig, store *Store) (*group, error) {
	logOut := &raftpebble.LogWriter{Log: cfg.Logger, Component: "raft"}
	var adv net.Addr
	if cfg.Advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("raft advertise address %q: %w", cfg.Advertise, err)
		}
		adv = a
	}
	trans, err := newRaftTransport(cfg, adv, logOut)
	if err != nil {
		return nil, fmt.Errorf("raft transport on %s: %w", cfg.RaftAddr, err)
	}
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(cfg.DataDir, "raft-snapshots"), 2, logOut)
	if err != nil {
		trans.Close()
		return nil, fmt.Errorf("raft snapshots: %w", err)
	}
	// raft's timers are the patient ones every cellar group uses (raftpebble.NewConfig).
	rc := raftpebble.NewConfig(cfg.NodeID, logOut)
	// The FSM is Pebble itself: a restarted node keeps its state and only replays
	// the entries after its applied index, instead of reloading a snapshot.
	rc.NoSnapshotRestoreOnStart = true
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
		// raft looks at the threshold only every SnapshotInterval (2-4 min by
		// default); a small threshold is meant to be acted on.
		rc.SnapshotInterval = time.Second
	}
	if cfg.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	logs := raftpebble.Store{DB: store.db}
	hasState, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		trans.Close()
		return nil, err
	}
	// With the read lease, votes wait for HeartbeatTimeout after the start: a
	// restarted follower keeps the promise the lease rests on (votehold.go).
	var hold time.Duration
	if cfg.ReadLease {
		hold = rc.HeartbeatTimeout
	}
	holdStop := make(chan struct{})
	r, err := raft.NewRaft(rc, fsm{s: store}, logs, logs, snaps, newVoteHoldTransport(trans, hold, holdStop))
	if err != nil {
		close(holdStop)
		trans.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	g := &group{id: cfg.NodeID, r: r, store: store, trans: trans, log: cfg.Logger, size: max(1, len(cfg.Peers)),
		holdStop: holdStop,
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellar_index_raft_leader_changes_total",
			Help: "Times this node became the leader of its cell's index group and started serving.",
		}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cellar_index_leader_reads_total",
			Help: "Reads this node let through as its group's leader, by how it knew it still led: lease (no round trip) or verify (a majority asked).",
		}, []string{"by"}),
	}
	if cfg.ReadLease {
		g.lease = &readLease{
			length: rc.HeartbeatTimeout / 2, renewAfter: rc.HeartbeatTimeout / 4, now: time.Now,
			leading: g.leadingTerm,
			renew:   func() error { return r.Barrier(applyTimeout).Error() },
		}
	}
	if !hasState {
		if err := raftpebble.Bootstrap(r, cfg.NodeID, trans.LocalAddr(), cfg.Peers); err != nil {
			g.shutdown()
			return nil, err
		}
	}
	return g, nil
}

// apply replicates cmd and returns the response of applying it.
func (g *group) apply(ctx context.Context, cmd *cellarv1.IndexCommand) (proto.Message, error) {
	if g.r.State() != raft.Leader {
		return nil, g.notLeader()
	}
	cmd.UnixNano = time.Now().UnixNano()
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "encode index command")
	}
	timeout := applyTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	f := g.r.Apply(data, timeout)
	if err := f.Error(); err != nil {
		return nil, g.raftErr(err)
	}
	res, ok := f.Response().(applied)
	if !ok {
		return nil, errs.New(errs.Internal, "unexpected apply result")
	}
	return res.resp, res.err
}

// verifyRead returns nil when this node may serve a linearizable read: it leads, it
// has applied everything from earlier terms, and either it holds a read lease, or a
// majority answered that it still follows it.
func (g *group) verifyRead() error {
	if _, ok := g.leadingTerm(); !ok {
		return g.notLeader()
	}
	if g.lease != nil {
		switch err := g.lease.check(); {
		case err == nil:
			g.reads.WithLabelValues("lease").Inc()
			return nil
		case !errors.Is(err, errNoLease):
			return g.raftErr(err)
		}
	}
	if err := g.r.VerifyLeader().Error(); err != nil {
		return g.raftErr(err)
	}
	g.reads.WithLabelValues("verify").Inc()
	return nil
}

// leadingTerm returns raft's current term and whether this node leads in it and
// serves (its barrier in that very term is applied).
func (g *group) leadingTerm() (uint64, bool) {
	term := g.r.CurrentTerm()
	return term, g.r.State() == raft.Leader && g.serving.Load() && g.servingTerm.Load() == term
}

// dropLease ends the read lease, if lease reads are on.
func (g *group) dropLease() {
	if g.lease != nil {
		g.lease.drop()
	}
}

// transferring brackets a leadership transfer: the lease is dropped before it starts,
// and no lease is taken in the terms it ran in (lease.go).
func (g *group) transferring() (done func()) {
	if g.lease == nil {
		return func() {}
	}
	g.lease.beginTransfer(g.r.CurrentTerm())
	return func() { g.lease.endTransfer(g.r.CurrentTerm()) }
}

func (g *group) notLeader() error {
	if addr, id := g.r.LeaderWithID(); addr != "" {
		return errs.New(errs.Unavailable, "this index node is not its cell's leader (the leader is %s)", id)
	}
	return errs.New(errs.Unavailable, "the index of this cell has no leader (quorum lost?)")
}

func (g *group) raftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return errs.Wrap(errs.Unavailable, err, "the index of this cell lost its leader")
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return errs.Wrap(errs.Unavailable, err, "the index of this cell did not reach a majority in time")
	case errors.Is(err, raft.ErrRaftShutdown):
		return errs.Wrap(errs.Unavailable, err, "this index node is stopping")
	}
	return errs.Wrap(errs.Unavailable, err, "the index of this cell is unavailable")
}

// watch keeps the gossip and the serving flag in step with raft: after becoming
// leader, a barrier makes sure every earlier entry is applied before reads are served.
// It also gossips the group's declared size once.
func (g *group) watch(ctx context.Context, members *cell.Membership) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	members.Update(func(n *cell.Node) { n.GroupSize = g.size })
	var lastLeader bool
	var lastApplied uint64
	var lastPublish time.Time
	// servingTerm is the term whose leadership the barrier confirmed: a node that
	// loses and wins back leadership between two ticks is in a new term, and must
	// apply what an other leader may have committed in between before it serves.
	var servingTerm uint64
	for {
		leader := g.r.State() == raft.Leader
		term := g.r.CurrentTerm()
		if leader && (!g.serving.Load() || term != servingTerm) {
			g.serving.Store(false)
			g.dropLease()
			if err := g.r.Barrier(applyTimeout).Error(); err == nil && g.r.State() == raft.Leader && g.r.CurrentTerm() == term {
				g.servingTerm.Store(term)
				g.serving.Store(true)
				servingTerm = term
				g.leaderChanges.Inc()
				g.log.Info("leading the cell's index group", "term", term)
			}
		}
		if !leader {
			g.serving.Store(false)
			g.dropLease()
		}
		serving := g.serving.Load()
		appliedIdx := g.store.AppliedIndex()
		if serving != lastLeader || (appliedIdx != lastApplied && time.Since(lastPublish) > time.Second) {
			members.Update(func(n *cell.Node) { n.Leader, n.AppliedIndex = serving, appliedIdx })
			lastLeader, lastApplied, lastPublish = serving, appliedIdx, time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// registerMetrics exports the group as this node sees it.
func (g *group) registerMetrics(reg prometheus.Registerer) {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	voters := func() float64 {
		n := 0
		if f := g.r.GetConfiguration(); f.Error() == nil {
			for _, s := range f.Configuration().Servers {
				if s.Suffrage == raft.Voter {
					n++
				}
			}
		}
		return float64(n)
	}
	reg.MustRegister(
		g.leaderChanges,
		g.reads,
		gauge("cellar_index_raft_term", "The raft term this node is in: it grows by one with every election in the cell's index group.", func() float64 {
			return float64(g.r.CurrentTerm())
		}),
		gauge("cellar_index_raft_leader", "1 while this node leads its cell's index group and serves reads.", func() float64 {
			if g.serving.Load() {
				return 1
			}
			return 0
		}),
		gauge("cellar_index_raft_voters", "Voters in the cell's index group, as this node knows the configuration.", voters),
		gauge("cellar_index_raft_commit_index", "Last log index this node knows to be committed.", func() float64 { return float64(g.r.CommitIndex()) }),
		gauge("cellar_index_raft_applied_index", "Last log index applied to this node's Pebble.", func() float64 { return float64(g.store.AppliedIndex()) }),
		gauge("cellar_index_raft_last_contact_seconds", "Seconds since this follower last heard from the leader (0 on the leader).", func() float64 {
			if g.r.State() == raft.Leader {
				return 0
			}
			if lc := g.r.LastContact(); !lc.IsZero() {
				return time.Since(lc).Seconds()
			}
			return -1
		}),
	)
}

// status reports the group as this node sees it.
func (g *group) status() (*cellarv1.GroupStatusResponse, error) {
	st := &cellarv1.GroupStatusResponse{
		NodeId: g.id, RaftState: strings.ToLower(g.r.State().String()),
		CommitIndex: g.r.CommitIndex(), AppliedIndex: g.store.AppliedIndex(), LastLogIndex: g.r.LastIndex(),
	}
	_, leaderID := g.r.LeaderWithID()
	st.LeaderId = string(leaderID)
	if g.r.State() != raft.Leader {
		if lc := g.r.LastContact(); !lc.IsZero() {
			st.LastContactMs = time.Since(lc).Milliseconds()
		}
	}
	fmt.Sscan(g.r.Stats()["term"], &st.Term)
	f := g.r.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, g.raftErr(err)
	}
	for _, s := range f.Configuration().Servers {
		st.Members = append(st.Members, &cellarv1.GroupMember{
			Id: string(s.ID), Address: string(s.Address), Suffrage: strings.ToLower(s.Suffrage.String()),
			Leader: s.ID == leaderID,
		})
	}
	return st, nil
}

func (g *group) addVoter(id, addr string) error {
	if id == "" || addr == "" {
		return errs.New(errs.InvalidArgument, "adding a voter needs its id and raft address")
	}
	g.dropLease() // the next lease is won in the new configuration
	if err := g.r.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 10*time.Second).Error(); err != nil {
		return g.raftErr(err)
	}
	return nil
}

func (g *group) removeServer(id string) error {
	if id == "" {
		return errs.New(errs.InvalidArgument, "removing a node needs its id")
	}
	g.dropLease() // the next lease is won in the new configuration
	if err := g.r.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error(); err != nil {
		return g.raftErr(err)
	}
	return nil
}

func (g *group) transferLeadership(id string) error {
	defer g.transferring()()
	var f raft.Future
	if id == "" {
		f = g.r.LeadershipTransfer()
	} else {
		f = g.r.LeadershipTransferToServer(raft.ServerID(id), g.serverAddr(id))
	}
	if err := f.Error(); err != nil {
		return g.raftErr(err)
	}
	return nil
}

func (g *group) serverAddr(id string) raft.ServerAddress {
	if f := g.r.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if string(s.ID) == id {
				return s.Address
			}
		}
	}
	return ""
}

// shutdown leaves the group gracefully: a leader first hands its leadership to
// another voter, so a rolling restart costs one election at most, not a timeout.
func (g *group) shutdown() error {
	g.serving.Store(false)
	g.dropLease()
	if g.r.State() == raft.Leader {
		done := g.transferring()
		if err := g.r.LeadershipTransfer().Error(); err != nil && !errors.Is(err, raft.ErrNotLeader) {
			g.log.Debug("leadership transfer before stop", "err", err)
		}
		done()
	}
	err := g.r.Shutdown().Error()
	close(g.holdStop)
	g.trans.Close()
	return err
}
