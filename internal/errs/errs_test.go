package errs

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestKindRoundTrip sends every kind across gRPC and renders it for an S3 client: the
// kind that comes back is the kind that was sent, carried by its name, and the client
// gets S3's error code and HTTP status for it.
func TestKindRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		kind   Kind
		code   codes.Code
		s3Code string
		status int
	}{
		{Internal, codes.Internal, "InternalError", http.StatusInternalServerError},
		{NoSuchKey, codes.NotFound, "NoSuchKey", http.StatusNotFound},
		{NoSuchBucket, codes.NotFound, "NoSuchBucket", http.StatusNotFound},
		{BucketExists, codes.AlreadyExists, "BucketAlreadyOwnedByYou", http.StatusConflict},
		{BucketNotEmpty, codes.FailedPrecondition, "BucketNotEmpty", http.StatusConflict},
		{InvalidArgument, codes.InvalidArgument, "InvalidArgument", http.StatusBadRequest},
		{Unavailable, codes.Unavailable, "ServiceUnavailable", http.StatusServiceUnavailable},
		{SlowDown, codes.ResourceExhausted, "SlowDown", http.StatusServiceUnavailable},
		{Corrupt, codes.DataLoss, "InternalError", http.StatusInternalServerError},
		{NotImplemented, codes.Unimplemented, "NotImplemented", http.StatusNotImplemented},
		{InvalidBucketName, codes.InvalidArgument, "InvalidBucketName", http.StatusBadRequest},
		{KeyTooLong, codes.InvalidArgument, "KeyTooLongError", http.StatusBadRequest},
		{EntityTooLarge, codes.InvalidArgument, "EntityTooLarge", http.StatusBadRequest},
		{IncompleteBody, codes.InvalidArgument, "IncompleteBody", http.StatusBadRequest},
		{BadDigest, codes.InvalidArgument, "BadDigest", http.StatusBadRequest},
		{MalformedXML, codes.InvalidArgument, "MalformedXML", http.StatusBadRequest},
		{AccessDenied, codes.PermissionDenied, "AccessDenied", http.StatusForbidden},
		{InvalidRange, codes.OutOfRange, "InvalidRange", http.StatusRequestedRangeNotSatisfiable},
		{PreconditionFailed, codes.FailedPrecondition, "PreconditionFailed", http.StatusPreconditionFailed},
		{MethodNotAllowed, codes.InvalidArgument, "MethodNotAllowed", http.StatusMethodNotAllowed},
		{InvalidDigest, codes.InvalidArgument, "InvalidDigest", http.StatusBadRequest},
		{ContentSHA256Mismatch, codes.InvalidArgument, "XAmzContentSHA256Mismatch", http.StatusBadRequest},
		{SignatureDoesNotMatch, codes.PermissionDenied, "SignatureDoesNotMatch", http.StatusForbidden},
		{InvalidAccessKeyID, codes.PermissionDenied, "InvalidAccessKeyId", http.StatusForbidden},
		{RequestTimeTooSkewed, codes.PermissionDenied, "RequestTimeTooSkewed", http.StatusForbidden},
		{AuthorizationMalformed, codes.InvalidArgument, "AuthorizationHeaderMalformed", http.StatusBadRequest},
		{NoSuchUpload, codes.NotFound, "NoSuchUpload", http.StatusNotFound},
		{InvalidPart, codes.InvalidArgument, "InvalidPart", http.StatusBadRequest},
		{InvalidPartOrder, codes.InvalidArgument, "InvalidPartOrder", http.StatusBadRequest},
		{EntityTooSmall, codes.InvalidArgument, "EntityTooSmall", http.StatusBadRequest},
		{InvalidRequest, codes.InvalidArgument, "InvalidRequest", http.StatusBadRequest},
		{MissingContentLength, codes.InvalidArgument, "MissingContentLength", http.StatusLengthRequired},
		{MetadataTooLarge, codes.InvalidArgument, "MetadataTooLarge", http.StatusBadRequest},
		{HeaderTooLarge, codes.InvalidArgument, "RequestHeaderSectionTooLarge", http.StatusBadRequest},
		{ExpiredRequest, codes.PermissionDenied, "AccessDenied", http.StatusForbidden},
		{InvalidPartNumber, codes.OutOfRange, "InvalidPartNumber", http.StatusRequestedRangeNotSatisfiable},
		{InvalidStorageClass, codes.InvalidArgument, "InvalidStorageClass", http.StatusBadRequest},
		{IllegalLocation, codes.InvalidArgument, "IllegalLocationConstraintException", http.StatusBadRequest},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			const msg = "a message for the client; with a semicolon"
			sent := New(tc.kind, msg)

			wire := ToGRPC(sent)
			st, ok := status.FromError(wire)
			if !ok {
				t.Fatalf("ToGRPC gave %T, not a status error", wire)
			}
			if st.Code() != tc.code {
				t.Errorf("gRPC code %v, want %v", st.Code(), tc.code)
			}
			if want := kindPrefix + tc.kind.String() + ";"; !strings.HasPrefix(st.Message(), want) {
				t.Errorf("status message %q does not carry the kind by name (%q)", st.Message(), want)
			}

			back := FromGRPC(wire)
			if got := KindOf(back); got != tc.kind {
				t.Fatalf("round trip gave kind %q, want %q", got, tc.kind)
			}
			var e *Error
			if !errors.As(back, &e) || e.Message != msg {
				t.Errorf("round trip gave message %q, want %q", e.Message, msg)
			}

			httpStatus, s3Code, s3Msg := S3(back)
			if s3Code != tc.s3Code || httpStatus != tc.status {
				t.Errorf("S3 gave %d %s, want %d %s", httpStatus, s3Code, tc.status, tc.s3Code)
			}
			hidden := tc.kind == Internal || tc.kind == Corrupt
			if shown := s3Msg == msg; shown == hidden {
				t.Errorf("S3 message %q: the client message shown = %v, want %v", s3Msg, shown, !hidden)
			}
		})
	}
}

// TestEveryKindIsMapped: every kind has a name that can be carried across gRPC and a
// mapping to gRPC and S3, so that a kind added without them fails here.
func TestEveryKindIsMapped(t *testing.T) {
	seen := map[string]Kind{}
	for k, name := range kindNames {
		if name == "" || strings.Contains(name, ";") {
			t.Errorf("kind %d has the name %q, which cannot be carried across gRPC", int(k), name)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("kinds %d and %d share the name %q", int(k), int(other), name)
		}
		seen[name] = k
		if _, ok := table[k]; !ok {
			t.Errorf("kind %q has no gRPC and S3 mapping", name)
		}
	}
	for k := range table {
		if _, ok := kindNames[k]; !ok {
			t.Errorf("kind %d is mapped but has no name", int(k))
		}
	}
	// Kinds are numbered from zero without gaps: the next number after the last named
	// kind has no name.
	for k := Internal; k < Kind(len(kindNames)); k++ {
		if k.String() == "" {
			t.Errorf("kind %d has no name", int(k))
		}
	}
}

// TestFromGRPCWithoutKind: a status error that does not carry a kind (from gRPC itself,
// or naming a kind this build does not know) is classified by its code.
func TestFromGRPCWithoutKind(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Kind
	}{
		{"transport unavailable", status.Error(codes.Unavailable, "connection refused"), Unavailable},
		{"deadline exceeded", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), Unavailable},
		{"resource exhausted", status.Error(codes.ResourceExhausted, "busy"), SlowDown},
		{"not found", status.Error(codes.NotFound, "gone"), NoSuchKey},
		{"unknown kind name", status.Error(codes.NotFound, kindPrefix+"no such thing;gone"), NoSuchKey},
		{"kind by number", status.Error(codes.FailedPrecondition, kindPrefix+"4;not empty"), Internal},
		{"unimplemented", status.Error(codes.Unimplemented, "unknown method"), NotImplemented},
		{"other code", status.Error(codes.Unknown, "boom"), Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := KindOf(FromGRPC(tc.err)); got != tc.want {
				t.Errorf("kind %q, want %q", got, tc.want)
			}
		})
	}
}
