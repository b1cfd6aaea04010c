package s3

import (
	"encoding/base64"
	"encoding/hex"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cellarsim/cellar/internal/errs"
)

const maxKeyLen = 1024 // bytes of UTF-8, as in S3

// validateBucketName applies S3's naming rules for general purpose buckets.
func validateBucketName(name string) error {
	bad := func(why string) error {
		return errs.New(errs.InvalidBucketName, "The specified bucket is not valid: %s.", why)
	}
	if len(name) < 3 || len(name) > 63 {
		return bad("a bucket name must be 3 to 63 characters long")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return bad("a bucket name may contain only lowercase letters, digits, dots and hyphens")
		}
	}
	if !isAlnum(name[0]) || !isAlnum(name[len(name)-1]) {
		return bad("a bucket name must begin and end with a letter or digit")
	}
	if strings.Contains(name, "..") {
		return bad("a bucket name must not contain two adjacent dots")
	}
	if a, err := netip.ParseAddr(name); err == nil && a.Is4() {
		return bad("a bucket name must not be an IP address")
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return bad("the prefix " + p + " is reserved")
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return bad("the suffix " + s + " is reserved")
		}
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// validateKey checks an object key: at most 1024 bytes of valid UTF-8.
func validateKey(key string) error {
	if len(key) > maxKeyLen {
		return errs.New(errs.KeyTooLong, "Your key is too long: %d bytes, the maximum is %d.", len(key), maxKeyLen)
	}
	if !utf8.ValidString(key) {
		return errs.New(errs.InvalidArgument, "Object keys must be valid UTF-8.")
	}
	return nil
}

// parseMaxKeys reads max-keys: absent means 1000, values over 1000 are lowered to 1000
// (as S3 does), and 0 is allowed (an empty listing).
func parseMaxKeys(v string, present bool) (int, error) {
	if !present {
		return 1000, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errs.New(errs.InvalidArgument, "max-keys must be an integer between 0 and 2147483647.")
	}
	return min(n, 1000), nil
}

// objectListingParams reads what every listing of objects takes: its encoding-type and
// its max-keys.
func objectListingParams(q url.Values) (listEncoder, int, error) {
	enc, err := listEncoderOf(q)
	if err != nil {
		return false, 0, err
	}
	maxKeys, err := parseMaxKeys(q.Get("max-keys"), q.Has("max-keys"))
	if err != nil {
		return false, 0, err
	}
	return enc, maxKeys, nil
}

// A continuation token is the backend's Next key, versioned and base64-encoded so that
// clients treat it as opaque and a foreign token is recognised as invalid.
const tokenPrefix = "c1:"

func encodeContinuationToken(next string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + next))
}

func decodeContinuationToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), tokenPrefix) || !utf8.Valid(b) {
		return "", errs.New(errs.InvalidArgument, "The continuation token provided is incorrect.")
	}
	return string(b[len(tokenPrefix):]), nil
}

// parseContentMD5 decodes a Content-MD5 header (base64 of the 16-byte digest).
func parseContentMD5(v string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil || len(b) != 16 {
		return nil, errs.New(errs.InvalidDigest, "The Content-MD5 you specified is not valid.")
	}
	return b, nil
}

// Values of x-amz-content-sha256 other than a hex digest.
const (
	unsignedPayload          = "UNSIGNED-PAYLOAD"
	streamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	streamingECDSA           = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
	streamingECDSATrailer    = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"
)

// contentSHA256 is what x-amz-content-sha256 says about a request body.
type contentSHA256 struct {
	streaming bool   // the body is aws-chunked
	digest    []byte // the payload's SHA-256 when the client declared it
}

func parseContentSHA256(v string) (contentSHA256, error) {
	switch v {
	case "", unsignedPayload:
		return contentSHA256{}, nil
	case streamingSigned, streamingSignedTrailer, streamingUnsignedTrailer, streamingECDSA, streamingECDSATrailer:
		return contentSHA256{streaming: true}, nil
	}
	if d, err := hex.DecodeString(v); err == nil && len(d) == 32 {
		return contentSHA256{digest: d}, nil
	}
	return contentSHA256{}, errs.New(errs.InvalidArgument, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-*, or a hex SHA-256 digest.")
}

// hasToken reports whether a comma-separated header value contains tok (case-insensitive).
func hasToken(v, tok string) bool {
	for part := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(part), tok) {
			return true
		}
	}
	return false
}

// byteRange is a satisfiable single range of an object: bytes start..start+length-1.
type byteRange struct{ start, length int64 }

// What a Range header asks of an object.
const (
	rangeNone          = iota // no Range, or one to ignore (malformed, several ranges): send it all
	rangeOK                   // a satisfiable single range
	rangeUnsatisfiable        // 416 InvalidRange
)

// parseRange interprets a Range header against an object of the given size, as S3
// does: a malformed header or a multi-range request is ignored (RFC 9110 lets a server
// ignore any Range), a range starting at or past the end is unsatisfiable, and an end
// past the end is cut to it.
func parseRange(v string, size int64) (byteRange, int) {
	var r byteRange
	spec, found := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return r, rangeNone
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return r, rangeNone
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" { // suffix range: the last n bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return r, rangeNone
		}
		if n == 0 || size == 0 {
			return r, rangeUnsatisfiable
		}
		n = min(n, size)
		return byteRange{start: size - n, length: n}, rangeOK
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return r, rangeNone
	}
	end := size - 1
	if last != "" {
		e, err := strconv.ParseInt(last, 10, 64)
		if err != nil || e < start {
			return r, rangeNone
		}
		end = min(e, size-1)
	}
	if start >= size {
		return r, rangeUnsatisfiable
	}
	return byteRange{start: start, length: end - start + 1}, rangeOK
}

// Limits on request headers, as S3 has them.
const (
	maxHeaderBytes   = 16 << 10 // all request headers together
	maxUserMetaBytes = 2 << 10  // x-amz-meta-* names and values together
)

// checkHeaderSize refuses requests whose headers together are over maxHeaderBytes.
func checkHeaderSize(r *http.Request) error {
	n := 0
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	if n > maxHeaderBytes {
		return errs.New(errs.HeaderTooLarge, "Your request header section is %d bytes; the maximum is %d.", n, maxHeaderBytes)
	}
	return nil
}

const userMetaPrefix = "X-Amz-Meta-"

// metaFromHeaders reads what a PUT, CreateMultipartUpload or CopyObject (REPLACE)
// stores with the object: the standard headers and the user metadata.
func metaFromHeaders(h http.Header) (ObjectMeta, error) {
	m := ObjectMeta{
		ContentType:        h.Get("Content-Type"),
		ContentEncoding:    storedContentEncoding(strings.Join(h.Values("Content-Encoding"), ", ")),
		CacheControl:       h.Get("Cache-Control"),
		ContentDisposition: h.Get("Content-Disposition"),
		ContentLanguage:    h.Get("Content-Language"),
		Expires:            h.Get("Expires"),
	}
	size := 0
	for k, vs := range h {
		if len(k) <= len(userMetaPrefix) || !strings.EqualFold(k[:len(userMetaPrefix)], userMetaPrefix) {
			continue
		}
		name := strings.ToLower(k[len(userMetaPrefix):])
		v := decodeMetaValue(strings.Join(vs, ","))
		if !utf8.ValidString(v) {
			return m, errs.New(errs.InvalidArgument, "The value of x-amz-meta-%s is not valid UTF-8.", clip(name, 64))
		}
		if m.UserMeta == nil {
			m.UserMeta = map[string]string{}
		}
		m.UserMeta[name] = v
		size += len(name) + len(v)
	}
	if size > maxUserMetaBytes {
		return m, errs.New(errs.MetadataTooLarge, "Your metadata headers are %d bytes; the maximum is %d.", size, maxUserMetaBytes)
	}
	tags, err := tagsFromHeader(h)
	if err != nil {
		return m, err
	}
	m.Tags = tags
	return m, nil
}

// storedContentEncoding drops aws-chunked, which describes the request body, not the
// object, from a Content-Encoding, and keeps the rest as the client wrote it:
// "deflate, gzip" stays "deflate, gzip", "aws-chunked, gzip" becomes "gzip" and
// "aws-chunked" alone nothing.
func storedContentEncoding(v string) string {
	var keep []string
	for part := range strings.SplitSeq(v, ",") {
		if !strings.EqualFold(strings.TrimSpace(part), "aws-chunked") {
			keep = append(keep, part)
		}
	}
	return strings.TrimSpace(strings.Join(keep, ","))
}

// User metadata values with characters outside US-ASCII travel as RFC 2047
// encoded-words ("=?UTF-8?B?...?="), as S3 documents: a header carries bytes, and
// clients read non-ASCII ones differently (Go's as UTF-8, Python's http.client as
// ISO-8859-1, which turns "é" into "Ã©"), so only ASCII reaches every client as it
// was stored. An encoded-word a client sends is decoded before the value is stored
// and measured; a value in UTF-8 is stored as it is.

// decodeMetaValue decodes the RFC 2047 encoded-words of a user metadata value; a
// value that does not decode (an unknown charset) is kept as it came.
func decodeMetaValue(v string) string {
	if !strings.Contains(v, "=?") {
		return v
	}
	d, err := new(mime.WordDecoder).DecodeHeader(v)
	if err != nil {
		return v
	}
	return d
}

// encodeMetaValue returns a user metadata value as it goes out in a header: as it is
// when it is US-ASCII, RFC 2047-encoded (base64 of its UTF-8) when it is not.
func encodeMetaValue(v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] >= utf8.RuneSelf {
			// The encoding letter is case-insensitive; S3 writes it in capitals.
			return strings.ReplaceAll(mime.BEncoding.Encode("UTF-8", v), "=?UTF-8?b?", "=?UTF-8?B?")
		}
	}
	return v
}
