package drill

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/clustertest"
	"github.com/cellarsim/cellar/drill/guard"
)

func scenarioEnv(t *testing.T, cl *clustertest.Cluster) Env {
	return Env{Topology: cl.Topology, Dir: t.TempDir(), Cluster: cl.Control(), HealthTimeout: 20 * time.Second, Command: "drill run test"}
}

const testDrill = `
name: test
stop: {others_error_rate_above: 0.05}
steps:
  - load: {rate: 40, duration: 2m, keys: 5}
  - wait: 3s
  - drain: {tier: index, count: 2, expect: refused}
  - wait: 1s
  - drain: {tier: index, count: 2, override: "replay 2017", expect: done}
  - assert: {quorum: lost, within: 10s}
  - wait: 3s
  - assert: {error_rate_above: 0.5, window: 2s}
  - restart: {cold: true, override: "recover in dependency order", expect: done}
  - assert: {quorum: held, within: 10s}
  - wait: 3s
`

// runTestDrill runs the drill on a cluster of n cells, each of 3 index nodes, and
// returns its report after the checks every cluster size shares.
func runTestDrill(t *testing.T, cells int) *Report {
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.PlacementNodes, topo.StorageNodes = cells, 3, 1, 1
	// CELLAR_TEST_READ_LEASE=on runs the drills with index reads under a lease.
	topo.ReadLease = os.Getenv("CELLAR_TEST_READ_LEASE")
	cl := clustertest.Start(t, topo)
	var all []string
	for _, n := range topo.Nodes() {
		all = append(all, n.ID)
	}
	cl.WaitReady(all...)
	// Elections settle after a start: every cell keeps its leader for 3s in a row.
	deadline := time.Now().Add(60 * time.Second)
	for stable := time.Now(); time.Since(stable) < 3*time.Second; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the cells' index leaders did not settle within 60s")
		}
		view, err := cl.GatewayView()
		for _, c := range topo.CellIDs() {
			if err != nil || cl.Leader(view, c) == "" {
				stable = time.Now()
			}
		}
	}
	env := scenarioEnv(t, cl)
	env.Load.Endpoint, env.Load.AccessKey, env.Load.SecretKey, env.Load.Region = cl.S3Endpoint(), cl.Topology.AccessKey, cl.Topology.SecretKey, topo.Region
	var progress bytes.Buffer
	env.Progress = &progress
	sc, err := ParseScenario([]byte(testDrill))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep, err := RunScenario(context.Background(), env, sc)
	t.Logf("drill on %d cells took %s:\n%s", cells, time.Since(start).Round(time.Millisecond), progress.String())
	if err != nil {
		var sum bytes.Buffer
		if rep != nil {
			rep.Summary(&sum)
		}
		t.Fatalf("drill: %v\n%s", err, sum.String())
	}
	victim := topo.CellIDs()[cells-1]
	if rep.Target != victim {
		t.Errorf("target %s, want the last cell %s", rep.Target, victim)
	}

	// The guarded drain was refused with the floor as its reason, and nothing was
	// stopped before the override.
	if len(rep.Guardrails) < 2 {
		t.Fatalf("guardrail decisions %+v", rep.Guardrails)
	}
	g := rep.Guardrails[0]
	if g.Allowed || len(g.Violations) == 0 || g.Violations[0].Rule != guard.RuleFloor {
		t.Errorf("first drain: %+v, want refused by the floor", g)
	}
	if g2 := rep.Guardrails[1]; !g2.Allowed || g2.Override == "" {
		t.Errorf("second drain: %+v, want allowed by the override", g2)
	}
	for _, e := range rep.Timeline {
		if (e.Kind == "STOP" || e.Kind == "QUORUM LOST" && e.Cell == victim) && e.At > g.At && e.At < rep.Guardrails[1].At {
			t.Errorf("%s before the override: the refused drain changed something", e)
		}
	}
	if n := rep.failedChecks(); n > 0 {
		t.Errorf("%d checks failed: %+v", n, rep.Checks)
	}
	// The ordered restart restored the cell, and its time is in the report.
	if len(rep.CellRestarts) != 1 || rep.CellRestarts[0].Cell != victim || rep.CellRestarts[0].Took <= 0 {
		t.Errorf("cell restarts %+v", rep.CellRestarts)
	}
	if len(rep.NodeRestarts) == 0 {
		t.Errorf("no node restart times")
	}
	if len(rep.LeftDown) > 0 {
		t.Errorf("left down: %v", rep.LeftDown)
	}
	var lost, restored bool
	for _, e := range rep.Timeline {
		lost = lost || (e.Kind == "QUORUM LOST" && e.Cell == victim)
		restored = restored || (e.Kind == "QUORUM RESTORED" && e.Cell == victim)
	}
	if !lost || !restored {
		t.Errorf("timeline lacks the quorum lost (%v) and restored (%v) of %s", lost, restored, victim)
	}
	// Failures are confined to the victim.
	b := rep.Blast
	if len(b.Cells) != 1 || b.Cells[0] != victim || b.Outside != 0 {
		t.Errorf("blast radius %+v, want %s alone", b, victim)
	}
	for _, c := range rep.PerCell {
		if c.Cell != victim && c.Errors != 0 {
			t.Errorf("%s, not drained, had %d errors", c.Cell, c.Errors)
		}
		if c.Cell == victim && math.Abs(b.LoadShare-c.LoadShare) > 1e-9 {
			t.Errorf("blast radius %.3f of the load, %s had %.3f", b.LoadShare, victim, c.LoadShare)
		}
	}

	// The three renderings.
	dir := t.TempDir()
	if err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "QUORUM LOST", victim, "REFUSED"} {
		if !bytes.Contains(html, []byte(want)) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if bytes.Contains(html, []byte("http://")) || bytes.Contains(html, []byte("https://")) || bytes.Contains(html, []byte("<script")) {
		t.Errorf("report.html refers to something outside itself")
	}
	var sum bytes.Buffer
	rep.Summary(&sum)
	if !strings.Contains(sum.String(), "Blast radius") {
		t.Errorf("summary:\n%s", sum.String())
	}
	t.Logf("summary:\n%s", sum.String())
	return rep
}

// The 2017 drill on four cells under load: refused, overridden, confined to one cell
// whose share of the load is the blast radius, restored by the ordered restart.
func TestScenarioOnFourCells(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	rep := runTestDrill(t, 4)
	if s := rep.Blast.LoadShare; s < 0.1 || s > 0.45 {
		t.Errorf("blast radius %.2f of the load, want about a quarter", s)
	}
}

// The same drill with the whole region in one cell: everything is in the blast radius.
func TestScenarioOnOneCell(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	rep := runTestDrill(t, 1)
	if rep.Blast.LoadShare != 1 {
		t.Errorf("blast radius %.3f, want 100%%", rep.Blast.LoadShare)
	}
}
