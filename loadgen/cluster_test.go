package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/clustertest"
)

func clusterConfig(cl *clustertest.Cluster, perCell int) Config {
	names, home := Buckets(cl.Topology, "load", perCell)
	return Config{
		Endpoint: cl.S3Endpoint(), AccessKey: cl.Topology.AccessKey, SecretKey: cl.Topology.SecretKey,
		Region: cl.Topology.Region, Buckets: names, BucketCell: home, Keys: 5,
		Sizes: Sizes{{512, 3}, {8 << 10, 1}}, Rate: 60, Duration: 2 * time.Second,
	}
}

// The load lands in every cell, each request attributed to the cell of its bucket;
// with one cell's index stopped, that cell's requests fail as ServiceUnavailable and
// the other cells see no error.
func TestLoadAgainstACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes = 2, 1
	cl := clustertest.Start(t, topo)
	cfg := clusterConfig(cl, 2)
	ctx := context.Background()
	if err := Seed(ctx, cfg); err != nil {
		t.Fatal(err)
	}

	down := cell.ID(1)
	// The nodes outside the cell whose index the test stops.
	others := func() []string {
		var ids []string
		for _, n := range topo.Nodes() {
			if n.Cell != down {
				ids = append(ids, n.ID)
			}
		}
		return ids
	}
	cl.WaitReady(others()...)
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Overall.Requests != int64(cfg.Total()) || res.Overall.Errors != 0 {
		t.Fatalf("healthy cluster: %+v, want %d requests and no error; by cell: %+v", res.Overall, cfg.Total(), res.Cells)
	}
	for _, c := range topo.CellIDs() {
		if res.Cells[c].Requests < int64(cfg.Total())/4 {
			t.Errorf("%s served %d of %d requests, want about half", c, res.Cells[c].Requests, cfg.Total())
		}
	}
	// Attribution follows the header: load on one cell's buckets only shows up there.
	one := cfg
	one.Buckets = nil
	for _, b := range cfg.Buckets {
		if cfg.BucketCell[b] == cell.ID(0) {
			one.Buckets = append(one.Buckets, b)
		}
	}
	one.BucketCell = nil
	res, err = Run(ctx, one)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cells) != 1 || res.Cells[cell.ID(0)].Requests != int64(one.Total()) {
		t.Errorf("load on %s's buckets attributed to %v", cell.ID(0), res.Cells)
	}

	victim := cell.NodeID(down, cell.RoleIndex, 0)
	cl.StopNode(victim)
	cl.WaitGone(victim)
	cl.WaitReady(others()...)
	res, err = Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range topo.CellIDs() {
		s := res.Cells[c]
		if c == down {
			if s.Requests == 0 || s.ErrorCodes["ServiceUnavailable"] != s.Requests {
				t.Errorf("%s without its index: %+v, want every request ServiceUnavailable", c, s.Summary)
			}
			continue
		}
		if s.Errors != 0 || s.OK == 0 {
			t.Errorf("healthy %s: %+v, want no error; by operation: %+v", c, s.Summary, s.Ops)
		}
	}
	if res.Overall.Errors != res.Cells[down].Errors {
		t.Errorf("errors overall %d, in %s %d: errors outside the cell", res.Overall.Errors, down, res.Cells[down].Errors)
	}
}
