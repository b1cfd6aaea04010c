package clustertest

import (
	"context"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

type (
	smithyMiddlewareStack = middleware.Stack
)

const smithyMiddlewareAfter = middleware.After

// cellCapture records the x-cellar-cell header of each response.
type cellCapture struct{ dst *string }

func (cellCapture) ID() string { return "cellar-cell-capture" }

func (c cellCapture) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
	out, md, err := next.HandleDeserialize(ctx, in)
	if resp, ok := out.RawResponse.(*smithyhttp.Response); ok {
		*c.dst = resp.Header.Get("x-cellar-cell")
	}
	return out, md, err
}
