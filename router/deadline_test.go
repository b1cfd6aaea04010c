package router

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
)

// TestCallDeadline: a unary call gets the interceptor's deadline unless its caller's
// context ends sooner.
func TestCallDeadline(t *testing.T) {
	const d = time.Hour
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		// keeps is whether the call runs with the caller's own deadline
		keeps bool
	}{
		{"no deadline", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, false},
		{"an earlier deadline", func() (context.Context, context.CancelFunc) { return context.WithTimeout(context.Background(), d/2) }, true},
		{"a later deadline", func() (context.Context, context.CancelFunc) { return context.WithTimeout(context.Background(), 2*d) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			callerDeadline, _ := ctx.Deadline()
			var got time.Time
			var hasDeadline bool
			invoker := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
				got, hasDeadline = ctx.Deadline()
				return nil
			}
			before := time.Now()
			if err := CallDeadline(d)(ctx, "/cellar.v1.Index/Lookup", nil, nil, nil, invoker); err != nil {
				t.Fatal(err)
			}
			switch {
			case !hasDeadline:
				t.Fatal("the call has no deadline")
			case tc.keeps && !got.Equal(callerDeadline):
				t.Errorf("deadline %v, want the caller's %v", got, callerDeadline)
			case !tc.keeps && (got.Before(before.Add(d)) || got.After(time.Now().Add(d))):
				t.Errorf("deadline %v, want %v from the call", got, d)
			}
		})
	}
}
