package router

import (
	"context"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/cellarsim/cellar/internal/errs"
)

// CallDeadline returns a gRPC client interceptor that gives every unary call a deadline
// of d from its start, unless the caller's context ends sooner. Installed on the
// connections to the cells (daemon.NewConns(router.CallDeadline(d))), it makes a hung
// node cost its caller d and an Unavailable error (a 503 to an S3 client), never a
// hang. Streaming calls, which carry object bytes for as long as an object takes, are
// not affected.
func CallDeadline(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		// WithTimeout keeps the caller's deadline when it is the earlier one.
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// ProgressDeadline bounds how long a stream to a cell may go without progress, where a
// deadline on the whole call cannot be set: an object takes as long as it takes, but a
// node that stops sending or taking its bytes (frozen, or its disk hung) must not hold
// the request forever. Each step that waits on the far side (a Send, a Recv, the final
// answer) runs through Step; a step that takes longer than the deadline cancels the
// stream's context, which ends the step with an error. Time spent between steps (on
// the S3 client, say) does not count.
//
//	ctx, pd := router.WithProgressDeadline(ctx, 10*time.Second)
//	defer pd.Stop()
//	stream, err := client.Read(ctx, req)
//	err = pd.Step(func() error { msg, err = stream.Recv(); return err })
type ProgressDeadline struct {
	d       time.Duration
	timer   *time.Timer
	cancel  context.CancelFunc
	expired atomic.Bool
}

// WithProgressDeadline returns a context for a stream and the deadline that cancels it.
// Stop releases both.
func WithProgressDeadline(ctx context.Context, d time.Duration) (context.Context, *ProgressDeadline) {
	ctx, cancel := context.WithCancel(ctx)
	p := &ProgressDeadline{d: d, cancel: cancel}
	p.timer = time.AfterFunc(d, func() {
		p.expired.Store(true)
		cancel()
	})
	p.timer.Stop()
	return ctx, p
}

// Step runs one step of the stream under the deadline. If the deadline cancelled it, the
// error is Unavailable and says so.
func (p *ProgressDeadline) Step(step func() error) error {
	p.timer.Reset(p.d)
	err := step()
	p.timer.Stop()
	if err != nil && p.expired.Load() {
		return errs.Wrap(errs.Unavailable, err, "the stream made no progress for %s", p.d)
	}
	return err
}

// Expired reports whether the deadline has cancelled the stream.
func (p *ProgressDeadline) Expired() bool { return p.expired.Load() }

// Stop cancels the stream's context and the deadline.
func (p *ProgressDeadline) Stop() {
	p.timer.Stop()
	p.cancel()
}
