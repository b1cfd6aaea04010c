// Package placement is the placement tier of a cell: it chooses which of the cell's
// storage nodes receive a new object. Only PUT needs it.
//
// Placement depends on its cell's index, as in 2017: it reports ready only while a
// ready index node of its cell is in the gossip (and a ready storage node to place
// on), and goes back to starting when the last one is gone. It learns which storage
// nodes are ready from the gossip too.
package placement

import (
	"context"
	"crypto/rand"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/errs"
)

// Run runs a placement node until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	d, err := daemon.New(cfg.Options)
	if err != nil {
		return err
	}
	srv := &server{cellID: cfg.Cell, copies: cfg.Copies}
	srv.allocs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cellar_placement_allocations_total", Help: "Allocations, by outcome.",
	}, []string{"outcome"})
	d.Metrics.MustRegister(srv.allocs)
	cellarv1.RegisterPlacementServer(d.GRPC, srv)
	if err := d.Start(); err != nil {
		return err
	}
	srv.members = d.Members
	go followIndex(ctx, d)
	return d.Wait(ctx, nil)
}

// followIndex keeps the node's state in step with what it depends on: ready while its
// cell has a ready index node (placement needs a working index, as in 2017) and a
// ready storage node to place on, in this node's own gossip view; starting otherwise.
func followIndex(ctx context.Context, d *daemon.Daemon) {
	self := d.Members.Self()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		changed := d.Members.Changed()
		indexReady := len(d.Members.Ready(self.Cell, cell.RoleIndex)) > 0
		storageReady := len(d.Members.Ready(self.Cell, cell.RoleStorage)) > 0
		switch st := d.State(); {
		case indexReady && storageReady && st == cell.StateStarting:
			d.SetState(cell.StateReady, 1)
		case !indexReady && st == cell.StateReady:
			d.Log.Warn("no ready index node in the cell; placement is not ready")
			d.SetState(cell.StateStarting, 0)
		case !storageReady && st == cell.StateReady:
			d.Log.Warn("no ready storage node in the cell; placement is not ready")
			d.SetState(cell.StateStarting, 0)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

type server struct {
	cellarv1.UnimplementedPlacementServer
	cellID  string
	copies  int
	members *cell.Membership
	next    atomic.Uint64
	allocs  *prometheus.CounterVec
}

// Allocate picks up to copies ready storage nodes of the cell, rotating the first
// choice so that new objects spread evenly.
func (s *server) Allocate(ctx context.Context, r *cellarv1.AllocateRequest) (*cellarv1.AllocateResponse, error) {
	if s.members == nil || len(s.members.Ready(s.cellID, cell.RoleIndex)) == 0 {
		s.allocs.WithLabelValues("no_index").Inc()
		return nil, errs.New(errs.Unavailable, "placement in %s is waiting for its index", s.cellID)
	}
	nodes := s.members.Ready(s.cellID, cell.RoleStorage)
	if len(nodes) == 0 {
		s.allocs.WithLabelValues("no_storage").Inc()
		return nil, errs.New(errs.Unavailable, "no ready storage node in %s", s.cellID)
	}
	n := min(s.copies, len(nodes))
	first := int(s.next.Add(1) % uint64(len(nodes)))
	resp := &cellarv1.AllocateResponse{ObjectId: newObjectID()}
	for i := 0; i < n; i++ {
		node := nodes[(first+i)%len(nodes)]
		resp.Replicas = append(resp.Replicas, &cellarv1.Replica{NodeId: node.ID, GrpcAddr: node.GRPCAddr})
	}
	s.allocs.WithLabelValues("ok").Inc()
	return resp, nil
}

func newObjectID() []byte {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return id
}
