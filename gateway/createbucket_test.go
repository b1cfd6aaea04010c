package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/cellmap"
	"github.com/cellarsim/cellar/gateway/s3"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/router"
)

// bucketIndex is an index node that keeps bucket records only, and counts the
// CreateBucket calls it gets.
type bucketIndex struct {
	cellarv1.UnimplementedIndexServer
	mu      sync.Mutex
	buckets map[string]bool
	creates int
}

func (x *bucketIndex) CreateBucket(_ context.Context, r *cellarv1.CreateBucketRequest) (*cellarv1.CreateBucketResponse, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.creates++
	if x.buckets[r.Name] {
		return nil, errs.New(errs.BucketExists, "Your previous request to create the named bucket succeeded and you already own it.")
	}
	x.buckets[r.Name] = true
	return &cellarv1.CreateBucketResponse{Bucket: &cellarv1.Bucket{Name: r.Name, CreatedUnixNano: 1}}, nil
}

func (x *bucketIndex) GetBucket(_ context.Context, r *cellarv1.GetBucketRequest) (*cellarv1.GetBucketResponse, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.buckets[r.Name] {
		return nil, errs.New(errs.NoSuchBucket, "The specified bucket does not exist.")
	}
	return &cellarv1.GetBucketResponse{Bucket: &cellarv1.Bucket{Name: r.Name, CreatedUnixNano: 1}}, nil
}

// state is the number of CreateBucket calls the index got, and whether it holds bucket.
func (x *bucketIndex) state(bucket string) (creates int, holds bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.creates, x.buckets[bucket]
}

// fakeMapGroup is a map group of one node, leader, holding its map in memory.
type fakeMapGroup struct {
	cellarv1.UnimplementedCellMapServer
	mu sync.Mutex
	m  *cellarv1.Map
}

func (g *fakeMapGroup) Get(context.Context, *cellarv1.GetMapRequest) (*cellarv1.Map, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m, nil
}

func (g *fakeMapGroup) Apply(_ context.Context, cmd *cellarv1.MapCommand) (*cellarv1.Map, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	next, _, err := cellmap.Apply(g.m, cmd)
	if err != nil {
		return nil, err
	}
	g.m = next
	return next, nil
}

// TestCreateBucketRoutesByTheMapGroup: a gateway whose map is older than a move of a
// bucket from cell-0 to cell-1 gets a CreateBucket of it. The create goes by the map
// group's map of now: cell-0, which the bucket moved from (and whose dropped records
// would let a create through), is not asked, cell-1 answers that the bucket exists,
// and the gateway routes by the newer map from then on. When the map group cannot be
// reached, a create fails with 503 and asks no cell.
func TestCreateBucketRoutesByTheMapGroup(t *testing.T) {
	const moved = "moved"
	src := &bucketIndex{buckets: map[string]bool{}}
	dst := &bucketIndex{buckets: map[string]bool{moved: true}}
	slots := []string{cell.ID(0)} // every bucket's slot is in cell-0
	group := &fakeMapGroup{m: &cellarv1.Map{Version: 5, Slots: slots, Buckets: map[string]*cellarv1.BucketEntry{
		moved: {Cell: cell.ID(1), CreatedUnixNano: 1},
	}}}

	var nodes []cell.Node
	for i, ix := range []*bucketIndex{src, dst} {
		srv := errsServer()
		cellarv1.RegisterIndexServer(srv, ix)
		cellID := cell.ID(i)
		nodes = append(nodes, cell.Node{ID: cell.NodeID(cellID, cell.RoleIndex, 0), Role: cell.RoleIndex, Cell: cellID,
			State: cell.StateReady, GRPCAddr: serve(t, srv)})
	}
	mapSrv := errsServer()
	cellarv1.RegisterCellMapServer(mapSrv, group)
	mapNode := cell.Node{ID: cell.NodeID("", cell.RoleMap, 0), Role: cell.RoleMap, State: cell.StateReady,
		Leader: true, GRPCAddr: serve(t, mapSrv)}
	view := &gossipView{nodes: append(nodes, mapNode)}

	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes = 2, 1
	conns := daemon.NewConns(router.CallDeadline(callTimeout))
	t.Cleanup(conns.Close)
	logger := slog.New(slog.DiscardHandler)
	r := router.New(topo, view, conns)
	// The gateway's map is from before the move: no entry for the bucket, whose slot
	// is in cell-0.
	f, err := cellmap.NewFollower(cellmap.FollowerOptions{Logger: logger}, &cellarv1.Map{Version: 3, Slots: slots})
	if err != nil {
		t.Fatal(err)
	}
	r.UseMap(f.Map)
	backend := newCells(r, logger, cellsOptions{})
	backend.maps = f
	ts := httptest.NewServer(s3.NewHandler(backend, s3.HandlerOptions{Logger: logger}))
	t.Cleanup(ts.Close)
	tc := &testCell{url: ts.URL}

	if got := r.BucketCell(moved); got != cell.ID(0) {
		t.Fatalf("before the create, the gateway's map routes %s to %s, want the stale %s", moved, got, cell.ID(0))
	}
	resp := tc.do(t, http.MethodPut, "/"+moved, nil)
	if resp.status != http.StatusOK {
		t.Fatalf("CreateBucket of %s: %d %s %s, want 200 (us-east-1's answer to its owner)", moved, resp.status, resp.code, resp.message)
	}
	if got := resp.header.Get("x-cellar-cell"); got != cell.ID(1) {
		t.Errorf("x-cellar-cell %q, want %q", got, cell.ID(1))
	}
	if creates, holds := src.state(moved); creates != 0 || holds {
		t.Errorf("%s (the cell bucket %s moved from) got %d CreateBucket calls and holds it: %v; want no call", cell.ID(0), moved, creates, holds)
	}
	if creates, _ := dst.state(moved); creates != 1 {
		t.Errorf("%s (the cell bucket %s moved to) got %d CreateBucket calls, want 1", cell.ID(1), moved, creates)
	}
	if f.Version() != 5 || r.BucketCell(moved) != cell.ID(1) {
		t.Errorf("after the create the gateway routes by map version %d, %s to %s; want version 5, %s",
			f.Version(), moved, r.BucketCell(moved), cell.ID(1))
	}

	// A bucket the map does not list is created in its slot's cell and registered.
	resp = tc.do(t, http.MethodPut, "/fresh", nil)
	if resp.status != http.StatusOK {
		t.Fatalf("CreateBucket of fresh: %d %s %s", resp.status, resp.code, resp.message)
	}
	if _, holds := src.state("fresh"); !holds {
		t.Errorf("%s does not hold fresh after its create", cell.ID(0))
	}
	if e := f.Map().GetBuckets()["fresh"]; e.GetCell() != cell.ID(0) {
		t.Errorf("the map's entry of fresh is %v, want one in %s", e, cell.ID(0))
	}

	// Without the map group, no create reaches a cell.
	mapSrv.Stop()
	srcBefore, _ := src.state("")
	dstBefore, _ := dst.state("")
	for _, bucket := range []string{moved, "other"} {
		resp = tc.do(t, http.MethodPut, "/"+bucket, nil)
		if resp.status != http.StatusServiceUnavailable || resp.code != "ServiceUnavailable" {
			t.Errorf("CreateBucket of %s with the map group away: %d %s %s, want 503 ServiceUnavailable", bucket, resp.status, resp.code, resp.message)
		}
	}
	srcAfter, _ := src.state("")
	dstAfter, _ := dst.state("")
	if srcAfter != srcBefore || dstAfter != dstBefore {
		t.Errorf("with the map group away, the cells got %d and %d CreateBucket calls, want none",
			srcAfter-srcBefore, dstAfter-dstBefore)
	}
}
