package s3

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cellarsim/cellar/internal/errs"
)

// AWS Signature Version 2, which older clients still send: botocore before 1.36
// presigns S3 URLs with it by default, and s3cmd signs with it when told to. Both the
// header form ("Authorization: AWS AKID:signature") and the query form
// (AWSAccessKeyId, Expires, Signature) are verified, with two limits a client of
// Version 4 does not have to think about:
//
//   - A V2 signature does not cover the body. It covers the method, Content-MD5,
//     Content-Type, the date, the x-amz-* headers and the resource; the body is
//     protected only when the client sends Content-MD5, which the gateway checks
//     against what it receives. Anyone on the path can otherwise replace the body of
//     a signed PUT.
//   - A presigned V2 URL carries its expiry as a time, not a lifetime: one that
//     expires more than a week ahead (maxPresignExpiry, as for Version 4) is refused,
//     so that a URL that leaks cannot serve for years.
//
// A gateway that must accept Version 4 only wraps its handler with AcceptV4Only
// (the topology's sigv2: false).

// v2SubResources are the query parameters a V2 signature covers.
var v2SubResources = map[string]bool{
	"acl": true, "cors": true, "delete": true, "lifecycle": true, "location": true, "logging": true,
	"notification": true, "partNumber": true, "policy": true, "requestPayment": true, "restore": true,
	"tagging": true, "torrent": true, "uploadId": true, "uploads": true, "versionId": true,
	"versioning": true, "versions": true, "website": true, "response-content-type": true,
	"response-content-language": true, "response-expires": true, "response-cache-control": true,
	"response-content-disposition": true, "response-content-encoding": true,
}

// authenticateV2 verifies a V2 signature; presigned says which form r uses.
func authenticateV2(r *http.Request, creds map[string]string, now time.Time, presigned bool) error {
	if v4Only, _ := r.Context().Value(v4OnlyKey{}).(bool); v4Only {
		return errs.New(errs.AccessDenied, "Access Denied: this gateway accepts AWS Signature Version 4 only; Version 2 is turned off.")
	}
	var accessKey, signature, date string
	if presigned {
		q := r.URL.Query()
		accessKey, signature, date = q.Get("AWSAccessKeyId"), q.Get("Signature"), q.Get("Expires")
		if accessKey == "" || signature == "" || date == "" {
			return errs.New(errs.AccessDenied, "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
		}
		exp, err := strconv.ParseInt(date, 10, 64)
		if err != nil {
			return errs.New(errs.AccessDenied, "Invalid date (should be seconds since epoch): %s", clip(date, 32))
		}
		if now.Unix() > exp {
			return errs.New(errs.ExpiredRequest, "Request has expired")
		}
		if exp-now.Unix() > int64(maxPresignExpiry/time.Second) {
			return errs.New(errs.AuthorizationMalformed, "Expires must be less than a week (in seconds) from now, that is at most %d seconds ahead.",
				int64(maxPresignExpiry/time.Second))
		}
	} else {
		cred, ok := strings.CutPrefix(r.Header.Get("Authorization"), "AWS ")
		ak, sig, found := strings.Cut(cred, ":")
		if !ok || !found || ak == "" || sig == "" {
			return authMalformed("The authorization header is malformed; expecting \"AWS AKID:signature\".")
		}
		accessKey, signature = ak, sig
		t, err := parseV2Date(r.Header.Get("X-Amz-Date"))
		if err != nil {
			t, err = parseV2Date(r.Header.Get("Date"))
		}
		if err != nil {
			return errs.New(errs.AccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
		}
		if d := now.Sub(t); d > maxClockSkew || d < -maxClockSkew {
			return errs.New(errs.RequestTimeTooSkewed, "The difference between the request time and the current time is too large.")
		}
		if r.Header.Get("X-Amz-Date") == "" {
			date = r.Header.Get("Date")
		}
	}
	secret, ok := creds[accessKey]
	if !ok {
		return errs.New(errs.InvalidAccessKeyID, "The AWS Access Key Id you provided does not exist in our records.")
	}
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(stringToSignV2(r, date)))
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return errs.New(errs.SignatureDoesNotMatch, "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	}
	return nil
}

// stringToSignV2 is the V2 string to sign of r: method, Content-MD5, Content-Type, the
// date (or expiry), the x-amz-* headers and the resource as the client sent it.
func stringToSignV2(r *http.Request, date string) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	b.WriteString(r.Header.Get("Content-Md5") + "\n")
	b.WriteString(r.Header.Get("Content-Type") + "\n")
	b.WriteString(date + "\n")
	var amz []string
	for k := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-") {
			amz = append(amz, lk)
		}
	}
	slices.Sort(amz)
	for _, k := range amz {
		vals := r.Header.Values(k)
		for i, v := range vals {
			vals[i] = strings.TrimSpace(v)
		}
		b.WriteString(k + ":" + strings.Join(vals, ",") + "\n")
	}
	path, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	if path == "" || !strings.HasPrefix(path, "/") {
		path = r.URL.EscapedPath() // an absolute-form request target
		rawQuery = r.URL.RawQuery
	}
	b.WriteString(path)
	type kv struct{ k, v string }
	var subs []kv
	for part := range strings.SplitSeq(rawQuery, "&") {
		k, v, hasValue := strings.Cut(part, "=")
		if !v2SubResources[k] {
			continue
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		if hasValue {
			subs = append(subs, kv{k, "=" + v})
		} else {
			subs = append(subs, kv{k, ""})
		}
	}
	slices.SortStableFunc(subs, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	for i, s := range subs {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(s.k + s.v)
	}
	return b.String()
}

// parseV2Date reads a date as V2 clients send it: an HTTP date, with a numeric zone
// (s3cmd) or not, or the ISO 8601 basic form.
func parseV2Date(v string) (time.Time, error) {
	if t, err := http.ParseTime(v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC1123Z, v); err == nil {
		return t, nil
	}
	return time.Parse(amzDateFormat, v)
}

// v4OnlyKey marks a request's context: its gateway accepts Signature Version 4 only.
type v4OnlyKey struct{}

// AcceptV4Only wraps an S3 handler so that it refuses AWS Signature Version 2 in
// either form, with 403 AccessDenied, and accepts Version 4 only: the topology's
// sigv2: false.
func AcceptV4Only(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), v4OnlyKey{}, true)))
	})
}
