package s3

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/cellarsim/cellar/internal/errs"
)

// operation is one S3 operation the gateway recognises.
type operation int

const (
	opUnknown operation = iota
	opListBuckets
	opCreateBucket
	opHeadBucket
	opDeleteBucket
	opGetBucketLocation
	opListObjects
	opListObjectsV2
	opPutObject
	opGetObject
	opHeadObject
	opDeleteObject
	opDeleteObjects
	opListObjectVersions
	opGetBucketVersioning
	opCopyObject
	opCreateUpload
	opUploadPart
	opCompleteUpload
	opAbortUpload
	opListParts
	opListUploads
	opUploadPartCopy
	opGetObjectTagging
	opPutBucketEncryption
	opGetBucketEncryption
	opDeleteBucketEncryption
	opGetBucketACL
	opPutBucketACL
	opGetObjectACL
	opPutObjectACL
)

var opNames = [...]string{
	opUnknown:           "Unknown",
	opListBuckets:       "ListBuckets",
	opCreateBucket:      "CreateBucket",
	opHeadBucket:        "HeadBucket",
	opDeleteBucket:      "DeleteBucket",
	opGetBucketLocation: "GetBucketLocation",
	opListObjects:       "ListObjects",
	opListObjectsV2:     "ListObjectsV2",
	opPutObject:         "PutObject",
	opGetObject:         "GetObject",
	opHeadObject:        "HeadObject",
	opDeleteObject:      "DeleteObject",

	opDeleteObjects:       "DeleteObjects",
	opListObjectVersions:  "ListObjectVersions",
	opGetBucketVersioning: "GetBucketVersioning",
	opCopyObject:          "CopyObject",
	opCreateUpload:        "CreateMultipartUpload",
	opUploadPart:          "UploadPart",
	opCompleteUpload:      "CompleteMultipartUpload",
	opAbortUpload:         "AbortMultipartUpload",
	opListParts:           "ListParts",
	opListUploads:         "ListMultipartUploads",
	opUploadPartCopy:      "UploadPartCopy",
	opGetObjectTagging:    "GetObjectTagging",

	opPutBucketEncryption:    "PutBucketEncryption",
	opGetBucketEncryption:    "GetBucketEncryption",
	opDeleteBucketEncryption: "DeleteBucketEncryption",
	opGetBucketACL:           "GetBucketAcl",
	opPutBucketACL:           "PutBucketAcl",
	opGetObjectACL:           "GetObjectAcl",
	opPutObjectACL:           "PutObjectAcl",
}

func (o operation) String() string {
	if name, ok := configOpNames[o]; ok {
		return name
	}
	if o < 0 || int(o) >= len(opNames) {
		return opNames[opUnknown]
	}
	return opNames[o]
}

// request is what the gateway understood of a request line and its headers.
type request struct {
	op     operation
	bucket string // "" for service-level requests
	key    string // "" for bucket-level requests
	query  url.Values
}

// Query parameters each operation understands. A parameter outside its operation's set
// is refused with NotImplemented rather than ignored, so that a sub-resource request
// (?acl, ?versioning, ?uploads...) is never served as a plain GET or PUT by mistake.
// Parameters starting with "x-" are always ignored: S3 reserves them for clients
// (x-id from the AWS SDKs, X-Amz-* of presigned URLs, custom access-log fields).
var (
	listBucketsParams = paramSet("prefix", "max-buckets", "continuation-token", "bucket-region")
	listObjectsParams = paramSet("list-type", "prefix", "delimiter", "max-keys", "marker",
		"continuation-token", "start-after", "encoding-type", "fetch-owner")
	getObjectParams = paramSet("response-content-type", "response-content-language",
		"response-expires", "response-cache-control", "response-content-disposition",
		"response-content-encoding", "partNumber")
	locationParams = paramSet("location")
	noParams       = paramSet()

	versionsParams   = paramSet("versions", "prefix", "delimiter", "key-marker", "version-id-marker", "max-keys", "encoding-type")
	uploadsParams    = paramSet("uploads", "prefix", "delimiter", "key-marker", "upload-id-marker", "max-uploads", "encoding-type")
	listPartsParams  = paramSet("uploadId", "part-number-marker", "max-parts", "encoding-type")
	uploadPartParams = paramSet("partNumber", "uploadId")
	uploadIDParams   = paramSet("uploadId")
	createParams     = paramSet("uploads")
	deleteParams     = paramSet("delete")
	versioningParams = paramSet("versioning")
	encryptionParams = paramSet("encryption")
	aclParams        = paramSet("acl")
	versionIDParam   = "versionId" // "null" only, unless the backend has versioning (versioning.go)
)

// v2QueryAuth are the parameters of a Signature V2 presigned URL, accepted everywhere.
var v2QueryAuth = paramSet("AWSAccessKeyId", "Signature", "Expires")

// withParams returns set plus extra names.
func withParams(set map[string]bool, extra ...string) map[string]bool {
	m := make(map[string]bool, len(set)+len(extra))
	for k := range set {
		m[k] = true
	}
	for _, k := range extra {
		m[k] = true
	}
	return m
}

func paramSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// parseRequest works out the operation, bucket and key of a path-style request, and
// validates them. The returned request has its op set whenever it could be determined,
// even when err is not nil, so that the failure is counted against the right operation.
func parseRequest(method string, u *url.URL, hdr http.Header) (request, error) {
	var req request
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return req, errs.Wrap(errs.InvalidArgument, err, "The query string is not valid.")
	}
	req.query = q

	// u.Path is already percent-decoded; the first segment is the bucket and everything
	// after the following slash, slashes included, is the key.
	path := strings.TrimPrefix(u.Path, "/")
	req.bucket, req.key, _ = strings.Cut(path, "/")
	if req.bucket == "" && req.key != "" { // "//key"
		return req, errs.New(errs.InvalidBucketName, "The specified bucket is not valid: the bucket name is empty.")
	}

	allowed := noParams
	switch {
	case req.bucket == "":
		if method == http.MethodGet {
			req.op, allowed = opListBuckets, listBucketsParams
		}
	case req.key == "":
		switch method {
		case http.MethodGet:
			switch {
			case q.Has("location"):
				req.op, allowed = opGetBucketLocation, locationParams
			case q.Has("versions"):
				req.op, allowed = opListObjectVersions, versionsParams
			case q.Has("uploads"):
				req.op, allowed = opListUploads, uploadsParams
			case q.Has("versioning"):
				req.op, allowed = opGetBucketVersioning, versioningParams
			case q.Has("encryption"):
				req.op, allowed = opGetBucketEncryption, encryptionParams
			case q.Has("acl"):
				req.op, allowed = opGetBucketACL, aclParams
			case q.Has("list-type"):
				req.op, allowed = opListObjectsV2, listObjectsParams
			default:
				req.op, allowed = opListObjects, listObjectsParams
			}
		case http.MethodPut:
			req.op = opCreateBucket
			if q.Has("encryption") {
				req.op, allowed = opPutBucketEncryption, encryptionParams
			}
			if q.Has("acl") {
				req.op, allowed = opPutBucketACL, aclParams
			}
		case http.MethodHead:
			req.op = opHeadBucket
		case http.MethodDelete:
			req.op = opDeleteBucket
			if q.Has("encryption") {
				req.op, allowed = opDeleteBucketEncryption, encryptionParams
			}
		case http.MethodPost:
			if q.Has("delete") {
				req.op, allowed = opDeleteObjects, deleteParams
			}
		}
	default:
		switch method {
		case http.MethodGet:
			switch {
			case q.Has("uploadId"):
				req.op, allowed = opListParts, listPartsParams
			case q.Has("tagging"):
				req.op, allowed = opGetObjectTagging, paramSet("tagging", versionIDParam)
			case q.Has("acl"):
				req.op, allowed = opGetObjectACL, withParams(aclParams, versionIDParam)
			default:
				req.op, allowed = opGetObject, withParams(getObjectParams, versionIDParam)
			}
		case http.MethodHead:
			req.op, allowed = opHeadObject, withParams(getObjectParams, versionIDParam)
		case http.MethodPut:
			switch {
			case q.Has("acl"):
				req.op, allowed = opPutObjectACL, withParams(aclParams, versionIDParam)
			case q.Has("partNumber") || q.Has("uploadId"):
				req.op, allowed = opUploadPart, uploadPartParams
			case hdr.Get("x-amz-copy-source") != "":
				req.op = opCopyObject
			default:
				req.op = opPutObject
			}
		case http.MethodDelete:
			if q.Has("uploadId") {
				req.op, allowed = opAbortUpload, uploadIDParams
			} else {
				req.op, allowed = opDeleteObject, paramSet(versionIDParam)
			}
		case http.MethodPost:
			switch {
			case q.Has("uploads"):
				req.op, allowed = opCreateUpload, createParams
			case q.Has("uploadId"):
				req.op, allowed = opCompleteUpload, uploadIDParams
			}
		}
	}
	if op, params, ok := configOp(method, req.bucket, req.key, q); ok {
		req.op, allowed = op, params // tagging, CORS and lifecycle: bucketconfig.go
	}
	if method == http.MethodPut && req.bucket != "" && req.key == "" && q.Has("versioning") {
		req.op, allowed = opPutBucketVersioning, versioningParams // versioning.go
	}
	if req.op == opUnknown {
		return req, errs.New(errs.NotImplemented, "cellar does not implement %s on this resource.", safeMethod(method))
	}
	for name := range q {
		if allowed[name] || len(name) >= 2 && strings.EqualFold(name[:2], "x-") || v2QueryAuth[name] {
			continue
		}
		req.op = opUnknown // PUT /b?acl is not a CreateBucket that failed
		return req, errs.New(errs.NotImplemented, "cellar does not implement the %q query parameter or sub-resource.", clip(name, 64))
	}
	if req.op == opListObjectsV2 && q.Get("list-type") != "2" {
		return req, errs.New(errs.InvalidArgument, "Invalid list-type; only 2 is supported.")
	}
	if req.op == opUploadPart && hdr.Get("x-amz-copy-source") != "" {
		req.op = opUploadPartCopy
	}

	if req.bucket != "" {
		if err := validateBucketName(req.bucket); err != nil {
			return req, err
		}
	}
	if req.key != "" {
		if err := validateKey(req.key); err != nil {
			return req, err
		}
	}
	return req, nil
}

// safeMethod returns method if it is a plain token, for use in a client-visible message.
func safeMethod(m string) string {
	for i := 0; i < len(m); i++ {
		if c := m[i]; c < 'A' || c > 'Z' {
			return "this method"
		}
	}
	return clip(m, 16)
}

// clip shortens s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "..."
}
