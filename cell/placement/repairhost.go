package placement

import (
	"context"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell/repair"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/errs"
)

// The cell's repair loop runs in its placement node: see package cell/repair for why.

// repairHost starts the loop once the daemon's gossip is up.
type repairHost struct {
	o     repair.Options
	d     *daemon.Daemon
	conns *daemon.Conns
	svc   *repairService
}

// repairService is the Repair gRPC service, registered before the loop exists (the
// gossip starts with the daemon); it answers Unavailable until then.
type repairService struct {
	cellarv1.UnimplementedRepairServer
	r chan *repair.Repairer
}

func (s *repairService) get() (cellarv1.RepairServer, bool) {
	select {
	case r := <-s.r:
		s.r <- r
		return repair.Service(r), true
	default:
		return nil, false
	}
}

func (s *repairService) Status(ctx context.Context, req *cellarv1.RepairStatusRequest) (*cellarv1.RepairStatusResponse, error) {
	svc, ok := s.get()
	if !ok {
		return nil, errRepairStarting
	}
	return svc.Status(ctx, req)
}

func (s *repairService) CollectGarbage(ctx context.Context, req *cellarv1.CollectGarbageRequest) (*cellarv1.CollectGarbageResponse, error) {
	svc, ok := s.get()
	if !ok {
		return nil, errRepairStarting
	}
	return svc.CollectGarbage(ctx, req)
}

// newRepairer registers the Repair service and its metrics; Run starts the loop.
// It returns nil when the configuration turns repair off.
func newRepairer(cfg Config, d *daemon.Daemon, conns *daemon.Conns) (*repairHost, error) {
	if cfg.Repair.Off {
		return nil, nil
	}
	o := repair.Options{
		Cell: cfg.Cell, Self: cfg.NodeID, Copies: cfg.Copies,
		Interval: cfg.Repair.Interval, RepairRate: cfg.Repair.Rate, RepairOps: cfg.Repair.Ops, ScrubRate: cfg.Repair.ScrubRate,
		Workers: cfg.Repair.Workers, GCGrace: cfg.Repair.GCGrace, NoAutoGC: cfg.Repair.NoAutoGC,
		Logger: d.Log,
	}
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	h := &repairHost{o: o, d: d, conns: conns, svc: &repairService{r: make(chan *repair.Repairer, 1)}}
	cellarv1.RegisterRepairServer(d.GRPC, h.svc)
	return h, nil
}

// Run runs the loop until ctx is done.
func (h *repairHost) Run(ctx context.Context, members repair.Members) {
	r, err := repair.New(h.o, members, h.conns)
	if err != nil {
		h.d.Log.Error("repair loop not started", "err", err)
		return
	}
	if err := r.Register(h.d.Metrics); err != nil {
		h.d.Log.Error("repair metrics not registered", "err", err)
	}
	h.d.SetGauges(r.Gauges)
	h.svc.r <- r
	r.Run(ctx)
}

var errRepairStarting = errs.New(errs.Unavailable, "the repair loop of this node is starting")
