package s3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"

	"github.com/cellarsim/cellar/internal/errs"
)

// The SigV4 verifier is checked against the AWS SDK's signer: whatever the SDK signs,
// the gateway must accept, and any change must be refused with S3's code.

var testCreds = map[string]string{testAccessKey: testSecretKey}

// signed builds a request as the SDK signs it for S3 and returns it as the server
// would read it off the wire.
func signed(t testing.TB, method, key, rawQuery string, hdr map[string]string, payloadHash string, at time.Time) *http.Request {
	t.Helper()
	target := "http://127.0.0.1:9000/bkt/" + httpbinding.EscapePath(key, false)
	if rawQuery != "" {
		target += "?" + rawQuery
	}
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Skip("not a URL:", err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}
	if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		SignHTTP(context.Background(), creds, req, payloadHash, "s3", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	return onTheWire(t, req)
}

// onTheWire serializes a client request and reads it back as a server does.
func onTheWire(t testing.TB, req *http.Request) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatal(err)
	}
	sr, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	return sr
}

func authKind(err error) string {
	if err == nil {
		return "ok"
	}
	_, code, _ := errs.S3(err)
	return code
}

func TestSigV4(t *testing.T) {
	now := time.Now().UTC()
	hdr := map[string]string{"X-Amz-Meta-Colour": "  blue   and  green ", "Content-Type": "text/plain"}
	for _, tc := range []struct {
		name   string
		mutate func(r *http.Request) *http.Request
		creds  map[string]string
		at     time.Time
		want   string
	}{
		{name: "valid", want: "ok"},
		{name: "comma without space", want: "ok", mutate: func(r *http.Request) *http.Request {
			r.Header.Set("Authorization", strings.ReplaceAll(r.Header.Get("Authorization"), ", ", ","))
			return r
		}},
		{name: "wrong secret", creds: map[string]string{testAccessKey: "other"}, want: "SignatureDoesNotMatch"},
		{name: "unknown key", creds: map[string]string{"SOMEONE": testSecretKey}, want: "InvalidAccessKeyId"},
		{name: "signed header changed", want: "SignatureDoesNotMatch", mutate: func(r *http.Request) *http.Request {
			r.Header.Set("X-Amz-Meta-Colour", "red")
			return r
		}},
		{name: "path changed", want: "SignatureDoesNotMatch", mutate: func(r *http.Request) *http.Request {
			r.URL.Path += "x"
			return r
		}},
		{name: "query added", want: "SignatureDoesNotMatch", mutate: func(r *http.Request) *http.Request {
			r.URL.RawQuery = "acl="
			return r
		}},
		{name: "too old", at: now.Add(-20 * time.Minute), want: "RequestTimeTooSkewed"},
		{name: "from the future", at: now.Add(20 * time.Minute), want: "RequestTimeTooSkewed"},
		{name: "no content sha256", want: "InvalidRequest", mutate: func(r *http.Request) *http.Request {
			r.Header.Del("X-Amz-Content-Sha256")
			r.ContentLength = 5
			return r
		}},
		{name: "no content sha256 with an empty body", want: "SignatureDoesNotMatch", mutate: func(r *http.Request) *http.Request {
			r.Header.Del("X-Amz-Content-Sha256") // signed as UNSIGNED-PAYLOAD, checked as the empty body's hash
			return r
		}},
		{name: "header and query", want: "InvalidRequest", mutate: func(r *http.Request) *http.Request {
			r.URL.RawQuery = "X-Amz-Signature=abc"
			return r
		}},
		{name: "signature version 2", want: "SignatureDoesNotMatch", mutate: func(r *http.Request) *http.Request {
			r.Header.Set("Authorization", "AWS "+testAccessKey+":c2lnbmF0dXJl")
			return r
		}},
		{name: "malformed", want: "AuthorizationHeaderMalformed", mutate: func(r *http.Request) *http.Request {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
			return r
		}},
		{name: "anonymous", want: "AccessDenied", mutate: func(r *http.Request) *http.Request {
			r.Header.Del("Authorization")
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.at
			if at.IsZero() {
				at = now
			}
			r := signed(t, "PUT", "dir/a key+with~odd(chars)*!", "", hdr, unsignedPayload, at)
			if tc.mutate != nil {
				r = tc.mutate(r)
			}
			creds := tc.creds
			if creds == nil {
				creds = testCreds
			}
			_, err := authenticate(r, creds, now)
			if got := authKind(err); got != tc.want {
				t.Errorf("got %s (%v), want %s", got, err, tc.want)
			}
		})
	}
	if a, err := authenticate(signed(t, "GET", "k", "", nil, unsignedPayload, now), nil, now); a != nil || err != nil {
		t.Errorf("with no credentials authentication is off: %v %v", a, err)
	}
}

func TestSigV4Presigned(t *testing.T) {
	now := time.Now().UTC()
	presign := func(at time.Time, expires string) *http.Request {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:9000/bkt/some%20key?response-content-type=text%2Fplain&X-Amz-Expires="+expires, nil)
		u, _, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).PresignHTTP(context.Background(),
			aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}, req, unsignedPayload, "s3", "us-east-1", at)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := http.NewRequest("GET", u, nil)
		return onTheWire(t, r)
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
		want string
	}{
		{"valid", presign(now, "300"), "ok"},
		{"expired", presign(now.Add(-time.Hour), "300"), "AccessDenied"},
		{"too long", presign(now, "604801"), "AuthorizationHeaderMalformed"},
		{"tampered", func() *http.Request {
			r := presign(now, "300")
			r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "text%2Fplain", "text%2Fhtml", 1)
			return r
		}(), "SignatureDoesNotMatch"},
	} {
		if _, err := authenticate(tc.r, testCreds, now); authKind(err) != tc.want {
			t.Errorf("%s: %s (%v), want %s", tc.name, authKind(err), err, tc.want)
		}
	}
}

// streamingPut builds a STREAMING-AWS4-HMAC-SHA256-PAYLOAD upload of chunks, signed as
// the SDKs and minio-go sign it; corrupt, if >= 0, flips a byte of that chunk after signing.
func streamingPut(t *testing.T, url string, chunks []string, corrupt int) *http.Request {
	t.Helper()
	now := time.Now().UTC()
	total := 0
	for _, c := range chunks {
		total += len(c)
	}
	req, _ := http.NewRequest("PUT", url, nil)
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(total))
	req.Header.Set("X-Amz-Content-Sha256", streamingSigned)
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}
	if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		SignHTTP(context.Background(), creds, req, streamingSigned, "s3", "us-east-1", now); err != nil {
		t.Fatal(err)
	}
	auth := req.Header.Get("Authorization")
	seed, _ := hex.DecodeString(auth[strings.LastIndex(auth, "Signature=")+len("Signature="):])
	ss := v4.NewStreamSigner(creds, "s3", "us-east-1", seed)
	var body bytes.Buffer
	for i, c := range append(chunks, "") {
		sig, err := ss.GetSignature(context.Background(), nil, []byte(c), now)
		if err != nil {
			t.Fatal(err)
		}
		if i == corrupt {
			c = "X" + c[1:]
		}
		fmt.Fprintf(&body, "%x;chunk-signature=%x\r\n%s\r\n", len(c), sig, c)
	}
	req.Body = io.NopCloser(&body)
	req.ContentLength = int64(body.Len())
	return req
}

func TestStreamingChunkSignatures(t *testing.T) {
	t.Parallel()
	ts := startServer(t, newFakeBackend(), HandlerOptions{}, false)
	ts.be.CreateBucket(context.Background(), "bkt")
	chunks := []string{strings.Repeat("a", 8192), strings.Repeat("b", 8192), "tail"}
	resp, err := ts.srv.Client().Do(streamingPut(t, ts.srv.URL+"/bkt/streamed", chunks, -1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, _ := ts.be.object("bkt", "streamed"); resp.StatusCode != 200 || string(got) != strings.Join(chunks, "") {
		t.Fatalf("signed streaming PUT: %d, stored %d bytes", resp.StatusCode, len(got))
	}
	for i := range chunks {
		resp, err := ts.srv.Client().Do(streamingPut(t, ts.srv.URL+"/bkt/forged", chunks, i))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !bytes.Contains(body, []byte("<Code>SignatureDoesNotMatch</Code>")) {
			t.Errorf("chunk %d altered: %d %s", i, resp.StatusCode, body)
		}
		if _, ok := ts.be.object("bkt", "forged"); ok {
			t.Fatalf("chunk %d altered: the object was stored", i)
		}
	}
}

// FuzzSigV4Canonicalization signs arbitrary keys, queries and header values with the
// SDK's signer: the gateway must verify every one, and refuse it once the signature is
// off by a bit. Arbitrary Authorization headers must be refused cleanly.
func FuzzSigV4Canonicalization(f *testing.F) {
	for _, s := range [][3]string{
		{"plain", "", "v"},
		{"a b/c+d~e", "prefix=a%20b&list-type=2", "  spaced   out  "},
		{"日本/ключ", "delimiter=%2F&max-keys=10", "x,y"},
		{"!*'();:@&=+$,?#[]", "uploads=&prefix=", ""},
		{"%2F%25", "a=b&a=a&A=c", "\tt"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	now := time.Now().UTC()
	f.Fuzz(func(t *testing.T, key, rawQuery, hval string) {
		if strings.ContainsAny(hval, "\r\n\x00") || strings.ContainsAny(rawQuery, "# \x00\r\n") || !validHeaderValue(hval) {
			return
		}
		r := signed(t, "GET", key, rawQuery, map[string]string{"X-Amz-Meta-Fuzz": hval}, unsignedPayload, now)
		if r.URL.Path != "/bkt/"+key {
			return // the key does not survive the URL (a "." segment, invalid UTF-8 escapes...)
		}
		if _, err := authenticate(r, testCreds, now); err != nil {
			t.Fatalf("key %q query %q header %q: %v\ncanonical request:\n%s", key, rawQuery, hval, err,
				canonicalRequest(r, strings.Split("host;x-amz-content-sha256;x-amz-date;x-amz-meta-fuzz", ";"), unsignedPayload, false, false))
		}
		auth := r.Header.Get("Authorization")
		last := auth[len(auth)-1]
		flip := byte('0')
		if last == '0' {
			flip = '1'
		}
		r.Header.Set("Authorization", auth[:len(auth)-1]+string(flip))
		if _, err := authenticate(r, testCreds, now); authKind(err) != "SignatureDoesNotMatch" {
			t.Fatalf("a changed signature: %v", err)
		}
		// Arbitrary Authorization headers: refused with a 4xx, never a panic.
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 "+key+hval)
		if _, err := authenticate(r, testCreds, now); err == nil {
			t.Fatalf("forged Authorization %q accepted", key+hval)
		} else if st, _, _ := errs.S3(err); st >= 500 {
			t.Fatalf("forged Authorization %q: %d", key+hval, st)
		}
	})
}

// validHeaderValue reports whether net/http would send v unchanged.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// TestSigV2 checks the V2 forms' refusals; their acceptance is checked with boto3's
// presigned URLs and s3cmd --signature-v2 in scripts/s3-clients-smoke.sh.
func TestSigV2(t *testing.T) {
	now := time.Now().UTC()
	sign := func(r *http.Request, date string) string { return hmacSHA1(testSecretKey, stringToSignV2(r, date)) }
	presigned := func(expires int64, key string) *http.Request {
		r, _ := http.NewRequest("GET", "http://127.0.0.1:9000/bkt/"+key+"?response-content-type=text%2Fplain", nil)
		r = onTheWire(t, r)
		sig := sign(r, fmt.Sprint(expires))
		q := r.URL.Query()
		q.Set("AWSAccessKeyId", testAccessKey)
		q.Set("Expires", fmt.Sprint(expires))
		q.Set("Signature", sig)
		r2, _ := http.NewRequest("GET", "http://127.0.0.1:9000/bkt/"+key+"?"+q.Encode(), nil)
		return onTheWire(t, r2)
	}
	header := func(at time.Time) *http.Request {
		r, _ := http.NewRequest("PUT", "http://127.0.0.1:9000/bkt/k?uploadId=u&partNumber=2", nil)
		r.Header.Set("Date", at.Format(time.RFC1123Z))
		r.Header.Set("X-Amz-Meta-A", " b ")
		r = onTheWire(t, r)
		r.Header.Set("Authorization", "AWS "+testAccessKey+":"+sign(r, r.Header.Get("Date")))
		return r
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
		want string
	}{
		{"presigned", presigned(now.Add(time.Minute).Unix(), "some%20key"), "ok"},
		{"presigned expired", presigned(now.Add(-time.Minute).Unix(), "k"), "AccessDenied"},
		{"presigned tampered", func() *http.Request {
			r := presigned(now.Add(time.Minute).Unix(), "k")
			r.RequestURI = strings.Replace(r.RequestURI, "/k?", "/j?", 1)
			return r
		}(), "SignatureDoesNotMatch"},
		{"header", header(now), "ok"},
		{"header skewed", header(now.Add(-time.Hour)), "RequestTimeTooSkewed"},
		{"header sub-resource changed", func() *http.Request {
			r := header(now)
			r.RequestURI = strings.Replace(r.RequestURI, "partNumber=2", "partNumber=3", 1)
			return r
		}(), "SignatureDoesNotMatch"},
		{"header unknown key", func() *http.Request {
			r := header(now)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), testAccessKey, "NOBODY", 1))
			return r
		}(), "InvalidAccessKeyId"},
	} {
		if _, err := authenticate(tc.r, testCreds, now); authKind(err) != tc.want {
			t.Errorf("%s: %s (%v), want %s", tc.name, authKind(err), err, tc.want)
		}
	}
}

func hmacSHA1(secret, s string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
