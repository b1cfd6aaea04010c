package router

import (
	"context"
	"time"

	"google.golang.org/grpc"
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
