package s3

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/cellarsim/cellar/internal/errs"
)

// recordingHook records the hook calls, for checking the order a verifier would see.
type recordingHook struct {
	calls []string
	data  bytes.Buffer
	fail  string // fail the call with this name
}

func (h *recordingHook) call(s string) error {
	h.calls = append(h.calls, s)
	if h.fail != "" && strings.HasPrefix(s, h.fail) {
		return errs.New(errs.AccessDenied, "hook refused %s", s)
	}
	return nil
}

func (h *recordingHook) beginChunk(size int64, sig string) error {
	return h.call(fmt.Sprintf("begin %d %s", size, sig))
}
func (h *recordingHook) chunkData(p []byte) { h.data.Write(p) }
func (h *recordingHook) endChunk() error    { return h.call("end") }
func (h *recordingHook) trailers(t http.Header, sig string) error {
	return h.call(fmt.Sprintf("trailers %d %s", len(t), sig))
}

func sig(c byte) string { return strings.Repeat(string(c), 64) }

func TestChunkedDecoder(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    string
		trailer map[string]string
		calls   []string
		errKind errs.Kind // meaningful when wantErr
		wantErr bool
	}{
		{
			name:  "signed, one chunk",
			in:    "b;chunk-signature=" + sig('a') + "\r\nhello world\r\n0;chunk-signature=" + sig('b') + "\r\n\r\n",
			want:  "hello world",
			calls: []string{"begin 11 " + sig('a'), "end", "begin 0 " + sig('b'), "end", "trailers 0 "},
		},
		{
			name: "signed, several chunks",
			in: "5;chunk-signature=" + sig('1') + "\r\nhello\r\n1;chunk-signature=" + sig('2') + "\r\n \r\n" +
				"5;chunk-signature=" + sig('3') + "\r\nworld\r\n0;chunk-signature=" + sig('4') + "\r\n\r\n",
			want: "hello world",
			calls: []string{"begin 5 " + sig('1'), "end", "begin 1 " + sig('2'), "end", "begin 5 " + sig('3'), "end",
				"begin 0 " + sig('4'), "end", "trailers 0 "},
		},
		{
			name:    "unsigned with trailer (as aws-sdk-go-v2 sends)",
			in:      "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n",
			want:    "hello world",
			trailer: map[string]string{"x-amz-checksum-crc32": "DUoRhQ=="},
			calls:   []string{"begin 11 ", "end", "begin 0 ", "end", "trailers 1 "},
		},
		{
			name: "signed with trailers and trailer signature",
			in: "3;chunk-signature=" + sig('c') + "\r\nabc\r\n0;chunk-signature=" + sig('d') + "\r\n" +
				"x-amz-checksum-sha256 : ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=\r\n" +
				"X-Amz-Checksum-Crc32c:Ai8GRQ==\r\nx-amz-trailer-signature:" + sig('e') + "\r\n\r\n",
			want: "abc",
			trailer: map[string]string{"x-amz-checksum-sha256": "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
				"x-amz-checksum-crc32c": "Ai8GRQ=="},
			calls: []string{"begin 3 " + sig('c'), "end", "begin 0 " + sig('d'), "end", "trailers 2 " + sig('e')},
		},
		{name: "empty payload", in: "0\r\n\r\n", want: "", calls: []string{"begin 0 ", "end", "trailers 0 "}},
		{name: "no CRLF after the final chunk", in: "2\r\nhi\r\n0\r\n", want: "hi"},
		{name: "upper-case hex and unknown extension", in: "A;foo=bar\r\n0123456789\r\n0\r\n\r\n", want: "0123456789"},
		{name: "big chunk", in: fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", 200000, strings.Repeat("z", 200000)), want: strings.Repeat("z", 200000)},

		{name: "chunk longer than declared", in: "3\r\nhello\r\n0\r\n\r\n", wantErr: true, errKind: errs.InvalidArgument},
		{name: "size not hex", in: "zz\r\nhello\r\n0\r\n\r\n", wantErr: true, errKind: errs.InvalidArgument},
		{name: "negative size", in: "-5\r\nhello\r\n0\r\n\r\n", wantErr: true, errKind: errs.InvalidArgument},
		{name: "size missing", in: ";chunk-signature=" + sig('a') + "\r\n\r\n", wantErr: true, errKind: errs.InvalidArgument},
		{name: "size too long", in: "0000000000000001\r\nx\r\n0\r\n\r\n", wantErr: true, errKind: errs.InvalidArgument},
		{name: "bare LF", in: "5\nhello\n0\n\n", wantErr: true, errKind: errs.InvalidArgument},
		{name: "extension without value", in: "5;chunk-signature\r\nhello\r\n0\r\n\r\n", wantErr: true, errKind: errs.InvalidArgument},
		{name: "trailer without colon", in: "1\r\nx\r\n0\r\nx-amz-checksum-crc32\r\n\r\n", wantErr: true, errKind: errs.InvalidArgument},
		{name: "data after the end", in: "1\r\nx\r\n0\r\n\r\nextra", wantErr: true, errKind: errs.InvalidArgument},
		{name: "header line too long", in: "1;x=" + strings.Repeat("a", chunkLineMax) + "\r\nx\r\n0\r\n\r\n", wantErr: true, errKind: errs.InvalidArgument},
		{name: "trailers too long", in: "0\r\n" + strings.Repeat("x-a:"+strings.Repeat("b", 1000)+"\r\n", 20) + "\r\n", wantErr: true, errKind: errs.InvalidArgument},
		{name: "empty body", in: "", wantErr: true, errKind: errs.IncompleteBody},
		{name: "ends inside data", in: "a\r\nhello", wantErr: true, errKind: errs.IncompleteBody},
		{name: "ends before data CRLF", in: "5\r\nhello", wantErr: true, errKind: errs.IncompleteBody},
		{name: "ends before the final chunk", in: "5\r\nhello\r\n", wantErr: true, errKind: errs.IncompleteBody},
		{name: "ends inside a header", in: "5\r\nhello\r\n0;chunk-sig", wantErr: true, errKind: errs.IncompleteBody},
		{name: "ends inside trailers", in: "0\r\nx-amz-checksum-crc32:AAAA\r\n", wantErr: true, errKind: errs.IncompleteBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Read each input whole, and again one byte at a time from a source that also
			// returns one byte at a time, so chunk boundaries fall everywhere.
			for _, oneByte := range []bool{false, true} {
				hook := &recordingHook{}
				var src io.Reader = strings.NewReader(tc.in)
				if oneByte {
					src = iotest.OneByteReader(src)
				}
				cr := newChunkedReader(src, hook)
				var got []byte
				var err error
				if oneByte {
					got, err = io.ReadAll(iotest.OneByteReader(cr))
				} else {
					got, err = io.ReadAll(cr)
				}
				if tc.wantErr {
					if err == nil {
						t.Fatalf("decoded %q, want an error", got)
					}
					if k := errs.KindOf(err); k != tc.errKind {
						t.Errorf("error %v of kind %v, want %v", err, k, tc.errKind)
					}
					if _, again := cr.Read(make([]byte, 10)); again == nil || again.Error() != err.Error() {
						t.Errorf("error not sticky: %v then %v", err, again)
					}
					continue
				}
				if err != nil {
					t.Fatalf("error %v after %q", err, got)
				}
				if string(got) != tc.want || hook.data.String() != tc.want {
					t.Errorf("decoded %q (hook saw %q), want %q", got, hook.data.String(), tc.want)
				}
				for k, v := range tc.trailer {
					if cr.Trailer().Get(k) != v {
						t.Errorf("trailer %s = %q, want %q (all: %v)", k, cr.Trailer().Get(k), v, cr.Trailer())
					}
				}
				if tc.calls != nil && fmt.Sprint(hook.calls) != fmt.Sprint(tc.calls) {
					t.Errorf("hook calls %q, want %q", hook.calls, tc.calls)
				}
			}
		})
	}
}

// TestChunkedDecoderHookRefuses checks that a verifier refusing a chunk fails the body.
func TestChunkedDecoderHookRefuses(t *testing.T) {
	in := "5;chunk-signature=" + sig('1') + "\r\nhello\r\n0;chunk-signature=" + sig('2') + "\r\n\r\n"
	for _, fail := range []string{"begin 5", "end", "begin 0", "trailers"} {
		hook := &recordingHook{fail: fail}
		_, err := io.ReadAll(newChunkedReader(strings.NewReader(in), hook))
		if !errs.Is(err, errs.AccessDenied) {
			t.Errorf("hook failing %q: got %v, want the hook's error", fail, err)
		}
	}
}

// TestChunkedDecoderReadError checks that a failing connection is reported as such.
func TestChunkedDecoderReadError(t *testing.T) {
	src := io.MultiReader(strings.NewReader("5\r\nhel"), iotest.ErrReader(errors.New("connection reset")))
	_, err := io.ReadAll(newChunkedReader(src, nil))
	if !errs.Is(err, errs.IncompleteBody) {
		t.Errorf("got %v, want IncompleteBody", err)
	}
}

func TestPayloadReader(t *testing.T) {
	md5sum := func(s string) []byte { h := md5.Sum([]byte(s)); return h[:] }
	cases := []struct {
		name     string
		body     string
		declared int64
		max      int64
		md5      []byte
		want     errs.Kind
		ok       bool
	}{
		{name: "exact", body: "hello", declared: 5, max: 10, ok: true},
		{name: "unknown length", body: "hello", declared: -1, max: 10, ok: true},
		{name: "unknown length at max", body: "hello", declared: -1, max: 5, ok: true},
		{name: "unknown length over max", body: "hello!", declared: -1, max: 5, want: errs.EntityTooLarge},
		{name: "short", body: "hell", declared: 5, max: 10, want: errs.IncompleteBody},
		{name: "long", body: "hello!", declared: 5, max: 10, want: errs.InvalidArgument},
		{name: "empty", body: "", declared: 0, max: 10, ok: true},
		{name: "md5 ok", body: "hello", declared: 5, max: 10, md5: md5sum("hello"), ok: true},
		{name: "md5 wrong", body: "hello", declared: 5, max: 10, md5: md5sum("world"), want: errs.BadDigest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPayloadReader(iotest.HalfReader(strings.NewReader(tc.body)), tc.declared, tc.max, tc.md5, nil)
			got, err := io.ReadAll(p)
			if tc.ok {
				if err != nil || string(got) != tc.body {
					t.Errorf("got %q, %v", got, err)
				}
				if p.err != io.EOF {
					t.Errorf("final state %v, want io.EOF", p.err)
				}
				return
			}
			if errs.KindOf(err) != tc.want || err == nil {
				t.Errorf("got %v, want kind %v", err, tc.want)
			}
			if int64(len(got)) > max(tc.declared, tc.max) {
				t.Errorf("%d bytes passed through", len(got))
			}
		})
	}
}

// FuzzChunkedDecoder checks the decoder never panics, and that whatever it accepts
// re-encodes to a stream it decodes to the same payload and trailers.
func FuzzChunkedDecoder(f *testing.F) {
	f.Add([]byte("b;chunk-signature=" + sig('a') + "\r\nhello world\r\n0;chunk-signature=" + sig('b') + "\r\n\r\n"))
	f.Add([]byte("5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"))
	f.Add([]byte("0\r\nx-amz-checksum-crc32:AAAA\r\nx-amz-trailer-signature:abc\r\n\r\n"))
	f.Add([]byte("3\r\nabc\r\n0\r\n"))
	f.Add([]byte("ffffffffffffff\r\nx\r\n"))
	f.Add([]byte("1;a=b;c=d\r\nx\r\n0\r\n\r\nextra"))
	f.Fuzz(func(t *testing.T, in []byte) {
		hook := &recordingHook{}
		cr := newChunkedReader(bytes.NewReader(in), hook)
		got, err := io.ReadAll(cr)
		if err != nil {
			if _, ok := errors.AsType[*errs.Error](err); !ok {
				t.Fatalf("error %v is not a cellar error", err)
			}
			return
		}
		if !bytes.Equal(got, hook.data.Bytes()) {
			t.Fatalf("hook saw %q, reader returned %q", hook.data.Bytes(), got)
		}
		var re bytes.Buffer
		if len(got) > 0 {
			fmt.Fprintf(&re, "%x\r\n%s\r\n", len(got), got)
		}
		re.WriteString("0\r\n")
		for k, vs := range cr.Trailer() {
			for _, v := range vs {
				fmt.Fprintf(&re, "%s:%s\r\n", k, v)
			}
		}
		re.WriteString("\r\n")
		cr2 := newChunkedReader(&re, nil)
		again, err := io.ReadAll(cr2)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("re-encoded stream decodes to %q, %v; want %q", again, err, got)
		}
		if fmt.Sprint(cr2.Trailer()) != fmt.Sprint(cr.Trailer()) {
			t.Fatalf("trailers %v, then %v", cr.Trailer(), cr2.Trailer())
		}
	})
}
