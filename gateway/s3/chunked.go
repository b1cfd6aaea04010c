package s3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/cellarsim/cellar/internal/errs"
)

// This file decodes aws-chunked request bodies, the framing the AWS SDKs use for
// streaming uploads (SigV4 streaming, with or without signatures and trailers):
//
//	<hex size>[;chunk-signature=<sig>]\r\n
//	<size bytes>\r\n
//	... more chunks ...
//	0[;chunk-signature=<sig>]\r\n
//	[<trailer name>:<value>\r\n ...]      e.g. x-amz-checksum-crc32, x-amz-trailer-signature
//	\r\n
//
// Signatures are not verified here: chunkHook is where a SigV4 verifier plugs in.

const (
	chunkLineMax    = 4 << 10  // longest chunk header or trailer line accepted
	chunkTrailerMax = 16 << 10 // most trailer bytes accepted in all
	chunkBufSize    = 64 << 10
)

// chunkHook observes an aws-chunked body as it is decoded, in order: for each chunk
// beginChunk, chunkData for every piece of its data, endChunk; after the final
// (zero-length) chunk, trailers. An error from a hook fails the body: the decoder
// returns it from Read, so the upload is aborted before anything is committed.
type chunkHook interface {
	beginChunk(size int64, signature string) error
	chunkData(p []byte)
	endChunk() error
	trailers(h http.Header, signature string) error
}

// chunkedReader decodes an aws-chunked stream into its payload.
type chunkedReader struct {
	br      *bufio.Reader
	hook    chunkHook // may be nil
	left    int64     // data bytes left in the current chunk
	inChunk bool      // a chunk's data has started and its closing CRLF is unread
	err     error     // sticky; io.EOF once the stream has ended correctly
	trailer http.Header
}

func newChunkedReader(r io.Reader, hook chunkHook) *chunkedReader {
	return &chunkedReader{br: bufio.NewReaderSize(r, chunkBufSize), hook: hook}
}

// Trailer returns the trailing headers, valid once Read has returned io.EOF.
func (c *chunkedReader) Trailer() http.Header { return c.trailer }

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for c.left == 0 {
		if err := c.nextChunk(); err != nil {
			c.err = err
			return 0, err
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= int64(n)
	if c.hook != nil && n > 0 {
		c.hook.chunkData(p[:n])
	}
	if err != nil {
		c.err = readFailure(err, "in chunk data")
		if n > 0 {
			return n, nil // report the error on the next Read
		}
		return 0, c.err
	}
	return n, nil
}

// nextChunk finishes the current chunk and reads the next chunk header; at the final
// chunk it reads the trailers and returns io.EOF.
func (c *chunkedReader) nextChunk() error {
	if c.inChunk {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if len(line) != 0 {
			return malformedChunk("chunk data is longer than its declared size")
		}
		c.inChunk = false
		if c.hook != nil {
			if err := c.hook.endChunk(); err != nil {
				return err
			}
		}
	}
	line, err := c.readLine()
	if err != nil {
		return err
	}
	size, sig, err := parseChunkHeader(line)
	if err != nil {
		return err
	}
	if c.hook != nil {
		if err := c.hook.beginChunk(size, sig); err != nil {
			return err
		}
	}
	if size > 0 {
		c.left, c.inChunk = size, true
		return nil
	}
	if c.hook != nil {
		if err := c.hook.endChunk(); err != nil {
			return err
		}
	}
	return c.finish()
}

// finish reads the trailer section after the final chunk and checks nothing follows it.
func (c *chunkedReader) finish() error {
	c.trailer = http.Header{}
	var trailerSig string
	total := 0
	for first := true; ; first = false {
		line, err := c.readLine()
		if first && errors.Is(err, errChunkEOF) {
			break // some clients end the stream right after the final chunk header
		}
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		if total += len(line); total > chunkTrailerMax {
			return malformedChunk("trailers are too long")
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		key := strings.ToLower(string(bytes.TrimSpace(name)))
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return malformedChunk("a trailer line is not name:value")
		}
		val := string(bytes.TrimSpace(value))
		if key == "x-amz-trailer-signature" {
			trailerSig = val
			continue
		}
		c.trailer.Add(key, val)
	}
	if _, err := c.br.Peek(1); err == nil {
		return malformedChunk("data follows the final chunk")
	} else if err != io.EOF {
		return readFailure(err, "after the final chunk")
	}
	if c.hook != nil {
		if err := c.hook.trailers(c.trailer, trailerSig); err != nil {
			return err
		}
	}
	return io.EOF
}

// errChunkEOF marks a clean end of the underlying stream at a line boundary.
var errChunkEOF = errs.New(errs.IncompleteBody, "The aws-chunked body ended before its final chunk.")

// readLine returns the next CRLF-terminated line without its CRLF.
func (c *chunkedReader) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	switch {
	case err == io.EOF && len(line) == 0:
		return nil, errChunkEOF
	case errors.Is(err, bufio.ErrBufferFull) || len(line) > chunkLineMax:
		return nil, malformedChunk("a chunk header or trailer line is too long")
	case err != nil:
		return nil, readFailure(err, "in a chunk header")
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, malformedChunk("a line does not end with CRLF")
	}
	return line[:len(line)-2], nil
}

// parseChunkHeader parses "<hex size>[;name=value]*" and returns the size and the
// chunk-signature extension, if present.
func parseChunkHeader(line []byte) (size int64, sig string, err error) {
	sizeHex, exts, _ := bytes.Cut(line, []byte(";"))
	if len(sizeHex) == 0 || len(sizeHex) > 15 {
		return 0, "", malformedChunk("a chunk size is missing or too long")
	}
	u, perr := strconv.ParseUint(string(sizeHex), 16, 63)
	if perr != nil {
		return 0, "", malformedChunk("a chunk size is not hexadecimal")
	}
	for len(exts) > 0 {
		var ext []byte
		ext, exts, _ = bytes.Cut(exts, []byte(";"))
		name, value, ok := bytes.Cut(bytes.TrimSpace(ext), []byte("="))
		if !ok || len(name) == 0 {
			return 0, "", malformedChunk("a chunk extension is not name=value")
		}
		if string(name) == "chunk-signature" {
			sig = string(value)
		}
	}
	return int64(u), sig, nil
}

func malformedChunk(why string) error {
	return errs.New(errs.InvalidArgument, "The aws-chunked body is malformed: %s.", why)
}

// readFailure turns an error from the underlying body into a cellar error.
func readFailure(err error, where string) error {
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return errs.Wrap(errs.IncompleteBody, err, "The request body ended early %s.", where)
	}
	return errs.Wrap(errs.IncompleteBody, err, "The request body could not be read %s.", where)
}
