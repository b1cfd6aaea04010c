package gateway

import (
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/gateway/s3"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/router"
)

// hungIndex is an index node that accepts every call and never answers it.
type hungIndex struct {
	cellarv1.UnimplementedIndexServer
	calls atomic.Int64
}

func (h *hungIndex) hang(ctx context.Context) error {
	h.calls.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

func (h *hungIndex) ListBuckets(ctx context.Context, _ *cellarv1.ListBucketsRequest) (*cellarv1.ListBucketsResponse, error) {
	return nil, h.hang(ctx)
}

func (h *hungIndex) CreateBucket(ctx context.Context, _ *cellarv1.CreateBucketRequest) (*cellarv1.CreateBucketResponse, error) {
	return nil, h.hang(ctx)
}

func (h *hungIndex) GetBucket(ctx context.Context, _ *cellarv1.GetBucketRequest) (*cellarv1.GetBucketResponse, error) {
	return nil, h.hang(ctx)
}

func (h *hungIndex) Lookup(ctx context.Context, _ *cellarv1.LookupRequest) (*cellarv1.LookupResponse, error) {
	return nil, h.hang(ctx)
}

func (h *hungIndex) Delete(ctx context.Context, _ *cellarv1.DeleteRequest) (*cellarv1.DeleteResponse, error) {
	return nil, h.hang(ctx)
}

type readyNodes []cell.Node

func (n readyNodes) Nodes() []cell.Node { return n }

func (n readyNodes) Find(id string) (cell.Node, bool) {
	for _, node := range n {
		if node.ID == id {
			return node, true
		}
	}
	return cell.Node{}, false
}

func (n readyNodes) Ready(cellID string, role cell.Role) []cell.Node {
	var out []cell.Node
	for _, node := range n {
		if node.Cell == cellID && node.Role == role {
			out = append(out, node)
		}
	}
	return out
}

// TestHungIndexGives503: an index node that is up but never answers costs each request
// one call deadline and gives the S3 client 503 ServiceUnavailable from its cell, never
// a hang.
func TestHungIndexGives503(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hung := &hungIndex{}
	srv := grpc.NewServer()
	cellarv1.RegisterIndexServer(srv, hung)
	go srv.Serve(ln)
	defer srv.Stop()

	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes = 1, 1
	cellID := cell.ID(0)
	nodes := readyNodes{{ID: cell.NodeID(cellID, cell.RoleIndex, 0), Role: cell.RoleIndex, Cell: cellID,
		State: cell.StateReady, GRPCAddr: ln.Addr().String()}}
	// Run installs callTimeout the same way; a shorter deadline keeps the test quick,
	// and is still long enough for a call to reach the index on a busy machine.
	conns := daemon.NewConns(router.CallDeadline(time.Second))
	defer conns.Close()
	logger := slog.New(slog.DiscardHandler)
	h := s3.NewHandler(newCells(router.New(topo, nodes, conns), logger, cellsOptions{}), s3.HandlerOptions{Logger: logger})
	ts := httptest.NewServer(h)
	defer ts.Close()

	for _, tc := range []struct{ method, target string }{
		{http.MethodGet, "/"},
		{http.MethodPut, "/bkt"},
		{http.MethodHead, "/bkt"},
		{http.MethodGet, "/bkt?list-type=2"},
		{http.MethodGet, "/bkt/key"},
		{http.MethodHead, "/bkt/key"},
		{http.MethodDelete, "/bkt/key"},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			before := hung.calls.Load()
			req, err := http.NewRequest(tc.method, ts.URL+tc.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if hung.calls.Load() == before {
				t.Fatal("the request never reached the hung index")
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503: %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("x-cellar-cell"); got != cellID {
				t.Errorf("x-cellar-cell %q, want %q", got, cellID)
			}
			if tc.method == http.MethodHead {
				return
			}
			var e struct{ Code string }
			if err := xml.Unmarshal(body, &e); err != nil || e.Code != "ServiceUnavailable" {
				t.Errorf("error %q (%v), want ServiceUnavailable: %s", e.Code, err, body)
			}
		})
	}
}
