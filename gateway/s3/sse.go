package s3

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/cellarsim/cellar/internal/errs"
)

// Server-side encryption. cellar stores object bytes as they arrive and has no keys,
// so it implements none of S3's three kinds: with S3-managed keys (SSE-S3), with KMS
// keys (SSE-KMS, DSSE-KMS) or with keys the client sends on every request (SSE-C).
// A request that asks for any of them, in a header or in the query of a presigned
// URL, is refused with NotImplemented before anything is read or stored: served
// without its encryption, it would leave the client believing that its object is
// encrypted, or that only the holder of its key can read it. The bucket encryption
// sub-resource (?encryption) is refused the same way; see getBucketEncryption.

// The prefixes of the request headers of server-side encryption.
const (
	sseHeaderPrefix           = "x-amz-server-side-encryption"             // -aws-kms-key-id, -context, -bucket-key-enabled, -customer-*
	sseCopySourceHeaderPrefix = "x-amz-copy-source-server-side-encryption" // -customer-* of the copy source
)

// refuseEncryption returns NotImplemented, naming the feature, when a request asks
// for server-side encryption.
func refuseEncryption(h http.Header, q url.Values) error {
	name, value := findEncryptionParameter(h, q)
	if name == "" {
		return nil
	}
	return errs.New(errs.NotImplemented, "cellar does not implement %s: it stores objects unencrypted, so it refuses %s rather than ignore it.",
		encryptionKind(name, value), name)
}

// findEncryptionParameter returns the server-side encryption header or query
// parameter of a request (the first by name, when there are several), in lowercase,
// and its value; "" when there is none.
func findEncryptionParameter(h http.Header, q url.Values) (name, value string) {
	for _, params := range []map[string][]string{h, q} {
		for k, vs := range params {
			k = strings.ToLower(k)
			if !strings.HasPrefix(k, sseHeaderPrefix) && !strings.HasPrefix(k, sseCopySourceHeaderPrefix) {
				continue
			}
			if name == "" || k < name {
				name, value = k, strings.Join(vs, ",")
			}
		}
	}
	return name, value
}

// encryptionKind names the kind of server-side encryption a parameter asks for.
func encryptionKind(name, value string) string {
	switch {
	case strings.Contains(name, "-customer-"):
		return "server-side encryption with customer-provided keys (SSE-C)"
	case strings.HasSuffix(name, "-bucket-key-enabled"):
		return "S3 Bucket Keys for server-side encryption with KMS keys (SSE-KMS)"
	case strings.HasSuffix(name, "-aws-kms-key-id"), strings.HasSuffix(name, "-context"),
		strings.HasPrefix(strings.ToLower(strings.TrimSpace(value)), "aws:kms"):
		return "server-side encryption with KMS keys (SSE-KMS)"
	case strings.EqualFold(strings.TrimSpace(value), "AES256"):
		return "server-side encryption with S3-managed keys (SSE-S3)"
	}
	return "server-side encryption"
}

// bucketEncryption answers PutBucketEncryption, GetBucketEncryption and
// DeleteBucketEncryption with NotImplemented, GetBucketEncryption included. S3 used
// to answer it, for a bucket without default encryption, with 404
// ServerSideEncryptionConfigurationNotFoundError; but that answer means "this bucket
// has no configuration yet" of a feature the service has, and that a
// PutBucketEncryption would add (S3 no longer gives it at all, since it encrypts every
// bucket by default). cellar has no encryption to configure, and says so as it does
// of every feature it lacks.
func bucketEncryption(x *exchange) error {
	return errs.New(errs.NotImplemented, "cellar does not implement bucket encryption (%s): it stores objects unencrypted and has no encryption configuration to set, read or delete.",
		x.req.op)
}
