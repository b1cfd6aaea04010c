package s3

import (
	"context"
	"net/http"
	"time"

	"github.com/cellarsim/cellar/internal/errs"
)

// What a bucket carries besides its objects (tags, CORS rules, lifecycle rules), and
// the tags of objects: the handler serves their S3 operations from a Backend that is
// also a ConfigBackend, and answers NotImplemented, naming the operation, from one
// that is not.

// Tag is one tag of an object or a bucket.
type Tag struct{ Key, Value string }

// CORSRule is one rule of a bucket's CORS configuration. Origins and headers may hold
// one '*' wildcard each; methods are GET, PUT, POST, DELETE or HEAD.
type CORSRule struct {
	ID             string
	AllowedOrigins []string
	AllowedMethods []string
	AllowedHeaders []string
	ExposeHeaders  []string
	MaxAgeSeconds  int // -1: not set
}

// LifecycleFilterForm is how a lifecycle rule's filter was written, so that
// GetBucketLifecycleConfiguration gives it back the way it was put.
type LifecycleFilterForm int

const (
	FilterOne        LifecycleFilterForm = iota // <Filter> with at most one condition
	FilterRulePrefix                            // the rule's own <Prefix> (the old form)
	FilterAnd                                   // <Filter><And>...</And></Filter>
)

// LifecycleRule is one expiration rule of a bucket. An object matches when its key
// starts with Prefix, it carries every tag of Tags, and its size is above
// SizeGreaterThan and below SizeLessThan (0: no bound). It expires ExpirationDays
// after it was written, rounded up to the next midnight UTC, or from ExpirationDate
// on; exactly one of the two is set.
type LifecycleRule struct {
	ID                            string
	Enabled                       bool
	Prefix                        string
	Tags                          []Tag
	SizeGreaterThan, SizeLessThan int64
	Form                          LifecycleFilterForm
	ExpirationDays                int
	ExpirationDate                time.Time
}

// BucketConfig is a bucket's configuration: each part nil when the bucket has none.
type BucketConfig struct {
	Tags      []Tag
	CORS      []CORSRule
	Lifecycle []LifecycleRule
}

// BucketConfigChange sets some parts of a bucket's configuration and leaves the
// others: a part whose Set flag is true is replaced (nil removes it).
type BucketConfigChange struct {
	SetTags      bool
	Tags         []Tag
	SetCORS      bool
	CORS         []CORSRule
	SetLifecycle bool
	Lifecycle    []LifecycleRule
}

// ConfigBackend is what a Backend implements to store bucket configurations and
// object tags. Object tags are also written with the object (ObjectMeta.Tags) and
// read with it (ObjectInfo).
type ConfigBackend interface {
	// BucketConfig returns the bucket's configuration (NoSuchBucket if it does not exist).
	BucketConfig(ctx context.Context, bucket string) (cell string, cfg BucketConfig, err error)
	// PutBucketConfig changes the bucket's configuration. A backend that cannot act
	// on a part everywhere it must (lifecycle rules in a cluster whose buckets span
	// cells) refuses it with NotImplemented.
	PutBucketConfig(ctx context.Context, bucket string, change BucketConfigChange) (cell string, err error)
	// PutObjectTags replaces the tags of the key's current object, leaving the
	// object otherwise as it is (NoSuchKey if there is none).
	PutObjectTags(ctx context.Context, bucket, key string, tags []Tag) (cell string, err error)
}

// configBackend returns the backend as a ConfigBackend, or NotImplemented naming the
// operation.
func (h *handler) configBackend(x *exchange) (ConfigBackend, error) {
	cb, ok := h.b.(ConfigBackend)
	if !ok {
		return nil, errs.New(errs.NotImplemented, "This gateway's backend does not implement %s.", x.req.op)
	}
	return cb, nil
}

// bucketConfig reads the configuration of the request's bucket.
func (h *handler) bucketConfig(x *exchange) (BucketConfig, error) {
	cb, err := h.configBackend(x)
	if err != nil {
		return BucketConfig{}, err
	}
	cell, cfg, err := cb.BucketConfig(x.r.Context(), x.req.bucket)
	x.setCell(cell)
	return cfg, err
}

// putBucketConfig changes the configuration of the request's bucket and answers with
// status and no body.
func (h *handler) putBucketConfig(x *exchange, change BucketConfigChange, status int) error {
	cb, err := h.configBackend(x)
	if err != nil {
		return err
	}
	cell, err := cb.PutBucketConfig(x.r.Context(), x.req.bucket, change)
	x.setCell(cell)
	if err != nil {
		return err
	}
	if status != http.StatusNoContent {
		x.w.Header().Set("Content-Length", "0")
	}
	x.writeHeader(status)
	return nil
}

// Operations of tagging, CORS and lifecycle. They are numbered apart from those of
// request.go; operation.String names them.
const (
	opPutObjectTagging operation = 1000 + iota
	opDeleteObjectTagging
	opGetBucketTagging
	opPutBucketTagging
	opDeleteBucketTagging
	opGetBucketCors
	opPutBucketCors
	opDeleteBucketCors
	opPreflight
	opGetBucketLifecycle
	opPutBucketLifecycle
	opDeleteBucketLifecycle
)

var configOpNames = map[operation]string{
	opPutObjectTagging:      "PutObjectTagging",
	opDeleteObjectTagging:   "DeleteObjectTagging",
	opGetBucketTagging:      "GetBucketTagging",
	opPutBucketTagging:      "PutBucketTagging",
	opDeleteBucketTagging:   "DeleteBucketTagging",
	opGetBucketCors:         "GetBucketCors",
	opPutBucketCors:         "PutBucketCors",
	opDeleteBucketCors:      "DeleteBucketCors",
	opPreflight:             "PreflightRequest",
	opGetBucketLifecycle:    "GetBucketLifecycleConfiguration",
	opPutBucketLifecycle:    "PutBucketLifecycleConfiguration",
	opDeleteBucketLifecycle: "DeleteBucketLifecycle",
}

var (
	taggingParams   = paramSet("tagging", versionIDParam)
	corsParams      = paramSet("cors")
	lifecycleParams = paramSet("lifecycle")
)

// configOp recognises the requests of tagging (?tagging), CORS (?cors, and the
// preflight OPTIONS of any bucket or object) and lifecycle (?lifecycle). ok is false
// for any other request.
func configOp(method, bucket, key string, q map[string][]string) (op operation, allowed map[string]bool, ok bool) {
	has := func(p string) bool { _, ok := q[p]; return ok }
	if bucket == "" {
		return opUnknown, nil, false
	}
	if method == http.MethodOptions {
		return opPreflight, nil, true
	}
	if key != "" {
		if !has("tagging") {
			return opUnknown, nil, false
		}
		switch method {
		case http.MethodGet:
			return opGetObjectTagging, taggingParams, true
		case http.MethodPut:
			return opPutObjectTagging, taggingParams, true
		case http.MethodDelete:
			return opDeleteObjectTagging, taggingParams, true
		}
		return opUnknown, nil, false
	}
	for _, s := range []struct {
		param            string
		get, put, delete operation
		allowed          map[string]bool
	}{
		{"tagging", opGetBucketTagging, opPutBucketTagging, opDeleteBucketTagging, paramSet("tagging")},
		{"cors", opGetBucketCors, opPutBucketCors, opDeleteBucketCors, corsParams},
		{"lifecycle", opGetBucketLifecycle, opPutBucketLifecycle, opDeleteBucketLifecycle, lifecycleParams},
	} {
		if !has(s.param) {
			continue
		}
		switch method {
		case http.MethodGet:
			return s.get, s.allowed, true
		case http.MethodPut:
			return s.put, s.allowed, true
		case http.MethodDelete:
			return s.delete, s.allowed, true
		}
	}
	return opUnknown, nil, false
}

// serveConfig serves the operations of configOp; ok is false for any other.
func (h *handler) serveConfig(x *exchange) (ok bool, err error) {
	switch x.req.op {
	case opPutObjectTagging:
		return true, h.putObjectTagging(x)
	case opDeleteObjectTagging:
		return true, h.deleteObjectTagging(x)
	case opGetBucketTagging:
		return true, h.getBucketTagging(x)
	case opPutBucketTagging:
		return true, h.putBucketTagging(x)
	case opDeleteBucketTagging:
		return true, h.putBucketConfig(x, BucketConfigChange{SetTags: true}, http.StatusNoContent)
	case opGetBucketCors:
		return true, h.getBucketCors(x)
	case opPutBucketCors:
		return true, h.putBucketCors(x)
	case opDeleteBucketCors:
		return true, h.putBucketConfig(x, BucketConfigChange{SetCORS: true}, http.StatusNoContent)
	case opPreflight:
		return true, h.preflight(x)
	case opGetBucketLifecycle:
		return true, h.getBucketLifecycle(x)
	case opPutBucketLifecycle:
		return true, h.putBucketLifecycle(x)
	case opDeleteBucketLifecycle:
		return true, h.putBucketConfig(x, BucketConfigChange{SetLifecycle: true}, http.StatusNoContent)
	}
	return false, nil
}
