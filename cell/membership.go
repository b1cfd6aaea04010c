package cell

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
)

// MembershipConfig says how a node joins the gossip.
type MembershipConfig struct {
	Self Node
	// BindAddr is the gossip address, host:port; port 0 picks a free one.
	BindAddr string
	// Join lists gossip addresses of members to join; empty starts a new cluster.
	Join []string
	// Fast shortens the gossip timers, for tests on one machine.
	Fast   bool
	Logger *slog.Logger
	// SecretKey, if set (16, 24 or 32 bytes), encrypts and authenticates every gossip
	// message with memberlist's keyring: a member without the key can neither read
	// the cluster's gossip nor join it or change what it says.
	SecretKey []byte
}

// Membership is this node's view of the cluster, kept by hashicorp/memberlist. It
// publishes this node's Node (role, cell, addresses, state, pid) as memberlist metadata
// and lists the others'.
type Membership struct {
	ml      *memberlist.Memberlist
	log     *slog.Logger
	mu      sync.Mutex
	self    Node
	meta    []byte
	changed chan struct{} // closed and replaced on every change
	// members is this node's copy of the others, by memberlist name, kept by the
	// event callbacks: memberlist rewrites its own node records in place, so they
	// are not read outside its callbacks.
	members map[string]Node
	// view is Nodes' answer, kept until the next change of members or self (nil: to
	// be made again). A gateway asks for it on every request; it is shared, never
	// changed once made.
	view []Node
	// updateMu makes one broadcast of this node's metadata at a time (memberlist's
	// UpdateNode is not safe to call concurrently).
	updateMu sync.Mutex
	name     string // this incarnation's memberlist name
}

// JoinCluster starts gossip for cfg.Self and joins the members in cfg.Join. Failing to
// reach any of them is not an error: the node serves on its own and is found when
// others join it (a restarted seed must not wait for the cluster it seeds).
func JoinCluster(cfg MembershipConfig) (*Membership, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	m := &Membership{log: logger, self: cfg.Self, changed: make(chan struct{}), members: map[string]Node{}}
	if err := m.encode(); err != nil {
		return nil, err
	}
	host, portStr, err := net.SplitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.BindAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: bad port", cfg.BindAddr)
	}
	mc := memberlist.DefaultLANConfig()
	if cfg.Fast {
		mc = memberlist.DefaultLocalConfig()
		// Quick to spread news, patient before calling a node dead: on a busy
		// 2-core machine a live node can be off the CPU for seconds, and a node
		// wrongly declared dead takes its cell's index leader or a storage node out
		// of every gateway's routing until it refutes. Nodes that stop cleanly say
		// so at once (Leave); only killed ones wait for the probes, about 7 s on a
		// cluster of 25 nodes (SuspicionMult x log10(nodes) x ProbeInterval), and
		// nothing waits on that: a killed leader is replaced by its group's own
		// election, and reads switch replicas when a storage node stops answering.
		// memberlist's Lifeguard also lengthens a prober's timeouts while the prober
		// itself is slow, so a starved node does not accuse the healthy ones.
		mc.GossipInterval = 50 * time.Millisecond
		mc.ProbeInterval = time.Second
		mc.ProbeTimeout = 500 * time.Millisecond
		mc.PushPullInterval = 5 * time.Second
		mc.SuspicionMult = 5
	}
	// An incarnation gets its own memberlist name, so a node restarted on a new
	// address never conflicts with its dead predecessor; Nodes keeps the newest.
	mc.Name = fmt.Sprintf("%s@%d", cfg.Self.ID, cfg.Self.Started.UnixNano())
	m.name = mc.Name
	mc.BindAddr = host
	mc.BindPort = port
	mc.AdvertiseAddr = host
	mc.AdvertisePort = port
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		// Bound to every interface (a status view in a container): advertise the
		// host's private address and the port actually bound, as memberlist works
		// them out, not 0.0.0.0, which no other member can dial back.
		mc.AdvertiseAddr, mc.AdvertisePort = "", 0
	}
	if len(cfg.SecretKey) > 0 {
		kr, err := memberlist.NewKeyring(nil, cfg.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("gossip key: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	mc.Delegate = (*delegate)(m)
	mc.Events = (*events)(m)
	mc.Logger = log.New(&logWriter{log: logger}, "", 0)
	ml, err := memberlist.Create(mc)
	if err != nil && mc.AdvertiseAddr == "" {
		// No private address to advertise: fall back to the address bound, as before.
		mc.BindPort, mc.AdvertiseAddr, mc.AdvertisePort = port, host, port
		ml, err = memberlist.Create(mc)
	}
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.BindAddr, err)
	}
	m.ml = ml
	addr := ml.LocalNode().Address()
	m.mu.Lock()
	m.self.Gossip = addr
	m.view = nil
	m.mu.Unlock()
	_ = m.encode()
	if len(cfg.Join) > 0 {
		if _, err := ml.Join(cfg.Join); err != nil {
			logger.Warn("gossip: no seed reachable yet; serving alone until found", "seeds", cfg.Join, "err", err)
		}
	}
	return m, nil
}

// Addr is the gossip address this node listens on.
func (m *Membership) Addr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.self.Gossip
}

// Self returns this node as it is gossiped now.
func (m *Membership) Self() Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.self
}

// SetState publishes a new state (and rebuild progress) for this node.
func (m *Membership) SetState(s State, progress float64) {
	m.Update(func(n *Node) { n.State, n.Progress = s, progress })
}

// Update changes what this node gossips about itself and publishes it.
func (m *Membership) Update(change func(n *Node)) {
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	m.mu.Lock()
	change(&m.self)
	m.view = nil
	m.mu.Unlock()
	if err := m.encode(); err != nil {
		m.log.Error("gossip: encode state", "err", err)
		return
	}
	if err := m.ml.UpdateNode(time.Second); err != nil {
		m.log.Warn("gossip: broadcast state", "err", err)
	}
	m.notify()
}

// Join joins more members; it is how a node finds a cluster started after it.
func (m *Membership) Join(addrs []string) error {
	_, err := m.ml.Join(addrs)
	return err
}

// Nodes lists the live members, one per node id (the newest incarnation), sorted by id.
// The slice is the caller's.
func (m *Membership) Nodes() []Node {
	return slices.Clone(m.shared())
}

// shared is Nodes' list as kept until the next change: not to be changed.
func (m *Membership) shared() []Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.view == nil {
		m.view = m.makeView()
	}
	return m.view
}

// makeView lists the live members, one per node id, sorted by id. The caller holds mu.
func (m *Membership) makeView() []Node {
	byID := map[string]Node{}
	for name, n := range m.members {
		if name == m.name {
			n = m.self // what this node says of itself now, not what gossip last carried
		}
		if old, ok := byID[n.ID]; ok && old.Started.After(n.Started) {
			continue
		}
		byID[n.ID] = n
	}
	out := make([]Node, 0, len(byID))
	for _, n := range byID {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// track records a member as memberlist reports it; called from its callbacks.
func (m *Membership) track(mem *memberlist.Node, alive bool) {
	m.mu.Lock()
	if !alive {
		delete(m.members, mem.Name)
	} else if n, err := decodeMeta(mem.Meta); err == nil {
		n.Gossip = mem.Address()
		m.members[mem.Name] = n
	}
	m.view = nil
	m.mu.Unlock()
	m.notify()
}

// Ready lists the ready nodes of a role in a cell.
func (m *Membership) Ready(cellID string, role Role) []Node {
	var out []Node
	for _, n := range m.shared() {
		if n.Cell == cellID && n.Role == role && n.State == StateReady {
			out = append(out, n)
		}
	}
	return out
}

// Find returns the live member with this id, if there is one.
func (m *Membership) Find(id string) (Node, bool) {
	for _, n := range m.shared() {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

// Changed returns a channel that is closed at the next change in membership or state.
func (m *Membership) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// Leave tells the others this node is going, then stops gossiping.
func (m *Membership) Leave(timeout time.Duration) {
	if err := m.ml.Leave(timeout); err != nil {
		m.log.Warn("gossip: leave", "err", err)
	}
	if err := m.ml.Shutdown(); err != nil {
		m.log.Warn("gossip: shutdown", "err", err)
	}
}

func (m *Membership) notify() {
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

func (m *Membership) encode() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.self
	b, err := proto.Marshal(&cellarv1.NodeMeta{
		NodeId: n.ID, Role: string(n.Role), Cell: n.Cell, State: string(n.State), Pid: int64(n.PID),
		GrpcAddr: n.GRPCAddr, AdminAddr: n.AdminAddr, StartedUnixNano: n.Started.UnixNano(), Progress: n.Progress,
		Leader: n.Leader, AppliedIndex: n.AppliedIndex, GroupSize: int32(n.GroupSize), MapVersion: n.MapVersion,
	})
	if err != nil {
		return err
	}
	if len(b) > memberlist.MetaMaxSize {
		return fmt.Errorf("node metadata is %d bytes, over memberlist's %d", len(b), memberlist.MetaMaxSize)
	}
	m.meta = b
	return nil
}

func decodeMeta(b []byte) (Node, error) {
	var pm cellarv1.NodeMeta
	if err := proto.Unmarshal(b, &pm); err != nil {
		return Node{}, err
	}
	if pm.NodeId == "" {
		return Node{}, fmt.Errorf("no node id in metadata")
	}
	return Node{
		ID: pm.NodeId, Role: Role(pm.Role), Cell: pm.Cell, State: State(pm.State), PID: int(pm.Pid),
		GRPCAddr: pm.GrpcAddr, AdminAddr: pm.AdminAddr, Started: time.Unix(0, pm.StartedUnixNano), Progress: pm.Progress,
		Leader: pm.Leader, AppliedIndex: pm.AppliedIndex, GroupSize: int(pm.GroupSize), MapVersion: pm.MapVersion,
	}, nil
}

// delegate gives memberlist this node's metadata; cellar sends no other gossip.
type delegate Membership

func (d *delegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.meta
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// events wakes up whoever waits on Changed.
type events Membership

func (e *events) NotifyJoin(n *memberlist.Node)   { (*Membership)(e).track(n, true) }
func (e *events) NotifyLeave(n *memberlist.Node)  { (*Membership)(e).track(n, false) }
func (e *events) NotifyUpdate(n *memberlist.Node) { (*Membership)(e).track(n, true) }

// logWriter turns memberlist's log lines into slog records: errors as warnings,
// warnings as info, the rest as debug.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	switch {
	case bytes.Contains(p, []byte("[ERR]")):
		w.log.Warn(line, "component", "gossip")
	case bytes.Contains(p, []byte("[WARN]")):
		w.log.Info(line, "component", "gossip")
	default:
		w.log.Debug(line, "component", "gossip")
	}
	return len(p), nil
}

var _ io.Writer = (*logWriter)(nil)
