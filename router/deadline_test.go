package router

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/cellarsim/cellar/internal/errs"
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

// TestProgressDeadline: a step that takes longer than the deadline is cancelled with an
// Unavailable error that says so; steps that keep up are not, however long the stream.
func TestProgressDeadline(t *testing.T) {
	ctx, pd := WithProgressDeadline(context.Background(), 50*time.Millisecond)
	defer pd.Stop()
	for i := range 3 {
		if err := pd.Step(func() error { return ctx.Err() }); err != nil || pd.Expired() {
			t.Fatalf("quick step %d: %v (expired %v)", i, err, pd.Expired())
		}
	}
	stuck := func() error { <-ctx.Done(); return ctx.Err() }
	err := pd.Step(stuck)
	if !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "no progress") || !pd.Expired() {
		t.Fatalf("stuck step: %v (expired %v), want Unavailable about no progress", err, pd.Expired())
	}

	// Stop cancels the stream without calling it a lack of progress.
	ctx, pd = WithProgressDeadline(context.Background(), time.Hour)
	pd.Stop()
	if err := pd.Step(stuck); !errors.Is(err, context.Canceled) || pd.Expired() {
		t.Fatalf("step after Stop: %v (expired %v), want context.Canceled", err, pd.Expired())
	}
}
