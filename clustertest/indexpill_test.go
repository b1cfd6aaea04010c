package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/internal/testwait"
	"github.com/cellarsim/cellar/loadgen"
	"github.com/cellarsim/cellar/router"
)

// TestIndexPillTakesDownOneCellsIndexGroup arms the index pill on an object of the
// last of two cells and writes it once: every index node of that cell applies the
// entry and ends, replicas and all, while the other cell serves reads and writes.
// Started again with the pill armed, the index nodes replay the entry and end again;
// disarmed and started again, they apply it (the pill's object exists) and the cell
// serves. Then the drill's index pill step does the same on its own.
func TestIndexPillTakesDownOneCellsIndexGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.PlacementNodes, topo.StorageNodes = 2, 3, 1, 1
	topo.Faults = true
	c := Start(t, topo)
	ctl := c.Control()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cells := c.Topology.CellIDs()
	healthy, victim := cells[0], cells[1]
	buckets := BucketsPerCell(c.Topology, router.NewSlotTable(c.Topology.Slots, cells).Cell, 1)
	// The test's own connections, closed before the cluster stops.
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	s3c := c.S3(func(o *s3.Options) { o.HTTPClient = &http.Client{Transport: tr} })
	put := func(bucket, key string) error {
		_, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(key)})
		return err
	}
	get := func(bucket, key string) error {
		out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err == nil {
			out.Body.Close()
		}
		return err
	}
	for _, id := range cells {
		b := buckets[id][0]
		if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
		if err := put(b, "before"); err != nil {
			t.Fatal(err)
		}
	}
	hb, vb := buckets[healthy][0], buckets[victim][0]
	var index []string
	for i := range c.Topology.IndexNodes {
		index = append(index, cell.NodeID(victim, cell.RoleIndex, i))
	}
	indexDown := func() error {
		nodes, err := ctl.Nodes(ctx)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.Cell == victim && n.Role == cell.RoleIndex && n.Running {
				return fmt.Errorf("%s still runs", n.ID)
			}
		}
		return nil
	}

	// Refused without a reason, or while drills are halted.
	if err := ctl.PoisonIndex(ctx, vb, "pill", false, ""); err == nil {
		t.Fatal("index pill armed without a reason")
	}
	if err := guard.Halt(c.Dir, "test"); err != nil {
		t.Fatal(err)
	}
	if err := ctl.PoisonIndex(ctx, vb, "pill", false, "test"); err == nil {
		t.Fatal("index pill armed while drills are halted")
	}
	if err := guard.Resume(c.Dir); err != nil {
		t.Fatal(err)
	}

	if err := ctl.PoisonIndex(ctx, vb, "pill", false, "test: the index pill"); err != nil {
		t.Fatal(err)
	}
	if err := put(vb, "pill"); err == nil {
		t.Error("the pill's write was acknowledged")
	}
	testwait.Succeeds(t, patience, "every index node of "+victim+" ended", indexDown)
	if err := get(hb, "before"); err != nil {
		t.Errorf("%s read while %s's index is down: %v", healthy, victim, err)
	}
	if err := put(hb, "during"); err != nil {
		t.Errorf("%s write while %s's index is down: %v", healthy, victim, err)
	}
	if err := get(vb, "before"); err == nil {
		t.Errorf("%s served a read with its whole index group down", victim)
	}

	// Started again with the pill armed: the replay crashes them again. A node
	// crashes when it applies the pill, which it does once it learns the entry is
	// committed; one whose peers crashed before telling it goes on running alone,
	// without a quorum. What the lesson needs is that the cell cannot come back: a
	// majority of its group ends.
	for _, id := range index {
		c.StartNode(id)
	}
	if indexDown() == nil {
		t.Fatalf("the index nodes of %s did not start", victim)
	}
	majorityDown := func() error {
		nodes, err := ctl.Nodes(ctx)
		if err != nil {
			return err
		}
		var running []string
		for _, n := range nodes {
			if n.Cell == victim && n.Role == cell.RoleIndex && n.Running {
				running = append(running, n.ID)
			}
		}
		if len(running) > (len(index)-1)/2 {
			return fmt.Errorf("%s still run", strings.Join(running, ", "))
		}
		return nil
	}
	testwait.Succeeds(t, patience, "a majority of the index nodes of "+victim+" ended again on replay", majorityDown)
	if err := get(vb, "before"); err == nil {
		t.Errorf("%s served a read with a majority of its index group down on replay", victim)
	}
	for _, id := range index {
		c.StopNode(id) // one left running alone, if any
	}

	// Disarmed and started again: they apply the entry, and the cell serves.
	if err := ctl.PoisonIndex(ctx, "", "", true, "test over"); err != nil {
		t.Fatal(err)
	}
	for _, id := range index {
		c.StartNode(id)
	}
	sctx, scancel := context.WithTimeout(ctx, patience)
	defer scancel()
	if err := cell.WaitSettled(sctx, ctl, victim); err != nil {
		t.Fatalf("%s after the index pill was disarmed: %v", victim, err)
	}
	testwait.Succeeds(t, patience, victim+" serves again", func() error { return get(vb, "before") })
	if err := get(vb, "pill"); err != nil {
		t.Errorf("the pill's write after the replay: %v; want it applied", err)
	}
	if err := put(vb, "after"); err != nil {
		t.Errorf("%s write after recovery: %v", victim, err)
	}

	// The drill step: arm, write, every index node of the target down, disarm, start.
	sc, err := drill.ParseScenario([]byte(`
name: index-pill
target: last
steps:
  - poison: {kind: index, hold: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	env := drill.Env{Topology: c.Topology, Dir: c.Dir, Cluster: ctl, HealthTimeout: patience,
		Load: loadgen.Config{Endpoint: c.S3Endpoint(), Region: "us-east-1", AccessKey: c.Topology.AccessKey, SecretKey: c.Topology.SecretKey}}
	rep, err := drill.RunScenario(ctx, env, sc)
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, timeline(rep))
	}
	want := fmt.Sprintf("%d of %d index nodes of %s crashed", len(index), len(index), victim)
	if tl := timeline(rep); !strings.Contains(tl, want) || !strings.Contains(tl, "RESTORED") {
		t.Errorf("drill timeline lacks %q or RESTORED:\n%s", want, tl)
	}
	// The report's section: the pill's cell, every index node crashed, the cell down
	// from its quorum lost to restored, after the pill was armed.
	if len(rep.IndexPill) != 1 {
		t.Errorf("report has %d index pill sections, want 1", len(rep.IndexPill))
	} else if p := rep.IndexPill[0]; p.Cell != victim || len(p.Crashed) != len(index) || !p.Restored ||
		p.DownAt < p.ArmedAt || p.RestoredAt <= p.DisarmedAt || p.DisarmedAt <= p.DownAt || p.DownFor() <= 0 {
		t.Errorf("report's index pill section %+v: want %s, its %d index nodes crashed, down after armed, restored after disarmed", p, victim, len(index))
	}
	if nodes, err := ctl.Nodes(ctx); err == nil {
		for _, n := range nodes {
			if n.Cell == victim && !n.Running {
				t.Errorf("the drill left %s down", n.ID)
			}
		}
	}
	if err := put(vb, "after-drill"); err != nil {
		t.Errorf("%s write after the drill: %v", victim, err)
	}
}
