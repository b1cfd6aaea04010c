package frontrouter

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellarsim/cellar/internal/testwait"
)

// gateway is a test HTTP server that counts the connections it accepted.
func gateway(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func get(t *testing.T, tr http.RoundTripper, ctx context.Context, method, url string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

func TestFastTransportReusesAConnectionForBodilessRequests(t *testing.T) {
	srv, conns := gateway(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.RequestURI())
		if r.Method != http.MethodHead {
			io.WriteString(w, "answer to "+r.Method)
		}
	})
	tr := NewFastTransport()
	defer tr.CloseIdleConnections()
	for i, m := range []string{"GET", "HEAD", "DELETE", "GET"} {
		resp, body, err := get(t, tr, context.Background(), m, srv.URL+"/b/k%2Fx?tagging")
		if err != nil {
			t.Fatalf("%s #%d: %v", m, i, err)
		}
		want := "answer to " + m
		if m == "HEAD" {
			want = ""
		}
		if resp.StatusCode != 200 || body != want || resp.Header.Get("X-Path") != "/b/k%2Fx?tagging" {
			t.Fatalf("%s #%d: %d %q path %q", m, i, resp.StatusCode, body, resp.Header.Get("X-Path"))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("four requests in series opened %d connections, want 1", n)
	}
}

func TestFastTransportSendsAgainWhenTheGatewayClosedAnIdleConnection(t *testing.T) {
	var served atomic.Int64
	srv, conns := gateway(t, func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.WriteString(w, "ok")
	})
	tr := NewFastTransport()
	defer tr.CloseIdleConnections()
	if _, body, err := get(t, tr, context.Background(), "GET", srv.URL+"/x"); err != nil || body != "ok" {
		t.Fatalf("first GET: %q %v", body, err)
	}
	srv.CloseClientConnections() // the idle connection the transport keeps
	if _, body, err := get(t, tr, context.Background(), "GET", srv.URL+"/x"); err != nil || body != "ok" {
		t.Fatalf("GET after the gateway closed the idle connection: %q %v", body, err)
	}
	if served.Load() != 2 || conns.Load() != 2 {
		t.Fatalf("served %d requests on %d connections, want 2 on 2", served.Load(), conns.Load())
	}
}

func TestFastTransportDropsAConnectionWhoseAnswerWasNotReadToTheEnd(t *testing.T) {
	big := strings.Repeat("x", 256<<10)
	srv, conns := gateway(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) })
	tr := NewFastTransport()
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", srv.URL+"/x", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, body, err := get(t, tr, context.Background(), "GET", srv.URL+"/x"); err != nil || body != big {
		t.Fatalf("next GET: %d bytes, %v", len(body), err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2: a half-read answer leaves its connection unusable", n)
	}
}

func TestFastTransportGivesUpWhenTheClientGoesAway(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	srv, _ := gateway(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	})
	defer close(release)
	tr := NewFastTransport()
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := get(t, tr, ctx, "GET", srv.URL+"/slow")
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestFastTransportSendsRequestsWithABodyByItsBodyTransport(t *testing.T) {
	srv, _ := gateway(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "got "+string(b))
	})
	var bodyTrips atomic.Int64
	tr := &Transport{Body: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		bodyTrips.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("PUT", srv.URL+"/b/k", strings.NewReader("data"))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "got data" || bodyTrips.Load() != 1 {
		t.Fatalf("answer %q, body transport used %d times", b, bodyTrips.Load())
	}
	if _, body, err := get(t, tr, context.Background(), "GET", srv.URL+"/b/k"); err != nil || body != "got " || bodyTrips.Load() != 1 {
		t.Fatalf("GET: %q %v, body transport used %d times", body, err, bodyTrips.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// rawGateway serves each connection with fn, given the request read from it.
func rawGateway(t *testing.T, fn func(n int, c net.Conn, r *http.Request)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	var n atomic.Int64
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					fn(int(n.Add(1)), c, r)
				}
			})
		}
	})
	return ln.Addr().String()
}

func TestFastTransportSkipsInterimAnswers(t *testing.T) {
	addr := rawGateway(t, func(_ int, c net.Conn, r *http.Request) {
		io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	tr := NewFastTransport()
	defer tr.CloseIdleConnections()
	resp, body, err := get(t, tr, context.Background(), "GET", "http://"+addr+"/x")
	if err != nil || resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("%v %q %v", resp, body, err)
	}
}

func TestFastTransportDoesNotSendAgainAfterPartOfAnAnswer(t *testing.T) {
	var second atomic.Int64
	addr := rawGateway(t, func(n int, c net.Conn, r *http.Request) {
		if n == 1 {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return
		}
		second.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
		c.Close()
	})
	tr := NewFastTransport()
	defer tr.CloseIdleConnections()
	if _, body, err := get(t, tr, context.Background(), "GET", "http://"+addr+"/x"); err != nil || body != "ok" {
		t.Fatalf("first: %q %v", body, err)
	}
	if _, _, err := get(t, tr, context.Background(), "GET", "http://"+addr+"/x"); err == nil {
		t.Fatal("a cut answer head gave no error")
	}
	if second.Load() != 1 {
		t.Fatalf("the request was sent %d times after its answer began, want 1", second.Load())
	}
}

func TestFastTransportDoesNotSendAgainOnANewConnection(t *testing.T) {
	var got atomic.Int64
	addr := rawGateway(t, func(_ int, c net.Conn, r *http.Request) {
		got.Add(1)
		c.Close() // a gateway that dies on the request: the poison pill
	})
	tr := NewFastTransport()
	defer tr.CloseIdleConnections()
	if _, _, err := get(t, tr, context.Background(), "GET", "http://"+addr+"/x"); err == nil {
		t.Fatal("a gateway that closed without answering gave no error")
	}
	if got.Load() != 1 {
		t.Fatalf("the gateway got the request %d times, want 1: the router tries the next gateway, not the transport", got.Load())
	}
}

// idleConns opens k connections to url in tr's idle set: k GETs of "/hold", which
// the gateway answers once all k are in, so that none can share a connection.
func idleConns(t *testing.T, tr http.RoundTripper, url string, k int) {
	t.Helper()
	var wg sync.WaitGroup
	for range k {
		wg.Go(func() {
			if _, body, err := get(t, tr, context.Background(), "GET", url+"/hold"); err != nil || body != "ok" {
				t.Errorf("GET /hold: %q %v", body, err)
			}
		})
	}
	wg.Wait()
}

// holdingGateway answers "/hold" once k of them have come, and drops any other
// request unanswered, as a gateway that crashes on it would, counting them.
func holdingGateway(t *testing.T, k int, dropped *atomic.Int64) string {
	var mu sync.Mutex
	in := 0
	all := make(chan struct{})
	return rawGateway(t, func(_ int, c net.Conn, r *http.Request) {
		if r.URL.Path != "/hold" {
			dropped.Add(1)
			c.Close()
			return
		}
		mu.Lock()
		if in++; in == k {
			close(all)
		}
		mu.Unlock()
		<-all
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
}

// A request the gateway drops unanswered is sent again at most once, and only a GET
// or a HEAD, however many idle connections there are: a DELETE or a POST the gateway
// may have acted on is not sent again by the transport.
func TestFastTransportSendsAgainOnlyOnceAndOnlyWhatIsSafe(t *testing.T) {
	for _, tc := range []struct {
		method string
		sends  int64
	}{{"GET", 2}, {"HEAD", 2}, {"DELETE", 1}, {"POST", 1}} {
		t.Run(tc.method, func(t *testing.T) {
			var dropped atomic.Int64
			const k = 6
			url := "http://" + holdingGateway(t, k, &dropped)
			tr := NewFastTransport()
			defer tr.CloseIdleConnections()
			idleConns(t, tr, url, k)
			req, _ := http.NewRequest(tc.method, url+"/crash?uploads", nil)
			if _, err := tr.RoundTrip(req); err == nil {
				t.Fatal("a request dropped unanswered gave no error")
			}
			if n := dropped.Load(); n != tc.sends {
				t.Fatalf("the gateway got the request %d times, want %d", n, tc.sends)
			}
		})
	}
}

// A connection the gateway closed while it was idle is found closed before a
// request goes on it: a DELETE, which is not sent twice, still gets through.
func TestFastTransportLeavesAConnectionTheGatewayClosed(t *testing.T) {
	var deletes atomic.Int64
	srv, conns := gateway(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			deletes.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}
	})
	tr := NewFastTransport()
	defer tr.CloseIdleConnections()
	if _, _, err := get(t, tr, context.Background(), "GET", srv.URL+"/x"); err != nil {
		t.Fatal(err)
	}
	srv.CloseClientConnections()
	addr := srv.Listener.Addr().String()
	testwait.Until(t, time.Minute, "the idle connection is seen closed", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.idle[addr]) == 1 && !alive(tr.idle[addr][0].nc)
	})
	resp, _, err := get(t, tr, context.Background(), "DELETE", srv.URL+"/x")
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE after the gateway closed the idle connection: %v %v", resp, err)
	}
	if deletes.Load() != 1 || conns.Load() != 2 {
		t.Fatalf("%d DELETEs on %d connections, want 1 on 2", deletes.Load(), conns.Load())
	}
}

// Idle connections are closed once idle for IdleTimeout, those under the one in use
// too, whether or not requests keep coming.
func TestFastTransportClosesConnectionsIdleTooLong(t *testing.T) {
	var dropped atomic.Int64
	const k = 5
	url := "http://" + holdingGateway(t, k, &dropped)
	tr := &Transport{IdleTimeout: 50 * time.Millisecond}
	defer tr.CloseIdleConnections()
	idleConns(t, tr, url, k)
	addr := url[len("http://"):]
	tr.mu.Lock()
	open := len(tr.idle[addr])
	tr.mu.Unlock()
	if open != k {
		t.Fatalf("%d idle connections after %d requests at once, want %d", open, k, k)
	}
	testwait.Until(t, time.Minute, "every idle connection closed", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.idle[addr]) == 0 && tr.sweep == nil
	})
}

// An answer with no body (a HEAD's, a 204) closed without a read gives its
// connection back.
func TestFastTransportKeepsTheConnectionOfAnAnswerWithoutBody(t *testing.T) {
	srv, conns := gateway(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Length", "10")
	})
	tr := NewFastTransport()
	defer tr.CloseIdleConnections()
	for _, m := range []string{"HEAD", "DELETE", "HEAD"} {
		req, _ := http.NewRequest(m, srv.URL+"/x", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for three answers without a body, want 1", n)
	}
}
