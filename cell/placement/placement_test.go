package placement

import (
	"context"
	"net"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

// view is a gossip view with fixed nodes.
type view []cell.Node

func (v view) Nodes() []cell.Node { return v }

func (v view) Ready(cellID string, role cell.Role) []cell.Node {
	var out []cell.Node
	for _, n := range v {
		if n.Cell == cellID && n.Role == role && n.State == cell.StateReady {
			out = append(out, n)
		}
	}
	return out
}

// healthServer serves gRPC health with the given status and returns its address.
func healthServer(t *testing.T, status healthpb.HealthCheckResponse_ServingStatus) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	h := health.NewServer()
	h.SetServingStatus("", status)
	healthpb.RegisterHealthServer(srv, h)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// TestAllocateChoosesNodesThatCanWrite: placement chooses ready storage nodes, never
// read-only ones; when its view shows too few ready, it asks those it still sees
// starting, and takes the ones that answer that they are ready.
func TestAllocateChoosesNodesThatCanWrite(t *testing.T) {
	const c = "cell-0"
	storage := func(i int, st cell.State, addr string) cell.Node {
		return cell.Node{ID: cell.NodeID(c, cell.RoleStorage, i), Role: cell.RoleStorage, Cell: c, State: st, GRPCAddr: addr}
	}
	index := cell.Node{ID: cell.NodeID(c, cell.RoleIndex, 0), Role: cell.RoleIndex, Cell: c, State: cell.StateReady}
	serving := healthServer(t, healthpb.HealthCheckResponse_SERVING)
	notServing := healthServer(t, healthpb.HealthCheckResponse_NOT_SERVING)
	for _, tc := range []struct {
		name  string
		nodes view
		want  []int // storage nodes chosen
	}{
		{"both ready", view{index, storage(0, cell.StateReady, ""), storage(1, cell.StateReady, "")}, []int{0, 1}},
		{"one read-only", view{index, storage(0, cell.StateReadOnly, serving), storage(1, cell.StateReady, "")}, []int{1}},
		{"the gossip lags: ready when asked", view{index, storage(0, cell.StateReady, ""), storage(1, cell.StateStarting, serving)}, []int{0, 1}},
		{"really starting", view{index, storage(0, cell.StateReady, ""), storage(1, cell.StateStarting, notServing)}, []int{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conns := daemon.NewConns()
			defer conns.Close()
			s := &server{cellID: c, copies: 2, members: tc.nodes, conns: conns,
				allocs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "allocs"}, []string{"outcome"})}
			resp, err := s.Allocate(context.Background(), &cellarv1.AllocateRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, r := range resp.Replicas {
				for i := range 2 {
					if r.NodeId == cell.NodeID(c, cell.RoleStorage, i) {
						got = append(got, i)
					}
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("chose storage nodes %v, want %v", got, tc.want)
			}
		})
	}
}
