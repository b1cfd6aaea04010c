// Package placement is the placement tier of a cell: it chooses which of the cell's
// storage nodes receive a new object. Only PUT needs it.
//
// Placement depends on its cell's index, as in 2017: it reports ready only while a
// ready index node of its cell is in the gossip (and a ready storage node to place
// on), and goes back to starting when the last one is gone. It learns which storage
// nodes are ready from the gossip too, and chooses only those: a storage node that
// cannot write (its disk full or failing) gossips read-only and is left out until it
// can. When its view shows fewer ready storage nodes than --copies, it asks those the
// view still shows starting whether they are ready (the gossip can lag). An allocation
// may hold fewer nodes than --copies when fewer are ready; the gateway then refuses the
// PUT, unless the topology allows degraded writes.
//
// A placement node also runs its cell's repair, scrub and garbage collection loop
// (package cell/repair; flags --repair-interval, --repair-rate, --repair-ops,
// --repair-workers, --scrub-rate, --gc-grace, set from the topology's repair section), and serves it as the Repair gRPC service that 'cellctl gc' calls.
package placement

import (
	"context"
	"crypto/rand"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

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
	conns := d.Conns()
	srv := &server{cellID: cfg.Cell, copies: cfg.Copies, conns: conns}
	srv.allocs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cellar_placement_allocations_total", Help: "Allocations, by outcome.",
	}, []string{"outcome"})
	d.Metrics.MustRegister(srv.allocs)
	cellarv1.RegisterPlacementServer(d.GRPC, srv)
	rep, err := newRepairer(cfg, d, conns)
	if err != nil {
		return err
	}
	if err := d.Start(); err != nil {
		return err
	}
	srv.members = d.Members
	go followIndex(ctx, d, srv)
	if rep != nil {
		go rep.Run(ctx, d.Members)
	}

	return d.Wait(ctx, func() error { conns.Close(); return nil })
}

// followIndex keeps the node's state in step with what it depends on: ready while its
// cell has a ready index node (placement needs a working index, as in 2017) and a
// ready storage node to place on, in this node's own gossip view; starting otherwise.
//
// Before it becomes ready it also asks an index node the view shows ready whether it
// is (gRPC health): a node that joins takes over what the others' views hold, and an
// index node that has just stopped can stay "ready" in them until its leave or its
// failure reaches them; a placement started before its index must not be ready.
func followIndex(ctx context.Context, d *daemon.Daemon, s *server) {
	self := d.Members.Self()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		changed := d.Members.Changed()
		index := d.Members.Ready(self.Cell, cell.RoleIndex)
		indexReady := len(index) > 0
		storageReady := len(d.Members.Ready(self.Cell, cell.RoleStorage)) > 0
		switch st := d.State(); {
		case indexReady && storageReady && st == cell.StateStarting && !slices.ContainsFunc(index, func(n cell.Node) bool { return s.serving(ctx, n) }):
			// Only the gossip says the index is ready: ask again at the next tick.
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
	members members
	conns   *daemon.Conns // to ask storage nodes directly (see writable)
	next    atomic.Uint64
	allocs  *prometheus.CounterVec
}

// members is the part of the gossip view placement reads (a *cell.Membership).
type members interface {
	Nodes() []cell.Node
	Ready(cellID string, role cell.Role) []cell.Node
}

// probeTimeout bounds the direct health check of a storage node the gossip shows
// starting.
const probeTimeout = 300 * time.Millisecond

// writable lists the storage nodes of the cell that can take writes, sorted by id: the
// ready ones in this node's gossip view and, when they are fewer than copies, those the
// view still shows starting but that say they are ready when asked directly (gRPC
// health). This node's view can lag: a storage node's "ready" may not have reached it
// yet, and a PUT would be refused (or stored with fewer copies) for nothing.
func (s *server) writable(ctx context.Context) []cell.Node {
	nodes := s.members.Ready(s.cellID, cell.RoleStorage)
	if len(nodes) >= s.copies || s.conns == nil {
		return nodes
	}
	for _, n := range s.members.Nodes() {
		if n.Cell == s.cellID && n.Role == cell.RoleStorage && n.State == cell.StateStarting && s.serving(ctx, n) {
			nodes = append(nodes, n)
		}
	}
	slices.SortFunc(nodes, func(a, b cell.Node) int { return strings.Compare(a.ID, b.ID) })
	return nodes
}

// serving asks a node whether it is ready (its gRPC health is SERVING only then).
func (s *server) serving(ctx context.Context, n cell.Node) bool {
	cc, err := s.conns.Get(n.GRPCAddr)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
}

// Allocate picks up to copies ready storage nodes of the cell (never a read-only one),
// rotating the first choice so that new objects spread evenly.
func (s *server) Allocate(ctx context.Context, r *cellarv1.AllocateRequest) (*cellarv1.AllocateResponse, error) {
	if s.members == nil || len(s.members.Ready(s.cellID, cell.RoleIndex)) == 0 {
		s.allocs.WithLabelValues("no_index").Inc()
		return nil, errs.New(errs.Unavailable, "placement in %s is waiting for its index", s.cellID)
	}
	nodes := s.writable(ctx)
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
