package workshop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/clustertest"
	"github.com/cellarsim/cellar/cmd/cellctl/cli"
	"github.com/cellarsim/cellar/drill"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway/mover"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/pki"
	"github.com/cellarsim/cellar/internal/testwait"
	"github.com/cellarsim/cellar/loadgen"
	"github.com/cellarsim/cellar/localcluster"
	"github.com/cellarsim/cellar/router"
	"github.com/cellarsim/cellar/workshop"
)

// pageDir is where the labs' pages are.
const pageDir = "../docs/workshop"

// observed is what a lab's run showed, by the name of the claim on its page: a word
// or a number.
type observed map[string]string

// checkPage compares every claim of lab n's page with what was observed: every claim
// must have been observed, and match (a range must hold the number observed).
func checkPage(t *testing.T, n int, got observed) {
	t.Helper()
	checkClaims(t, n, got, nil)
}

// checkClaims is checkPage for the claims of lab n's page that checked says are
// checked by this run (nil: all of them).
func checkClaims(t *testing.T, n int, got observed, checked func(name string) bool) {
	t.Helper()
	lab, err := workshop.Find(n)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(pageDir, lab.Page))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := workshop.ParseClaims(b)
	if err != nil {
		t.Fatalf("%s: %v", lab.Page, err)
	}
	if len(claims) == 0 {
		t.Fatalf("%s has no checked claims", lab.Page)
	}
	for _, c := range claims {
		if checked != nil && !checked(c.Name) {
			continue
		}
		v, ok := got[c.Name]
		switch {
		case !ok:
			t.Errorf("%s: the claim %q is not checked by this test", lab.Page, c.Name)
		case strings.Contains(c.Value, "–"):
			r, err := c.Range()
			if err != nil {
				t.Error(err)
				continue
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !r.Contains(f) {
				t.Errorf("%s: %s: observed %s, the page says %s", lab.Page, c.Name, v, c.Value)
			}
		case v != c.Value:
			t.Errorf("%s: %s: observed %q, the page says %q", lab.Page, c.Name, v, c.Value)
		}
	}
}

func TestEveryLabHasAPage(t *testing.T) {
	for _, l := range workshop.Labs {
		b, err := os.ReadFile(filepath.Join(pageDir, l.Page))
		if err != nil {
			t.Errorf("lab %d: %v", l.N, err)
			continue
		}
		if l.TopologyFile != "" {
			// The page shows the file 'cellctl lab N' writes, indented as a code block.
			indented := "    " + strings.ReplaceAll(strings.TrimSuffix(l.Topology, "\n"), "\n", "\n    ")
			if !strings.Contains(string(b), indented) || !slices.Contains(l.Up, l.TopologyFile) {
				t.Errorf("lab %d: the page does not show the topology 'cellctl lab %d' writes, or its up command does not use it", l.N, l.N)
			}
		}
		if l.Coming {
			if !strings.Contains(string(b), "coming") {
				t.Errorf("lab %d's page does not say it is coming", l.N)
			}
			continue
		}
		for _, h := range []string{"**Goal:**", "## Commands", "## What you should see", "## Why", "## Questions for the room"} {
			if !bytes.Contains(b, []byte(h)) {
				t.Errorf("%s has no %q", l.Page, h)
			}
		}
	}
	if _, err := workshop.Find(9); err == nil {
		t.Error("lab 9 found")
	}
	var out, errb bytes.Buffer
	if code := cli.Main([]string{"lab", "9"}, &out, &errb); code != cli.ExitUsage || strings.Count(errb.String(), "\n") != 1 || !strings.Contains(errb.String(), "no lab 9") {
		t.Errorf("cellctl lab 9: exit %d, %q; want exit %d and one line", code, errb.String(), cli.ExitUsage)
	}
	out.Reset()
	if code := cli.Main([]string{"lab", "--list"}, &out, &errb); code != 0 || len(strings.Split(strings.TrimSpace(out.String()), "\n")) != len(workshop.Labs) || !strings.Contains(out.String(), "Moving a tenant between cells") {
		t.Errorf("cellctl lab --list: exit %d:\n%s", code, out.String())
	}
}

// s3 sends an unsigned request (the cluster runs with auth off) and returns the status,
// the S3 error code and the response's headers.
func s3(t *testing.T, method, url, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	code := ""
	if m := regexp.MustCompile(`<Code>([^<]+)</Code>`).FindStringSubmatch(buf.String()); m != nil {
		code = m[1]
	}
	return resp.StatusCode, code, resp.Header
}

// Labs 1, 4 and 6 on one two-cell cluster, in that order (lab 6 takes a cell down).
func TestLabsOneFourSix(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.PlacementNodes, topo.StorageNodes = 2, 3, 1, 2
	topo.Auth = false
	cl := clustertest.Start(t, topo)
	ep := cl.S3Endpoint()
	buckets, home := loadgen.Buckets(topo, "lab", 1)
	byCell := map[string]string{}
	for _, b := range buckets {
		byCell[home[b]] = b
		if st, code, _ := s3(t, "PUT", ep+"/"+b, ""); st != 200 {
			t.Fatalf("create bucket %s: %d %s", b, st, code)
		}
	}

	t.Run("lab 1", func(t *testing.T) {
		def := cell.DefaultTopology()
		def.MapNodes = cli.UpMapNodes // what cellctl up starts for a new cluster
		got := observed{
			"nodes in the default cluster":     strconv.Itoa(len(def.Nodes())),
			"cells in the default cluster":     strconv.Itoa(def.Cells),
			"index nodes per cell":             strconv.Itoa(def.IndexNodes),
			"x-cellar-cell on every response":  "yes",
			"cell of every object of a bucket": "the bucket's cell",
		}
		for _, b := range buckets {
			for i := range 3 {
				key := fmt.Sprintf("%s/%s/obj-%d", ep, b, i)
				for _, m := range []string{"PUT", "GET", "HEAD"} {
					st, code, h := s3(t, m, key, "hello")
					if st != 200 {
						t.Fatalf("%s %s: %d %s", m, key, st, code)
					}
					switch c := h.Get("x-cellar-cell"); {
					case c == "":
						got["x-cellar-cell on every response"] = "no"
					case c != home[b]:
						got["cell of every object of a bucket"] = c + " for a bucket of " + home[b]
					}
				}
			}
			if _, _, h := s3(t, "GET", ep+"/"+b+"?list-type=2", ""); h.Get("x-cellar-cell") == "" {
				got["x-cellar-cell on every response"] = "no"
			}
		}
		checkPage(t, 1, got)
	})

	t.Run("lab 4", func(t *testing.T) {
		dir := t.TempDir()
		srv := httptest.NewServer(localcluster.NewControlHandler(localcluster.ControlConfig{
			Dir: dir, Cluster: cl.Control(), Token: "lab4",
			Procs: func() []localcluster.Node { return nil }}))
		defer srv.Close()
		writeClusterFile(t, dir, cl, strings.TrimPrefix(srv.URL, "http://"), "lab4")
		run := func(args ...string) (int, string) {
			var out, errb bytes.Buffer
			code := cli.Main(append(args, "--data-dir", dir), &out, &errb)
			return code, out.String() + errb.String()
		}
		victim := cell.ID(1)
		got := observed{}
		code, out := run("drain", "--cell", victim, "--tier", "index", "--count", "2")
		got["typo drain exit code"] = strconv.Itoa(code)
		got["typo drain"] = "allowed"
		if code == cli.ExitRefused {
			got["typo drain"] = "refused"
		}
		var rules []string
		for _, r := range []string{"floor", "cap"} {
			if strings.Contains(out, "REFUSED ("+r+")") {
				rules = append(rules, r)
			}
		}
		got["typo refusal rules"] = strings.Join(rules, ", ")

		code, out = run("drain", "--cell", victim, "--tier", "index", "--count", "1")
		got["one-node dry run exit code"] = strconv.Itoa(code)
		id := regexp.MustCompile(`--confirm ([0-9a-f]{12})`).FindStringSubmatch(out)
		if id == nil {
			t.Fatalf("no plan id in the dry run:\n%s", out)
		}
		got["one-node drain"] = "refused"
		if code == 0 && strings.Contains(out, "Dry run: nothing done") {
			got["one-node drain"] = "allowed"
		}
		code, _ = run("drain", "--cell", victim, "--tier", "index", "--count", "1", "--confirm", id[1])
		got["confirm without a reason exit code"] = strconv.Itoa(code)

		if code, out := run("drill", "halt", "--reason", "lab 4"); code != 0 {
			t.Fatalf("drill halt: %d %s", code, out)
		}
		code, _ = run("drain", "--cell", victim, "--tier", "index", "--count", "1", "--confirm", id[1], "--reason", "x")
		got["drain while halted exit code"] = strconv.Itoa(code)
		if code, out := run("drill", "resume", "--reason", "lab 4 done"); code != 0 {
			t.Fatalf("drill resume: %d %s", code, out)
		}

		// A fresh dry run and its confirmation, audited as the page says.
		before, _ := guard.ReadAudit(dir)
		_, out = run("drain", "--cell", victim, "--tier", "index", "--count", "1")
		id = regexp.MustCompile(`--confirm ([0-9a-f]{12})`).FindStringSubmatch(out)
		if id == nil {
			t.Fatalf("no plan id in the dry run:\n%s", out)
		}
		if code, out := run("drain", "--cell", victim, "--tier", "index", "--count", "1", "--confirm", id[1], "--reason", "host maintenance"); code != 0 {
			t.Fatalf("confirmed drain: exit %d\n%s", code, out)
		}
		after, _ := guard.ReadAudit(dir)
		var decisions []string
		var stopped string
		for _, e := range after[len(before):] {
			if len(decisions) == 0 || decisions[len(decisions)-1] != e.Decision {
				decisions = append(decisions, e.Decision)
			}
			if e.Decision == guard.DecisionStep {
				stopped = e.Node
			}
		}
		got["audit decisions of one drain"] = strings.Join(decisions, ", ")
		checkPage(t, 4, got)
		if stopped != "" {
			cl.StartNode(stopped)
			cl.WaitReady(stopped)
		}
	})

	t.Run("lab 6", func(t *testing.T) {
		victim, other := cell.ID(1), cell.ID(0)
		obj := ep + "/" + byCell[victim] + "/obj-0"
		got := observed{}
		placement := cell.NodeID(victim, cell.RolePlacement, 0)
		cl.StopNode(placement)
		testwait.Until(t, 60*time.Second, "PUTs in "+victim+" refused with placement down", func() bool {
			st, _, _ := s3(t, "PUT", obj+"-new", "x")
			return st == http.StatusServiceUnavailable
		})
		st, code, h := s3(t, "PUT", obj+"-new", "x")
		got["PUT with placement down"] = fmt.Sprintf("%d %s", st, code)
		if st == 503 && h.Get("Retry-After") != "" {
			got["PUT with placement down"] = "503 with Retry-After"
		}
		st, _, _ = s3(t, "GET", obj, "")
		got["GET with placement down"] = strconv.Itoa(st)
		cl.StartNode(placement)
		cl.WaitReady(placement)

		for i := 1; i <= 2; i++ {
			cl.StopNode(cell.NodeID(victim, cell.RoleIndex, i))
		}
		testwait.Until(t, 60*time.Second, "GETs in "+victim+" fail with its index below quorum", func() bool {
			st, _, _ := s3(t, "GET", obj, "")
			return st == http.StatusServiceUnavailable
		})
		got["GET with index quorum lost"] = "503"
		// The other cell is untouched; a request there may have to wait out a gossip
		// change, so ask until it answers.
		otherObj := ep + "/" + byCell[other] + "/obj-0"
		testwait.Until(t, 30*time.Second, "GETs in "+other+" served", func() bool {
			st, _, _ := s3(t, "GET", otherObj, "")
			return st == 200
		})
		got["GET in the other cell"] = "200"
		checkPage(t, 6, got)
	})
}

func writeClusterFile(t *testing.T, dir string, c *clustertest.Cluster, controlAddr, token string) {
	t.Helper()
	f := localcluster.ClusterFile{Version: 1, Running: true, FastGossip: true, DataDir: dir, S3Endpoint: c.S3Endpoint(),
		AccessKey: c.Topology.AccessKey, SecretKey: c.Topology.SecretKey, Region: c.Topology.Region,
		Topology: localcluster.Topology{Topology: c.Topology}, ControlAddr: controlAddr, ControlToken: token}
	for _, spec := range c.Topology.Nodes() {
		n := c.Node(spec.ID)
		f.Nodes = append(f.Nodes, localcluster.Node{ID: spec.ID, Role: spec.Role, Cell: spec.Cell, Process: localcluster.ProcRunning,
			GRPCAddr: n.GRPCAddr, AdminAddr: n.AdminAddr, GossipAddr: n.GossipAddr, S3Addr: n.S3Addr, RaftAddr: n.RaftAddr})
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, localcluster.ClusterFileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// runDrill runs a scenario on an in-process cluster of topo.
func runDrill(t *testing.T, topo cell.Topology, sc *drill.Scenario) *drill.Report {
	t.Helper()
	cl := clustertest.Start(t, topo)
	dir := t.TempDir()
	env := drill.Env{Topology: cl.Topology, Dir: dir, Cluster: cl.Control(), HealthTimeout: 60 * time.Second, Command: "workshop test"}
	env.Load.Endpoint, env.Load.AccessKey, env.Load.SecretKey, env.Load.Region = cl.S3Endpoint(), cl.Topology.AccessKey, cl.Topology.SecretKey, cl.Topology.Region
	rep, err := drill.RunScenario(context.Background(), env, sc)
	if rep == nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Logf("the drill ended with: %v (its claims are checked all the same)", err)
	}
	return rep
}

func pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 2, 64) }

// Lab 2: the 2017 replay on one cell without guardrails.
func TestLabTwo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.PlacementNodes, topo.StorageNodes = 1, 3, 1, 2
	topo.Guardrails = cell.GuardrailsOff
	sc, err := drill.LoadScenario("s3-2017")
	if err != nil {
		t.Fatal(err)
	}
	rate, dur := 30.0, 3*time.Minute
	if err := sc.Override(drill.Overrides{Rate: &rate, Duration: &dur}); err != nil {
		t.Fatal(err)
	}
	rep := runDrill(t, topo, sc)
	got := observed{
		"cells hit":       fmt.Sprintf("%d of %d", len(rep.Blast.Cells), len(rep.Cells)),
		"requests failed": pct(rep.Blast.FailedShare),
	}
	for _, g := range rep.Guardrails {
		if g.Action == "drain" {
			got["typo drain"] = "refused"
			if g.Allowed && g.Override == guard.GuardrailsOffOverride {
				got["typo drain"] = "let through"
			}
			break
		}
	}
	for _, e := range rep.Timeline {
		if e.Kind == "RESTART FAILED" && strings.Contains(e.Text, "placement → index") {
			got["wrong-order restart"] = "failed"
		}
	}
	for _, c := range rep.CellRestarts {
		got["dependency-order restart"] = "done"
		got["restart order"] = strings.Join(c.Order, " → ")
	}
	checkPage(t, 2, got)
}

// Lab 3's claims are arithmetic on the measured rate; its timings are not checked.
func TestLabThree(t *testing.T) {
	hours := 1e12 / 6e6 / 3600
	checkPage(t, 3, observed{
		"extrapolated one-cell restart of 1 trillion objects at 6 M/s": fmt.Sprintf("%.0f h", hours),
		"16-cell split, objects per cell for 1 000 000":                strconv.Itoa(1_000_000 / 16),
	})
}

// typo is the 2017 drain on the last cell, shortened: refused, then overridden; the
// cell loses quorum for a while and is brought back.
const typo = `name: typo
target: last
steps:
  - load: {rate: 40, duration: 2m, mix: "GET=50,PUT=20,HEAD=15,LIST=10,DELETE=5"}
  - wait: 5s
  - drain: {tier: index, count: 2, expect: refused}
  - drain: {tier: index, count: 2, override: "lab 5", expect: done}
  - assert: {quorum: lost, within: 10s}
  - wait: 8s
  - undrain: {}
  - assert: {quorum: held, within: 30s}
  - wait: 3s
`

// Lab 5: the same typo on 4 and on 8 cells. By default only the drill on 4 cells runs,
// and the page's claims about 4 cells and about failures outside the cell hit are
// checked; the drill on 8 cells (41 nodes, longer than the rest of the workshop on a
// 2-core machine) runs with CELLAR_WORKSHOP_FULL=1, which checks every claim.
func TestLabFive(t *testing.T) {
	if testing.Short() {
		t.Skip("runs clusters")
	}
	sizes := []int{4}
	full := os.Getenv("CELLAR_WORKSHOP_FULL") == "1"
	if full {
		sizes = append(sizes, 8)
	} else {
		t.Log("the drill on 8 cells and its claims are checked with CELLAR_WORKSHOP_FULL=1 only")
	}
	sc, err := drill.ParseScenario([]byte(typo))
	if err != nil {
		t.Fatal(err)
	}
	got := observed{}
	outside := int64(0)
	for _, n := range sizes {
		topo := cell.DefaultTopology()
		topo.Cells, topo.IndexNodes, topo.PlacementNodes, topo.StorageNodes = n, 3, 1, 1
		rep := runDrill(t, topo, sc)
		got[fmt.Sprintf("cells hit on %d cells", n)] = fmt.Sprintf("%d of %d", len(rep.Blast.Cells), len(rep.Cells))
		got[fmt.Sprintf("load share of the cell hit, %d cells", n)] = pct(rep.Blast.LoadShare)
		got[fmt.Sprintf("requests failed, %d cells", n)] = pct(rep.Blast.FailedShare)
		outside += rep.Blast.Outside
	}
	got["failed outside the cell hit"] = strconv.FormatInt(outside, 10)
	checkClaims(t, 5, got, func(name string) bool { return full || !strings.Contains(name, "8 cells") })
}

// Lab 7: the poison-pill drill on one cluster of 8 gateways and 100 tenants, through
// a front router per sharding mode (the gateways know nothing of the sharding), with
// the scenario the lab's compare runs.
func TestLabSeven(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.PlacementNodes, topo.StorageNodes = 1, 1, 1, 1
	topo.Gateways, topo.ShardSize, topo.Faults = 8, cell.DefaultShardSize, true
	tenants, err := cell.NewTenants(100)
	if err != nil {
		t.Fatal(err)
	}
	topo.Tenants = tenants
	cl := clustertest.Start(t, topo)
	got := observed{}
	for _, mode := range []string{cell.ShardingAll, cell.ShardingPlain, cell.ShardingShuffle} {
		sc, err := drill.LoadScenario("poison-pill")
		if err != nil {
			t.Fatal(err)
		}
		rate, dur := 20.0, 15*time.Second
		if err := sc.Override(drill.Overrides{Rate: &rate, Duration: &dur}); err != nil {
			t.Fatal(err)
		}
		mt := cl.Topology
		mt.Sharding = mode
		ep, stop := cl.StartRouter("127.0.0.1:0", mt)
		env := drill.Env{Topology: mt, Dir: cl.Dir, Cluster: cl.Control(), HealthTimeout: 60 * time.Second, Command: "workshop test"}
		env.Load.Endpoint, env.Load.AccessKey, env.Load.SecretKey, env.Load.Region = ep, mt.AccessKey, mt.SecretKey, mt.Region
		env.Load.Tenants = mt.Tenants
		began := time.Now()
		rep, err := drill.RunScenario(context.Background(), env, sc)
		stop()
		// The drill's own account of the pill (each attempt's outcome, the gateways
		// crashed): if a mode ever misses the pill again, it says where.
		var lines []string
		if rep != nil {
			for _, e := range rep.Timeline {
				switch e.Kind {
				case "POISON", "BLAST", "RESTORED":
					lines = append(lines, drill.Clock(e.At)+" "+e.Kind+" "+e.Text)
				}
			}
		}
		t.Logf("%s: drill of %s:\n  %s", mode, time.Since(began).Round(time.Second), strings.Join(lines, "\n  "))
		if err != nil || len(rep.Poison) != 1 {
			t.Fatalf("%s: the drill ended with %v", mode, err)
		}
		p := rep.Poison[0]
		got["gateways crashed, "+mode] = fmt.Sprintf("%d of %d", len(p.Crashed), p.Gateways)
		got["tenants fully down, "+mode] = fmt.Sprintf("%d of %d", len(p.DownTenants), p.Tenants)
		if mode == cell.ShardingShuffle {
			got["formula, shuffle"] = p.FormulaText
		}
	}
	checkPage(t, 7, got)
}

// labMover is the mover the supervisor of a 'cellctl up' cluster runs behind its
// control endpoint, for a cluster in one process: its own gossip view, and the
// supervisor's certificate (issued here from the cluster's CA), the only one allowed
// to fence a bucket and change its entry in the cell map.
func labMover(t *testing.T, c *clustertest.Cluster) func(context.Context) (*mover.Mover, func(), error) {
	t.Helper()
	var seeds []string
	for _, n := range c.Topology.Nodes() {
		seeds = append(seeds, c.Node(n.ID).GossipAddr)
	}
	conns := daemon.NewConns(router.CallDeadline(5 * time.Second))
	if dir := c.PKIDir(); dir != "" {
		if _, err := pki.Init(dir, pki.InitOptions{Cluster: "clustertest", Members: []pki.Member{
			{Identity: pki.Identity{Role: pki.RoleSupervisor, Node: pki.RoleSupervisor}}}}); err != nil {
			t.Fatal(err)
		}
		conns = daemon.NewTLSConns(c.Creds(pki.RoleSupervisor).ClientTLS(), router.CallDeadline(5*time.Second))
	}
	t.Cleanup(conns.Close)
	return func(ctx context.Context) (*mover.Mover, func(), error) {
		members, err := cell.JoinCluster(cell.MembershipConfig{
			Self:     cell.Node{ID: "supervisor-move", Role: cell.RoleObserver, State: cell.StateReady, Started: time.Now()},
			BindAddr: "127.0.0.1:0", Join: seeds, Fast: true, SecretKey: c.GossipKey(),
		})
		if err != nil {
			return nil, nil, err
		}
		leave := func() { members.Leave(500 * time.Millisecond) }
		rt := router.New(c.Topology, members, conns)
		until := time.Now().Add(30 * time.Second)
		for {
			_, err := rt.MapGroup(true)
			if err == nil {
				break
			}
			if time.Now().After(until) || ctx.Err() != nil {
				leave()
				return nil, nil, fmt.Errorf("the map group: %w", err)
			}
			select {
			case <-ctx.Done():
			case <-members.Changed():
			case <-time.After(100 * time.Millisecond):
			}
		}
		nodes := func(context.Context) ([]cell.NodeStatus, error) {
			var out []cell.NodeStatus
			for _, n := range members.Nodes() {
				out = append(out, cell.NodeStatus{ID: n.ID, Role: n.Role, Cell: n.Cell, Running: true, State: n.State, Leader: n.Leader})
			}
			return out, nil
		}
		return &mover.Mover{Router: rt, Topology: c.Topology, Nodes: nodes, Log: slog.New(slog.DiscardHandler)}, leave, nil
	}
}

// Lab 8: a bucket moves between cells while the load runs, through the guardrails, on
// the lab's own topology; then ListBuckets is served from the cell map while a cell
// is down. The commands are the page's, run by cellctl's code against a cluster in
// one process (auth off: the test's own requests are unsigned).
func TestLabEight(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	lab, err := workshop.Find(8)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "lab8.yaml")
	if err := os.WriteFile(file, []byte(lab.Topology), 0o600); err != nil {
		t.Fatal(err)
	}
	topo, err := cell.LoadTopology(file)
	if err != nil {
		t.Fatalf("the lab's topology: %v", err)
	}
	topo.Auth = false
	began := time.Now()
	cl := clustertest.Start(t, topo)
	t.Logf("cluster of %d nodes ready after %s (the machine's cluster lock included)", len(topo.Nodes()), time.Since(began).Round(time.Second))
	ep := cl.S3Endpoint()
	dir := t.TempDir()
	srv := httptest.NewServer(localcluster.NewControlHandler(localcluster.ControlConfig{
		Dir: dir, Cluster: cl.Control(), Token: "lab8", Mover: labMover(t, cl),
		Procs: func() []localcluster.Node { return nil }}))
	defer srv.Close()
	writeClusterFile(t, dir, cl, strings.TrimPrefix(srv.URL, "http://"), "lab8")
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := cli.Main(append(args, "--data-dir", dir), &out, &errb)
		return code, out.String() + errb.String()
	}
	got := observed{}
	const bucket, source, target = "load-000", "cell-1", "cell-2"
	names, home := loadgen.Buckets(topo, "load", 1)
	var where []string
	var bystander string
	for _, b := range names {
		where = append(where, b+" in "+home[b])
		if home[b] != source && home[b] != target {
			bystander = b
		}
	}
	got["buckets of the load"] = strings.Join(where, ", ")

	// The load, in the background, as in the page's second terminal. It must outlast
	// the seeding, the refused commands and the move: on a busy machine they took more
	// than 25 s, so it runs a minute (the page's runs two).
	type loadRun struct {
		code           int
		stdout, stderr string
	}
	loadDone := make(chan loadRun, 1)
	loadErr := &lockedBuffer{}
	go func() {
		var out bytes.Buffer
		code := cli.Main([]string{"load", "--data-dir", dir, "--buckets-per-cell", "1", "--rate", "40", "--duration", "60s", "--output", "json"}, &out, loadErr)
		loadDone <- loadRun{code, out.String(), loadErr.String()}
	}()
	obj := ep + "/" + bucket + "/obj-000000"
	testwait.Until(t, time.Minute, "the load seeded "+bucket, func() bool {
		select {
		case l := <-loadDone:
			t.Fatalf("cellctl load ended before the move (exit %d):\n%s", l.code, l.stderr)
		default:
		}
		if !strings.Contains(loadErr.String(), "sending ") {
			return false // still seeding
		}
		st, _, _ := s3(t, "HEAD", obj, "")
		return st == http.StatusOK
	})
	_, _, h := s3(t, "HEAD", obj, "")
	got["x-cellar-cell of load-000 before the move"] = h.Get("x-cellar-cell")

	// The dry run: a plan and its id, nothing done.
	code, out := run("move", "--bucket", bucket, "--to", target)
	got["dry run exit code"] = strconv.Itoa(code)
	id := regexp.MustCompile(`--confirm ([0-9a-f]{12})`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("no plan id in the dry run (exit %d):\n%s", code, out)
	}
	if m := regexp.MustCompile(`move bucket load-000 from (\S+) to (\S+)`).FindStringSubmatch(out); m != nil {
		got["plan"] = "from " + m[1] + " to " + m[2]
	}
	if strings.Contains(out, "Dry run: nothing done") {
		got["dry run"] = "nothing done"
	}
	if _, _, h := s3(t, "HEAD", obj, ""); h.Get("x-cellar-cell") != source {
		t.Errorf("after the dry run load-000 is served by %q, want %s", h.Get("x-cellar-cell"), source)
	}
	code, _ = run("move", "--bucket", bucket, "--to", target, "--confirm", id[1])
	got["confirm without a reason exit code"] = strconv.Itoa(code)
	code, _ = run("move", "--bucket", bucket, "--to", target, "--confirm", "0123456789ab", "--reason", "noisy tenant")
	got["mistyped plan id exit code"] = strconv.Itoa(code)
	code, _ = run("move", "--bucket", bucket, "--to", source)
	got["move to the cell it is in exit code"] = strconv.Itoa(code)

	// The move, under load.
	audited := len(readAudit(t, dir))
	moveBegan := time.Now()
	code, out = run("move", "--bucket", bucket, "--to", target, "--confirm", id[1], "--reason", "noisy tenant", "--progress-every", "200ms")
	moveEnded := time.Now()
	got["move exit code"] = strconv.Itoa(code)
	if code != 0 {
		t.Fatalf("the confirmed move: exit %d\n%s", code, out)
	}
	t.Logf("the move:\n%s", out)
	var steps []string
	for _, m := range regexp.MustCompile(`(?m)^  load-000 (\S+) `).FindAllStringSubmatch(out, -1) {
		// The copy and its catch-up passes report every --progress-every; the steps
		// after them report as they happen.
		switch st := m[1]; st {
		case "fence", "cutover", "reclaim", "done":
			if !slices.Contains(steps, st) {
				steps = append(steps, st)
			}
		}
	}
	got["steps of the move"] = strings.Join(steps, ", ")
	select {
	case l := <-loadDone:
		t.Fatalf("the load ended before the move did (exit %d): lengthen it\n%s", l.code, l.stderr)
	default:
	}
	_, _, h = s3(t, "HEAD", obj, "")
	got["x-cellar-cell of load-000 after the move"] = h.Get("x-cellar-cell")
	var decisions []string
	for _, e := range readAudit(t, dir)[audited:] {
		if len(decisions) == 0 || decisions[len(decisions)-1] != e.Decision {
			decisions = append(decisions, e.Decision)
		}
	}
	got["audit decisions of the move"] = strings.Join(decisions, ", ")

	// The load's own report, per cell.
	l := <-loadDone
	if l.code != 0 {
		t.Fatalf("cellctl load: exit %d\n%s", l.code, l.stderr)
	}
	var res loadgen.Result
	if err := json.Unmarshal([]byte(l.stdout), &res); err != nil {
		t.Fatalf("cellctl load's JSON: %v\n%s", err, l.stdout)
	}
	for _, c := range res.CellNames() {
		r := res.Cells[c]
		t.Logf("load in %s: %d requests, %d failed %v", c, r.Requests, r.Errors, r.ErrorCodes)
	}
	// What the move did to each cell: the requests due while it ran (the seconds of
	// the load's series from its start to its end). A failure elsewhere in the run is
	// the machine's, not the move's: it is logged above, not claimed.
	from := int(moveBegan.Sub(res.Started) / time.Second)
	to := int((moveEnded.Sub(res.Started) + time.Second - 1) / time.Second)
	during := func(c string) (requests, failed int64) {
		for _, p := range res.Cells[c].Series {
			if p.T >= from && p.T <= to {
				requests, failed = requests+p.Requests, failed+p.Errors
			}
		}
		return requests, failed
	}
	for _, c := range []string{home[bystander], target, source} {
		n, f := during(c)
		t.Logf("while the move ran (seconds %d to %d of the load): %s %d requests, %d failed", from, to, c, n, f)
	}
	if n, _ := during(source); n == 0 {
		t.Errorf("the load sent nothing to %s while the move ran", source)
	}
	_, f := during(home[bystander])
	got["failed in cell-0 during the move"] = strconv.FormatInt(f, 10)
	_, f = during(target)
	got["failed in cell-2 during the move"] = strconv.FormatInt(f, 10)
	_, f = during(source)
	got["failed in cell-1 during the move"] = strconv.FormatInt(f, 10)

	// Static stability: a cell down, ListBuckets answered from the map.
	down := home[bystander]
	code, out = run("drain", "--cell", down, "--tier", "index", "--count", "2", "--override", "lab 8")
	id = regexp.MustCompile(`--confirm ([0-9a-f]{12})`).FindStringSubmatch(out)
	if code != 0 || id == nil {
		t.Fatalf("the drain's dry run: exit %d\n%s", code, out)
	}
	if code, out := run("drain", "--cell", down, "--tier", "index", "--count", "2", "--override", "lab 8", "--confirm", id[1], "--reason", "lab 8: a cell down"); code != 0 {
		t.Fatalf("the drain: exit %d\n%s", code, out)
	}
	testwait.Until(t, time.Minute, "GETs in "+down+" fail with its index below quorum", func() bool {
		st, _, _ := s3(t, "GET", ep+"/"+bystander+"/obj-000000", "")
		return st == http.StatusServiceUnavailable
	})
	got["GET in cell-0 with its index down"] = "503"
	st, names, h := listBuckets(t, ep)
	listed := 0
	for b := range home {
		if slices.Contains(names, b) {
			listed++
		}
	}
	got["ListBuckets with cell-0 down"] = fmt.Sprintf("%d, %d of %d buckets", st, listed, len(home))
	got["x-cellar-cell of ListBuckets"] = h.Get("x-cellar-cell")
	if code, out := run("undrain", "--cell", down, "--reason", "lab 8 done"); code != 0 {
		t.Errorf("undrain: exit %d\n%s", code, out)
	}
	checkPage(t, 8, got)
}

func readAudit(t *testing.T, dir string) []guard.Entry {
	t.Helper()
	entries, err := guard.ReadAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// listBuckets sends ListBuckets and returns the status, the buckets listed and the
// response's headers.
func listBuckets(t *testing.T, ep string) (int, []string, http.Header) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(ep + "/")
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	var res struct {
		Buckets []struct {
			Name string `xml:"Name"`
		} `xml:"Buckets>Bucket"`
	}
	var names []string
	if err := xml.NewDecoder(resp.Body).Decode(&res); err == nil {
		for _, b := range res.Buckets {
			names = append(names, b.Name)
		}
	}
	return resp.StatusCode, names, resp.Header
}

// lockedBuffer is a buffer a command writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
