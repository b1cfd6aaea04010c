package index

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/errs"
)

// Run runs an index node until ctx is done: it serves gossip and admin at once, says
// "rebuilding" while it loads its map from Pebble, then "ready" and serves the Index API.
func Run(ctx context.Context, cfg Config) error {
	if cfg.DataDir == "" {
		return fmt.Errorf("index: a data directory is required")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	cfg.Role = cell.RoleIndex
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
	store, err := Open(cfg.DataDir, d.Log)
	if err != nil {
		return fmt.Errorf("%w (and stopping: %v)", err, d.Stop(nil))
	}
	st := store.Stats()
	registerMetrics(d.Metrics, store)
	d.SetGauges(func() map[string]float64 {
		return map[string]float64{
			"objects":         float64(store.Len()),
			"rebuild_seconds": st.Duration.Seconds(),
			"corrupt_records": float64(st.Corrupt),
		}
	})
	srv.store.Store(store)
	d.Log.Info("index rebuilt", "objects", st.Objects, "corrupt", st.Corrupt, "took", st.Duration.Round(time.Millisecond))
	d.SetState(cell.StateReady, 1)
	return d.Wait(ctx, store.Close)
}

func registerMetrics(reg prometheus.Registerer, s *Store) {
	st := s.Stats()
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellar_index_objects", Help: "Objects in the index's in-memory map.",
		}, func() float64 { return float64(s.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellar_index_rebuild_duration_seconds", Help: "How long the last rebuild of the in-memory map from Pebble took.",
		}, func() float64 { return st.Duration.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellar_index_corrupt_records", Help: "Records that failed their checksum in the last rebuild.",
		}, func() float64 { return float64(st.Corrupt) }),
	)
}

// server serves the Index API from a Store once it is loaded.
type server struct {
	cellarv1.UnimplementedIndexServer
	store atomicStore
}

func (s *server) get() (*Store, error) {
	st := s.store.Load()
	if st == nil {
		return nil, errs.New(errs.SlowDown, "the index of this cell is rebuilding")
	}
	return st, nil
}

func (s *server) Lookup(_ context.Context, r *cellarv1.LookupRequest) (*cellarv1.LookupResponse, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	loc, err := st.Lookup(r.Bucket, r.Key)
	if err != nil {
		return nil, err
	}
	return &cellarv1.LookupResponse{Location: loc}, nil
}

func (s *server) Commit(_ context.Context, r *cellarv1.CommitRequest) (*cellarv1.CommitResponse, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	prev, err := st.Commit(r.Location, r.RequireBucket)
	if err != nil {
		return nil, err
	}
	return &cellarv1.CommitResponse{Previous: prev}, nil
}

func (s *server) Delete(_ context.Context, r *cellarv1.DeleteRequest) (*cellarv1.DeleteResponse, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	prev, err := st.Delete(r.Bucket, r.Key)
	if err != nil {
		return nil, err
	}
	return &cellarv1.DeleteResponse{Previous: prev}, nil
}

func (s *server) List(_ context.Context, r *cellarv1.ListRequest) (*cellarv1.ListResponse, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	res, err := st.List(r.Bucket, ListOptions{Prefix: r.Prefix, StartAfter: r.StartAfter, Delimiter: r.Delimiter, Limit: int(r.Limit)})
	if err != nil {
		return nil, err
	}
	return &cellarv1.ListResponse{Entries: res.Entries, CommonPrefixes: res.CommonPrefixes, Truncated: res.Truncated, Next: res.Next}, nil
}

func (s *server) CreateBucket(_ context.Context, r *cellarv1.CreateBucketRequest) (*cellarv1.CreateBucketResponse, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	b, err := st.CreateBucket(r.Name)
	if err != nil {
		return nil, err
	}
	return &cellarv1.CreateBucketResponse{Bucket: b}, nil
}

func (s *server) DeleteBucket(_ context.Context, r *cellarv1.DeleteBucketRequest) (*cellarv1.DeleteBucketResponse, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	return &cellarv1.DeleteBucketResponse{}, st.DeleteBucket(r.Name)
}

func (s *server) GetBucket(_ context.Context, r *cellarv1.GetBucketRequest) (*cellarv1.GetBucketResponse, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	b, err := st.GetBucket(r.Name)
	if err != nil {
		return nil, err
	}
	return &cellarv1.GetBucketResponse{Bucket: b}, nil
}

func (s *server) ListBuckets(context.Context, *cellarv1.ListBucketsRequest) (*cellarv1.ListBucketsResponse, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	return &cellarv1.ListBucketsResponse{Buckets: st.ListBuckets()}, nil
}
