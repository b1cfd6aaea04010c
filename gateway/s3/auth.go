package s3

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cellarsim/cellar/internal/errs"
)

// AWS Signature Version 4 (and, in authv2.go, Version 2), as S3 checks it: the Authorization header form (with ", " or
// "," between its parts) and the presigned URL form, payloads declared as a hex
// SHA-256, UNSIGNED-PAYLOAD or aws-chunked with per-chunk signatures
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]), verified by sigChunkHook.

const (
	sigAlgorithm     = "AWS4-HMAC-SHA256"
	maxClockSkew     = 15 * time.Minute
	maxPresignExpiry = 7 * 24 * time.Hour
	amzDateFormat    = "20060102T150405Z"
	emptySHA256      = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// sigAuth is a verified request signature: what verifying its aws-chunked body needs.
type sigAuth struct {
	accessKey string
	amzDate   string // the request time, as signed
	scope     string // date/region/service/aws4_request
	key       []byte // the signing key of the scope
	seed      string // the request's signature, which the first chunk's chains to
}

// sigRequest is what an Authorization header or a presigned query says.
type sigRequest struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
	amzDate                          string
	t                                time.Time
	presigned                        bool
	expires                          time.Duration
}

func authMalformed(format string, args ...any) error {
	return errs.New(errs.AuthorizationMalformed, format, args...)
}

// parseCredential splits "AKID/20250101/us-east-1/s3/aws4_request".
func parseCredential(sr *sigRequest, cred string) error {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[0] == "" || parts[4] != "aws4_request" {
		return authMalformed("The authorization credential is malformed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
	}
	if _, err := time.Parse("20060102", parts[1]); err != nil {
		return authMalformed("The authorization credential has an invalid date.")
	}
	if parts[3] != "s3" {
		return authMalformed("The authorization credential names service %q; expecting \"s3\".", clip(parts[3], 32))
	}
	sr.accessKey, sr.date, sr.region, sr.service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

func parseSignedHeaders(v string) ([]string, error) {
	if v == "" {
		return nil, authMalformed("The list of signed headers is empty.")
	}
	hs := strings.Split(v, ";")
	for _, h := range hs {
		if h == "" || h != strings.ToLower(h) {
			return nil, authMalformed("The list of signed headers is malformed.")
		}
	}
	return hs, nil
}

// parseAuthorization reads an Authorization header of the SigV4 form:
//
//	AWS4-HMAC-SHA256 Credential=AKID/date/region/s3/aws4_request, SignedHeaders=a;b, Signature=hex
func parseAuthorization(v string, hdr http.Header) (sigRequest, error) {
	var sr sigRequest
	rest, ok := strings.CutPrefix(v, sigAlgorithm+" ")
	if !ok {
		return sr, authMalformed("The authorization header uses an unsupported algorithm; expecting %s.", sigAlgorithm)
	}
	seen := map[string]bool{}
	for part := range strings.SplitSeq(rest, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || seen[name] {
			return sr, authMalformed("The authorization header is malformed.")
		}
		seen[name] = true
		switch name {
		case "Credential":
			if err := parseCredential(&sr, value); err != nil {
				return sr, err
			}
		case "SignedHeaders":
			var err error
			if sr.signedHeaders, err = parseSignedHeaders(value); err != nil {
				return sr, err
			}
		case "Signature":
			sr.signature = value
		default:
			return sr, authMalformed("The authorization header has an unknown part %q.", clip(name, 32))
		}
	}
	if sr.accessKey == "" || sr.signedHeaders == nil || sr.signature == "" {
		return sr, authMalformed("The authorization header needs Credential, SignedHeaders and Signature.")
	}
	sr.amzDate = hdr.Get("X-Amz-Date")
	if sr.amzDate == "" {
		// The Date header is allowed instead, in HTTP form.
		d, err := http.ParseTime(hdr.Get("Date"))
		if err != nil {
			return sr, errs.New(errs.AccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
		}
		sr.t = d.UTC()
		sr.amzDate = hdr.Get("Date")
	} else {
		t, err := time.Parse(amzDateFormat, sr.amzDate)
		if err != nil {
			return sr, errs.New(errs.AccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
		}
		sr.t = t
	}
	return sr, nil
}

// parsePresigned reads the X-Amz-* parameters of a presigned URL.
func parsePresigned(q url.Values) (sigRequest, error) {
	sr := sigRequest{presigned: true}
	if q.Get("X-Amz-Algorithm") != sigAlgorithm {
		return sr, errs.New(errs.AuthorizationMalformed, "X-Amz-Algorithm only supports \"%s\".", sigAlgorithm)
	}
	for _, p := range []string{"X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Expires"} {
		if q.Get(p) == "" {
			return sr, errs.New(errs.AuthorizationMalformed, "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
	}
	if err := parseCredential(&sr, q.Get("X-Amz-Credential")); err != nil {
		return sr, err
	}
	var err error
	if sr.signedHeaders, err = parseSignedHeaders(q.Get("X-Amz-SignedHeaders")); err != nil {
		return sr, err
	}
	sr.signature = q.Get("X-Amz-Signature")
	sr.amzDate = q.Get("X-Amz-Date")
	if sr.t, err = time.Parse(amzDateFormat, sr.amzDate); err != nil {
		return sr, errs.New(errs.AuthorizationMalformed, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\".")
	}
	secs, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || secs < 0 {
		return sr, errs.New(errs.AuthorizationMalformed, "X-Amz-Expires should be a number of seconds.")
	}
	if time.Duration(secs)*time.Second > maxPresignExpiry {
		return sr, errs.New(errs.AuthorizationMalformed, "X-Amz-Expires must be less than a week (in seconds) that is 604800.")
	}
	sr.expires = time.Duration(secs) * time.Second
	return sr, nil
}

// authenticate verifies the request's SigV4 signature against creds. It returns
// (nil, nil) when creds is empty: authentication is off.
func authenticate(r *http.Request, creds map[string]string, now time.Time) (*sigAuth, error) {
	if len(creds) == 0 {
		return nil, nil
	}
	var (
		sr  sigRequest
		err error
	)
	q := r.URL.Query()
	authz := r.Header.Get("Authorization")
	switch {
	case authz != "" && q.Has("X-Amz-Signature"):
		return nil, errs.New(errs.InvalidRequest, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.")
	case strings.HasPrefix(authz, "AWS "):
		return nil, authenticateV2(r, creds, now, false)
	case authz != "":
		sr, err = parseAuthorization(authz, r.Header)
	case q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential"):
		sr, err = parsePresigned(q)
	case q.Has("AWSAccessKeyId") || q.Has("Signature"):
		return nil, authenticateV2(r, creds, now, true)
	default:
		return nil, errs.New(errs.AccessDenied, "Access Denied: this gateway requires requests signed with AWS Signature Version 4.")
	}
	if err != nil {
		return nil, err
	}
	secret, ok := creds[sr.accessKey]
	if !ok {
		return nil, errs.New(errs.InvalidAccessKeyID, "The AWS Access Key Id you provided does not exist in our records.")
	}
	if sr.presigned {
		if now.Before(sr.t.Add(-maxClockSkew)) {
			return nil, errs.New(errs.AccessDenied, "Request is not valid yet")
		}
		if now.After(sr.t.Add(sr.expires)) {
			return nil, errs.New(errs.ExpiredRequest, "Request has expired")
		}
	} else if d := now.Sub(sr.t); d > maxClockSkew || d < -maxClockSkew {
		return nil, errs.New(errs.RequestTimeTooSkewed, "The difference between the request time and the current time is too large.")
	}
	if !strings.HasPrefix(sr.t.UTC().Format(amzDateFormat), sr.date) {
		return nil, errs.New(errs.SignatureDoesNotMatch, "The date of the credential scope does not match the request date.")
	}
	if !slices.Contains(sr.signedHeaders, "host") {
		return nil, errs.New(errs.AccessDenied, "The host header must be signed.")
	}

	payload := r.Header.Get("X-Amz-Content-Sha256")
	if sr.presigned {
		payload = unsignedPayload
		if v := q.Get("X-Amz-Content-Sha256"); v != "" {
			payload = v
		}
	} else if payload == "" {
		// Some signers (curl --aws-sigv4) sign the hash of the payload without sending
		// it. For an empty body that hash is known; any other body would have to be
		// read before the signature could be checked.
		if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
			return nil, errs.New(errs.InvalidRequest, "Missing required header for this request: x-amz-content-sha256")
		}
		payload = emptySHA256
	}
	scope := sr.date + "/" + sr.region + "/" + sr.service + "/aws4_request"
	key := signingKey(secret, sr.date, sr.region, sr.service)
	sign := func(allSpace bool) string {
		canonical := canonicalRequest(r, sr.signedHeaders, payload, sr.presigned, allSpace)
		sts := sigAlgorithm + "\n" + sr.amzDate + "\n" + scope + "\n" + hexSHA256([]byte(canonical))
		return hex.EncodeToString(hmacSHA256(key, sts))
	}
	got := []byte(strings.ToLower(sr.signature))
	want := sign(false)
	if !hmac.Equal([]byte(want), got) {
		// Clients disagree on tabs inside header values: the Go and Java SDKs keep
		// them, botocore (aws CLI, boto3) folds them with the spaces.
		if !signedHeadersHaveTab(r, sr.signedHeaders) || !hmac.Equal([]byte(sign(true)), got) {
			return nil, errs.New(errs.SignatureDoesNotMatch, "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
		}
		want = string(got)
	}
	return &sigAuth{accessKey: sr.accessKey, amzDate: sr.amzDate, scope: scope, key: key, seed: want}, nil
}

func signedHeadersHaveTab(r *http.Request, signed []string) bool {
	for _, h := range signed {
		for _, v := range r.Header.Values(h) {
			if strings.IndexByte(v, '\t') >= 0 {
				return true
			}
		}
	}
	return false
}

// canonicalRequest builds the SigV4 canonical request of r. Header values have their
// runs of spaces folded into one, and with allSpace their tabs too.
func canonicalRequest(r *http.Request, signed []string, payloadHash string, presigned, allSpace bool) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL.Path))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery, presigned))
	b.WriteByte('\n')
	for _, h := range signed {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(r, h, allSpace))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// canonicalURI is the decoded path encoded as SigV4 wants for S3: once, slashes kept.
func canonicalURI(path string) string {
	if path == "" {
		return "/"
	}
	return uriEncode(path, false)
}

// canonicalQuery sorts the query's parameters by name, then value, each encoded.
// The signature itself is left out of a presigned request's.
func canonicalQuery(raw string, presigned bool) string {
	if raw == "" {
		return ""
	}
	type kv struct{ k, v string }
	var pairs []kv
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			dk = k
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			dv = v
		}
		if presigned && dk == "X-Amz-Signature" {
			continue
		}
		pairs = append(pairs, kv{uriEncode(dk, true), uriEncode(dv, true)})
	}
	slices.SortFunc(pairs, func(a, b kv) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// canonicalHeaderValue is the value of header h as signed: its values, each trimmed
// with inner runs of spaces collapsed, joined by commas. net/http moves Host,
// Content-Length and Transfer-Encoding out of the header map; they are put back here.
func canonicalHeaderValue(r *http.Request, h string, allSpace bool) string {
	var vals []string
	switch h {
	case "host":
		vals = []string{r.Host}
	case "content-length":
		if v := r.Header.Values("Content-Length"); len(v) > 0 {
			vals = v
		} else if r.ContentLength >= 0 {
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		vals = r.TransferEncoding
	default:
		vals = r.Header.Values(h)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		if allSpace {
			out[i] = strings.Join(strings.Fields(v), " ")
		} else {
			out[i] = foldSpaces(v)
		}
	}
	return strings.Join(out, ",")
}

// foldSpaces trims spaces at both ends of v and folds each run of spaces inside it
// into one, as SigV4's canonical headers want.
func foldSpaces(v string) string {
	v = strings.Trim(v, " ")
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' && i > 0 && v[i-1] == ' ' {
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// uriEncode percent-encodes every byte but the unreserved characters (and '/', unless
// encodeSlash), as SigV4 specifies.
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || c == '/' && !encodeSlash {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

// sigChunkHook verifies the chunk signatures of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD
// body: each chunk's signature signs its data and chains to the previous signature,
// starting from the request's; with -TRAILER the trailers are signed the same way.
type sigChunkHook struct {
	auth      *sigAuth
	prev      string
	sig       string
	h         hash.Hash
	trailered bool
}

func newSigChunkHook(a *sigAuth, trailered bool) *sigChunkHook {
	return &sigChunkHook{auth: a, prev: a.seed, h: sha256.New(), trailered: trailered}
}

func (c *sigChunkHook) beginChunk(size int64, signature string) error {
	if signature == "" {
		return errs.New(errs.SignatureDoesNotMatch, "A chunk of the aws-chunked body has no chunk-signature.")
	}
	c.sig = signature
	c.h.Reset()
	return nil
}

func (c *sigChunkHook) chunkData(p []byte) { c.h.Write(p) }

func (c *sigChunkHook) endChunk() error {
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.auth.amzDate + "\n" + c.auth.scope + "\n" + c.prev + "\n" +
		emptySHA256 + "\n" + hex.EncodeToString(c.h.Sum(nil))
	want := hex.EncodeToString(hmacSHA256(c.auth.key, sts))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(c.sig))) {
		return errs.New(errs.SignatureDoesNotMatch, "The chunk signature we calculated does not match the signature you provided.")
	}
	c.prev = want
	return nil
}

func (c *sigChunkHook) trailers(h http.Header, signature string) error {
	if !c.trailered {
		return nil
	}
	if signature == "" {
		return errs.New(errs.SignatureDoesNotMatch, "The trailers of the aws-chunked body are not signed.")
	}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, k := range names {
		for _, v := range h[k] {
			b.WriteString(strings.ToLower(k) + ":" + v + "\n")
		}
	}
	sts := "AWS4-HMAC-SHA256-TRAILER\n" + c.auth.amzDate + "\n" + c.auth.scope + "\n" + c.prev + "\n" + hexSHA256([]byte(b.String()))
	want := hex.EncodeToString(hmacSHA256(c.auth.key, sts))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(signature))) {
		return errs.New(errs.SignatureDoesNotMatch, "The trailer signature we calculated does not match the signature you provided.")
	}
	return nil
}

// RequestAccessKey returns the access key a request says it is signed with, without
// checking the signature: from the Authorization header (Signature Version 4 or 2) or
// the presigned query (X-Amz-Credential or AWSAccessKeyId). "" when it names none.
func RequestAccessKey(r *http.Request) string {
	if v := r.Header.Get("Authorization"); v != "" {
		if rest, ok := strings.CutPrefix(v, sigAlgorithm+" "); ok {
			_, cred, ok := strings.Cut(rest, "Credential=")
			if !ok {
				return ""
			}
			ak, _, _ := strings.Cut(cred, "/")
			return ak
		}
		if rest, ok := strings.CutPrefix(v, "AWS "); ok {
			ak, _, _ := strings.Cut(rest, ":")
			return ak
		}
		return ""
	}
	q := r.URL.Query()
	if cred := q.Get("X-Amz-Credential"); cred != "" {
		ak, _, _ := strings.Cut(cred, "/")
		return ak
	}
	return q.Get("AWSAccessKeyId")
}
