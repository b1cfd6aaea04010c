package s3

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/status"

	"github.com/cellarsim/cellar/internal/errs"
)

// stuckBackend's GetObject waits for its caller to give up, then fails as a cell call
// does when its context is cancelled.
type stuckBackend struct {
	*fakeBackend
	entered chan struct{}
}

func (b stuckBackend) GetObject(ctx context.Context, in GetInput) (string, ObjectInfo, io.ReadCloser, error) {
	b.entered <- struct{}{}
	<-ctx.Done()
	return b.cellOf(in.Bucket), ObjectInfo{}, nil, errs.FromGRPC(status.FromContextError(ctx.Err()).Err())
}

// servedServer serves the handler of be with opts on a real listener and tells on
// served each time the handler has returned from a request, having logged and
// counted it.
func servedServer(t *testing.T, be Backend, opts HandlerOptions) (srv *httptest.Server, served chan struct{}) {
	t.Helper()
	h := NewHandler(be, opts)
	served = make(chan struct{}, 16)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		served <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return srv, served
}

func TestClientCancellationIsNotACellFailure(t *testing.T) {
	t.Parallel()
	fb := newFakeBackend()
	fb.CreateBucket(t.Context(), "bkt")
	be := stuckBackend{fakeBackend: fb, entered: make(chan struct{}, 1)}
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer // read once the handler is done
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, served := servedServer(t, be, HandlerOptions{Registerer: reg, Logger: log})

	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/bkt/k", nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-be.entered // the request is waiting on its cell
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the cancelled request got an answer")
	}
	<-served // the handler has recorded the request

	cell := fb.cellOf("bkt")
	if got := gatherCounts(t, reg, "cellar_gateway_requests_total")[cell+" GetObject "+outcomeClientClosed]; got != 1 {
		t.Errorf("requests_total = %v, want the cancellation counted once as %s", gatherCounts(t, reg, "cellar_gateway_requests_total"), outcomeClientClosed)
	}
	if got := gatherCounts(t, reg, "cellar_gateway_requests_total"); len(got) != 1 {
		t.Errorf("requests_total = %v: the cancellation is counted as something else too", got)
	}
	out := logs.String()
	if !strings.Contains(out, `level=INFO msg="gateway: client closed the request"`) || !strings.Contains(out, "status=499") {
		t.Errorf("the cancellation is not logged as the client's, at info with status 499:\n%s", out)
	}
	if strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR") || strings.Contains(out, "status=503") {
		t.Errorf("the cancellation is logged as a failure:\n%s", out)
	}
}

// TestCellFailureStillCounts checks the other side: the same failure of a cell with
// its client still waiting is the service's error.
func TestCellFailureStillCounts(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer // read once the handler is done
	fb := newFakeBackend()
	fb.CreateBucket(t.Context(), "bkt")
	fb.setFail("GetObject", errs.FromGRPC(status.FromContextError(context.Canceled).Err()))
	srv, served := servedServer(t, fb, HandlerOptions{Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	resp, err := srv.Client().Get(srv.URL + "/bkt/k")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	<-served
	if resp.StatusCode != 503 {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}
	if got := gatherCounts(t, reg, "cellar_gateway_requests_total")[fb.cellOf("bkt")+" GetObject ServiceUnavailable"]; got != 1 {
		t.Errorf("a cell failure is not counted as ServiceUnavailable: %v", gatherCounts(t, reg, "cellar_gateway_requests_total"))
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "status=503") {
		t.Errorf("a cell failure is not logged as one:\n%s", out)
	}
}
