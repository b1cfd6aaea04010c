package mapgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/internal/raftpebble"
)

// errUnavailable answers a call that comes before the member has joined its group.
var errUnavailable = errs.New(errs.Unavailable, "this map group member is starting")

// maxWait bounds how long a Get waits for a newer map.
const maxWait = 30 * time.Second

// Run runs a member of the map group until ctx is done: it joins the group, says
// "ready" once the group has a leader it reaches, and serves the CellMap API (Get from the map it has applied, Apply on the
// leader).
func Run(ctx context.Context, cfg Config) error {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("mapgroup: %w", err)
	}
	d, err := daemon.New(cfg.Options)
	if err != nil {
		return err
	}
	srv := &server{}
	cellarv1.RegisterCellMapServer(d.GRPC, srv)
	if err := d.Start(); err != nil {
		return err
	}
	g, err := openGroup(cfg, d.TLS(), d.Log)
	if err != nil {
		return errors.Join(err, d.Stop(nil))
	}
	srv.g.Store(g)
	if err := registerMetrics(d.Metrics, g); err != nil {
		return errors.Join(err, d.Stop(g.shutdown))
	}
	peers, _ := raftpebble.ParsePeers(cfg.Peers) // checked by Validate
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Ready only once the group has a leader this member reaches: before that, a
	// gateway or a load sent here at once would find no one to change the map.
	d.SetStateWhy(cell.StateStarting, "waiting for the map group to have a leader")
	go g.watch(wctx, d.Members, max(1, len(peers)), func() { d.SetState(cell.StateReady, 1) })
	d.Log.Info("map group member", "raft_addr", g.trans.LocalAddr(), "peers", len(peers))
	return d.Wait(ctx, g.shutdown)
}

// server serves the CellMap API from the member's group.
type server struct {
	cellarv1.UnimplementedCellMapServer
	g atomic.Pointer[group] // set once the member has joined; calls before get Unavailable
}

func (s *server) Get(ctx context.Context, r *cellarv1.GetMapRequest) (*cellarv1.Map, error) {
	g := s.g.Load()
	if g == nil {
		return nil, errUnavailable
	}
	m, changed := g.fsm.currentAndChange()
	if r.GetWaitMs() <= 0 || m.GetVersion() > r.GetKnownVersion() {
		return m, nil
	}
	wait := min(time.Duration(r.WaitMs)*time.Millisecond, maxWait)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-changed:
	case <-timer.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.fsm.current(), nil
}

func (s *server) Apply(ctx context.Context, cmd *cellarv1.MapCommand) (*cellarv1.Map, error) {
	g := s.g.Load()
	if g == nil {
		return nil, errUnavailable
	}
	return g.apply(ctx, cmd)
}

func registerMetrics(reg prometheus.Registerer, g *group) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellar_map_version", Help: "Version of the cell map this member has applied.",
		}, func() float64 { return float64(g.fsm.current().GetVersion()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellar_map_buckets", Help: "Bucket entries in the cell map this member has applied.",
		}, func() float64 { return float64(len(g.fsm.current().GetBuckets())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellar_map_raft_applied_index", Help: "Last log index of the map group this member has applied.",
		}, func() float64 { return float64(g.r.AppliedIndex()) }),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("mapgroup: metrics: %w", err)
		}
	}
	return nil
}
