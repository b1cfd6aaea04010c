// Package errs is the one place where cellar's error kinds are defined and mapped to
// gRPC status codes (between daemons) and to S3 error responses (for clients).
//
// Code anywhere in cellar returns errors made with New or Wrap; the gRPC layer turns them
// into status errors with ToGRPC, the client side turns status errors back with FromGRPC,
// and the gateway renders them with S3.
package errs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

const (
	Internal          Kind = iota // a bug or an unexpected failure; never shown in detail
	NoSuchKey                     // the object does not exist
	NoSuchBucket                  // the bucket does not exist
	BucketExists                  // CreateBucket of a bucket that exists
	BucketNotEmpty                // DeleteBucket of a bucket with objects
	InvalidArgument               // bad input from the client
	Unavailable                   // a dependency is down or not ready; retry later
	SlowDown                      // the dependency is up but not ready for this request yet
	Corrupt                       // stored data failed its checksum
	NotImplemented                // a request cellar does not support
	InvalidBucketName             // a bucket name S3 would refuse
	KeyTooLong                    // an object key over 1024 bytes
	EntityTooLarge                // an object over the configured maximum
	IncompleteBody                // the body was shorter than Content-Length
	BadDigest                     // a checksum sent by the client did not match
	MalformedXML                  // an XML body that does not parse
	AccessDenied                  // authentication or authorisation failed

	InvalidRange           // a Range that does not overlap the object
	PreconditionFailed     // If-Match, If-Unmodified-Since or If-None-Match did not hold
	MethodNotAllowed       // a method the resource does not allow
	InvalidDigest          // a Content-MD5 or checksum header that does not decode
	ContentSHA256Mismatch  // the payload does not match x-amz-content-sha256
	SignatureDoesNotMatch  // a SigV4 signature that does not verify
	InvalidAccessKeyID     // an access key the gateway does not know
	RequestTimeTooSkewed   // a signed request whose time is too far from ours
	AuthorizationMalformed // an Authorization header or presigned query that does not parse
	NoSuchUpload           // a multipart upload that does not exist (any more)
	InvalidPart            // a part that was not uploaded, or whose ETag differs
	InvalidPartOrder       // parts not in ascending order
	EntityTooSmall         // a part other than the last under the minimum part size
	InvalidRequest         // a request S3 refuses as a whole (bad combination of parameters)
	MissingContentLength   // a PUT without Content-Length
	MetadataTooLarge       // user metadata over 2 KB
	HeaderTooLarge         // request headers over the gateway's limit
	ExpiredRequest         // a presigned URL past its expiry
	RequestTimeout         // the client sent no byte of its body for too long
	ACLNotSupported        // an ACL other than the owner's full control (ACLs are disabled, as in new S3 buckets)
	InvalidPartNumber      // a GET or HEAD ?partNumber past the object's parts
	InvalidStorageClass    // an x-amz-storage-class S3 does not know
	IllegalLocation        // a CreateBucket for another region than the gateway's

	// Tagging, CORS and lifecycle configuration.
	InvalidTag                   // a tag S3 refuses (too long, a duplicate key, "aws:" prefix)
	BadRequest                   // S3's catch-all 400 (more tags than S3 allows)
	NoSuchTagSet                 // GetBucketTagging of a bucket without tags
	NoSuchCORSConfiguration      // GetBucketCors of a bucket without CORS rules
	NoSuchLifecycleConfiguration // GetBucketLifecycleConfiguration of a bucket without rules
	CORSForbidden                // a CORS preflight that no rule of the bucket allows

	// Versioning.
	NoSuchVersion // a version id the key does not have
)

var kindNames = map[Kind]string{
	Internal: "internal", NoSuchKey: "no such key", NoSuchBucket: "no such bucket",
	BucketExists: "bucket exists", BucketNotEmpty: "bucket not empty",
	InvalidArgument: "invalid argument", Unavailable: "unavailable", SlowDown: "slow down",
	Corrupt: "corrupt", NotImplemented: "not implemented", InvalidBucketName: "invalid bucket name",
	KeyTooLong: "key too long", EntityTooLarge: "entity too large", IncompleteBody: "incomplete body",
	BadDigest: "bad digest", MalformedXML: "malformed xml", AccessDenied: "access denied",
	InvalidRange: "invalid range", PreconditionFailed: "precondition failed", MethodNotAllowed: "method not allowed",
	InvalidDigest: "invalid digest", ContentSHA256Mismatch: "content sha256 mismatch",
	SignatureDoesNotMatch: "signature does not match", InvalidAccessKeyID: "invalid access key id",
	RequestTimeTooSkewed: "request time too skewed", AuthorizationMalformed: "authorization malformed",
	NoSuchUpload: "no such upload", InvalidPart: "invalid part", InvalidPartOrder: "invalid part order",
	EntityTooSmall: "entity too small", InvalidRequest: "invalid request", MissingContentLength: "missing content length",
	MetadataTooLarge: "metadata too large", HeaderTooLarge: "header too large", ExpiredRequest: "expired request",
	RequestTimeout: "request timeout", ACLNotSupported: "acl not supported",
	InvalidPartNumber: "invalid part number", InvalidStorageClass: "invalid storage class",
	IllegalLocation: "illegal location constraint",
	InvalidTag:      "invalid tag", BadRequest: "bad request", NoSuchTagSet: "no such tag set",
	NoSuchCORSConfiguration: "no such cors configuration", NoSuchLifecycleConfiguration: "no such lifecycle configuration",
	CORSForbidden: "cors forbidden",
	NoSuchVersion: "no such version",
}

func (k Kind) String() string { return kindNames[k] }

// kindByName is kindNames the other way round, for reading a kind back from gRPC.
var kindByName = func() map[string]Kind {
	m := make(map[string]Kind, len(kindNames))
	for k, name := range kindNames {
		m[name] = k
	}
	return m
}()

// Error is a cellar error: a kind, a message safe to show to a client, and an optional cause.
type Error struct {
	Kind    Kind
	Message string // shown to clients; never contains Go internals
	Cause   error  // logged, never shown
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Message + ": " + e.Cause.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// New returns an error of kind k with a client-safe message.
func New(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of kind k with a client-safe message and a cause kept for logs.
func Wrap(k Kind, cause error, format string, args ...any) error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...), Cause: cause}
}

// KindOf returns the kind of err: the kind of the first *Error in its chain, Unavailable
// for context deadlines and gRPC Unavailable/DeadlineExceeded status errors, else Internal.
func KindOf(err error) Kind {
	if err == nil {
		return Internal
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return Unavailable
	}
	if _, ok := status.FromError(err); ok {
		var fe *Error
		if errors.As(FromGRPC(err), &fe) {
			return fe.Kind
		}
	}
	return Internal
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

type mapping struct {
	code     codes.Code
	status   int
	s3Code   string
	fallback string // client message used when the error carries none
}

var table = map[Kind]mapping{
	Internal:          {codes.Internal, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again."},
	NoSuchKey:         {codes.NotFound, http.StatusNotFound, "NoSuchKey", "The specified key does not exist."},
	NoSuchBucket:      {codes.NotFound, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist."},
	BucketExists:      {codes.AlreadyExists, http.StatusConflict, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it."},
	BucketNotEmpty:    {codes.FailedPrecondition, http.StatusConflict, "BucketNotEmpty", "The bucket you tried to delete is not empty."},
	InvalidArgument:   {codes.InvalidArgument, http.StatusBadRequest, "InvalidArgument", "Invalid Argument."},
	Unavailable:       {codes.Unavailable, http.StatusServiceUnavailable, "ServiceUnavailable", "Please reduce your request rate."},
	SlowDown:          {codes.ResourceExhausted, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate."},
	Corrupt:           {codes.DataLoss, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again."},
	NotImplemented:    {codes.Unimplemented, http.StatusNotImplemented, "NotImplemented", "A header or query you provided implies functionality that is not implemented."},
	InvalidBucketName: {codes.InvalidArgument, http.StatusBadRequest, "InvalidBucketName", "The specified bucket is not valid."},
	KeyTooLong:        {codes.InvalidArgument, http.StatusBadRequest, "KeyTooLongError", "Your key is too long."},
	EntityTooLarge:    {codes.InvalidArgument, http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size."},
	IncompleteBody:    {codes.InvalidArgument, http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header."},
	BadDigest:         {codes.InvalidArgument, http.StatusBadRequest, "BadDigest", "The Content-MD5 or checksum you specified did not match what we received."},
	MalformedXML:      {codes.InvalidArgument, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema."},
	AccessDenied:      {codes.PermissionDenied, http.StatusForbidden, "AccessDenied", "Access Denied"},

	InvalidRange:           {codes.OutOfRange, http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable"},
	PreconditionFailed:     {codes.FailedPrecondition, http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"},
	MethodNotAllowed:       {codes.InvalidArgument, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource."},
	InvalidDigest:          {codes.InvalidArgument, http.StatusBadRequest, "InvalidDigest", "The Content-MD5 or checksum you specified is not valid."},
	ContentSHA256Mismatch:  {codes.InvalidArgument, http.StatusBadRequest, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed."},
	SignatureDoesNotMatch:  {codes.PermissionDenied, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method."},
	InvalidAccessKeyID:     {codes.PermissionDenied, http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."},
	RequestTimeTooSkewed:   {codes.PermissionDenied, http.StatusForbidden, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large."},
	AuthorizationMalformed: {codes.InvalidArgument, http.StatusBadRequest, "AuthorizationHeaderMalformed", "The authorization header is malformed."},
	NoSuchUpload:           {codes.NotFound, http.StatusNotFound, "NoSuchUpload", "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed."},
	InvalidPart:            {codes.InvalidArgument, http.StatusBadRequest, "InvalidPart", "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag."},
	InvalidPartOrder:       {codes.InvalidArgument, http.StatusBadRequest, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number."},
	EntityTooSmall:         {codes.InvalidArgument, http.StatusBadRequest, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size."},
	InvalidRequest:         {codes.InvalidArgument, http.StatusBadRequest, "InvalidRequest", "Invalid Request"},
	MissingContentLength:   {codes.InvalidArgument, http.StatusLengthRequired, "MissingContentLength", "You must provide the Content-Length HTTP header."},
	MetadataTooLarge:       {codes.InvalidArgument, http.StatusBadRequest, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size."},
	HeaderTooLarge:         {codes.InvalidArgument, http.StatusBadRequest, "RequestHeaderSectionTooLarge", "Your request header section exceeds the maximum allowed size."},
	ExpiredRequest:         {codes.PermissionDenied, http.StatusForbidden, "AccessDenied", "Request has expired"},
	RequestTimeout:         {codes.InvalidArgument, http.StatusBadRequest, "RequestTimeout", "Your socket connection to the server was not read from or written to within the timeout period."},
	ACLNotSupported:        {codes.InvalidArgument, http.StatusBadRequest, "AccessControlListNotSupported", "The bucket does not allow ACLs"},
	InvalidPartNumber:      {codes.OutOfRange, http.StatusRequestedRangeNotSatisfiable, "InvalidPartNumber", "The requested partnumber is not satisfiable"},
	InvalidStorageClass:    {codes.InvalidArgument, http.StatusBadRequest, "InvalidStorageClass", "The storage class you specified is not valid."},
	IllegalLocation:        {codes.InvalidArgument, http.StatusBadRequest, "IllegalLocationConstraintException", "The location constraint is incompatible for the region specific endpoint this request was sent to."},

	InvalidTag:                   {codes.InvalidArgument, http.StatusBadRequest, "InvalidTag", "The tag provided was not a valid tag."},
	BadRequest:                   {codes.InvalidArgument, http.StatusBadRequest, "BadRequest", "Bad Request"},
	NoSuchTagSet:                 {codes.NotFound, http.StatusNotFound, "NoSuchTagSet", "The TagSet does not exist"},
	NoSuchCORSConfiguration:      {codes.NotFound, http.StatusNotFound, "NoSuchCORSConfiguration", "The CORS configuration does not exist"},
	NoSuchLifecycleConfiguration: {codes.NotFound, http.StatusNotFound, "NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist"},
	NoSuchVersion:                {codes.NotFound, http.StatusNotFound, "NoSuchVersion", "The specified version does not exist."},
	CORSForbidden:                {codes.PermissionDenied, http.StatusForbidden, "AccessForbidden", "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."},
}

// kindPrefix starts the message of a status error made by ToGRPC, which carries the
// exact kind across gRPC by its name, since several kinds share a code:
// "cellar-kind=no such bucket;The specified bucket does not exist."
const kindPrefix = "cellar-kind="

// ToGRPC converts err to a gRPC status error that FromGRPC turns back into the same kind.
func ToGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		var e *Error
		if !errors.As(err, &e) {
			return err
		}
	}
	k := KindOf(err)
	if _, known := table[k]; !known {
		k = Internal
	}
	msg := table[k].fallback
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		msg = e.Message
	}
	return status.Error(table[k].code, kindPrefix+k.String()+";"+msg)
}

// FromGRPC converts a gRPC status error back into an *Error. Transport failures
// (Unavailable, DeadlineExceeded, Canceled) become Unavailable.
func FromGRPC(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	s, ok := status.FromError(err)
	if !ok {
		return Wrap(Internal, err, "internal error")
	}
	if k, msg, ok := parseKind(s.Message()); ok {
		return &Error{Kind: k, Message: msg, Cause: err}
	}
	switch s.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted:
		return &Error{Kind: Unavailable, Message: "A cell dependency is unavailable.", Cause: err}
	case codes.ResourceExhausted:
		return &Error{Kind: SlowDown, Message: table[SlowDown].fallback, Cause: err}
	case codes.NotFound:
		return &Error{Kind: NoSuchKey, Message: table[NoSuchKey].fallback, Cause: err}
	case codes.InvalidArgument:
		return &Error{Kind: InvalidArgument, Message: s.Message(), Cause: err}
	case codes.Unimplemented:
		return &Error{Kind: NotImplemented, Message: table[NotImplemented].fallback, Cause: err}
	}
	return &Error{Kind: Internal, Message: table[Internal].fallback, Cause: err}
}

// parseKind reads the kind and client message out of a status message made by ToGRPC.
// It reports false for any other message, or one naming a kind it does not know.
func parseKind(statusMessage string) (k Kind, msg string, ok bool) {
	rest, ok := strings.CutPrefix(statusMessage, kindPrefix)
	if !ok {
		return Internal, "", false
	}
	name, msg, ok := strings.Cut(rest, ";")
	if !ok {
		return Internal, "", false
	}
	k, ok = kindByName[name]
	return k, msg, ok
}

// S3 returns the HTTP status, S3 error code and client-safe message for err.
// Internal errors never expose their cause.
func S3(err error) (httpStatus int, code, message string) {
	k := KindOf(err)
	m := table[k]
	message = m.fallback
	var e *Error
	if k != Internal && k != Corrupt && errors.As(err, &e) && e.Message != "" {
		message = e.Message
	}
	return m.status, m.s3Code, message
}
