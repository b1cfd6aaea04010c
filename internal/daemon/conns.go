package daemon

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cellarsim/cellar/internal/errs"
)

// Conns keeps one gRPC client connection per address, shared by every caller in the
// process. Connections are set up to fail fast: a call to a node that is down returns
// Unavailable at once rather than waiting, and a node that comes back on the same
// address is reconnected within a second.
//
// A connection that keeps failing is dropped and dialled anew, name resolution
// included: one whose TLS handshake failed (the server's certificate is not from this
// cluster's CA, or is another node's than the name dialled: see pki.Creds.ClientTLS),
// or that has been in TRANSIENT_FAILURE for
// RedialAfter. An address is often a name (a container's, in Docker), and the address
// it resolved to may since have gone to another container, while the node it named
// came back elsewhere: a connection kept for the old address would dial the wrong
// host for ever. The next Get after such a failure returns a new connection; calls
// already made on the old one end with it.
type Conns struct {
	mu    sync.Mutex
	conns map[string]*conn
	unary []grpc.UnaryClientInterceptor
	tls   *tls.Config // nil: plain TCP
	// RedialAfter is how long a connection stays in TRANSIENT_FAILURE before the next
	// Get dials it anew (0: DefaultRedialAfter). Set it before the first Get.
	RedialAfter time.Duration
	now         func() time.Time // time.Now; tests move it
}

// DefaultRedialAfter is Conns.RedialAfter when it is not set: a few of the
// connection's backoff periods, so that a node that is merely restarting is reached
// again by the same connection.
const DefaultRedialAfter = 3 * time.Second

// conn is one cached connection and what is known of its failures.
type conn struct {
	cc      *grpc.ClientConn
	created time.Time
	stop    context.CancelFunc // ends watch

	mu              sync.Mutex
	failingSince    time.Time // when it entered TRANSIENT_FAILURE; zero when it is not in it
	handshakeFailed bool      // the last TLS handshake failed
}

// NewConns returns an empty pool. The interceptors given run, in order, on every unary
// call made on its connections, inside the one that turns status errors into cellar
// errors (so the errors they return are converted too).
func NewConns(unary ...grpc.UnaryClientInterceptor) *Conns {
	return &Conns{conns: map[string]*conn{}, unary: unary, now: time.Now}
}

// NewTLSConns is NewConns for a caller with a certificate of the cluster (see
// pki.Creds.ClientTLS): every connection is mutual TLS. The operator's tools call
// nodes with it; a daemon uses Daemon.Conns.
func NewTLSConns(cfg *tls.Config, unary ...grpc.UnaryClientInterceptor) *Conns {
	c := NewConns(unary...)
	c.tls = cfg
	return c
}

// Get returns the connection to addr, creating it if needed, or anew if the one it
// had keeps failing (see Conns).
func (c *Conns) Get(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cn, ok := c.conns[addr]; ok {
		if !c.stale(cn) {
			return cn.cc, nil
		}
		delete(c.conns, addr)
		cn.close()
	}
	cn := &conn{created: c.now()}
	tc := insecure.NewCredentials()
	if c.tls != nil {
		tc = watchedTLS{TransportCredentials: credentials.NewTLS(c.tls), c: cn}
	}
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(tc),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}),
		grpc.WithChainUnaryInterceptor(append([]grpc.UnaryClientInterceptor{unaryErrs}, c.unary...)...),
		grpc.WithChainStreamInterceptor(streamErrs),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)),
	)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "cannot reach %s", addr)
	}
	cn.cc = cc
	ctx, stop := context.WithCancel(context.Background())
	cn.stop = stop
	go cn.watch(ctx, c.now)
	c.conns[addr] = cn
	return cc, nil
}

// stale reports a connection to drop: its last handshake failed, or it has been in
// TRANSIENT_FAILURE for RedialAfter. A connection younger than a second is kept
// whatever happened, so that a node that fails every handshake is not dialled anew
// on every call.
func (c *Conns) stale(cn *conn) bool {
	now := c.now()
	if now.Sub(cn.created) < time.Second {
		return false
	}
	after := c.RedialAfter
	if after <= 0 {
		after = DefaultRedialAfter
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.handshakeFailed || (!cn.failingSince.IsZero() && now.Sub(cn.failingSince) >= after)
}

// watch follows the connection's state until it is closed.
func (cn *conn) watch(ctx context.Context, now func() time.Time) {
	for {
		st := cn.cc.GetState()
		cn.mu.Lock()
		switch {
		case st != connectivity.TransientFailure:
			cn.failingSince = time.Time{}
		case cn.failingSince.IsZero():
			cn.failingSince = now()
		}
		cn.mu.Unlock()
		if st == connectivity.Shutdown || !cn.cc.WaitForStateChange(ctx, st) {
			return
		}
	}
}

func (cn *conn) close() {
	cn.stop()
	cn.cc.Close()
}

// watchedTLS is the TLS credentials of one connection, noting whether its last
// handshake failed.
type watchedTLS struct {
	credentials.TransportCredentials
	c *conn
}

func (w watchedTLS) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	nc, info, err := w.TransportCredentials.ClientHandshake(ctx, authority, raw)
	// A handshake cut short by the caller (a closed connection, a deadline) says
	// nothing of the server.
	failed := err != nil && ctx.Err() == nil
	w.c.mu.Lock()
	w.c.handshakeFailed = failed
	w.c.mu.Unlock()
	return nc, info, err
}

func (w watchedTLS) Clone() credentials.TransportCredentials {
	return watchedTLS{TransportCredentials: w.TransportCredentials.Clone(), c: w.c}
}

// Close closes every connection.
func (c *Conns) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, cn := range c.conns {
		cn.close()
		delete(c.conns, addr)
	}
}

// unaryErrs and streamErrs turn status errors from the server back into cellar errors.
func unaryErrs(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return errs.FromGRPC(invoker(ctx, method, req, reply, cc, opts...))
}

func streamErrs(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, errs.FromGRPC(err)
	}
	return errStream{s}, nil
}

type errStream struct{ grpc.ClientStream }

func (s errStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil || err == io.EOF {
		return err
	}
	return errs.FromGRPC(err)
}

func (s errStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	if err == nil || err == io.EOF {
		return err
	}
	return errs.FromGRPC(err)
}
