package daemon

import (
	"context"
	"crypto/tls"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cellarsim/cellar/internal/errs"
)

// Conns keeps one gRPC client connection per address, shared by every caller in the
// process. Connections are set up to fail fast: a call to a node that is down returns
// Unavailable at once rather than waiting, and a node that comes back on the same
// address is reconnected within a second.
type Conns struct {
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
	unary []grpc.UnaryClientInterceptor
	tls   *tls.Config // nil: plain TCP
}

// NewConns returns an empty pool. The interceptors given run, in order, on every unary
// call made on its connections, inside the one that turns status errors into cellar
// errors (so the errors they return are converted too).
func NewConns(unary ...grpc.UnaryClientInterceptor) *Conns {
	return &Conns{conns: map[string]*grpc.ClientConn{}, unary: unary}
}

// NewTLSConns is NewConns for a caller with a certificate of the cluster (see
// pki.Creds.ClientTLS): every connection is mutual TLS. The operator's tools call
// nodes with it; a daemon uses Daemon.Conns.
func NewTLSConns(cfg *tls.Config, unary ...grpc.UnaryClientInterceptor) *Conns {
	c := NewConns(unary...)
	c.tls = cfg
	return c
}

// Get returns the connection to addr, creating it if needed.
func (c *Conns) Get(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.conns[addr]; ok {
		return cc, nil
	}
	tc := insecure.NewCredentials()
	if c.tls != nil {
		tc = credentials.NewTLS(c.tls)
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
	c.conns[addr] = cc
	return cc, nil
}

// Close closes every connection.
func (c *Conns) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, cc := range c.conns {
		cc.Close()
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
