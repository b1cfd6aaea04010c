package repair

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// Service is the Repair gRPC service over a Repairer, for cellarv1.RegisterRepairServer.
func Service(r *Repairer) cellarv1.RepairServer { return service{r: r} }

type service struct {
	cellarv1.UnimplementedRepairServer
	r *Repairer
}

func (s service) Status(context.Context, *cellarv1.RepairStatusRequest) (*cellarv1.RepairStatusResponse, error) {
	if !s.r.Leading() {
		return nil, errs.New(errs.Unavailable, "%s does not run the repair of %s now", s.r.o.Self, s.r.o.Cell)
	}
	last, passes := s.r.Last()
	return &cellarv1.RepairStatusResponse{
		Cell: s.r.o.Cell, NodeId: s.r.o.Self, UnderReplicated: last.UnderReplicated,
		RepairedObjects: int64(counterValue(s.r.m.repaired)), RepairedBytes: int64(counterValue(s.r.m.bytes)),
		CorruptFound: int64(counterValue(s.r.m.corruptFound)), CorruptRepaired: int64(counterValue(s.r.m.corruptRepaired)),
		Passes: passes, LastPassUnixNano: last.Started.UnixNano(), Lost: last.Lost,
		GcDeletedBlobs: int64(counterValue(s.r.m.gcBlobs)), GcDeletedBytes: int64(counterValue(s.r.m.gcBytes)),
	}, nil
}

func (s service) CollectGarbage(ctx context.Context, req *cellarv1.CollectGarbageRequest) (*cellarv1.CollectGarbageResponse, error) {
	if !s.r.Leading() {
		return nil, errs.New(errs.Unavailable, "%s does not run the repair of %s now", s.r.o.Self, s.r.o.Cell)
	}
	nodes, err := s.r.CollectGarbage(ctx, req.Apply)
	if err != nil {
		return nil, err
	}
	resp := &cellarv1.CollectGarbageResponse{Cell: s.r.o.Cell, GraceNanos: int64(s.r.o.GCGrace), Applied: req.Apply}
	for _, g := range nodes {
		resp.Nodes = append(resp.Nodes, &cellarv1.NodeGarbage{
			NodeId: g.Node, EligibleBlobs: g.EligibleBlobs, EligibleBytes: g.EligibleBytes,
			PendingBlobs: g.PendingBlobs, PendingBytes: g.PendingBytes,
			DeletedBlobs: g.DeletedBlobs, DeletedBytes: g.DeletedBytes, Error: g.Error,
		})
	}
	return resp, nil
}
