package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/localcluster"
)

// Members is the gossip view the collector reads: *cell.Membership.
type Members interface {
	Nodes() []cell.Node
	Changed() <-chan struct{}
	Join(addrs []string) error
}

// Target is a node known in advance, by its admin address: the collector probes it
// even when the gossip does not list it.
type Target struct {
	ID         string
	Role       cell.Role
	Cell       string
	AdminAddr  string
	GossipAddr string
}

// Config says where a Collector looks. Zero values are usable defaults, but it needs
// Seeds, DataDir (with a cluster.json), Targets or Members to find anything.
type Config struct {
	// Seeds are gossip addresses to join.
	Seeds []string
	// DataDir is a cluster's data directory: its cluster.json lists nodes to probe
	// (re-read on every pass), its audit.log holds drill and guardrail events.
	DataDir string
	// Targets are more nodes to probe.
	Targets []Target
	// Cells are shown even before any of their nodes is known.
	Cells []string
	// Topology is the cluster's declared shape, for a view with no cluster.json (a
	// topology file the operator names). Set, it is used even when DataDir has a
	// cluster.json; unset, the view takes the topology of DataDir/cluster.json, or
	// else the index group sizes the nodes gossip (see Declared).
	Topology *cell.Topology
	// BindAddr is the observer's gossip address (default 127.0.0.1:0).
	BindAddr string
	// FastGossip gives the observer the short gossip timers of a one-machine cluster.
	FastGossip bool
	// GossipKey is the cluster's gossip key (see cell.MembershipConfig.SecretKey);
	// nil takes DataDir's (pki/gossip.key) if it has one, else the gossip is not
	// encrypted.
	GossipKey []byte
	// Members, if set, is used instead of joining the gossip (tests).
	Members Members
	// Interval between passes (default 1s). A gossip change starts a pass at once.
	Interval time.Duration
	// StaleAfter is how long without a live gossip member or an answered probe makes
	// the view stale (default 5s).
	StaleAfter time.Duration
	// ProbeTimeout bounds each request to a node (default 1.5s).
	ProbeTimeout time.Duration
	// RateWindow is the window request and error rates and p99 are taken over
	// (default 5s).
	RateWindow time.Duration
	Logger     *slog.Logger
	// Now is the collector's clock (default time.Now); tests set it to step time.
	Now func() time.Time
}

// Collector keeps the status view up to date: one pass per Interval probes every known
// node, scrapes the gateways, reads the audit log and builds a Snapshot.
type Collector struct {
	cfg     Config
	log     *slog.Logger
	client  *http.Client
	members Members
	own     *cell.Membership // the observer's gossip, when the collector joined it
	joining atomic.Bool
	begun   time.Time

	mu          sync.Mutex
	snap        Snapshot
	lastContact time.Time
	events      []Event // oldest first

	// Owned by the pass loop.
	nodes      map[string]*tracked
	cellHealth map[string]string
	traffic    *trafficMeter
	audit      *auditTail
	lastJoin   time.Time
	wasStale   bool
}

// tracked is what the collector knows of one node across passes.
type tracked struct {
	id         string
	role       cell.Role
	cell       string
	admin      string
	grpc       string
	gossipAddr string
	pid        int
	process    string
	gossip     *cell.Node // as the gossip lists it now; nil when it does not
	lastGossip *cell.Node // as the gossip last listed it
	groupSize  int        // the largest index group size it has gossiped

	state    cell.State
	since    time.Time
	probe    string
	answered bool // the last probe got an HTTP answer
	failures int  // probes in a row without an answer

	started  time.Time
	ready    time.Time
	gauges   map[string]float64
	statusAt time.Time
}

// downAfterFailures is how many probes in a row a node the gossip still lists must
// miss before the view shows it down: on a busy machine a live node can miss one.
const downAfterFailures = 3

const (
	maxEvents     = 300
	servedEvents  = 60
	historyPoints = 180
)

// NewCollector prepares a collector and, unless cfg.Members is set, joins the gossip
// as an observer (the seeds are joined by Run, again and again until one answers).
func NewCollector(cfg Config) (*Collector, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 5 * time.Second
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 1500 * time.Millisecond
	}
	if cfg.RateWindow <= 0 {
		cfg.RateWindow = 5 * time.Second
	}
	if cfg.BindAddr == "" {
		cfg.BindAddr = "127.0.0.1:0"
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Collector{
		cfg: cfg, log: logger, members: cfg.Members,
		client: &http.Client{Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: cfg.ProbeTimeout}).DialContext,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     30 * time.Second,
		}},
		nodes: map[string]*tracked{}, cellHealth: map[string]string{},
		traffic: newTrafficMeter(cfg.RateWindow, historyPoints),
	}
	if cfg.DataDir != "" {
		c.audit = &auditTail{path: filepath.Join(cfg.DataDir, AuditLogName)}
		if f, err := localcluster.ReadClusterFile(cfg.DataDir); err == nil && f.FastGossip {
			cfg.FastGossip = true
		}
		if cfg.GossipKey == nil {
			key, err := localcluster.GossipKey(cfg.DataDir)
			if err != nil {
				return nil, fmt.Errorf("status: %w", err)
			}
			cfg.GossipKey = key
		}
	}
	if c.members == nil {
		m, err := cell.JoinCluster(cell.MembershipConfig{
			Self: cell.Node{
				ID: fmt.Sprintf("status-%d", os.Getpid()), Role: cell.RoleObserver, State: cell.StateReady,
				PID: os.Getpid(), Started: time.Now(),
			},
			BindAddr:  cfg.BindAddr,
			Fast:      cfg.FastGossip,
			Logger:    slog.New(gossipAsDebug{logger.Handler()}),
			SecretKey: cfg.GossipKey,
		})
		if err != nil {
			return nil, fmt.Errorf("status: join the gossip as an observer: %w", err)
		}
		c.own, c.members = m, m
	}
	now := c.cfg.Now()
	c.begun = now
	c.snap = Snapshot{Generated: now, StaleAfterSeconds: cfg.StaleAfter.Seconds(), Cells: []CellView{}, Gateways: []NodeView{}, Events: []Event{}, Moves: []MoveView{}}
	c.addEvent(Event{Time: now, Kind: EventView, Message: "status view started"})
	return c, nil
}

// Close leaves the gossip.
func (c *Collector) Close() {
	if c.own != nil {
		c.own.Leave(500 * time.Millisecond)
	}
}

// Run makes a pass every Interval, and at once on a gossip change, until ctx is done.
func (c *Collector) Run(ctx context.Context) {
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	c.Pass(ctx)
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.members.Changed():
			// Let a burst of gossip news settle, and do not pass more than 5 times a second.
			wait := max(100*time.Millisecond, 200*time.Millisecond-time.Since(last))
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		c.Pass(ctx)
		last = time.Now()
	}
}

// Snapshot returns the latest view, with its staleness judged now: a view whose
// collector has stopped making passes goes stale as well.
func (c *Collector) Snapshot() Snapshot {
	c.mu.Lock()
	s := c.snap
	last := c.lastContact
	c.mu.Unlock()
	now := c.cfg.Now()
	if !last.IsZero() {
		s.LastContactAgeSeconds = now.Sub(last).Seconds()
	}
	if stale, why := c.staleness(now, last, s.Generated); stale {
		s.Stale, s.StaleReason = true, why
		cells := make([]CellView, len(s.Cells))
		copy(cells, s.Cells)
		for i := range cells {
			cells[i].Health = HealthUnknown
		}
		s.Cells = cells
	}
	return s
}

func (c *Collector) staleness(now, lastContact, generated time.Time) (bool, string) {
	switch {
	case now.Sub(generated) > c.cfg.StaleAfter:
		return true, fmt.Sprintf("the status collector made no pass for %s", roundDur(now.Sub(generated)))
	case lastContact.IsZero():
		if now.Sub(c.begun) > c.cfg.StaleAfter {
			return true, "no node has been reached yet: no gossip member, no probe answered"
		}
		return false, ""
	case now.Sub(lastContact) > c.cfg.StaleAfter:
		return true, fmt.Sprintf("no gossip member and no node answered for %s: every node is down, or this status server is cut off", roundDur(now.Sub(lastContact)))
	}
	return false, ""
}

func roundDur(d time.Duration) string {
	return fmt.Sprintf("%d s", int(d.Seconds()))
}

func (c *Collector) addEvent(ev Event) {
	c.events = append(c.events, ev)
	if len(c.events) > maxEvents {
		c.events = append([]Event(nil), c.events[len(c.events)-maxEvents:]...)
	}
}

// Pass looks at the cluster once and publishes a new Snapshot.
func (c *Collector) Pass(ctx context.Context) {
	now := c.cfg.Now()
	file := c.readClusterFile()

	// Who is there: the gossip, cluster.json, the configured targets.
	gossipAlive := 0
	for _, t := range c.nodes {
		t.gossip = nil
	}
	for _, n := range c.members.Nodes() {
		if n.Role == cell.RoleObserver {
			continue
		}
		gossipAlive++
		t := c.track(n.ID, n.Role, n.Cell)
		n := n
		t.gossip, t.lastGossip = &n, &n
		t.groupSize = max(t.groupSize, n.GroupSize)
		t.admin = orKeep(n.AdminAddr, t.admin)
		t.grpc = orKeep(n.GRPCAddr, t.grpc)
		t.gossipAddr = orKeep(n.Gossip, t.gossipAddr)
		if n.PID > 0 {
			t.pid = n.PID
		}
	}
	if file != nil {
		for _, fn := range file.Nodes {
			t := c.track(fn.ID, fn.Role, fn.Cell)
			t.process = string(fn.Process)
			if t.gossip == nil {
				t.admin = orKeep(fn.AdminAddr, t.admin)
				t.grpc = orKeep(fn.GRPCAddr, t.grpc)
				t.gossipAddr = orKeep(fn.GossipAddr, t.gossipAddr)
			}
		}
	}
	for _, tg := range c.cfg.Targets {
		t := c.track(tg.ID, tg.Role, tg.Cell)
		if t.gossip == nil {
			t.admin = orKeep(tg.AdminAddr, t.admin)
			t.gossipAddr = orKeep(tg.GossipAddr, t.gossipAddr)
		}
	}

	// Probe every node directly, and scrape the gateways.
	type result struct {
		t       *tracked
		code    int
		body    string
		err     error
		st      *nodeStatus
		metrics map[string]*cellCounters
		at      time.Time
	}
	results := make([]result, 0, len(c.nodes))
	for _, t := range c.nodes {
		results = append(results, result{t: t})
	}
	var wg sync.WaitGroup
	for i := range results {
		r := &results[i]
		if r.t.admin == "" {
			r.err = errors.New("no admin address known")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.code, r.body, r.err = c.get(ctx, r.t.admin, "/readyz")
			r.at = c.cfg.Now()
			if r.err != nil {
				return
			}
			if c.wantStatus(r.t, r.code, r.body, now) {
				if st, err := c.getStatus(ctx, r.t.admin); err == nil {
					r.st = st
				}
			}
			if r.t.role == cell.RoleGateway {
				if m, err := c.getMetrics(ctx, r.t.admin); err == nil {
					r.metrics = m
				} else {
					c.log.Debug("status: scrape", "node", r.t.id, "err", err)
				}
			}
		}()
	}
	wg.Wait()
	now = c.cfg.Now()

	answered := 0
	var rejoin []string
	var newEvents []Event
	for _, r := range results {
		t := r.t
		state := probedState(r.code, r.body, r.err)
		t.answered = r.err == nil
		if t.answered {
			t.failures = 0
		} else {
			t.failures++
			if t.gossip != nil && t.failures < downAfterFailures {
				// The gossip still lists it: a missed probe or two is not an outage.
				state = t.state
			}
		}
		switch {
		case r.err != nil:
			t.probe = "unreachable: " + shortErr(r.err)
		case r.code == http.StatusOK:
			t.probe = "ok"
		default:
			t.probe = fmt.Sprintf("not ready (%d)", r.code)
		}
		if t.answered {
			answered++
			if t.gossip == nil && t.gossipAddr != "" {
				rejoin = append(rejoin, t.gossipAddr)
			}
		}
		if r.st != nil {
			t.statusAt = now
			t.started = time.Unix(0, r.st.StartedUnixNano)
			t.ready = time.Time{}
			if r.st.ReadyUnixNano > 0 {
				t.ready = time.Unix(0, r.st.ReadyUnixNano)
			}
			t.gauges = r.st.Gauges
			if r.st.PID > 0 {
				t.pid = int(r.st.PID)
			}
		} else if t.gossip != nil && t.gossip.Started.After(t.started) {
			// A new incarnation the gossip knows of before /status has told us.
			t.started, t.ready = t.gossip.Started, time.Time{}
		}
		if r.metrics != nil {
			c.traffic.add(t.id, r.at, r.metrics)
		}
		if state != t.state {
			if t.state != "" {
				newEvents = append(newEvents, nodeEvent(now, t, state))
			}
			t.state, t.since = state, now
		}
	}

	// Nodes that answer but that the gossip does not list, or no gossip at all: join
	// them, which also tells them about the rest of the cluster.
	if gossipAlive == 0 {
		rejoin = append(rejoin, c.cfg.Seeds...)
		if file != nil {
			rejoin = append(rejoin, file.GossipAddrs()...)
		}
	}
	if len(rejoin) > 0 && now.Sub(c.lastJoin) > 2*time.Second && c.joining.CompareAndSwap(false, true) {
		c.lastJoin = now
		go func(addrs []string) {
			defer c.joining.Store(false)
			if err := c.members.Join(dedupe(addrs)); err != nil {
				c.log.Debug("status: join", "addrs", addrs, "err", err)
			}
		}(rejoin)
	}

	var audit []Event
	if c.audit != nil {
		evs, err := c.audit.read()
		if err != nil {
			c.log.Warn("status: read audit log", "err", err)
		}
		for i := range evs {
			if evs[i].Time.IsZero() {
				evs[i].Time = now
			}
		}
		audit = evs
	}

	var recorded []localcluster.MoveStatus
	if c.cfg.DataDir != "" {
		var err error
		if recorded, err = localcluster.ReadMoves(c.cfg.DataDir); err != nil {
			c.log.Debug("status: moves file", "err", err)
		}
	}

	decl, from := c.declared(file)
	snap := c.build(now, decl)
	snap.Moves = moves(recorded, now)
	for _, cv := range snap.Cells {
		prev, ok := c.cellHealth[cv.ID]
		c.cellHealth[cv.ID] = cv.Health
		if ok && prev != cv.Health {
			msg := fmt.Sprintf("%s is %s", cv.ID, cv.Health)
			if cv.Reason != "" {
				msg += ": " + cv.Reason
			}
			newEvents = append(newEvents, Event{Time: now, Kind: EventCell, Cell: cv.ID, From: prev, To: cv.Health, Message: msg})
		}
	}
	snap.Source.GossipMembers = gossipAlive
	snap.Source.Topology = from
	snap.Source.DownAfterMissedProbes = downAfterFailures
	if c.own != nil {
		snap.Source.Observer = c.own.Addr()
	}
	if c.cfg.DataDir != "" {
		snap.Source.ClusterFile = filepath.Join(c.cfg.DataDir, localcluster.ClusterFileName)
		snap.Source.AuditLog = filepath.Join(c.cfg.DataDir, AuditLogName)
		snap.Source.MovesFile = filepath.Join(c.cfg.DataDir, localcluster.MovesFileName)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if gossipAlive > 0 || answered > 0 {
		c.lastContact = now
	}
	stale, why := c.staleness(now, c.lastContact, now)
	if stale != c.wasStale {
		msg := "view is fresh again"
		if stale {
			msg = "view is stale: " + why
		}
		newEvents = append(newEvents, Event{Time: now, Kind: EventView, Message: msg})
		c.wasStale = stale
	}
	for _, ev := range append(audit, newEvents...) {
		c.addEvent(ev)
	}
	n := min(servedEvents, len(c.events))
	snap.Events = make([]Event, 0, n)
	for i := len(c.events) - 1; i >= len(c.events)-n; i-- {
		snap.Events = append(snap.Events, c.events[i])
	}
	sort.SliceStable(snap.Events, func(i, j int) bool { return snap.Events[i].Time.After(snap.Events[j].Time) })
	c.snap = snap
}

func nodeEvent(now time.Time, t *tracked, to cell.State) Event {
	msg := fmt.Sprintf("%s %s → %s", t.id, t.state, to)
	if to == cell.StateReady && !t.started.IsZero() && !t.ready.IsZero() && t.ready.After(t.started) {
		msg += fmt.Sprintf(" (ready %s after start)", formatSeconds(t.ready.Sub(t.started).Seconds()))
	}
	return Event{Time: now, Kind: EventNode, Cell: t.cell, Node: t.id, From: string(t.state), To: string(to), Message: msg}
}

// probedState is a node's state from its /readyz answer: 200 is ready, 503 says the
// state in its body, and no answer is down.
func probedState(code int, body string, err error) cell.State {
	if err != nil {
		return StateDown
	}
	if code == http.StatusOK {
		return cell.StateReady
	}
	switch s := cell.State(strings.TrimSpace(body)); s {
	case cell.StateStarting, cell.StateRebuilding, cell.StateDraining, cell.StateDrained:
		return s
	}
	return cell.StateStarting
}

// wantStatus says whether to ask the node's /status this pass: when it has changed
// state, when its ready time is still unknown, when gossip knows a newer start, and
// every few seconds for its gauges.
func (c *Collector) wantStatus(t *tracked, code int, body string, now time.Time) bool {
	return probedState(code, body, nil) != t.state ||
		t.started.IsZero() ||
		(code == http.StatusOK && t.ready.IsZero()) ||
		(t.gossip != nil && !t.gossip.Started.Equal(t.started)) ||
		now.Sub(t.statusAt) > 5*time.Second
}

func (c *Collector) track(id string, role cell.Role, cellID string) *tracked {
	t := c.nodes[id]
	if t == nil {
		t = &tracked{id: id}
		c.nodes[id] = t
	}
	if role != "" {
		t.role = role
	}
	if cellID != "" {
		t.cell = cellID
	}
	return t
}

// declared is the shape the cells are judged against: Config.Topology, else the
// topology of cluster.json, else what the nodes ever seen say. It also says which.
func (c *Collector) declared(file *localcluster.ClusterFile) (Declared, string) {
	topo, from := c.cfg.Topology, "topology file"
	if topo == nil && file != nil && file.Topology.Cells > 0 {
		topo, from = &file.Topology.Topology, localcluster.ClusterFileName
	}
	if topo == nil {
		from = "gossip"
	}
	seen := make([]cell.Node, 0, len(c.nodes))
	for _, t := range c.nodes {
		seen = append(seen, cell.Node{ID: t.id, Role: t.role, Cell: t.cell, GroupSize: t.groupSize})
	}
	return NewDeclared(topo, seen), from
}

func (c *Collector) readClusterFile() *localcluster.ClusterFile {
	if c.cfg.DataDir == "" {
		return nil
	}
	f, err := localcluster.ReadClusterFile(c.cfg.DataDir)
	if err != nil {
		if !errors.Is(err, localcluster.ErrNoClusterFile) {
			c.log.Debug("status: cluster file", "err", err)
		}
		return nil
	}
	return f
}

func (c *Collector) get(ctx context.Context, addr, path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, "", err
	}
	return resp.StatusCode, string(b), nil
}

// nodeStatus is the part of a node's /status the view uses.
type nodeStatus struct {
	State           string             `json:"state"`
	PID             int64              `json:"pid"`
	StartedUnixNano int64              `json:"started_unix_nano"`
	ReadyUnixNano   int64              `json:"ready_unix_nano"`
	Gauges          map[string]float64 `json:"gauges"`
}

func (c *Collector) getStatus(ctx context.Context, addr string) (*nodeStatus, error) {
	code, body, err := c.get(ctx, addr, "/status")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/status: HTTP %d", code)
	}
	var st nodeStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return nil, fmt.Errorf("/status: %w", err)
	}
	return &st, nil
}

func (c *Collector) getMetrics(ctx context.Context, addr string) (map[string]*cellCounters, error) {
	code, body, err := c.get(ctx, addr, "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/metrics: HTTP %d", code)
	}
	return parseGatewayMetrics(strings.NewReader(body))
}

// shortErr keeps the end of a network error, the part that says what happened
// ("connection refused", "i/o timeout").
func shortErr(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

func orKeep(s, old string) string {
	if s == "" {
		return old
	}
	return s
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
