package mapgroup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/cellmap"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/internal/pki"
	"github.com/cellarsim/cellar/internal/raftpebble"
)

// applyTimeout bounds how long a change waits for the group; a group without a
// majority fails changes after it.
const applyTimeout = 2 * time.Second

// group is this member of the map group: raft, and the map it has applied.
type group struct {
	id    string
	r     *raft.Raft
	db    *pebble.DB
	trans *raft.NetworkTransport
	fsm   *fsm
	log   *slog.Logger
}

func openGroup(cfg Config, creds *pki.Creds, logger *slog.Logger) (*group, error) {
	peers, err := raftpebble.ParsePeers(cfg.Peers)
	if err != nil {
		return nil, err
	}
	logOut := &raftpebble.LogWriter{Log: logger, Component: "raft"}
	var adv net.Addr
	if cfg.RaftAdvertise != "" {
		if adv, err = net.ResolveTCPAddr("tcp", cfg.RaftAdvertise); err != nil {
			return nil, fmt.Errorf("mapgroup: raft advertise address %q: %w", cfg.RaftAdvertise, err)
		}
	}
	db, err := pebble.Open(filepath.Join(cfg.DataDir, "raft"), &pebble.Options{Logger: pebbleLog{logger}})
	if err != nil {
		return nil, fmt.Errorf("mapgroup: open raft store: %w", err)
	}
	trans, err := raftpebble.NewTransport(raftpebble.TransportConfig{
		Bind: cfg.RaftAddr, Advertise: adv, TLS: creds,
		Peer: func(p pki.Identity) error {
			if p.Role != string(cell.RoleMap) {
				return fmt.Errorf("raft of the map group: a %s certificate (%s) may not connect", p.Role, p.Node)
			}
			return nil
		},
	}, logOut)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("mapgroup: raft transport on %s: %w", cfg.RaftAddr, err)
	}
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(cfg.DataDir, "raft-snapshots"), 2, logOut)
	if err != nil {
		trans.Close()
		db.Close()
		return nil, fmt.Errorf("mapgroup: raft snapshots: %w", err)
	}
	store := raftpebble.Store{DB: db}
	hasState, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		trans.Close()
		db.Close()
		return nil, err
	}
	f := newFSM()
	r, err := raft.NewRaft(raftpebble.NewConfig(cfg.NodeID, logOut), f, store, store, snaps, trans)
	if err != nil {
		trans.Close()
		db.Close()
		return nil, fmt.Errorf("mapgroup: start raft: %w", err)
	}
	g := &group{id: cfg.NodeID, r: r, db: db, trans: trans, fsm: f, log: logger}
	if !hasState {
		if err := raftpebble.Bootstrap(r, cfg.NodeID, trans.LocalAddr(), peers); err != nil {
			g.shutdown()
			return nil, err
		}
	}
	return g, nil
}

// apply replicates cmd and returns the map after it.
func (g *group) apply(ctx context.Context, cmd *cellarv1.MapCommand) (*cellarv1.Map, error) {
	if g.r.State() != raft.Leader {
		if _, id := g.r.LeaderWithID(); id != "" {
			return nil, errs.New(errs.Unavailable, "this map group member is not the leader (the leader is %s)", id)
		}
		return nil, errs.New(errs.Unavailable, "the map group has no leader (quorum lost?)")
	}
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "encode map command")
	}
	timeout := applyTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	fut := g.r.Apply(data, timeout)
	if err := fut.Error(); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "the map group did not apply the change")
	}
	res, ok := fut.Response().(applied)
	if !ok {
		return nil, errs.New(errs.Internal, "unexpected map apply result")
	}
	// Followers learn that an entry is committed (and apply it) only with the next
	// entry the leader sends them; a barrier is that next entry, so that a member
	// that serves Get to gateways is not left one change behind.
	go g.r.Barrier(applyTimeout)
	return res.m, res.err
}

// watch keeps the gossip in step with raft: whether this member leads (once it has
// applied every entry of earlier terms: a barrier in its term), the map version it
// holds, and, at most once a second, the log index it has applied.
//
// ready is called once, the first time the group has a leader this member reaches:
// the member itself leads (past its barrier), or it is a follower that heard from
// the leader within leaderContact. A member that says ready before that would send
// its first callers to a group that cannot change the map yet.
func (g *group) watch(ctx context.Context, members *cell.Membership, groupSize int, ready func()) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	members.Update(func(n *cell.Node) { n.GroupSize = groupSize })
	var last cell.Node
	var lastPublish time.Time
	var servingTerm uint64
	serving := false
	for {
		leader := g.r.State() == raft.Leader
		if term := g.r.CurrentTerm(); leader && (!serving || term != servingTerm) {
			serving = g.r.Barrier(applyTimeout).Error() == nil && g.r.State() == raft.Leader && g.r.CurrentTerm() == term
			servingTerm = term
		}
		serving = serving && leader
		now := cell.Node{Leader: serving, AppliedIndex: g.r.AppliedIndex(), MapVersion: g.fsm.current().GetVersion()}
		if now.Leader != last.Leader || now.MapVersion != last.MapVersion ||
			(now.AppliedIndex != last.AppliedIndex && time.Since(lastPublish) > time.Second) {
			members.Update(func(n *cell.Node) {
				n.Leader, n.AppliedIndex, n.MapVersion = now.Leader, now.AppliedIndex, now.MapVersion
			})
			last, lastPublish = now, time.Now()
		}
		if ready != nil && g.hasLeader(serving) {
			ready()
			ready = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// leaderContact is how recently a follower must have heard from the leader to count
// it as reachable.
const leaderContact = 3 * time.Second

// hasLeader says whether the group has a leader this member reaches: it leads and
// serves (serving), or it follows a leader it heard from lately.
func (g *group) hasLeader(serving bool) bool {
	if serving {
		return true
	}
	_, id := g.r.LeaderWithID()
	return groupHasLeader(g.r.State(), string(id), g.id, time.Since(g.r.LastContact()))
}

// groupHasLeader is hasLeader's judgement of a member that does not serve as leader:
// a follower that knows a leader other than itself and heard from it within
// leaderContact.
func groupHasLeader(state raft.RaftState, leaderID, self string, sinceContact time.Duration) bool {
	return state == raft.Follower && leaderID != "" && leaderID != self && sinceContact < leaderContact
}

// shutdown leaves the group gracefully: a leader first hands its leadership on.
func (g *group) shutdown() error {
	if g.r.State() == raft.Leader {
		if err := g.r.LeadershipTransfer().Error(); err != nil && !errors.Is(err, raft.ErrNotLeader) {
			g.log.Debug("leadership transfer before stop", "err", err)
		}
	}
	err := g.r.Shutdown().Error()
	g.trans.Close()
	return errors.Join(err, g.db.Close())
}

// fsm is the map as raft applies it: every command of the log, in order, through
// cellmap.Apply.
type fsm struct {
	mu      sync.Mutex
	m       *cellarv1.Map
	changed chan struct{} // closed at the next change of m
}

// applied is what applying one command gives: the map after it, or why it was refused.
type applied struct {
	m   *cellarv1.Map
	err error
}

func newFSM() *fsm { return &fsm{m: &cellarv1.Map{}, changed: make(chan struct{})} }

// current is the map applied so far, and a channel closed when it changes.
func (f *fsm) currentAndChange() (*cellarv1.Map, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m, f.changed
}

func (f *fsm) current() *cellarv1.Map {
	m, _ := f.currentAndChange()
	return m
}

func (f *fsm) set(m *cellarv1.Map) {
	f.mu.Lock()
	f.m = m
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *fsm) Apply(l *raft.Log) any {
	cmd := &cellarv1.MapCommand{}
	if err := proto.Unmarshal(l.Data, cmd); err != nil {
		return applied{err: errs.Wrap(errs.Internal, err, "decode map command %d", l.Index)}
	}
	next, changed, err := cellmap.Apply(f.current(), cmd)
	if changed {
		f.set(next)
	}
	return applied{m: next, err: err}
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	data, err := proto.Marshal(f.current())
	if err != nil {
		return nil, err
	}
	return snapshot(data), nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	m := &cellarv1.Map{}
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("mapgroup: restore snapshot: %w", err)
	}
	f.set(m)
	return nil
}

// snapshot is the map, encoded.
type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (snapshot) Release() {}

// pebbleLog sends Pebble's errors to the member's log and drops its informational lines.
type pebbleLog struct{ log *slog.Logger }

func (pebbleLog) Infof(string, ...any) {}
func (p pebbleLog) Errorf(format string, args ...any) {
	p.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLog) Fatalf(format string, args ...any) {
	p.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
	panic(fmt.Sprintf(format, args...))
}
