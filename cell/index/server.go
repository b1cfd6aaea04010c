package index

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/errs"
)

// Run runs an index node until ctx is done: it serves gossip and admin at once, says
// "rebuilding" while it loads its map from Pebble, then joins its cell's replication
// group (when it has peers or a raft address), says "ready" and serves the Index API.
func Run(ctx context.Context, cfg Config) error {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	peers, _ := ParsePeers(cfg.Peers) // checked by Validate
	d, err := daemon.New(cfg.Options)
	if err != nil {
		return err
	}
	srv := &server{}
	cellarv1.RegisterIndexServer(d.GRPC, srv)
	if err := d.Start(); err != nil {
		return err
	}
	d.SetState(cell.StateRebuilding, 0)
	openStart := time.Now()
	store, err := OpenAsync(cfg.DataDir, Options{Logger: d.Log, Pending: cfg.Pending, Workers: cfg.RebuildWorkers})
	if err != nil {
		return errors.Join(err, d.Stop(nil))
	}
	store.armFaults(cfg.FaultsFile, cfg.Crash)
	if !cfg.replicated() {
		// Standalone, Pebble is all there is to know: serve reads while the map
		// loads, as cfg.Pending says. (A group member may be behind its group and
		// waits for the rebuild and the group.) Writes wait for the rebuild.
		srv.reading.Store(store)
	}
	if err := serveRebuild(d, store, openStart).wait(ctx); err != nil {
		if ctx.Err() != nil {
			return d.Wait(ctx, store.Close)
		}
		return errors.Join(err, d.Stop(store.Close))
	}

	cleanup := store.Close
	if cfg.replicated() {
		g, err := openGroup(groupConfig{
			NodeID: cfg.NodeID, DataDir: cfg.DataDir, RaftAddr: cfg.RaftAddr,
			Advertise: cfg.RaftAdvertise, Peers: peers, SnapshotThreshold: cfg.SnapshotThreshold,
			TrailingLogs: cfg.TrailingLogs, Logger: d.Log, TLS: d.TLS(), Cell: cfg.Cell,
			ReadLease: cfg.ReadLease,
		}, store)
		if err != nil {
			return errors.Join(err, d.Stop(store.Close))
		}
		srv.group.Store(g)
		g.registerMetrics(d.Metrics)
		d.SetGroupAdmin(groupAdmin{g})
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go g.watch(wctx, d.Members)
		cleanup = func() error { return errors.Join(g.shutdown(), store.Close()) }
		d.Log.Info("index replication group", "raft_addr", g.trans.LocalAddr(), "peers", len(peers))
	}
	srv.store.Store(store)
	d.SetState(cell.StateReady, 1)
	return d.Wait(ctx, cleanup)
}

// server serves the Index API from a Store once it is loaded. With a replication
// group, writes go through the group's log and reads are served only by its leader;
// a standalone node writes to its store directly, synced.
type server struct {
	cellarv1.UnimplementedIndexServer
	store   atomicStore
	reading atomicStore // a standalone store being rebuilt, for reads
	group   atomic.Pointer[group]
}

// read returns the store when this node may serve a read now.
func (s *server) read() (*Store, error) {
	st := s.store.Load()
	if st == nil {
		if st = s.reading.Load(); st != nil {
			return st, nil // the store answers or refuses by key range (Options.Pending)
		}
		return nil, errs.New(errs.SlowDown, "the index of this cell is rebuilding")
	}
	if st.pill.hasCrashed() {
		return nil, errCrashed
	}
	if g := s.group.Load(); g != nil {
		if err := g.verifyRead(); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// write applies cmd through the group, or directly on a standalone node.
func (s *server) write(ctx context.Context, cmd *cellarv1.IndexCommand) (proto.Message, error) {
	st := s.store.Load()
	if st == nil {
		return nil, errs.New(errs.SlowDown, "the index of this cell is rebuilding")
	}
	if g := s.group.Load(); g != nil {
		return g.apply(ctx, cmd)
	}
	return execute(st, cmd)
}

// writeAs is write for a command whose response is a T.
func writeAs[T proto.Message](ctx context.Context, s *server, cmd *cellarv1.IndexCommand) (T, error) {
	var zero T
	resp, err := s.write(ctx, cmd)
	if err != nil {
		return zero, err
	}
	out, ok := resp.(T)
	if !ok {
		return zero, errs.New(errs.Internal, "unexpected index response")
	}
	return out, nil
}

func (s *server) Lookup(_ context.Context, r *cellarv1.LookupRequest) (*cellarv1.LookupResponse, error) {
	st, err := s.read()
	if err != nil {
		return nil, err
	}
	if err := st.CheckFence(r.Bucket, false); err != nil {
		return nil, err
	}
	loc, err := st.LookupVersion(r.Bucket, r.Key, LookupOptions{VersionID: r.VersionId, DeleteMarkers: r.DeleteMarkers, Versions: r.Versions})
	if err != nil {
		return nil, err
	}
	return &cellarv1.LookupResponse{Location: loc}, nil
}

func (s *server) List(_ context.Context, r *cellarv1.ListRequest) (*cellarv1.ListResponse, error) {
	st, err := s.read()
	if err != nil {
		return nil, err
	}
	if err := st.CheckFence(r.Bucket, false); err != nil {
		return nil, err
	}
	res, err := st.List(r.Bucket, ListOptions{Prefix: r.Prefix, StartAfter: r.StartAfter, Delimiter: r.Delimiter, Limit: int(r.Limit), Versions: r.Versions})
	if err != nil {
		return nil, err
	}
	return &cellarv1.ListResponse{Entries: res.Entries, CommonPrefixes: res.CommonPrefixes, Truncated: res.Truncated, Next: res.Next}, nil
}

func (s *server) GetBucket(_ context.Context, r *cellarv1.GetBucketRequest) (*cellarv1.GetBucketResponse, error) {
	st, err := s.read()
	if err != nil {
		return nil, err
	}
	if err := st.CheckFence(r.Name, false); err != nil {
		return nil, err
	}
	b, err := st.GetBucket(r.Name)
	if err != nil {
		return nil, err
	}
	return &cellarv1.GetBucketResponse{Bucket: b}, nil
}

func (s *server) ListBuckets(context.Context, *cellarv1.ListBucketsRequest) (*cellarv1.ListBucketsResponse, error) {
	st, err := s.read()
	if err != nil {
		return nil, err
	}
	return &cellarv1.ListBucketsResponse{Buckets: st.ListBuckets()}, nil
}

func (s *server) ListUploads(_ context.Context, r *cellarv1.ListUploadsRequest) (*cellarv1.ListUploadsResponse, error) {
	st, err := s.read()
	if err != nil {
		return nil, err
	}
	if err := st.CheckFence(r.Bucket, false); err != nil {
		return nil, err
	}
	ups, truncated, err := st.ListUploads(ListUploadsOptions{
		Bucket: r.Bucket, Prefix: r.Prefix, KeyMarker: r.KeyMarker, UploadIDMarker: r.UploadIdMarker,
		Limit: int(r.Limit), InitiatedBeforeUnixNano: r.InitiatedBeforeUnixNano,
	})
	if err != nil {
		return nil, err
	}
	return &cellarv1.ListUploadsResponse{Uploads: ups, Truncated: truncated}, nil
}

func (s *server) ListParts(_ context.Context, r *cellarv1.ListPartsRequest) (*cellarv1.ListPartsResponse, error) {
	st, err := s.read()
	if err != nil {
		return nil, err
	}
	if err := st.CheckFence(r.Bucket, false); err != nil {
		return nil, err
	}
	u, parts, truncated, err := st.ListParts(r.Bucket, r.Key, r.UploadId, r.PartNumberMarker, int(r.Limit))
	if err != nil {
		return nil, err
	}
	return &cellarv1.ListPartsResponse{Upload: u, Parts: parts, Truncated: truncated}, nil
}

func (s *server) Commit(ctx context.Context, r *cellarv1.CommitRequest) (*cellarv1.CommitResponse, error) {
	return writeAs[*cellarv1.CommitResponse](ctx, s, &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_Commit{Commit: r}})
}

func (s *server) Delete(ctx context.Context, r *cellarv1.DeleteRequest) (*cellarv1.DeleteResponse, error) {
	return writeAs[*cellarv1.DeleteResponse](ctx, s, &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_Delete{Delete: r}})
}

func (s *server) CreateBucket(ctx context.Context, r *cellarv1.CreateBucketRequest) (*cellarv1.CreateBucketResponse, error) {
	return writeAs[*cellarv1.CreateBucketResponse](ctx, s, &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_CreateBucket{CreateBucket: r}})
}

func (s *server) DeleteBucket(ctx context.Context, r *cellarv1.DeleteBucketRequest) (*cellarv1.DeleteBucketResponse, error) {
	return writeAs[*cellarv1.DeleteBucketResponse](ctx, s, &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_DeleteBucket{DeleteBucket: r}})
}

func (s *server) CreateUpload(ctx context.Context, r *cellarv1.CreateUploadRequest) (*cellarv1.CreateUploadResponse, error) {
	return writeAs[*cellarv1.CreateUploadResponse](ctx, s, &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_CreateUpload{CreateUpload: r}})
}

func (s *server) PutPart(ctx context.Context, r *cellarv1.PutPartRequest) (*cellarv1.PutPartResponse, error) {
	return writeAs[*cellarv1.PutPartResponse](ctx, s, &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_PutPart{PutPart: r}})
}

func (s *server) CompleteUpload(ctx context.Context, r *cellarv1.CompleteUploadRequest) (*cellarv1.CompleteUploadResponse, error) {
	return writeAs[*cellarv1.CompleteUploadResponse](ctx, s, &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_CompleteUpload{CompleteUpload: r}})
}

func (s *server) AbortUpload(ctx context.Context, r *cellarv1.AbortUploadRequest) (*cellarv1.AbortUploadResponse, error) {
	return writeAs[*cellarv1.AbortUploadResponse](ctx, s, &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_AbortUpload{AbortUpload: r}})
}

func (s *server) FenceBucket(ctx context.Context, r *cellarv1.FenceBucketRequest) (*cellarv1.FenceBucketResponse, error) {
	return writeAs[*cellarv1.FenceBucketResponse](ctx, s, &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_FenceBucket{FenceBucket: r}})
}

func (s *server) Changes(_ context.Context, r *cellarv1.ChangesRequest) (*cellarv1.ChangesResponse, error) {
	st, err := s.read()
	if err != nil {
		return nil, err
	}
	if err := st.CheckFence(r.Bucket, false); err != nil {
		return nil, err
	}
	cs, truncated, err := st.Changes(r.Bucket, r.After, int(r.Limit))
	if err != nil {
		return nil, err
	}
	return changesResponse(cs, truncated), nil
}

func (s *server) DropBucket(ctx context.Context, r *cellarv1.DropBucketRequest) (*cellarv1.DropBucketResponse, error) {
	return writeAs[*cellarv1.DropBucketResponse](ctx, s, &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_DropBucket{DropBucket: r}})
}

// groupAdmin serves the NodeAdmin group calls of an index node.
type groupAdmin struct{ g *group }

func (a groupAdmin) GroupStatus(context.Context, *cellarv1.GroupStatusRequest) (*cellarv1.GroupStatusResponse, error) {
	return a.g.status()
}

func (a groupAdmin) AddVoter(_ context.Context, r *cellarv1.AddVoterRequest) (*cellarv1.GroupStatusResponse, error) {
	if err := a.g.addVoter(r.Id, r.Address); err != nil {
		return nil, err
	}
	return a.g.status()
}

func (a groupAdmin) RemoveServer(_ context.Context, r *cellarv1.RemoveServerRequest) (*cellarv1.GroupStatusResponse, error) {
	if err := a.g.removeServer(r.Id); err != nil {
		return nil, err
	}
	return a.g.status()
}

func (a groupAdmin) TransferLeadership(_ context.Context, r *cellarv1.TransferLeadershipRequest) (*cellarv1.GroupStatusResponse, error) {
	if err := a.g.transferLeadership(r.Id); err != nil {
		return nil, err
	}
	return a.g.status()
}
