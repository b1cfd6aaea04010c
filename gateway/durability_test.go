package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/storage"
	"github.com/cellarsim/cellar/gateway/s3"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/internal/testwait"
	"github.com/cellarsim/cellar/router"
)

// The durability of the data path, against one cell made of a fake index and placement
// (in memory) and real storage nodes (storage.Store served over gRPC) whose faults the
// tests inject: corrupt blocks, frozen nodes, failing disks, stalled clients.

// fakeIndex is an index node that keeps locations in memory. stale, when set, is what
// the next Lookup of its key answers instead of the current location: a GET that looked
// the key up a while ago.
type fakeIndex struct {
	cellarv1.UnimplementedIndexServer
	mu    sync.Mutex
	locs  map[string]*cellarv1.Location
	stale map[string]*cellarv1.Location
}

func (f *fakeIndex) Lookup(_ context.Context, r *cellarv1.LookupRequest) (*cellarv1.LookupResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := r.Bucket + "/" + r.Key
	if loc, ok := f.stale[k]; ok {
		delete(f.stale, k)
		return &cellarv1.LookupResponse{Location: loc}, nil
	}
	loc, ok := f.locs[k]
	if !ok {
		return nil, errs.ToGRPC(errs.New(errs.NoSuchKey, "no such key"))
	}
	return &cellarv1.LookupResponse{Location: loc}, nil
}

func (f *fakeIndex) Commit(_ context.Context, r *cellarv1.CommitRequest) (*cellarv1.CommitResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := r.Location.Bucket + "/" + r.Location.Key
	prev := f.locs[k]
	f.locs[k] = r.Location
	return &cellarv1.CommitResponse{Previous: prev}, nil
}

func (f *fakeIndex) Delete(_ context.Context, r *cellarv1.DeleteRequest) (*cellarv1.DeleteResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := r.Bucket + "/" + r.Key
	prev := f.locs[k]
	delete(f.locs, k)
	return &cellarv1.DeleteResponse{Previous: prev}, nil
}

func (f *fakeIndex) GetBucket(context.Context, *cellarv1.GetBucketRequest) (*cellarv1.GetBucketResponse, error) {
	return &cellarv1.GetBucketResponse{}, nil
}

// location is what the index holds for bucket/key now.
func (f *fakeIndex) location(t *testing.T, bucket, key string) *cellarv1.Location {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	loc, ok := f.locs[bucket+"/"+key]
	if !ok {
		t.Fatalf("no location for %s/%s", bucket, key)
	}
	return proto.Clone(loc).(*cellarv1.Location)
}

// answerStale makes the next Lookup of bucket/key answer loc.
func (f *fakeIndex) answerStale(bucket, key string, loc *cellarv1.Location) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stale[bucket+"/"+key] = loc
}

// fakePlacement allocates the storage nodes it is given, in order.
type fakePlacement struct {
	cellarv1.UnimplementedPlacementServer
	mu    sync.Mutex
	nodes []cell.Node
	n     int // calls
}

func (p *fakePlacement) Allocate(context.Context, *cellarv1.AllocateRequest) (*cellarv1.AllocateResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	id := make([]byte, 16)
	rand.Read(id)
	resp := &cellarv1.AllocateResponse{ObjectId: id}
	for _, n := range p.nodes {
		resp.Replicas = append(resp.Replicas, &cellarv1.Replica{NodeId: n.ID, GrpcAddr: n.GRPCAddr})
	}
	return resp, nil
}

func (p *fakePlacement) calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *fakePlacement) place(nodes ...cell.Node) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nodes = nodes
}

// gossipView is a membership whose nodes' states a test changes.
type gossipView struct {
	mu    sync.Mutex
	nodes []cell.Node
}

func (g *gossipView) Nodes() []cell.Node {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.nodes)
}

func (g *gossipView) Find(id string) (cell.Node, bool) {
	for _, node := range g.Nodes() {
		if node.ID == id {
			return node, true
		}
	}
	return cell.Node{}, false
}

func (g *gossipView) Ready(cellID string, role cell.Role) []cell.Node {
	var out []cell.Node
	for _, n := range g.Nodes() {
		if n.Cell == cellID && n.Role == role && n.State == cell.StateReady {
			out = append(out, n)
		}
	}
	return out
}

func (g *gossipView) setState(id string, s cell.State) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range g.nodes {
		if g.nodes[i].ID == id {
			g.nodes[i].State = s
		}
	}
}

// testCell is one cell (cell-0) and a gateway over it, serving S3 at url.
type testCell struct {
	view    *gossipView
	ix      *fakeIndex
	pl      *fakePlacement
	stores  []*storage.Store
	dirs    []string
	storage []cell.Node
	backend *cells
	url     string
}

// errsServer is a gRPC server whose handlers' errs errors reach the client as the
// daemon's do.
func errsServer() *grpc.Server {
	return grpc.NewServer(
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(ctx, req)
			return resp, errs.ToGRPC(err)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return errs.ToGRPC(h(srv, ss))
		}),
	)
}

func serve(t *testing.T, srv *grpc.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// newTestCell starts a cell of two storage nodes and a gateway over it with the
// policies o and the S3 server timeouts of cfg. The gateway reclaims in the background.
func newTestCell(t *testing.T, o cellsOptions, cfg Config) *testCell {
	t.Helper()
	tc := &testCell{ix: &fakeIndex{locs: map[string]*cellarv1.Location{}, stale: map[string]*cellarv1.Location{}}, pl: &fakePlacement{}}
	cellID := cell.ID(0)
	ctl := errsServer()
	cellarv1.RegisterIndexServer(ctl, tc.ix)
	cellarv1.RegisterPlacementServer(ctl, tc.pl)
	ctlAddr := serve(t, ctl)
	nodes := []cell.Node{
		{ID: cell.NodeID(cellID, cell.RoleIndex, 0), Role: cell.RoleIndex, Cell: cellID, State: cell.StateReady, GRPCAddr: ctlAddr},
		{ID: cell.NodeID(cellID, cell.RolePlacement, 0), Role: cell.RolePlacement, Cell: cellID, State: cell.StateReady, GRPCAddr: ctlAddr},
	}
	logger := slog.New(slog.DiscardHandler)
	for i := range 2 {
		dir := t.TempDir()
		st, err := storage.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		srv := errsServer()
		cellarv1.RegisterStorageServer(srv, storage.NewServer(st, logger))
		n := cell.Node{ID: cell.NodeID(cellID, cell.RoleStorage, i), Role: cell.RoleStorage, Cell: cellID,
			State: cell.StateReady, GRPCAddr: serve(t, srv)}
		nodes = append(nodes, n)
		tc.stores, tc.dirs, tc.storage = append(tc.stores, st), append(tc.dirs, dir), append(tc.storage, n)
	}
	tc.pl.place(tc.storage...)

	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.Auth = 1, 1, false
	conns := daemon.NewConns(router.CallDeadline(callTimeout))
	t.Cleanup(conns.Close)
	tc.view = &gossipView{nodes: nodes}
	tc.backend = newCells(router.New(topo, tc.view, conns), logger, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tc.backend.reclaimLoop(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	cfg.EnsureDefaults()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := newS3Server(s3.NewHandler(tc.backend, s3.HandlerOptions{Logger: logger}), cfg)
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	tc.url = "http://" + ln.Addr().String()
	return tc
}

// response is an S3 answer: status, S3 error code and message, headers, body.
type response struct {
	status        int
	code, message string
	header        http.Header
	body          []byte
}

func (tc *testCell) do(t *testing.T, method, path string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(method, tc.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, header: resp.Header}
	r.body, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body cut after %d bytes (of %s): %v", method, path, len(r.body), resp.Header.Get("Content-Length"), err)
	}
	if resp.StatusCode >= 300 {
		var e struct{ Code, Message string }
		if xml.Unmarshal(r.body, &e) == nil {
			r.code, r.message = e.Code, e.Message
		}
	}
	return r
}

func (tc *testCell) put(t *testing.T, key string, body []byte) {
	t.Helper()
	if r := tc.do(t, http.MethodPut, "/bkt/"+key, body); r.status != http.StatusOK {
		t.Fatalf("PUT %s: %d %s %s", key, r.status, r.code, r.message)
	}
}

// blobFile is where storage node i keeps the blob of loc.
func (tc *testCell) blobFile(i int, loc *cellarv1.Location) string {
	id, _ := storage.ParseID(loc.ObjectId)
	return tc.stores[i].Path(id)
}

// tmpFiles counts the writes in flight on storage node i.
func (tc *testCell) tmpFiles(t *testing.T, i int) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(tc.dirs[i], "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, 20*time.Second, what, cond)
}

// counterValue is the value of a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func randomData(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// freezer freezes a storage node (storage.Faults.Hold) from its after-th hold on,
// until thawed.
type freezer struct {
	mu     sync.Mutex
	after  int
	holds  int
	thawed chan struct{}
}

func newFreezer(after int) *freezer { return &freezer{after: after, thawed: make(chan struct{})} }

func (f *freezer) hold(ctx context.Context) {
	f.mu.Lock()
	f.holds++
	frozen := f.holds > f.after
	f.mu.Unlock()
	if frozen {
		select {
		case <-f.thawed:
		case <-ctx.Done():
		}
	}
}

func (f *freezer) thaw() { close(f.thawed) }

// TestGetGoesOnFromAnotherReplica: a GET goes on from the same offset on the other
// replica when the one it reads from fails mid-stream (a block that fails its checksum,
// a node that freezes), so the client gets every byte the headers promised.
func TestGetGoesOnFromAnotherReplica(t *testing.T) {
	tc := newTestCell(t, cellsOptions{StorageIdle: frozenAfter}, Config{})
	data := randomData(t, 3<<20)
	tc.put(t, "obj", data)
	loc := tc.ix.location(t, "bkt", "obj")

	t.Run("corrupt block", func(t *testing.T) {
		// The first replica is read first; its block at 2 MiB is bad.
		path := tc.blobFile(0, loc)
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(orig)
		bad[2<<20] ^= 0xff
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(path, orig, 0o644)
		before := counterValue(t, tc.backend.metrics.readFailovers.WithLabelValues(cell.ID(0)))
		for i := range 3 {
			if r := tc.do(t, http.MethodGet, "/bkt/obj", nil); r.status != 200 || !bytes.Equal(r.body, data) {
				t.Fatalf("GET %d: %d, %d bytes, equal %v", i, r.status, len(r.body), bytes.Equal(r.body, data))
			}
		}
		if got := counterValue(t, tc.backend.metrics.readFailovers.WithLabelValues(cell.ID(0))) - before; got != 3 {
			t.Errorf("%v read failovers counted, want 3", got)
		}
	})

	t.Run("node freezes mid-stream", func(t *testing.T) {
		// The first replica sends its first message, then freezes.
		f := newFreezer(2)
		tc.stores[0].InjectFaults(storage.Faults{Hold: f.hold})
		defer func() { f.thaw(); tc.stores[0].InjectFaults(storage.Faults{}) }()
		if r := tc.do(t, http.MethodGet, "/bkt/obj", nil); r.status != 200 || !bytes.Equal(r.body, data) {
			t.Fatalf("GET: %d, %d bytes, equal %v", r.status, len(r.body), bytes.Equal(r.body, data))
		}
	})

	t.Run("no good copy of a block", func(t *testing.T) {
		// Both copies of the block at 2 MiB are bad: the read must not pretend. It
		// has sent its headers, so it can only cut the connection short.
		for i := range 2 {
			path := tc.blobFile(i, loc)
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			bad := bytes.Clone(orig)
			bad[2<<20+1] ^= 0xff
			if err := os.WriteFile(path, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(path, orig, 0o644)
		}
		resp, err := http.Get(tc.url + "/bkt/obj")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err == nil || len(got) >= len(data) || !bytes.Equal(got, data[:len(got)]) {
			t.Fatalf("read %d of %d bytes, err %v: want a cut connection after correct bytes only", len(got), len(data), err)
		}
	})
}

// TestFrozenStorageNode: a storage node that stops answering (as under SIGSTOP) costs a
// request one progress deadline, never a hang: a GET goes on from the other replica and
// a PUT fails with 503, leaving no temp file behind once the node thaws.
func TestFrozenStorageNode(t *testing.T) {
	tc := newTestCell(t, cellsOptions{StorageIdle: frozenAfter}, Config{})
	data := randomData(t, 3<<20)
	tc.put(t, "obj", data)

	// Reads start on the first replica: freeze it.
	f0 := newFreezer(0)
	tc.stores[0].InjectFaults(storage.Faults{Hold: f0.hold})
	if r := tc.do(t, http.MethodGet, "/bkt/obj", nil); r.status != 200 || !bytes.Equal(r.body, data) {
		t.Fatalf("GET with its first replica frozen: %d %s, %d bytes", r.status, r.code, len(r.body))
	}
	f0.thaw()
	tc.stores[0].InjectFaults(storage.Faults{})

	f1 := newFreezer(0)
	tc.stores[1].InjectFaults(storage.Faults{Hold: f1.hold})
	r := tc.do(t, http.MethodPut, "/bkt/new", data)
	if r.status != http.StatusServiceUnavailable || r.code != "ServiceUnavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("PUT with a replica frozen: %d %s %q, Retry-After %q; want 503 ServiceUnavailable with Retry-After",
			r.status, r.code, r.message, r.header.Get("Retry-After"))
	}
	f1.thaw()
	waitUntil(t, "no temp file is left on either storage node", func() bool { return tc.tmpFiles(t, 0)+tc.tmpFiles(t, 1) == 0 })
}

// TestStalledBodyTimesOut: a client that stops sending its body gets 400 RequestTimeout
// once no byte has come for BodyTimeout, and the storage nodes drop what they had.
func TestStalledBodyTimesOut(t *testing.T) {
	tc := newTestCell(t, cellsOptions{}, Config{BodyTimeout: 300 * time.Millisecond})
	const stalled = 5
	part := randomData(t, 1<<20+100) // a chunk and a bit reach the storage nodes
	var wg sync.WaitGroup
	answers := make([]string, stalled)
	for i := range stalled {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", strings.TrimPrefix(tc.url, "http://"))
			if err != nil {
				answers[i] = err.Error()
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(time.Minute)) // the test's bound, not the server's
			fmt.Fprintf(conn, "PUT /bkt/stalled-%d HTTP/1.1\r\nHost: cellar\r\nContent-Length: %d\r\n\r\n", i, 2<<20)
			conn.Write(part)
			b, err := io.ReadAll(conn)
			answers[i] = string(b)
			if err != nil {
				answers[i] += fmt.Sprintf(" (then %v)", err)
			}
		}()
	}
	wg.Wait()
	for i, a := range answers {
		if !strings.HasPrefix(a, "HTTP/1.1 400 ") || !strings.Contains(a, "<Code>RequestTimeout</Code>") {
			t.Errorf("stalled PUT %d got %q, want 400 RequestTimeout", i, a)
		}
	}
	waitUntil(t, "no temp file is left on either storage node", func() bool { return tc.tmpFiles(t, 0)+tc.tmpFiles(t, 1) == 0 })
	tc.ix.mu.Lock()
	defer tc.ix.mu.Unlock()
	if len(tc.ix.locs) != 0 {
		t.Errorf("stalled PUTs were committed: %v", tc.ix.locs)
	}
}

// TestReclaimAfterGrace: the blobs of a replaced version stay readable for the reclaim
// grace (a GET that looked it up before the overwrite still reads it), then are deleted;
// a GET whose version is gone by the time it opens it looks the key up again.
func TestReclaimAfterGrace(t *testing.T) {
	v1, v2 := []byte("version one"), []byte("version two")

	t.Run("within the grace", func(t *testing.T) {
		tc := newTestCell(t, cellsOptions{ReclaimGrace: time.Hour}, Config{})
		tc.put(t, "k", v1)
		old := tc.ix.location(t, "bkt", "k")
		tc.put(t, "k", v2)
		if n := tc.backend.reclaims.len(); n != 1 {
			t.Fatalf("%d reclaims pending after an overwrite, want 1", n)
		}
		tc.ix.answerStale("bkt", "k", old)
		if r := tc.do(t, http.MethodGet, "/bkt/k", nil); r.status != 200 || !bytes.Equal(r.body, v1) {
			t.Fatalf("GET of the version looked up before the overwrite: %d %q", r.status, r.body)
		}
		for i := range 2 {
			if !exists(tc.blobFile(i, old)) {
				t.Errorf("replica %d of the replaced version was deleted within the grace", i)
			}
		}
	})

	t.Run("after the grace", func(t *testing.T) {
		tc := newTestCell(t, cellsOptions{ReclaimGrace: 100 * time.Millisecond}, Config{})
		tc.put(t, "k", v1)
		old := tc.ix.location(t, "bkt", "k")
		tc.put(t, "k", v2)
		cur := tc.ix.location(t, "bkt", "k")
		waitUntil(t, "the replaced version's blobs are deleted", func() bool {
			return !exists(tc.blobFile(0, old)) && !exists(tc.blobFile(1, old))
		})
		if !exists(tc.blobFile(0, cur)) || !exists(tc.blobFile(1, cur)) {
			t.Fatal("the current version's blobs were deleted")
		}
		// A GET that looked up the old version, then opened it after the grace.
		tc.ix.answerStale("bkt", "k", old)
		if r := tc.do(t, http.MethodGet, "/bkt/k", nil); r.status != 200 || !bytes.Equal(r.body, v2) {
			t.Fatalf("GET whose version was reclaimed: %d %s %q, want 200 and the current version", r.status, r.code, r.body)
		}
		// The same after a DELETE: now the key is gone, and 404 is the truth.
		if r := tc.do(t, http.MethodDelete, "/bkt/k", nil); r.status != http.StatusNoContent {
			t.Fatalf("DELETE: %d", r.status)
		}
		waitUntil(t, "the deleted version's blobs are deleted", func() bool {
			return !exists(tc.blobFile(0, cur)) && !exists(tc.blobFile(1, cur))
		})
		tc.ix.answerStale("bkt", "k", cur)
		if r := tc.do(t, http.MethodGet, "/bkt/k", nil); r.status != 404 || r.code != "NoSuchKey" {
			t.Fatalf("GET of a deleted key whose version was reclaimed: %d %s, want 404 NoSuchKey", r.status, r.code)
		}
	})

	t.Run("data lost", func(t *testing.T) {
		// The index points to a blob no replica has: that is not a missing key.
		tc := newTestCell(t, cellsOptions{}, Config{})
		tc.put(t, "k", v1)
		loc := tc.ix.location(t, "bkt", "k")
		for i := range 2 {
			if err := os.Remove(tc.blobFile(i, loc)); err != nil {
				t.Fatal(err)
			}
		}
		if r := tc.do(t, http.MethodGet, "/bkt/k", nil); r.status != 500 || r.code != "InternalError" {
			t.Fatalf("GET of an object whose data is lost: %d %s, want 500 InternalError", r.status, r.code)
		}
	})
}

// TestPutNeedsThePromisedCopies: a PUT that placement can give fewer storage nodes than
// the cell promises is refused with 503 before any byte moves; with degraded writes it
// is stored with the copies it can have, and its location says so. While placement's
// view lags the gateway's (a node just came back), the gateway asks it again.
func TestPutNeedsThePromisedCopies(t *testing.T) {
	for _, degraded := range []bool{false, true} {
		t.Run(fmt.Sprintf("degraded_writes=%v", degraded), func(t *testing.T) {
			tc := newTestCell(t, cellsOptions{Copies: 2, DegradedWrites: degraded}, Config{})
			// The first storage node cannot write: the gossip says so, and placement
			// leaves it out.
			tc.view.setState(tc.storage[0].ID, cell.StateReadOnly)
			tc.pl.place(tc.storage[1])
			r := tc.do(t, http.MethodPut, "/bkt/k", []byte("one copy"))
			if !degraded {
				if r.status != 503 || r.code != "ServiceUnavailable" || !strings.Contains(r.message, "copies") || r.header.Get("Retry-After") == "" {
					t.Fatalf("PUT with one of two copies: %d %s %q, want 503 ServiceUnavailable about copies, with Retry-After", r.status, r.code, r.message)
				}
				if n, _ := os.ReadDir(filepath.Join(tc.dirs[1], "blobs")); len(n) != 0 {
					t.Error("bytes were written for a refused PUT")
				}
				return
			}
			if r.status != 200 {
				t.Fatalf("PUT with degraded writes: %d %s %q", r.status, r.code, r.message)
			}
			if loc := tc.ix.location(t, "bkt", "k"); len(loc.Replicas) != 1 || loc.Replicas[0] != tc.storage[1].ID {
				t.Errorf("location lists replicas %v, want only %s", loc.Replicas, tc.storage[1].ID)
			}
			if got := counterValue(t, tc.backend.metrics.degradedWrites.WithLabelValues(cell.ID(0))); got != 1 {
				t.Errorf("%v degraded writes counted, want 1", got)
			}
		})
	}

	t.Run("placement catching up", func(t *testing.T) {
		tc := newTestCell(t, cellsOptions{Copies: 2}, Config{})
		// The gateway sees both storage nodes ready; placement, a moment behind, one.
		tc.pl.place(tc.storage[1])
		done := make(chan struct{})
		defer close(done)
		go func() {
			for tc.pl.calls() == 0 {
				select {
				case <-done:
					return
				case <-time.After(time.Millisecond):
				}
			}
			tc.pl.place(tc.storage...)
		}()
		tc.put(t, "k", []byte("two copies"))
		if loc := tc.ix.location(t, "bkt", "k"); len(loc.Replicas) != 2 {
			t.Errorf("location lists replicas %v, want both", loc.Replicas)
		}
	})
}

// TestStorageDiskFailureIs503: a storage node whose disk fails a write (full, or an I/O
// error) fails the PUT with 503 ServiceUnavailable, never a 500 with the node's words,
// and the node's store says it cannot write.
func TestStorageDiskFailureIs503(t *testing.T) {
	for _, e := range []error{syscall.ENOSPC, syscall.EIO} {
		t.Run(e.Error(), func(t *testing.T) {
			tc := newTestCell(t, cellsOptions{}, Config{})
			tc.stores[1].InjectFaults(storage.Faults{DiskWrite: func() error { return e }})
			r := tc.do(t, http.MethodPut, "/bkt/k", randomData(t, 100<<10))
			if r.status != 503 || r.code != "ServiceUnavailable" || strings.Contains(r.message, e.Error()) {
				t.Fatalf("PUT to a failing disk: %d %s %q, want 503 ServiceUnavailable without the node's error", r.status, r.code, r.message)
			}
			if tc.stores[1].Writable() == nil {
				t.Error("the store does not say it cannot write")
			}
			waitUntil(t, "no temp file is left", func() bool { return tc.tmpFiles(t, 0)+tc.tmpFiles(t, 1) == 0 })
		})
	}
}

// TestConfigTimeouts: the reclaim grace must outlast what a read may wait before it
// opens its blob (a lookup, then the storage idle timeout on each copy).
func TestConfigTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(*Config)
		wantErr string // "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"a short grace", func(c *Config) { c.ReclaimGrace = 15 * time.Second }, "reclaim grace 15s must be longer than 22s"},
		{"a grace for short storage timeouts", func(c *Config) { c.ReclaimGrace, c.StorageIdleTimeout = 5*time.Second, time.Second }, ""},
		{"a negative body timeout", func(c *Config) { c.BodyTimeout = -1 }, "negative timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Topology: cell.DefaultTopology()}
			c.Topology.AccessKey, c.Topology.SecretKey = "ak", "sk"
			tc.change(&c)
			c.EnsureDefaults()
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate() = %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
}

// frozenAfter is the storage progress deadline of the tests that freeze a node: long
// enough that a busy machine never trips it on a healthy stream, short enough that a
// frozen node costs the test only a few seconds.
const frozenAfter = 2 * time.Second
