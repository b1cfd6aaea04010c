// Package s3 is cellar's S3 protocol: an S3-compatible HTTP API (path-style addressing)
// that authenticates and validates each request, decodes its body, and turns it into
// calls on a Backend, the data path that stores and finds objects. It knows nothing of
// cells beyond the cell names a Backend reports.
//
// The gateway daemon builds the handler once, over the cells, and serves it:
//
//	h := s3.NewHandler(backend, s3.HandlerOptions{
//		Credentials: map[string]string{accessKey: secretKey}, Registerer: reg, Logger: log,
//	})
//	srv := &http.Server{Handler: h}
//
// What it serves is what the aws CLI, boto3, s3cmd, rclone, aws-sdk-go-v2 and minio-go
// use: buckets (create, head, delete, list, location, versioning status, ACL); objects (PUT
// with metadata and standard headers, GET and HEAD with single ranges and conditional
// headers, conditional PUT with If-Match and If-None-Match: *, DELETE, DeleteObjects,
// CopyObject, ACL, tagging); ListObjects v1 and v2 and
// ListObjectVersions (one "null" version per key, or S3 versioning from a Backend that
// implements VersioningBackend: see versioning.go); multipart uploads (create, upload
// part, upload part copy, complete, abort, list uploads, list parts; GET and HEAD of
// one part with ?partNumber); bucket tagging, CORS (with preflight) and lifecycle
// expiration rules, from a Backend that is also a ConfigBackend (see tagging.go,
// cors.go and lifecycle.go for what each accepts). Anything else is refused with
// NotImplemented, never served as something it is not.
//
// Where S3's answer depends on its region, the handler answers as its region
// (HandlerOptions.Region, us-east-1 by default) would: CreateBucket of a bucket that
// exists answers 200 in us-east-1 and 409 BucketAlreadyOwnedByYou elsewhere (a
// cluster's buckets all have one owner).
//
// Listings return keys exactly. With encoding-type=url, Key, Prefix, Delimiter,
// Marker, NextMarker, StartAfter, KeyMarker, NextKeyMarker and each CommonPrefixes
// Prefix are percent-encoded as S3 encodes them: every byte but A-Z a-z 0-9 - _ . ~
// and '/' (so "a b/c+d" is "a%20b/c%2Bd"). Without it, a character that XML 1.0
// cannot carry (C0 controls but tab, newline and carriage return; U+FFFE, U+FFFF) is
// written as a character reference, "&#x1b;", as S3 writes it; parsers that refuse
// those (Go's encoding/xml, Python's expat) need encoding-type=url for such keys, as
// with S3. Keys in the answers of multipart uploads and DeleteObjects are written the
// same way; ListMultipartUploads and ListParts take encoding-type=url too. With a
// delimiter, ListMultipartUploads counts a common prefix as one entry of max-uploads
// and gives it once across pages, as ListObjects does.
//
// ACLs are disabled, as in an S3 bucket with Object Ownership "bucket owner enforced"
// (S3's default for new buckets): GetBucketAcl and GetObjectAcl answer the owner's
// FULL_CONTROL grant alone; PutBucketAcl, PutObjectAcl and the x-amz-acl header of
// PutObject, CopyObject, CreateMultipartUpload and CreateBucket accept private,
// bucket-owner-full-control, or a policy granting only the owner FULL_CONTROL, and
// refuse any other ACL, and every x-amz-grant-* header, with 400
// AccessControlListNotSupported, storing nothing.
//
// A CompleteMultipartUpload retried after its answer was lost (the object was made,
// the upload is gone) answers as the first one did when it names the same parts and
// the object has not changed since; otherwise NoSuchUpload.
//
// Requests that net/http refuses before a handler runs (a header section over
// http.Server.MaxHeaderBytes, a bad Content-Length or Transfer-Encoding, a request
// line that is not HTTP) are answered in S3 error XML too when the server's listener
// is wrapped with XMLErrorListener; see there for what it cannot change.
//
// Server-side encryption is not implemented, and objects are stored unencrypted: a
// request with any SSE-S3, SSE-KMS or SSE-C header (x-amz-server-side-encryption*,
// x-amz-copy-source-server-side-encryption-customer-*), on any operation, is refused
// with NotImplemented before anything is stored, and so are PutBucketEncryption,
// GetBucketEncryption and DeleteBucketEncryption (GetBucketEncryption too, rather
// than S3's ServerSideEncryptionConfigurationNotFoundError, which would speak of a
// feature that is merely not configured).
//
// Object writes (PutObject, CopyObject, CreateMultipartUpload) that ask for a feature
// cellar does not have are refused the same way, before anything is stored: object
// lock, a website redirect, a storage class other than
// STANDARD (one S3 does not know is 400 InvalidStorageClass, as from S3).
// docs/s3-compatibility.md lists the behaviours checked against S3's, and the
// differences.
//
// User metadata is stored as UTF-8 text and returned as S3 returns it: as it is when
// it is US-ASCII, RFC 2047-encoded ("=?UTF-8?B?...?=") when it is not, since clients
// read non-ASCII header bytes differently; encoded-words sent by a client are decoded
// before the value is stored.
//
// Every request must carry an AWS Signature Version 4 (Authorization header or
// presigned URL), or the Version 2 that older clients still send, made with
// HandlerOptions.Credentials, unless those are empty (authentication off). Request
// bodies may be plain or aws-chunked (with chunk signatures verified, and trailers);
// Content-MD5, x-amz-content-sha256 and the x-amz-checksum-* checksums are verified as
// the body streams, and a body that fails any check is never committed. Object bytes
// stream in both directions without buffering whole objects; ranges are read from the
// Backend at their offset.
//
// A multipart upload's object gets the checksum type its CreateMultipartUpload asks
// for (x-amz-checksum-type): COMPOSITE by default (the checksum of the parts'
// checksums, "<value>-<parts>"), or FULL_OBJECT, the checksum of the whole object, for
// CRC32, CRC32C and CRC64NVME (the default for CRC64NVME, which has no composite form),
// combined from the parts' CRCs. The checksum a CompleteMultipartUpload declares for
// the object is verified before the object is committed.
//
// Every failure is rendered as S3 error XML through errs.S3. Every response says which
// cell served it in the x-cellar-cell header ("none" when the request was refused
// before reaching a cell) and carries a unique x-amz-request-id that also appears in
// the logs. A request its client cancels is logged (with status 499) and counted
// (outcome ClientClosedRequest) as the client's doing, not as a failure of a cell.
package s3

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ObjectMeta is what an object carries besides its bytes: the headers it was written
// with and returns on GET and HEAD, its user metadata and its checksum.
type ObjectMeta struct {
	ContentType        string
	ContentEncoding    string
	CacheControl       string
	ContentDisposition string
	ContentLanguage    string
	Expires            string
	UserMeta           map[string]string // x-amz-meta-*, by lowercase name without the prefix
	// ChecksumAlgorithm is CRC32, CRC32C, CRC64NVME, SHA1 or SHA256 when the client
	// sent a checksum, and Checksum its base64 value ("<value>-<parts>" for a
	// multipart object's composite checksum).
	ChecksumAlgorithm string
	Checksum          string
	// Tags are the object's tags (x-amz-tagging), in the order given.
	Tags []Tag
	// ChecksumType is, for a multipart upload, how its object's checksum will be made
	// from the parts' checksums: ChecksumFullObject or ChecksumComposite. An object's
	// type follows from its Checksum (composite values end in "-<parts>").
	ChecksumType string
}

// The checksum types of S3 (x-amz-checksum-type).
const (
	// ChecksumFullObject is the checksum of the whole object. A multipart object gets
	// one (CRC32, CRC32C or CRC64NVME only) by combining its parts' CRCs.
	ChecksumFullObject = "FULL_OBJECT"
	// ChecksumComposite is the checksum of a multipart object's parts' checksums,
	// "<value>-<parts>".
	ChecksumComposite = "COMPOSITE"
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Bucket, Key  string
	Size         int64
	ETag         string // hex MD5 of the content, or "<md5 of part md5s>-<parts>"; without quotes
	LastModified time.Time
	PartsCount   int     // parts of a multipart object; 0 for a single-part one
	PartSizes    []int64 // their sizes, in order (GET ?partNumber=N reads part N)
	// VersionID is the object's version (x-amz-version-id): "" in a bucket never
	// versioned, "null" for the null version of a versioned one (VersioningBackend).
	VersionID string
	ObjectMeta
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

// Precondition is what a conditional write requires of the key's current object; the
// backend checks it atomically with the write.
type Precondition struct {
	IfMatch     string // ETag (quoted or not) the current object must have; NoSuchKey if there is none
	IfNoneMatch bool   // the key must not exist (If-None-Match: *)
}

// PutInput is one object upload. The backend must read Body until io.EOF before it
// commits: the gateway's length and digest checks report their failures from Read in
// place of io.EOF (and the handler answers 500 if a backend commits without reaching it).
type PutInput struct {
	Bucket, Key string
	Size        int64     // Content-Length of the decoded payload; -1 if unknown
	Body        io.Reader // the decoded payload; a read error must abort the PUT (nothing committed)
	Meta        ObjectMeta
	// Checksum, when not nil, returns the verified base64 checksum of the payload in
	// Meta.ChecksumAlgorithm; it is valid once Body has returned io.EOF.
	Checksum func() string
	Cond     Precondition
}

// GetInput is one object read. Choose is called with the object's description before
// any byte is read: it returns the byte range to send (offset, length), or an error
// (a failed precondition, an unsatisfiable range) that the backend returns as is.
type GetInput struct {
	Bucket, Key string
	Choose      func(ObjectInfo) (offset, length int64, err error)
	// VersionID reads that version ("null" for the null version) rather than the
	// current one; only a VersioningBackend is given one.
	VersionID string
}

// UploadInfo describes a multipart upload in progress.
type UploadInfo struct {
	Bucket, Key, UploadID string
	Initiated             time.Time
	Meta                  ObjectMeta
}

// PartInput is one UploadPart. Like PutInput, Body must be read to io.EOF before the
// part is recorded.
type PartInput struct {
	Bucket, Key, UploadID string
	Number                int
	Size                  int64
	Body                  io.Reader
	// CheckUpload, when not nil, is called with the upload before any byte of Body is
	// read; the part is refused with the error it returns, if any (a checksum in
	// another algorithm than the upload's). It may make Body compute the part's
	// checksum in the upload's algorithm.
	CheckUpload func(UploadInfo) error
	// Checksum, when not nil, returns the part's verified (or computed) base64
	// checksum, "" when it has none; it is valid once Body has returned io.EOF.
	Checksum func() string
}

// PartInfo describes one uploaded part.
type PartInfo struct {
	Number       int
	ETag         string // hex MD5, without quotes
	Size         int64
	LastModified time.Time
	Checksum     string
}

// CompletedPart is one part named by CompleteMultipartUpload.
type CompletedPart struct {
	Number int
	ETag   string // as the client sent it, quoted or not
	// The part's checksum, when the client names it: it must be the checksum the
	// part was uploaded with (InvalidPart otherwise).
	ChecksumAlgorithm, Checksum string
}

// CompleteInput is one CompleteMultipartUpload.
type CompleteInput struct {
	Bucket, Key, UploadID string
	Parts                 []CompletedPart
	Cond                  Precondition
	// What the client declares of the object's checksum, each field "" when it
	// declares nothing: the algorithm and base64 value (x-amz-checksum-<algorithm>),
	// and the type (x-amz-checksum-type). The backend fails the completion, storing
	// nothing, when they do not match the upload (BadDigest for another type or
	// value, InvalidRequest for another algorithm).
	ChecksumAlgorithm, Checksum, ChecksumType string
}

// ListUploadsOptions selects the uploads ListUploads returns.
type ListUploadsOptions struct {
	Prefix                    string
	KeyMarker, UploadIDMarker string
	MaxUploads                int // 1..1000
}

// ListPartsOptions selects the parts ListParts returns.
type ListPartsOptions struct {
	PartNumberMarker int
	MaxParts         int // 1..1000
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
	GetObject(ctx context.Context, in GetInput) (cell string, info ObjectInfo, body io.ReadCloser, err error)
	HeadObject(ctx context.Context, bucket, key string) (cell string, info ObjectInfo, err error)
	DeleteObject(ctx context.Context, bucket, key string) (cell string, err error)
	ListObjects(ctx context.Context, bucket string, opts ListOptions) (cell string, res ListResult, err error)

	CreateUpload(ctx context.Context, bucket, key string, meta ObjectMeta) (cell, uploadID string, err error)
	UploadPart(ctx context.Context, in PartInput) (cell string, part PartInfo, err error)
	CompleteUpload(ctx context.Context, in CompleteInput) (cell string, info ObjectInfo, err error)
	AbortUpload(ctx context.Context, bucket, key, uploadID string) (cell string, err error)
	ListUploads(ctx context.Context, bucket string, opts ListUploadsOptions) (cell string, uploads []UploadInfo, truncated bool, err error)
	ListParts(ctx context.Context, bucket, key, uploadID string, opts ListPartsOptions) (cell string, upload UploadInfo, parts []PartInfo, truncated bool, err error)
}

// HandlerOptions configures NewHandler. The zero value is usable.
type HandlerOptions struct {
	Region        string                // "" means "us-east-1"
	MaxObjectSize int64                 // 0 means 5 GiB
	Logger        *slog.Logger          // nil means slog.Default()
	Registerer    prometheus.Registerer // nil means no metrics
	// Credentials maps access key ids to secret keys. When it is empty every request
	// is served without authentication; otherwise every request must carry a valid
	// AWS Signature Version 4 (Authorization header or presigned URL).
	Credentials map[string]string
	// Tenants maps the access keys of the cluster's tenants to their names: each
	// request is then counted under its tenant (cellar_gateway_tenant_requests_total).
	Tenants map[string]string
	// Now is the clock signed requests are checked against; nil means time.Now.
	Now func() time.Time
}
