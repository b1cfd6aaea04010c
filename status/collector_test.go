package status

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
)

// fakeNode is a node's admin HTTP server: /readyz, /status and, for a gateway, /metrics.
type fakeNode struct {
	id      string
	role    cell.Role
	cell    string
	srv     *httptest.Server
	mu      sync.Mutex
	state   cell.State
	started time.Time
	ready   time.Time
	metrics string
	// What it gossips of its index group.
	leader    bool
	groupSize int
	// mapVersion is the cell map's version it gossips (a map member or a gateway).
	mapVersion uint64
	// broken: its admin server drops every request without an answer.
	broken bool
}

func newFakeNode(t *testing.T, id string, role cell.Role, cellID string) *fakeNode {
	n := &fakeNode{id: id, role: role, cell: cellID, state: cell.StateReady,
		started: time.Now().Add(-3 * time.Second), ready: time.Now().Add(-1500 * time.Millisecond)}
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.broken {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		if n.state != cell.StateReady {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, n.state)
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		defer n.mu.Unlock()
		st := map[string]any{"node_id": n.id, "state": n.state, "pid": 42, "started_unix_nano": n.started.UnixNano()}
		if n.state == cell.StateReady {
			st["ready_unix_nano"] = n.ready.UnixNano()
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		defer n.mu.Unlock()
		fmt.Fprint(w, n.metrics)
	})
	n.srv = httptest.NewServer(mux)
	t.Cleanup(n.srv.Close)
	return n
}

func (n *fakeNode) set(s cell.State) {
	n.mu.Lock()
	n.state = s
	n.mu.Unlock()
}

func (n *fakeNode) setBroken(b bool) {
	n.mu.Lock()
	n.broken = b
	n.mu.Unlock()
}

func (n *fakeNode) addr() string { return strings.TrimPrefix(n.srv.URL, "http://") }

func (n *fakeNode) node() cell.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return cell.Node{ID: n.id, Role: n.role, Cell: n.cell, State: n.state, AdminAddr: n.addr(), Started: n.started, Progress: 0.4,
		Leader: n.leader, GroupSize: n.groupSize, MapVersion: n.mapVersion}
}

// fakeMembers is a gossip view the test sets by hand.
type fakeMembers struct {
	mu    sync.Mutex
	nodes []*fakeNode
	joins [][]string
}

func (m *fakeMembers) Nodes() []cell.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []cell.Node
	for _, n := range m.nodes {
		out = append(out, n.node())
	}
	return out
}
func (m *fakeMembers) Changed() <-chan struct{} { return make(chan struct{}) }
func (m *fakeMembers) Join(addrs []string) error {
	m.mu.Lock()
	m.joins = append(m.joins, addrs)
	m.mu.Unlock()
	return nil
}
func (m *fakeMembers) set(nodes ...*fakeNode) {
	m.mu.Lock()
	m.nodes = nodes
	m.mu.Unlock()
}

func findNode(s Snapshot, id string) (NodeView, CellView) {
	for _, c := range s.Cells {
		for _, tv := range c.Tiers {
			for _, n := range tv.Nodes {
				if n.ID == id {
					return n, c
				}
			}
		}
	}
	for _, n := range s.Gateways {
		if n.ID == id {
			return n, CellView{}
		}
	}
	return NodeView{}, CellView{}
}

func TestCollectorStatesHealthAndEvents(t *testing.T) {
	idx := newFakeNode(t, "cell-0-index-0", cell.RoleIndex, "cell-0")
	pl := newFakeNode(t, "cell-0-placement-0", cell.RolePlacement, "cell-0")
	st := newFakeNode(t, "cell-0-storage-0", cell.RoleStorage, "cell-0")
	gw := newFakeNode(t, "gateway-0", cell.RoleGateway, "")
	gw.metrics = gatewayExposition
	members := &fakeMembers{}
	members.set(idx, pl, st, gw)
	dir := t.TempDir()
	c, err := NewCollector(Config{Members: members, DataDir: dir, Cells: []string{"cell-0", "cell-1"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.Pass(ctx)
	s := c.Snapshot()
	if s.Stale {
		t.Fatalf("fresh view is stale: %s", s.StaleReason)
	}
	if len(s.Cells) != 2 || s.Cells[0].ID != "cell-0" || s.Cells[1].ID != "cell-1" {
		t.Fatalf("cells = %+v", s.Cells)
	}
	if c0 := s.Cells[0]; c0.Health != HealthServing || !c0.Index.Quorum {
		t.Errorf("cell-0 = %s (%s), quorum %v; want serving", c0.Health, c0.Reason, c0.Index.Quorum)
	}
	if c1 := s.Cells[1]; c1.Health != HealthDown {
		t.Errorf("cell-1 with no node known = %s, want down", c1.Health)
	}
	n, _ := findNode(s, "cell-0-index-0")
	if n.State != cell.StateReady || n.ReadySeconds == nil || *n.ReadySeconds < 1.4 || *n.ReadySeconds > 1.6 || n.PID != 42 {
		t.Errorf("index node = %+v, want ready after 1.5 s", n)
	}

	// The index rebuilds, placement goes away from the gossip and its server stops.
	idx.set(cell.StateRebuilding)
	pl.srv.Close()
	members.set(idx, st, gw)
	c.Pass(ctx)
	s = c.Snapshot()
	n, c0 := findNode(s, "cell-0-index-0")
	if n.State != cell.StateRebuilding || n.Progress != 0.4 {
		t.Errorf("index = %s %v, want rebuilding 0.4", n.State, n.Progress)
	}
	p, _ := findNode(s, "cell-0-placement-0")
	if p.State != StateDown || p.InGossip {
		t.Errorf("placement = %s in gossip %v, want down and out of the gossip", p.State, p.InGossip)
	}
	if c0.Health != HealthDown || c0.Index.Quorum {
		t.Errorf("cell-0 = %s, quorum %v; want down without quorum", c0.Health, c0.Index.Quorum)
	}
	for _, op := range c0.Operations {
		if op.OK {
			t.Errorf("operation %s ok without index", op.Name)
		}
	}
	var msgs []string
	for _, e := range s.Events {
		msgs = append(msgs, e.Message)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"cell-0-index-0 ready → rebuilding", "cell-0-placement-0 ready → down", "cell-0 is down: index has no quorum"} {
		if !strings.Contains(all, want) {
			t.Errorf("events lack %q:\n%s", want, all)
		}
	}

	// The index is back; placement still down: reads served, PUT refused.
	idx.set(cell.StateReady)
	c.Pass(ctx)
	s = c.Snapshot()
	_, c0 = findNode(s, "cell-0-index-0")
	ops := map[string]bool{}
	for _, op := range c0.Operations {
		ops[op.Name] = op.OK
	}
	if c0.Health != HealthDegraded || !ops["GET"] || !ops["LIST"] || ops["PUT"] {
		t.Errorf("cell-0 = %s %v, want degraded with GET and LIST but not PUT", c0.Health, ops)
	}

	// A drill writes to the audit log.
	appendFile(t, filepath.Join(dir, AuditLogName), entryLine(t, guard.Entry{
		Time: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), Command: "cellctl stop cell-0-placement-0",
		Decision: guard.DecisionStep, Cell: "cell-0", Node: "cell-0-placement-0", Reason: "drill",
	}))
	c.Pass(ctx)
	s = c.Snapshot()
	found := false
	for _, e := range s.Events {
		found = found || (e.Kind == EventAudit && strings.HasPrefix(e.Message, "step: cellctl stop "))
	}
	if !found {
		t.Errorf("audit event missing from %+v", s.Events)
	}
}

func TestCollectorStaleness(t *testing.T) {
	idx := newFakeNode(t, "cell-0-index-0", cell.RoleIndex, "cell-0")
	members := &fakeMembers{}
	members.set(idx)
	var clock struct {
		sync.Mutex
		now time.Time
	}
	clock.now = time.Now()
	now := func() time.Time { clock.Lock(); defer clock.Unlock(); return clock.now }
	c, err := NewCollector(Config{Members: members, StaleAfter: 300 * time.Millisecond, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.Pass(ctx)
	if s := c.Snapshot(); s.Stale {
		t.Fatalf("fresh view is stale: %s", s.StaleReason)
	}

	// The collector stops making passes: the view goes stale by itself.
	clock.Lock()
	clock.now = clock.now.Add(400 * time.Millisecond)
	clock.Unlock()
	s := c.Snapshot()
	if !s.Stale || !strings.Contains(s.StaleReason, "no pass") || s.Cells[0].Health != HealthUnknown {
		t.Errorf("no pass for 400ms: stale %v (%s), health %s; want stale, unknown", s.Stale, s.StaleReason, s.Cells[0].Health)
	}

	// Passes go on, but nothing answers and the gossip is empty.
	idx.srv.Close()
	members.set()
	for i := 0; i < 50 && (i == 0 || !s.Stale); i++ {
		clock.Lock()
		clock.now = clock.now.Add(100 * time.Millisecond)
		clock.Unlock()
		c.Pass(ctx)
		s = c.Snapshot()
	}
	if !s.Stale || !strings.Contains(s.StaleReason, "no gossip member and no node answered") {
		t.Errorf("cut off: stale %v (%s)", s.Stale, s.StaleReason)
	}
	if n, _ := findNode(s, "cell-0-index-0"); n.State != StateDown {
		t.Errorf("unreachable node = %s, want down", n.State)
	}
}

func TestHandler(t *testing.T) {
	ready := 1.25
	snap := Snapshot{Generated: time.Now(), Cells: []CellView{{
		ID: "cell-0", Health: HealthServing, Index: IndexGroup{Quorum: true},
		Tiers: []TierView{{Role: cell.RoleIndex, Nodes: []NodeView{{ID: "cell-0-index-0", Role: cell.RoleIndex, Cell: "cell-0", State: cell.StateReady, ReadySeconds: &ready}}}},
	}}, Gateways: []NodeView{{ID: "gateway-0", Role: cell.RoleGateway, State: StateDown}}}
	srv := httptest.NewServer(Handler(func() Snapshot { return snap }))
	defer srv.Close()
	for _, tc := range []struct{ path, contentType, contains string }{
		{"/", "text/html", `<script src="assets/app.js">`},
		{"/assets/app.js", "javascript", "api/status"},
		{"/assets/style.css", "text/css", ".tile"},
		{"/api/status", "application/json", `"id":"cell-0"`},
		{"/healthz", "text/plain", "ok"},
		{"/metrics", "text/plain", `cellar_status_node_ready_duration_seconds{cell="cell-0",node="cell-0-index-0",tier="index"} 1.25`},
		{"/metrics", "text/plain", `cellar_status_node_up{cell="",node="gateway-0",tier="gateway"} 0`},
		{"/metrics", "text/plain", `cellar_status_cell_health{cell="cell-0",health="serving"} 1`},
		{"/metrics", "text/plain", `cellar_status_index_quorum{cell="cell-0"} 1`},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), tc.contentType) || !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: %d %s; want %s with %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.contentType, tc.contains)
		}
	}
	// The view's own series follow the Prometheus naming conventions.
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.New(strings.NewReader(readAll(t, resp))).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %+v", err, problems)
	}

	// Nothing on the page comes from elsewhere.
	for _, name := range []string{"index.html", "app.js", "style.css"} {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "http://www.w3.org/2000/svg", "") // a namespace, not a fetch
		if strings.Contains(text, "http://") || strings.Contains(text, "https://") || strings.Contains(text, "//cdn") {
			t.Errorf("%s refers to another host", name)
		}
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
