package status_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/clustertest"
	"github.com/cellarsim/cellar/localcluster"
	"github.com/cellarsim/cellar/status"
)

// chromium finds a Chromium or Chrome binary: $CHROME_BIN, or one on PATH.
func chromium() string {
	if p := os.Getenv("CHROME_BIN"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// page is a headless browser on the status page of a running cluster.
type page struct {
	t   *testing.T
	ctx context.Context
	url string
	srv *httptest.Server
}

// startPage runs a status server for c on 127.0.0.1:0 and opens it in a headless
// Chromium. Everything stops when the test ends.
func startPage(t *testing.T, c *clustertest.Cluster) *page {
	t.Helper()
	var seeds []string
	for _, spec := range c.Topology.Nodes() {
		if spec.Role == cell.RoleIndex || spec.Role == cell.RoleGateway {
			seeds = append(seeds, c.Node(spec.ID).GossipAddr)
		}
	}
	return openPage(t, serveView(t, status.Config{Seeds: seeds, FastGossip: true, Cells: c.Topology.CellIDs(), GossipKey: c.GossipKey()}))
}

// serveView runs a collector with cfg, and a status server for it on 127.0.0.1:0,
// until the test ends.
func serveView(t *testing.T, cfg status.Config) *httptest.Server {
	t.Helper()
	// Generous: under the race detector on a busy machine a probe can take seconds.
	cfg.Interval, cfg.ProbeTimeout, cfg.StaleAfter = 500*time.Millisecond, 2*time.Second, 10*time.Second
	col, err := status.NewCollector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { col.Run(ctx); close(done) }()
	srv := httptest.NewServer(status.Handler(col.Snapshot))
	t.Cleanup(func() {
		srv.Close()
		stop()
		<-done
		col.Close()
	})
	return srv
}

// openPage opens srv's status page in a headless Chromium, which stops when the test
// ends.
func openPage(t *testing.T, srv *httptest.Server) *page {
	t.Helper()
	bin := chromium()
	if bin == "" {
		t.Skip("no chromium binary found (install Debian's chromium, or set CHROME_BIN): the status page browser test needs one")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1600, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	p := &page{t: t, ctx: bctx, url: srv.URL + "/", srv: srv}
	// The first run starts the browser, which lives as long as its context: no timeout.
	if err := chromedp.Do(bctx, chromedp.Navigate(p.url)); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	return p
}

// show points the page at another status server.
func (p *page) show(srv *httptest.Server) {
	p.t.Helper()
	p.srv, p.url = srv, srv.URL+"/"
	p.run("open "+p.url, chromedp.Navigate(p.url))
}

func (p *page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// text evaluates a JavaScript expression that gives a string.
func (p *page) text(expr string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

// waitFor waits until the JavaScript expression, which returns a list of what is not
// yet as expected, returns an empty list.
func (p *page) waitFor(what string, timeout time.Duration, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		pending, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](expr))
		cancel()
		if err == nil && len(pending) == 0 {
			return
		}
		if err != nil {
			pending = []string{err.Error()}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("page: %s: not after %v; still: %s", what, timeout, strings.Join(pending, "; "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// expectJS builds an expression that lists what differs from want: the data-state of
// each node (by id), the data-health of each cell, and the page's data-stale.
func expectJS(nodes map[string]string, cells map[string]string, stale bool) string {
	var b strings.Builder
	b.WriteString("(() => { const bad = []; const q = (s) => document.querySelector(s);\n")
	fmt.Fprintf(&b, "if (document.body.dataset.loaded !== 'true') bad.push('page has no data yet');\n")
	fmt.Fprintf(&b, "if (document.body.dataset.stale !== '%v') bad.push('stale is ' + document.body.dataset.stale);\n", stale)
	for id, want := range nodes {
		fmt.Fprintf(&b, "{ const e = q('.node[data-node=%q]'); const got = e ? e.dataset.state : 'missing'; if (got !== %q) bad.push(%q + ' is ' + got + (e ? ' (' + e.querySelector('.detail').textContent + ')' : '')); }\n", id, want, id)
	}
	for id, want := range cells {
		fmt.Fprintf(&b, "{ const e = q('.tile[data-cell=%q]'); const got = e ? e.dataset.health : 'missing'; if (got !== %q) bad.push(%q + ' is ' + got); }\n", id, want, id)
	}
	b.WriteString("return bad; })()")
	return b.String()
}

// TestStatusPageThroughOutage loads the status page of a 3-cell cluster, stops every
// index and storage node and the gateway, and checks that the page still loads and
// shows each of them down (and the cells down), then that it shows them ready again
// once they are back, and finally that it says its view is stale once the status
// server itself is gone.
func TestStatusPageThroughOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and a browser")
	}
	if chromium() == "" {
		t.Skip("no chromium binary found (install Debian's chromium, or set CHROME_BIN): the status page browser test needs one")
	}
	begin := time.Now()
	topo := cell.DefaultTopology()
	topo.Cells = 3
	// One index node per cell keeps the test quick on two cores; quorum over larger
	// groups is covered by the collector's own tests.
	topo.IndexNodes = 1
	c := clustertest.Start(t, topo)
	p := startPage(t, c)

	all := map[string]string{}
	var outage []string // index and storage nodes, then the gateway
	for _, spec := range topo.Nodes() {
		all[spec.ID] = "ready"
		if spec.Role == cell.RoleIndex || spec.Role == cell.RoleStorage || spec.Role == cell.RoleGateway {
			outage = append(outage, spec.ID)
		}
	}
	cells := func(health string) map[string]string {
		m := map[string]string{}
		for _, id := range topo.CellIDs() {
			m[id] = health
		}
		return m
	}
	p.waitFor("every node ready, every cell serving", 60*time.Second, expectJS(all, cells(status.HealthServing), false))
	t.Logf("cluster up and page green after %v", time.Since(begin).Round(time.Millisecond))

	var wg sync.WaitGroup
	for _, id := range outage {
		wg.Add(1)
		go func() { defer wg.Done(); c.StopNode(id) }()
	}
	wg.Wait()
	down := map[string]string{}
	for _, id := range outage {
		down[id] = "down"
	}
	// The page is loaded anew: it must come from the status server alone.
	p.run("reload the page during the outage", chromedp.Navigate(p.url))
	p.waitFor("every index and storage node and the gateway down", 30*time.Second, expectJS(down, cells(status.HealthDown), false))
	p.waitFor("no traffic figures without a gateway", 20*time.Second,
		`Array.from(document.querySelectorAll('.tile[data-cell]')).filter(e => !e.querySelector('[data-traffic="false"]')).map(e => e.dataset.cell + ' still shows traffic')`)
	text := p.text("document.body.innerText")
	for _, want := range []string{"NO index quorum", "every request fails", "down since"} {
		if !strings.Contains(text, want) {
			t.Errorf("page during the outage lacks %q", want)
		}
	}
	t.Logf("outage shown after %v", time.Since(begin).Round(time.Millisecond))

	for _, id := range outage {
		c.StartNode(id)
	}
	p.waitFor("every node ready again, every cell serving", 60*time.Second, expectJS(all, cells(status.HealthServing), false))
	// The events list says what happened, in order of time, newest first.
	p.waitFor("the events of the outage and the recovery", 10*time.Second, `(() => {
		const want = {
			"cell-1-index-0 went down": '#events li[data-node="cell-1-index-0"][data-to="down"]',
			"cell-1-index-0 came back": '#events li[data-node="cell-1-index-0"][data-from="down"]',
			"gateway-0 went down": '#events li[data-node="gateway-0"][data-to="down"]',
			"cell-1 went down": '#events li[data-kind="cell"][data-cell="cell-1"][data-to="down"]',
			"cell-1 serves again": '#events li[data-kind="cell"][data-cell="cell-1"][data-to="serving"]',
		};
		return Object.keys(want).filter(k => !document.querySelector(want[k]));
	})()`)
	t.Logf("recovery shown after %v", time.Since(begin).Round(time.Millisecond))

	// The status server itself goes away: the page must not keep showing green tiles.
	p.srv.Close()
	p.waitFor("the page says its view is stale", 30*time.Second, `(() => {
		const bad = [];
		if (document.body.dataset.stale !== "true") bad.push("stale is " + document.body.dataset.stale);
		const b = document.getElementById("stale");
		if (b.hidden || !b.textContent.includes("view is stale: last update")) bad.push("banner says " + JSON.stringify(b.hidden ? "(hidden)" : b.textContent));
		return bad;
	})()`)
}

// TestStatusPageStartedAfterQuorumLost starts the status view only after two of
// cell-1's three index nodes have stopped, so that it never sees them: first a view
// that only joins the gossip (cellctl status --serve --join, or a view beside the
// compose cluster), then one that reads the cluster's cluster.json (cellctl status
// --serve in a data directory). Each must show cell-1 down without index quorum, list
// the two nodes down, and not claim that every node is ready.
func TestStatusPageStartedAfterQuorumLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and a browser")
	}
	if chromium() == "" {
		t.Skip("no chromium binary found (install Debian's chromium, or set CHROME_BIN): the status page browser test needs one")
	}
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.PlacementNodes, topo.StorageNodes, topo.Gateways = 2, 3, 1, 1, 1
	c := clustertest.Start(t, topo)
	lost := []string{cell.NodeID("cell-1", cell.RoleIndex, 1), cell.NodeID("cell-1", cell.RoleIndex, 2)}
	for _, id := range lost {
		c.StopNode(id)
	}
	c.WaitGone(lost...)

	// What both views must show once they have heard from the cluster: the nodes and
	// cells, then cell-1's quorum judged against its three declared index nodes, and a
	// header that counts the two lost nodes.
	states := expectJS(
		map[string]string{"cell-1-index-0": "ready", "cell-1-index-1": "down", "cell-1-index-2": "down", "cell-0-index-0": "ready", "gateway-0": "ready"},
		map[string]string{"cell-0": status.HealthServing, "cell-1": status.HealthDown}, false)
	quorum := `(() => { const bad = [];
		const q = document.querySelector('.tile[data-cell="cell-1"] .quorum');
		if (!q || q.dataset.quorum !== "false" || !q.textContent.includes("1/3 ready, 2 needed")) bad.push("cell-1 quorum says " + (q ? q.textContent : "nothing"));
		const r = document.querySelector('.tile[data-cell="cell-1"] .reason');
		if (!r || !r.textContent.includes("index has no quorum (1 of 3 ready, 2 needed)")) bad.push("cell-1 reason says " + (r ? r.textContent : "nothing"));
		const h = document.getElementById("summary").textContent, m = h.match(/(\d+) of (\d+) nodes ready/);
		if (!m || m[2] !== "11" || m[1] === m[2]) bad.push("header says " + h + ", want fewer than 11 of 11 nodes ready");
		return bad; })()`
	check := func(p *page, what string) {
		t.Helper()
		p.waitFor(what+": nodes and cells", 60*time.Second, states)
		p.waitFor(what+": cell-1's quorum and the header", 10*time.Second, quorum)
	}

	var seeds []string
	for _, spec := range topo.Nodes() {
		if !slices.Contains(lost, spec.ID) {
			seeds = append(seeds, c.Node(spec.ID).GossipAddr)
		}
	}
	p := openPage(t, serveView(t, status.Config{Seeds: seeds, FastGossip: true, GossipKey: c.GossipKey()}))
	check(p, "a view joined to the gossip only")
	if text := p.text(`document.querySelector('.node[data-node="cell-1-index-1"] .detail').textContent`); !strings.Contains(text, "never seen") {
		t.Errorf("cell-1-index-1 in the gossip-only view: %q, want it said never seen", text)
	}

	dir := t.TempDir()
	writeClusterFile(t, dir, c, lost)
	p.show(serveView(t, status.Config{DataDir: dir, GossipKey: c.GossipKey()}))
	check(p, "a view reading cluster.json")
}

// writeClusterFile writes a cluster.json for c in dir, as cellctl up would: the
// topology, and every node with its addresses, the lost ones stopped.
func writeClusterFile(t *testing.T, dir string, c *clustertest.Cluster, lost []string) {
	t.Helper()
	f := localcluster.ClusterFile{Version: 1, Running: true, FastGossip: true, DataDir: dir,
		Topology: localcluster.Topology{Topology: c.Topology}}
	for _, spec := range c.Topology.Nodes() {
		n := c.Node(spec.ID)
		proc := localcluster.ProcRunning
		if slices.Contains(lost, spec.ID) {
			proc = localcluster.ProcStopped
		}
		f.Nodes = append(f.Nodes, localcluster.Node{
			ID: spec.ID, Role: spec.Role, Cell: spec.Cell, Process: proc,
			GRPCAddr: n.GRPCAddr, AdminAddr: n.AdminAddr, GossipAddr: n.GossipAddr, S3Addr: n.S3Addr, RaftAddr: n.RaftAddr,
		})
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, localcluster.ClusterFileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
