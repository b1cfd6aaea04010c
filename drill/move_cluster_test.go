package drill

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/clustertest"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway/mover"
	"github.com/cellarsim/cellar/localcluster"
)

// movingCluster is an in-process cluster whose buckets move as a 'cellctl up'
// cluster's do: through a control endpoint (localcluster's handler, served here) that
// runs the mover with the supervisor's certificate.
type movingCluster struct {
	*clustertest.Control
	ctl *localcluster.Control
}

func (m movingCluster) MoveBucket(ctx context.Context, bucket, to, confirm, reason string,
	show func(*guard.Plan), progress func(mover.Progress)) (*guard.Result, []mover.Stats, error) {
	req := localcluster.MoveRequest{Bucket: bucket, To: to, Confirm: confirm, Reason: reason, Command: "drill run move-noisy-tenant", ProgressEveryMS: 200}
	return m.ctl.Move(ctx, req, show, progress)
}

// serveMoves serves a control endpoint over cl whose moves run with the supervisor's
// certificate (clustertest's Mover), audited in dir, and returns a client of it.
func serveMoves(t *testing.T, cl *clustertest.Cluster, dir string) *localcluster.Control {
	t.Helper()
	m := cl.Mover(t)
	h := localcluster.NewControlHandler(localcluster.ControlConfig{Dir: dir, Cluster: cl.Control(), Token: "t",
		Procs: func() []localcluster.Node { return nil },
		Mover: func(context.Context) (*mover.Mover, func(), error) {
			return &mover.Mover{Router: m.Router, Topology: m.Topology, Nodes: m.Nodes}, func() {}, nil
		}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ctl, err := localcluster.NewControl(&localcluster.ClusterFile{Running: true, ControlAddr: strings.TrimPrefix(srv.URL, "http://"), ControlToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	return ctl
}

// The built-in move-noisy-tenant drill on two cells with a map group: the noisy
// bucket ends in the target cell, no request of another bucket fails, the move went
// through the guardrails (planned, confirmed, done in the audit log) and the report
// has its move section, with the cutover on the timeline.
func TestMoveNoisyTenantDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.PlacementNodes, topo.StorageNodes, topo.Copies = 2, 1, 1, 1, 1
	topo.MapNodes = 1
	cl := clustertest.Start(t, topo)
	dir := t.TempDir()
	env := Env{Topology: cl.Topology, Dir: dir, Cluster: movingCluster{cl.Control(), serveMoves(t, cl, dir)},
		HealthTimeout: 30 * time.Second, Command: "drill run move-noisy-tenant"}
	env.Load.Endpoint, env.Load.AccessKey, env.Load.SecretKey, env.Load.Region = cl.S3Endpoint(), cl.Topology.AccessKey, cl.Topology.SecretKey, topo.Region

	sc, err := LoadScenario("move-noisy-tenant")
	if err != nil {
		t.Fatal(err)
	}
	rate := 30.0
	if err := sc.Override(Overrides{Rate: &rate}); err != nil {
		t.Fatal(err)
	}
	rep, err := RunScenario(context.Background(), env, sc)
	var sum bytes.Buffer
	if rep != nil {
		rep.Summary(&sum)
	}
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, sum.String())
	}
	m := rep.Move
	src, dst := cell.ID(0), cell.ID(1)
	switch {
	case m == nil:
		t.Fatalf("no move in the report:\n%s", sum.String())
	case m.Outcome != "done" || m.Source != src || m.Target != dst:
		t.Fatalf("move %s from %s to %s, want done from %s to %s:\n%s", m.Outcome, m.Source, m.Target, src, dst, sum.String())
	case m.ServedBy != dst:
		t.Errorf("after the move %s is served by %q, want %s", m.Bucket, m.ServedBy, dst)
	case m.ObjectsPlanned < 200 || m.Objects < m.ObjectsPlanned:
		t.Errorf("the move planned %d objects and copied %d, want the 200 seeded and more, each copied", m.ObjectsPlanned, m.Objects)
	}
	if m.Others == nil || m.Others.Requests == 0 || m.Others.Errors != 0 {
		t.Errorf("other buckets during the move: %+v, want requests and none failed", m.Others)
	}
	if rep.Load == nil || rep.Load.Overall.Errors != 0 {
		t.Errorf("the steady load (every other bucket): %+v, want no failure", rep.Load)
	}
	if m.Moved == nil || m.Moved.Requests == 0 {
		t.Errorf("no request of the moved bucket during the move: %+v", m.Moved)
	}
	// The moved bucket's load leaves the source for the target. A request sent just
	// before the map flipped, by a gateway whose map was a moment old, is answered by
	// the fenced source (503, and the gateway fetches the new map): a straggler or two
	// may land in the source's "after", never its load.
	load := map[string]MoveCellLoad{}
	for _, c := range m.PerCell {
		load[c.Cell] = c
	}
	if load[src].MovedBefore == 0 || load[src].MovedAfter > load[src].MovedBefore/20 || load[dst].MovedBefore != 0 || load[dst].MovedAfter == 0 {
		t.Errorf("the moved bucket's load per cell: %+v, want it in %s before and in %s after", m.PerCell, src, dst)
	}
	var kinds []string
	for _, e := range rep.Timeline {
		kinds = append(kinds, e.Kind)
	}
	timeline := strings.Join(kinds, ",")
	for _, want := range []string{"MOVE,MOVE", "FENCE", "CUTOVER", "FLIPPED", "MOVED"} {
		if !strings.Contains(timeline, want) {
			t.Errorf("timeline %s has no %s", timeline, want)
		}
	}
	for _, want := range []string{"Move of bucket " + m.Bucket, "Load per cell around the move", "While it moved", "everyone else", "moved bucket, cutover"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary has no %q:\n%s", want, sum.String())
		}
	}
	var html bytes.Buffer
	if err := rep.HTML(&html); err != nil || !strings.Contains(html.String(), "Move of bucket "+m.Bucket) {
		t.Errorf("HTML report has no move section (%v)", err)
	}
	// The move went through the guardrail workflow of the control endpoint.
	entries, err := guard.ReadAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, e := range entries {
		if e.PlanID == m.PlanID {
			ds = append(ds, e.Decision)
		}
	}
	if got := strings.Join(ds, ","); got != "planned,confirmed,done" {
		t.Errorf("audit of plan %s: %s, want planned,confirmed,done", m.PlanID, got)
	}
	// And the supervisor's record of it, which the status view shows.
	moves, err := localcluster.ReadMoves(dir)
	if err != nil || len(moves) != 1 || moves[0].Phase != "done" || moves[0].Target != dst || moves[0].Running() {
		t.Errorf("moves.json: %+v (%v), want one move to %s, done", moves, err, dst)
	}
	t.Log(fmt.Sprintf("\n%s", sum.String()))
}
