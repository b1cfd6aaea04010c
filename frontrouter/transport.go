package frontrouter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Transport forwards the router's requests to the gateways over HTTP/1.1.
//
// A request without a body (GET, HEAD, DELETE: most of what a router forwards) goes
// the short way: the goroutine that serves the client writes it on an idle
// connection to the gateway and reads the answer itself. net/http's Transport hands
// each request to a writing goroutine and each answer back from a reading one; on a
// 4 KiB GET those two hand-offs are a good part of what the hop costs (see
// docs/sharding.md, "Router overhead").
//
// A request with a body goes by Body (net/http's Transport by default), which gets
// right what a body makes hard: an answer that comes before the body is sent, a
// gateway that stops reading it, "Expect: 100-continue".
//
// A connection taken from the idle set is first checked (a peek that does not
// wait) for a gateway that closed it while it was idle; such a connection is
// dropped. Should a GET or HEAD still fail on a connection used before, before any
// byte of an answer came, it is sent once more, on a new connection to the same
// gateway, as net/http's Transport does. Other methods are not: a DELETE or a POST
// the gateway may have acted on goes back to the router as an error.
//
// An answer's body may not be read and closed at the same time.
type Transport struct {
	// Body forwards requests with a body (default: NewTransport()).
	Body http.RoundTripper
	// DialTimeout bounds a connection's set-up (default 2s).
	DialTimeout time.Duration
	// IdleTimeout drops a connection idle for longer (default 60s, under the
	// gateways' own 2 minutes, so that the gateway is not the one to close it).
	IdleTimeout time.Duration
	// MaxIdle is how many idle connections are kept per gateway (default 256).
	MaxIdle int

	mu    sync.Mutex
	idle  map[string][]*gwConn // per gateway, in the order they went idle
	sweep *time.Timer          // runs sweepIdle while a connection is idle
}

// gwConn is one connection to a gateway, idle or carrying one request.
type gwConn struct {
	nc   net.Conn
	in   *counter // what br reads from
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time // when it last went idle
}

// NewFastTransport returns the router's default transport: bodiless requests the
// short way, the others by NewTransport().
func NewFastTransport() *Transport {
	return &Transport{Body: NewTransport()}
}

// RoundTrip sends req to req.URL.Host and returns its answer. The answer's body must
// be read to its end and closed for the connection to be used again.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		return t.body().RoundTrip(req)
	}
	addr := req.URL.Host
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	c, reused, err := t.get(req.Context(), addr, true)
	if err != nil {
		return nil, err
	}
	resp, answered, err := t.exchange(c, req)
	if err == nil || !reused || answered || req.Context().Err() != nil ||
		(req.Method != http.MethodGet && req.Method != http.MethodHead) {
		return resp, err
	}
	if c, _, err = t.get(req.Context(), addr, false); err != nil {
		return nil, err
	}
	resp, _, err = t.exchange(c, req)
	return resp, err
}

func (t *Transport) body() http.RoundTripper {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.Body == nil {
		t.Body = NewTransport()
	}
	return t.Body
}

// exchange writes req on c and reads its answer's head, skipping interim (1xx)
// answers. answered says whether any byte of an answer came.
func (t *Transport) exchange(c *gwConn, req *http.Request) (resp *http.Response, answered bool, err error) {
	// The client going away ends the exchange: it unblocks the connection's reads
	// and writes, and the connection is closed rather than kept. done reports
	// whether that did not happen (the connection is still usable).
	done := context.AfterFunc(req.Context(), func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	before := c.in.n
	// fail ends the exchange on err: the connection is closed, not kept.
	fail := func(err error) (*http.Response, bool, error) {
		done()
		c.nc.Close()
		if req.Context().Err() != nil {
			err = req.Context().Err()
		}
		return nil, c.in.n > before, err
	}
	if err := req.Write(c.bw); err != nil {
		return fail(err)
	}
	if err := c.bw.Flush(); err != nil {
		return fail(err)
	}
	for {
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			return fail(err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		done()
		c.nc.Close()
		return nil, true, fmt.Errorf("router: gateway %s switched protocols, which the router does not forward", req.URL.Host)
	}
	// An answer without a body (to a HEAD, a 204, a 304) is at its end already.
	resp.Body = &gwBody{t: t, c: c, addr: req.URL.Host, r: resp.Body, keep: !resp.Close && !req.Close, done: done,
		eof: resp.Body == http.NoBody}
	return resp, true, nil
}

// counter counts the bytes read from a connection.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// gwBody is an answer's body. Read to its end, it gives the connection back to the
// idle set; closed before, it closes the connection.
type gwBody struct {
	t      *Transport
	c      *gwConn
	addr   string
	r      io.ReadCloser
	keep   bool
	done   func() bool
	eof    bool
	closed bool
}

func (b *gwBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("router: read on a closed answer")
	}
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *gwBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	usable := b.done()
	if b.eof && b.keep && usable && b.c.br.Buffered() == 0 {
		b.t.put(b.addr, b.c)
	} else {
		b.c.nc.Close()
	}
	return nil
}

// get returns an idle connection to addr that the gateway has not closed (reused
// true), if idle is true and there is one, or a new one.
func (t *Transport) get(ctx context.Context, addr string, idle bool) (c *gwConn, reused bool, err error) {
	for idle {
		t.mu.Lock()
		list := t.idle[addr]
		if len(list) == 0 {
			t.mu.Unlock()
			break
		}
		c = list[len(list)-1]
		t.idle[addr] = list[:len(list)-1]
		t.mu.Unlock()
		if alive(c.nc) {
			return c, true, nil
		}
		c.nc.Close()
	}
	dialFor := t.DialTimeout
	if dialFor <= 0 {
		dialFor = 2 * time.Second
	}
	d := net.Dialer{Timeout: dialFor, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	in := &counter{r: nc}
	return &gwConn{nc: nc, in: in, br: bufio.NewReaderSize(in, 16<<10), bw: bufio.NewWriterSize(nc, 4<<10)}, false, nil
}

func (t *Transport) idleFor() time.Duration {
	if t.IdleTimeout > 0 {
		return t.IdleTimeout
	}
	return 60 * time.Second
}

func (t *Transport) put(addr string, c *gwConn) {
	max := t.MaxIdle
	if max <= 0 {
		max = 256
	}
	c.used = time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.idle == nil {
		t.idle = map[string][]*gwConn{}
	}
	if len(t.idle[addr]) >= max {
		c.nc.Close()
		return
	}
	t.idle[addr] = append(t.idle[addr], c)
	if t.sweep == nil {
		t.sweep = time.AfterFunc(t.idleFor(), t.sweepIdle)
	}
}

// sweepIdle closes the connections idle for longer than the idle timeout, and runs
// again while any connection is idle. Each gateway's list is in the order its
// connections went idle, so the stale ones are at its start.
func (t *Transport) sweepIdle() {
	idleFor := t.idleFor()
	var stale []*gwConn
	t.mu.Lock()
	now := time.Now()
	next := time.Duration(-1)
	for addr, list := range t.idle {
		n := 0
		for n < len(list) && now.Sub(list[n].used) >= idleFor {
			n++
		}
		stale = append(stale, list[:n]...)
		list = slices.Delete(list, 0, n)
		if len(list) == 0 {
			delete(t.idle, addr)
			continue
		}
		t.idle[addr] = list
		if d := idleFor - now.Sub(list[0].used); next < 0 || d < next {
			next = d
		}
	}
	if next < 0 {
		t.sweep = nil
	} else {
		t.sweep.Reset(next)
	}
	t.mu.Unlock()
	for _, c := range stale {
		c.nc.Close()
	}
}

// CloseIdleConnections closes every idle connection, of both ways.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	if t.sweep != nil {
		t.sweep.Stop()
		t.sweep = nil
	}
	body := t.Body
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.nc.Close()
		}
	}
	if ci, ok := body.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}
