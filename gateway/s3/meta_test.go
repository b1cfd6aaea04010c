package s3

import (
	"mime"
	"strings"
	"testing"
)

func TestStoredContentEncoding(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                           "",
		"gzip":                       "gzip",
		"deflate, gzip":              "deflate, gzip",
		"deflate,gzip":               "deflate,gzip",
		"aws-chunked":                "",
		"aws-chunked, gzip":          "gzip",
		"gzip,aws-chunked":           "gzip",
		"deflate, AWS-Chunked, gzip": "deflate, gzip",
		"x-custom;q=1 , br":          "x-custom;q=1 , br",
	} {
		if got := storedContentEncoding(in); got != want {
			t.Errorf("storedContentEncoding(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContentEncodingKeptAsSent(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, HandlerOptions{})
	payload := "hello"
	chunked := "5\r\n" + payload + "\r\n0\r\n\r\n"
	for _, tc := range []struct {
		name, encoding, body, want string
		aws                        bool // the body is aws-chunked
	}{
		{"plain list", "deflate, gzip", payload, "deflate, gzip", false},
		{"aws-chunked first", "aws-chunked, deflate, gzip", chunked, "deflate, gzip", true},
		{"aws-chunked last", "gzip,aws-chunked", chunked, "gzip", true},
		{"aws-chunked alone", "aws-chunked", chunked, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Content-Encoding": tc.encoding}
			if tc.aws {
				hdr["x-amz-content-sha256"] = streamingUnsignedTrailer
				hdr["x-amz-decoded-content-length"] = "5"
			}
			if r := do(t, ts, "PUT", "/bkt/enc", strings.NewReader(tc.body), hdr); r.status != 200 {
				t.Fatalf("PUT: %d %s", r.status, r.body)
			}
			// Asking for an encoding stops net/http from decoding a "gzip" body itself.
			r := do(t, ts, "GET", "/bkt/enc", nil, map[string]string{"Accept-Encoding": "identity"})
			if r.status != 200 || string(r.body) != payload {
				t.Fatalf("GET: %d %q", r.status, r.body)
			}
			if got, ok := r.header["Content-Encoding"]; tc.want == "" && ok || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
				t.Errorf("Content-Encoding %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUserMetadataNonASCII(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, HandlerOptions{})
	for _, tc := range []struct {
		name, sent, stored, returned string
	}{
		{"ASCII", "Hello World", "Hello World", "Hello World"},
		{"UTF-8", "Hello Worldé", "Hello Worldé", "=?UTF-8?B?SGVsbG8gV29ybGTDqQ==?="},
		{"RFC 2047 base64", "=?UTF-8?B?SGVsbG8gV29ybGTDqQ==?=", "Hello Worldé", "=?UTF-8?B?SGVsbG8gV29ybGTDqQ==?="},
		{"RFC 2047 quoted-printable", "=?utf-8?q?caf=C3=A9?=", "café", "=?UTF-8?B?Y2Fmw6k=?="},
		{"RFC 2047 ISO-8859-1", "=?ISO-8859-1?Q?caf=E9?=", "café", "=?UTF-8?B?Y2Fmw6k=?="},
		{"unknown charset kept", "=?x-unknown?Q?abc?=", "=?x-unknown?Q?abc?=", "=?x-unknown?Q?abc?="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := do(t, ts, "PUT", "/bkt/meta", strings.NewReader("x"), map[string]string{"x-amz-meta-note": tc.sent}); r.status != 200 {
				t.Fatalf("PUT: %d %s", r.status, r.body)
			}
			_, info, err := ts.be.HeadObject(t.Context(), "bkt", "meta")
			if err != nil || info.UserMeta["note"] != tc.stored {
				t.Fatalf("stored %q (%v), want %q", info.UserMeta["note"], err, tc.stored)
			}
			for _, method := range []string{"GET", "HEAD"} {
				r := do(t, ts, method, "/bkt/meta", nil, nil)
				if got := r.header.Get("x-amz-meta-note"); got != tc.returned {
					t.Errorf("%s: x-amz-meta-note %q, want %q", method, got, tc.returned)
				}
				if d, err := new(mime.WordDecoder).DecodeHeader(r.header.Get("x-amz-meta-note")); tc.stored != tc.sent && (err != nil || d != tc.stored) {
					t.Errorf("%s: the returned value decodes to %q (%v), want %q", method, d, err, tc.stored)
				}
			}
		})
	}
	// The 2 KB limit counts the decoded value.
	long := strings.Repeat("é", 1100) // 2200 bytes of UTF-8
	r := do(t, ts, "PUT", "/bkt/big", strings.NewReader("x"), map[string]string{"x-amz-meta-m": mime.BEncoding.Encode("UTF-8", long)})
	wantError(t, r, 400, "MetadataTooLarge", cellNone)
}
