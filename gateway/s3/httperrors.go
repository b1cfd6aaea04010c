package s3

import (
	"bytes"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"strconv"
)

// Errors that net/http answers by itself. A request whose header section is too large
// (over http.Server.MaxHeaderBytes), whose Content-Length or Transfer-Encoding is
// invalid, or whose request line is not HTTP at all never reaches a handler: the
// server writes a plain-text response straight to the connection and closes it, and
// http.Server has no field or callback to change that text. What can be changed is the
// connection it writes to: XMLErrorListener wraps each accepted connection so that
// such a response, recognised by the exact header lines net/http gives it, is replaced
// by the same status as an S3 error document (header sections too large become 400
// RequestHeaderSectionTooLarge, as in S3).
//
// What cannot be changed this way: the response of a TLS connection (the bytes are
// encrypted by the time they reach the wrapped connection, and net/http needs the
// *tls.Conn itself, so TLS connections are left as they are); the status net/http
// chose for anything but 431; and the log line and metrics, which these requests do
// not reach.

// goErrorHeaders are the header lines net/http writes with its own error responses.
var goErrorHeaders = []byte("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")

// XMLErrorListener returns ln with net/http's own plain-text error responses rewritten
// as S3 error XML.
func XMLErrorListener(ln net.Listener) net.Listener { return xmlErrorListener{ln} }

type xmlErrorListener struct{ net.Listener }

func (l xmlErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	if _, isTLS := c.(*tls.Conn); isTLS {
		return c, nil
	}
	return xmlErrorConn{c}, nil
}

type xmlErrorConn struct{ net.Conn }

func (c xmlErrorConn) Write(p []byte) (int, error) {
	if doc, ok := rewriteGoError(p); ok {
		if _, err := c.Conn.Write(doc); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// rewriteGoError turns one of net/http's own error responses into S3 error XML; ok is
// false for anything else. net/http writes such a response in one Write, with its own
// header lines, and never with the x-amz-request-id every handler response has.
func rewriteGoError(p []byte) ([]byte, bool) {
	const proto = "HTTP/1.1 "
	if len(p) < len(proto)+3 || !bytes.HasPrefix(p, []byte(proto)) {
		return nil, false
	}
	head, body, found := bytes.Cut(p, goErrorHeaders)
	if !found || bytes.Contains(head, []byte("\r\n")) {
		return nil, false // more header lines than net/http's own: a handler's response
	}
	status, err := strconv.Atoi(string(p[len(proto) : len(proto)+3]))
	if err != nil || status < 400 {
		return nil, false
	}
	code, msg := "BadRequest", "An error occurred when parsing the HTTP request."
	switch status {
	case 431:
		status, code, msg = 400, "RequestHeaderSectionTooLarge", "Your request header section exceeds the maximum allowed size."
	case 501:
		code, msg = "NotImplemented", "A header you provided implies functionality that is not implemented."
	case 505:
		code, msg = "HttpVersionNotSupported", "The HTTP version specified is not supported."
	}
	if _, detail, ok := bytes.Cut(body, []byte(": ")); ok && len(detail) > 0 && len(detail) < 200 {
		msg += " (" + string(detail) + ")"
	}
	id, _ := newRequestID()
	var doc bytes.Buffer
	doc.WriteString(xml.Header)
	xml.NewEncoder(&doc).Encode(errorResponse{Code: code, Message: msg, RequestID: id}) // cannot fail
	var out bytes.Buffer
	fmt.Fprintf(&out, "HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\nConnection: close\r\n%s: %s\r\n%s: %s\r\n\r\n",
		status, http.StatusText(status), doc.Len(), hdrRequestID, id, hdrCell, cellNone)
	out.Write(doc.Bytes())
	return out.Bytes(), true
}
