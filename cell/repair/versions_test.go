package repair

import (
	"bytes"
	"context"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/errs"
)

// fakeIndex is the index of one versioned bucket, served over gRPC: a record per key,
// its current version first, then its older ones. Its Commit does what the index does
// for a repair: it changes the replica lists of the version, current or older, that
// if_object_id names, and refuses a version that is gone.
type fakeIndex struct {
	cellarv1.UnimplementedIndexServer
	mu      sync.Mutex
	records []*cellarv1.Location // in key order
	commits int
	// beforeCommit, when set, runs before a commit is applied (a write that races it).
	beforeCommit func(f *fakeIndex, r *cellarv1.CommitRequest)
}

func (f *fakeIndex) ListBuckets(context.Context, *cellarv1.ListBucketsRequest) (*cellarv1.ListBucketsResponse, error) {
	return &cellarv1.ListBucketsResponse{Buckets: []*cellarv1.Bucket{{Name: "b", Versioning: cellarv1.BucketVersioning_BUCKET_VERSIONING_ENABLED}}}, nil
}

func (f *fakeIndex) List(_ context.Context, r *cellarv1.ListRequest) (*cellarv1.ListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &cellarv1.ListResponse{}
	for _, rec := range f.records {
		if rec.Key > r.StartAfter {
			rec := proto.Clone(rec).(*cellarv1.Location)
			if !r.Versions {
				rec.Versions = nil
			}
			resp.Entries = append(resp.Entries, rec)
		}
	}
	return resp, nil
}

func (f *fakeIndex) ListUploads(context.Context, *cellarv1.ListUploadsRequest) (*cellarv1.ListUploadsResponse, error) {
	return &cellarv1.ListUploadsResponse{}, nil
}

func (f *fakeIndex) Commit(_ context.Context, r *cellarv1.CommitRequest) (*cellarv1.CommitResponse, error) {
	if f.beforeCommit != nil {
		f.beforeCommit(f, r)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commits++
	if len(r.IfObjectId) == 0 {
		return nil, errs.New(errs.InvalidArgument, "only repair commits here")
	}
	for _, rec := range f.records {
		if rec.Key != r.Location.Key {
			continue
		}
		for _, v := range append([]*cellarv1.Location{rec}, rec.Versions...) {
			if bytes.Equal(versionID(v), r.IfObjectId) {
				v.Replicas = slices.Clone(r.Location.Replicas)
				return &cellarv1.CommitResponse{}, nil
			}
		}
		return nil, errs.New(errs.PreconditionFailed, "the version is gone")
	}
	return nil, errs.New(errs.NoSuchKey, "no such key")
}

// version returns the version of key whose blob is id (nil if there is none).
func (f *fakeIndex) version(key string, id blobID) *cellarv1.Location {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rec := range f.records {
		if rec.Key != key {
			continue
		}
		for _, v := range append([]*cellarv1.Location{rec}, rec.Versions...) {
			if bytes.Equal(v.ObjectId, id[:]) {
				return proto.Clone(v).(*cellarv1.Location)
			}
		}
	}
	return nil
}

// fakeStorage is a storage node's blobs in memory, served over gRPC.
type fakeStorage struct {
	cellarv1.UnimplementedStorageServer
	cellarv1.UnimplementedBlobsServer
	mu    sync.Mutex
	blobs map[blobID][]byte
}

func (s *fakeStorage) has(id blobID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.blobs[id]
	return ok
}

func (s *fakeStorage) List(_ *cellarv1.ListBlobsRequest, st grpc.ServerStreamingServer[cellarv1.ListBlobsResponse]) error {
	s.mu.Lock()
	page := &cellarv1.ListBlobsResponse{}
	for id, b := range s.blobs {
		page.Blobs = append(page.Blobs, &cellarv1.BlobInfo{ObjectId: slices.Clone(id[:]), FileSize: int64(len(b)), ModifiedUnixNano: 1})
	}
	s.mu.Unlock()
	return st.Send(page)
}

func (s *fakeStorage) Verify(_ context.Context, r *cellarv1.VerifyBlobRequest) (*cellarv1.VerifyBlobResponse, error) {
	return &cellarv1.VerifyBlobResponse{}, nil
}

func (s *fakeStorage) Read(r *cellarv1.ReadRequest, st grpc.ServerStreamingServer[cellarv1.ReadResponse]) error {
	id, _ := toID(r.ObjectId)
	s.mu.Lock()
	b, ok := s.blobs[id]
	s.mu.Unlock()
	if !ok {
		return errs.New(errs.NoSuchKey, "no such blob")
	}
	return st.Send(&cellarv1.ReadResponse{Data: b})
}

func (s *fakeStorage) Write(st grpc.ClientStreamingServer[cellarv1.WriteRequest, cellarv1.WriteResponse]) error {
	var id blobID
	var buf []byte
	for {
		m, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if h := m.GetHeader(); h != nil {
			id, _ = toID(h.ObjectId)
		}
		buf = append(buf, m.GetData()...)
	}
	s.mu.Lock()
	s.blobs[id] = buf
	s.mu.Unlock()
	return st.SendAndClose(&cellarv1.WriteResponse{Size: int64(len(buf))})
}

func (s *fakeStorage) Delete(_ context.Context, r *cellarv1.DeleteBlobRequest) (*cellarv1.DeleteBlobResponse, error) {
	id, _ := toID(r.ObjectId)
	s.mu.Lock()
	delete(s.blobs, id)
	s.mu.Unlock()
	return &cellarv1.DeleteBlobResponse{}, nil
}

// serve serves register's services on a loopback listener and returns its address.
func serve(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Errors cross as the cell's servers send them: with their kind.
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(ctx, req)
			return resp, errs.ToGRPC(err)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return errs.ToGRPC(h(srv, ss))
		}))
	register(srv)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// dialer dials without TLS, one connection per address.
type dialer struct {
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func (d *dialer) Get(addr string) (*grpc.ClientConn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cc, ok := d.conns[addr]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	d.conns[addr] = cc
	return cc, nil
}

// TestPassRepairsOlderVersions: a pass gives every version of a key its copies back,
// not only the current one: an older version whose copy a wiped node lost is written
// back to it, an older version written with one copy gets a second, committed for
// that version (the current one and its neighbours untouched), and a version deleted
// while it was copied keeps nothing (its new copy is deleted). Every held copy of
// every version is on the scrubber's list, and a delete marker has none.
func TestPassRepairsOlderVersions(t *testing.T) {
	old := time.Now().Add(-time.Hour).UnixNano()
	id := func(b byte) blobID { return blobID{b} }
	ver := func(vid string, blob byte, replicas ...string) *cellarv1.Location {
		x := id(blob)
		return &cellarv1.Location{Bucket: "b", VersionId: vid, ObjectId: slices.Clone(x[:]), Size: 3, Replicas: replicas, ModifiedUnixNano: old}
	}
	// key "k": v4 current, then v3 (lost its copy on s1), v2 (written with one copy),
	// v1 (one copy too, deleted while the repair copies it).
	cur := ver("v4", 4, "s0", "s1")
	cur.Key = "k"
	cur.Versions = []*cellarv1.Location{ver("v3", 3, "s0", "s1"), ver("v2", 2, "s0"), ver("v1", 1, "s0")}
	// key "m": a delete marker over an older version that lost its copy on s1.
	marker := &cellarv1.Location{Bucket: "b", Key: "m", VersionId: "d1", DeleteMarker: true, ModifiedUnixNano: old,
		Versions: []*cellarv1.Location{ver("m1", 5, "s0", "s1")}}
	ix := &fakeIndex{records: []*cellarv1.Location{cur, marker}}
	ix.beforeCommit = func(f *fakeIndex, r *cellarv1.CommitRequest) {
		if v1 := id(1); bytes.Equal(r.IfObjectId, v1[:]) {
			f.mu.Lock()
			f.records[0].Versions = f.records[0].Versions[:2] // v1 deleted for good
			f.mu.Unlock()
		}
	}
	stores := map[string]*fakeStorage{
		"s0": {blobs: map[blobID][]byte{id(1): []byte("one"), id(2): []byte("two"), id(3): []byte("thr"), id(4): []byte("fou"), id(5): []byte("mmm")}},
		"s1": {blobs: map[blobID][]byte{id(4): []byte("fou")}}, // wiped, then given the current version back
		"s2": {blobs: map[blobID][]byte{}},
	}
	nodes := fakeMembers{{ID: "i0", Cell: "c", Role: cell.RoleIndex, State: cell.StateReady, Leader: true,
		GRPCAddr: serve(t, func(s *grpc.Server) { cellarv1.RegisterIndexServer(s, ix) })}}
	for _, n := range []string{"s0", "s1", "s2"} {
		st := stores[n]
		addr := serve(t, func(s *grpc.Server) {
			cellarv1.RegisterStorageServer(s, st)
			cellarv1.RegisterBlobsServer(s, st)
		})
		nodes = append(nodes, cell.Node{ID: n, Cell: "c", Role: cell.RoleStorage, State: cell.StateReady, GRPCAddr: addr})
	}
	r, err := New(Options{Cell: "c", Self: "p0", GCGrace: time.Hour, ScrubRate: -1}, nodes, &dialer{conns: map[string]*grpc.ClientConn{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := r.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if !stores["s1"].has(id(3)) || !stores["s1"].has(id(5)) {
		t.Errorf("the wiped node did not get back its copies of older versions: v3 %v, m1 (under a delete marker) %v", stores["s1"].has(id(3)), stores["s1"].has(id(5)))
	}
	v2 := ix.version("k", id(2))
	if len(v2.GetReplicas()) != 2 || v2.Replicas[0] != "s0" || !stores[v2.Replicas[1]].has(id(2)) {
		t.Errorf("v2, written with one copy: on %v after the pass, want s0 and a node that holds it", v2.GetReplicas())
	}
	if v4 := ix.version("k", id(4)); !slices.Equal(v4.Replicas, []string{"s0", "s1"}) {
		t.Errorf("the current version moved: %v", v4.Replicas)
	}
	if v3 := ix.version("k", id(3)); !slices.Equal(v3.Replicas, []string{"s0", "s1"}) {
		t.Errorf("v3 moved: %v", v3.Replicas)
	}
	if ix.version("k", id(1)) != nil {
		t.Fatal("v1 came back after its delete")
	}
	if stores["s1"].has(id(1)) || stores["s2"].has(id(1)) {
		t.Errorf("the copy made for v1, deleted meanwhile, was left behind")
	}
	if res.Objects != 5 || res.UnderReplicated != 0 || res.Lost != 0 {
		t.Errorf("pass: %d versions, %d under-replicated, %d lost; want 5, 0, 0", res.Objects, res.UnderReplicated, res.Lost)
	}

	// The scrubber's list: every held copy of every version, a delete marker none.
	r.mu.Lock()
	list := r.scrubList
	r.mu.Unlock()
	scrubbed := map[blobID]int{}
	for _, it := range list {
		scrubbed[it.id]++
	}
	for _, b := range []byte{2, 3, 4, 5} {
		if scrubbed[id(b)] == 0 {
			t.Errorf("version with blob %d is not on the scrubber's list (%v)", b, scrubbed)
		}
	}
}
