package cli

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/localcluster"
)

// fakeCluster stands in for the supervisor's processes and the gossip: stopping a node
// takes it down, starting it brings it up; every node of a cell that runs is ready.
type fakeCluster struct {
	mu     sync.Mutex
	topo   cell.Topology
	states []cell.NodeStatus
	calls  []string
}

func (f *fakeCluster) Topology() cell.Topology { return f.topo }

func (f *fakeCluster) Nodes(context.Context) ([]cell.NodeStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]cell.NodeStatus(nil), f.states...), nil
}

func (f *fakeCluster) set(id string, up bool, call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call+" "+id)
	for i := range f.states {
		if f.states[i].ID == id {
			f.states[i].Running, f.states[i].State = up, ""
			if up {
				f.states[i].State = cell.StateReady
			}
		}
	}
	return nil
}

func (f *fakeCluster) StopNode(_ context.Context, id string) error  { return f.set(id, false, "stop") }
func (f *fakeCluster) KillNode(_ context.Context, id string) error  { return f.set(id, false, "kill") }
func (f *fakeCluster) StartNode(_ context.Context, id string) error { return f.set(id, true, "start") }

// actions is what was done to the cluster, in order.
func (f *fakeCluster) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// lead makes id the leader of its cell's index group.
func (f *fakeCluster) lead(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var c string
	for _, s := range f.states {
		if s.ID == id {
			c = s.Cell
		}
	}
	for i, s := range f.states {
		if s.Cell == c && s.Role == cell.RoleIndex {
			f.states[i].Leader = s.ID == id
		}
	}
}

// drillCluster writes a running 4-cell cluster's cluster.json whose control endpoint is
// the real one (localcluster.NewControlHandler) acting on a fake cluster, and returns
// the data directory and the fake. procs sets process states in cluster.json, which is
// what the endpoint lists as the nodes' processes.
func drillCluster(t *testing.T, procs map[string]localcluster.ProcState) (string, *fakeCluster) {
	t.Helper()
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.PlacementNodes, topo.StorageNodes = 4, 3, 1, 2
	dir := t.TempDir()
	fc := &fakeCluster{topo: topo}
	for _, s := range topo.Nodes() {
		if s.Role == cell.RoleGateway {
			continue
		}
		fc.states = append(fc.states, cell.NodeStatus{ID: s.ID, Role: s.Role, Cell: s.Cell, Running: true, State: cell.StateReady,
			Leader: s.ID == cell.NodeID(s.Cell, cell.RoleIndex, 0)})
	}
	const token = "test-token"
	srv := httptest.NewServer(localcluster.NewControlHandler(localcluster.ControlConfig{
		Dir: dir, Cluster: fc, Token: token,
		Procs: func() []localcluster.Node {
			f, err := localcluster.ReadClusterFile(dir)
			if err != nil {
				t.Error(err)
				return nil
			}
			return f.Nodes
		},
	}))
	t.Cleanup(srv.Close)
	writeClusterFile(t, dir, topo, "http://127.0.0.1:1", func(f *localcluster.ClusterFile) {
		f.ControlAddr, f.ControlToken = strings.TrimPrefix(srv.URL, "http://"), token
		for i := range f.Nodes {
			if p, ok := procs[f.Nodes[i].ID]; ok {
				f.Nodes[i].Process = p
			}
		}
	})
	return dir, fc
}

var planIDRE = regexp.MustCompile(`Plan ([0-9a-f]{12}):`)

func planIDOf(t *testing.T, out string) string {
	t.Helper()
	m := planIDRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no plan id in:\n%s", out)
	}
	return m[1]
}

func auditDecisions(t *testing.T, dir string) string {
	t.Helper()
	es, err := guard.ReadAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Decision)
	}
	return strings.Join(out, ",")
}

func TestDrainRefusesThe2017TypoAndChangesNothing(t *testing.T) {
	dir, fc := drillCluster(t, nil)
	code, out, stderr := run(t, "drain", "--data-dir", dir, "--cell", "cell-2", "--tier", "index", "--count", "2")
	if code != ExitRefused {
		t.Fatalf("exit %d, want %d; stderr %q", code, ExitRefused, stderr)
	}
	checkOneLine(t, stderr, "floor")
	for _, want := range []string{"cell-2-index-1, cell-2-index-2", "3 of 3 index nodes up in cell-2, 1 left after; floor 2 (a majority of 3)",
		"67% of cell-2's index tier, 17% of the 12 index nodes region-wide; cap 1", "quorum:    LOST", "REFUSED (floor)", "REFUSED (cap)", "--override"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	// Confirming the refused plan is refused too, and nothing is touched.
	id := planIDOf(t, out)
	code, _, stderr = run(t, "drain", "--data-dir", dir, "--cell", "cell-2", "--tier", "index", "--count", "2", "--confirm", id, "--reason", "typo")
	if code != ExitRefused {
		t.Errorf("confirmed refused plan: exit %d (%s)", code, stderr)
	}
	if len(fc.actions()) != 0 {
		t.Errorf("acted on %v", fc.actions())
	}
	if got := auditDecisions(t, dir); got != "refused,refused" {
		t.Errorf("audit %q", got)
	}
}

func TestDrainDryRunThenConfirm(t *testing.T) {
	dir, fc := drillCluster(t, nil)
	args := []string{"drain", "--data-dir", dir, "--cell", "cell-1", "--tier", "index", "--count", "1"}
	code, out, stderr := run(t, args...)
	if code != ExitOK || stderr != "" {
		t.Fatalf("dry run: exit %d, stderr %q", code, stderr)
	}
	id := planIDOf(t, out)
	if !strings.Contains(out, "--confirm "+id+` --reason "<why>"`) || !strings.Contains(out, "quorum:    kept") {
		t.Errorf("dry run output:\n%s", out)
	}
	if len(fc.actions()) != 0 {
		t.Fatalf("dry run acted: %v", fc.actions())
	}

	code, _, stderr = run(t, append(args, "--confirm", id)...)
	if code != ExitUsage {
		t.Errorf("confirm without a reason: exit %d", code)
	}
	checkOneLine(t, stderr, "--reason")

	code, _, stderr = run(t, append(args, "--confirm", "000000000000", "--reason", "r")...)
	if code != ExitRefused {
		t.Errorf("wrong plan id: exit %d", code)
	}
	checkOneLine(t, stderr, "not the id of a plan a dry run showed")

	// The plan previewed, then the cluster changed under it: the index leadership
	// moved to the node the plan takes out, so the plan now takes another node.
	fc.lead("cell-1-index-1")
	code, _, stderr = run(t, append(args, "--confirm", id, "--reason", "r")...)
	if code != ExitRefused {
		t.Errorf("stale plan id: exit %d", code)
	}
	checkOneLine(t, stderr, "does not match the plan")
	fc.lead("cell-1-index-0")

	code, out, stderr = run(t, append(args, "--confirm", id, "--reason", "rotate host")...)
	if code != ExitOK {
		t.Fatalf("confirm: exit %d, stderr %q", code, stderr)
	}
	if strings.Join(fc.actions(), ",") != "stop cell-1-index-1" || !strings.Contains(out, "undrain --cell cell-1 --nodes cell-1-index-1") {
		t.Errorf("calls %v, output:\n%s", fc.actions(), out)
	}
	if got := auditDecisions(t, dir); got != "planned,refused,refused,confirmed,step,done" {
		t.Errorf("audit %q", got)
	}
	es, _ := guard.ReadAudit(dir)
	if last := es[len(es)-1]; last.Reason != "rotate host" || last.PlanID != id || last.User == "" || last.Cell != "cell-1" {
		t.Errorf("last audit entry %+v", last)
	}

	// The same confirmation again: the plan has changed (a node is down now).
	code, _, _ = run(t, append(args, "--confirm", id, "--reason", "again")...)
	if code != ExitRefused || len(fc.actions()) != 1 {
		t.Errorf("stale confirmation: exit %d, calls %v", code, fc.actions())
	}
}

func TestDrainWithOverrideIsLoudAndAudited(t *testing.T) {
	dir, fc := drillCluster(t, nil)
	args := []string{"drain", "--data-dir", dir, "--cell", "cell-2", "--tier", "index", "--nodes", "cell-2-index-1,cell-2-index-2",
		"--override", "replay 2017", "--output", "text"}
	code, out, _ := run(t, args...)
	if code != ExitOK || !strings.Contains(out, "FLOOR OVERRIDDEN") || !strings.Contains(out, "overridden (cap)") {
		t.Fatalf("dry run with override: exit %d\n%s", code, out)
	}
	id := planIDOf(t, out)
	code, out, stderr := run(t, append(args, "--confirm", id, "--reason", "instructor drill")...)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Join(fc.actions(), ",") != "stop cell-2-index-1,stop cell-2-index-2" {
		t.Errorf("calls %v", fc.actions())
	}
	if got := auditDecisions(t, dir); got != "planned,confirmed,override,override,step,step,done" {
		t.Errorf("audit %q", got)
	}
	es, _ := guard.ReadAudit(dir)
	if es[2].Override != "replay 2017" || !strings.Contains(es[2].Outcome, "lifted") {
		t.Errorf("override entry %+v", es[2])
	}
}

func TestDrainJSONAndHalt(t *testing.T) {
	dir, fc := drillCluster(t, nil)
	args := []string{"drain", "--data-dir", dir, "--cell", "cell-0", "--tier", "storage", "--count", "1", "--output", "json"}
	code, out, _ := run(t, args...)
	var rep drainReport
	if code != ExitOK || json.Unmarshal([]byte(out), &rep) != nil || rep.Plan == nil || rep.Executed {
		t.Fatalf("json dry run: exit %d\n%s", code, out)
	}
	if rep.Plan.Nodes[0] != "cell-0-storage-0" || rep.Plan.LeftInCell != 1 || rep.Plan.Floor != 1 {
		t.Errorf("plan %+v", rep.Plan)
	}

	if code, _, _ := run(t, "drill", "halt", "--data-dir", dir, "--reason", "incident"); code != ExitOK {
		t.Fatalf("halt: exit %d", code)
	}
	_, out, _ = run(t, "drill", "status", "--data-dir", dir)
	if !strings.Contains(out, "incident") {
		t.Errorf("status while halted: %q", out)
	}
	code, _, stderr := run(t, append(args, "--confirm", rep.Plan.ID, "--reason", "r")...)
	if code != ExitHalted || len(fc.actions()) != 0 {
		t.Errorf("halted: exit %d, calls %v", code, fc.actions())
	}
	checkOneLine(t, stderr, "drill resume")
	if code, _, _ := run(t, "undrain", "--data-dir", dir, "--cell", "cell-0"); code != ExitHalted {
		t.Errorf("undrain while halted: exit %d", code)
	}
	if code, _, _ := run(t, "drill", "resume", "--data-dir", dir); code != ExitOK {
		t.Fatalf("resume: exit %d", code)
	}
	code, out, _ = run(t, append(args, "--confirm", rep.Plan.ID, "--reason", "r")...)
	rep = drainReport{}
	if code != ExitOK || json.Unmarshal([]byte(out), &rep) != nil || !rep.Executed || len(rep.Steps) != 1 {
		t.Errorf("after resume: exit %d\n%s", code, out)
	}

	code, out, _ = run(t, "audit", "--data-dir", dir, "--output", "json")
	var es []guard.Entry
	if code != ExitOK || json.Unmarshal([]byte(out), &es) != nil {
		t.Fatalf("audit json: exit %d\n%s", code, out)
	}
	var ds []string
	for _, e := range es {
		ds = append(ds, e.Decision)
	}
	if got := strings.Join(ds, ","); got != "planned,halt,refused,refused,resume,confirmed,step,done" {
		t.Errorf("audit %q", got)
	}
	code, out, _ = run(t, "audit", "--data-dir", dir, "--last", "2")
	if code != ExitOK || !strings.Contains(out, "DECISION") || !strings.Contains(out, "done") || strings.Contains(out, "halt") {
		t.Errorf("audit table: exit %d\n%s", code, out)
	}
}

func TestUndrainStartsStoppedNodesInOrder(t *testing.T) {
	dir, fc := drillCluster(t, map[string]localcluster.ProcState{
		"cell-3-placement-0": localcluster.ProcStopped, "cell-3-index-2": localcluster.ProcKilled,
		"cell-3-storage-1": localcluster.ProcExited, "cell-1-index-0": localcluster.ProcStopped,
	})
	code, out, stderr := run(t, "undrain", "--data-dir", dir, "--cell", "cell-3", "--reason", "back")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := strings.Join(fc.actions(), ","); got != "start cell-3-index-2,start cell-3-storage-1,start cell-3-placement-0" {
		t.Errorf("calls %s", got)
	}
	if !strings.Contains(out, "cell-3 is whole again") {
		t.Errorf("output:\n%s", out)
	}
	for _, bad := range [][]string{
		{"--cell", "cell-9"}, {"--cell", "cell-1", "--nodes", "cell-3-index-2"}, {"--cell", "cell-3", "--nodes", "cell-3-index-0"}, {},
	} {
		if code, _, _ := run(t, append([]string{"undrain", "--data-dir", dir}, bad...)...); code != ExitUsage {
			t.Errorf("undrain %v: exit %d", bad, code)
		}
	}
}

func TestDrainUsageErrors(t *testing.T) {
	dir, _ := drillCluster(t, nil)
	for _, args := range [][]string{
		{"--tier", "index", "--count", "1"},
		{"--cell", "cell-0", "--count", "1"},
		{"--cell", "cell-0", "--tier", "index"},
		{"--cell", "cell-0", "--tier", "index", "--count", "1", "--nodes", "cell-0-index-1"},
		{"--cell", "cell-0", "--tier", "gateway", "--count", "1"},
		{"--cell", "cell-7", "--tier", "index", "--count", "1"},
		{"--cell", "cell-0", "--tier", "index", "--nodes", "cell-1-index-1"},
		{"--cell", "cell-0", "--tier", "index", "--count", "1", "--cap-share", "2"},
		{"--cell", "cell-0", "--tier", "index", "--count", "1", "--output", "yaml"},
	} {
		code, _, stderr := run(t, append([]string{"drain", "--data-dir", dir}, args...)...)
		if code != ExitUsage {
			t.Errorf("%v: exit %d (%s)", args, code, stderr)
		}
	}
	code, _, stderr := run(t, "drain", "--data-dir", t.TempDir(), "--cell", "cell-0", "--tier", "index", "--count", "1")
	if code != ExitError {
		t.Errorf("no cluster: exit %d", code)
	}
	checkOneLine(t, stderr, "cellctl up")
}
