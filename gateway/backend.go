// Package gateway is cellar's S3 front door: an S3-compatible HTTP API (path-style
// addressing) that turns each request into one call on a Backend, the router that
// knows which cell holds a bucket or key.
//
// The gateway daemon builds the handler once and serves it:
//
//	h := gateway.NewHandler(router, gateway.HandlerOptions{Registerer: reg, Logger: log})
//	srv := &http.Server{Handler: h}
//
// The handler validates names and parameters, decodes request bodies (plain, or
// aws-chunked as the AWS SDKs send them), streams object bytes in both directions
// without buffering whole objects, and renders every failure as S3 error XML through
// errs.S3. Every response says which cell served it in the x-cellar-cell header
// ("none" when the request was refused before reaching a cell) and carries a unique
// x-amz-request-id that also appears in the logs.
package gateway

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Bucket, Key  string
	Size         int64
	ETag         string // hex MD5 of the content, without quotes
	ContentType  string
	LastModified time.Time
}

// BucketInfo describes one bucket.
type BucketInfo struct {
	Name    string
	Created time.Time
	Cell    string
}

// ListOptions selects the keys a ListObjects call returns.
type ListOptions struct {
	Prefix, Delimiter string
	StartAfter        string // return keys/prefixes strictly after this
	MaxKeys           int    // 1..1000; the handler validates and defaults to 1000
}

// ListResult is one page of a listing, in key order.
type ListResult struct {
	Objects        []ObjectInfo
	CommonPrefixes []string
	IsTruncated    bool
	Next           string // when truncated: the last key or common prefix returned; pass as StartAfter to continue
}

// PutInput is one object upload. The backend must read Body until io.EOF before it
// commits: the gateway's length and digest checks report their failures from Read in
// place of io.EOF (and the handler answers 500 if a backend commits without reaching it).
type PutInput struct {
	Bucket, Key string
	Size        int64     // Content-Length of the decoded payload; -1 if unknown
	Body        io.Reader // the decoded payload; a read error must abort the PUT (nothing committed)
	ContentType string
}

// Backend is what the S3 API needs from the cells. The returned cell is the id of the cell
// that served the request ("cell-2"), or a comma-separated list when several did.
// Errors are cellar errors (internal/errs) and are rendered with errs.S3.
type Backend interface {
	ListBuckets(ctx context.Context) (cell string, buckets []BucketInfo, err error)
	CreateBucket(ctx context.Context, bucket string) (cell string, err error)
	HeadBucket(ctx context.Context, bucket string) (cell string, err error)
	DeleteBucket(ctx context.Context, bucket string) (cell string, err error)
	PutObject(ctx context.Context, in PutInput) (cell string, info ObjectInfo, err error)
	GetObject(ctx context.Context, bucket, key string) (cell string, info ObjectInfo, body io.ReadCloser, err error)
	HeadObject(ctx context.Context, bucket, key string) (cell string, info ObjectInfo, err error)
	DeleteObject(ctx context.Context, bucket, key string) (cell string, err error)
	ListObjects(ctx context.Context, bucket string, opts ListOptions) (cell string, res ListResult, err error)
}

// HandlerOptions configures NewHandler. The zero value is usable.
type HandlerOptions struct {
	Region        string                // "" means "us-east-1"
	MaxObjectSize int64                 // 0 means 5 GiB
	Logger        *slog.Logger          // nil means slog.Default()
	Registerer    prometheus.Registerer // nil means no metrics
}
