package s3

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"io"
	"net/http"

	"github.com/cellarsim/cellar/internal/errs"
)

// payloadReader is the decoded PUT body as the backend reads it. It enforces the
// declared length (or, when none was declared, the maximum object size) and the digests
// the client sent. Every failure, including one found only at the end of the payload, is
// returned from Read instead of io.EOF, so that a backend that commits on io.EOF never
// commits a bad upload. Errors are sticky.
type payloadReader struct {
	r        io.Reader
	declared int64 // payload bytes the client declared; -1 if unknown
	max      int64 // the largest payload accepted when declared is -1
	n        int64 // payload bytes read so far

	md5, sha256       hash.Hash // nil unless the client sent that digest
	wantMD5, wantSHA2 []byte

	// The additional checksum (x-amz-checksum-*), if the client declared one.
	ck      hash.Hash
	ckAlg   string
	ckWant  func() string // the value sent, read at the end (a trailer arrives last); nil: nothing to verify
	ckValue string        // the verified (or computed) value, once the payload has ended

	err error
}

// withChecksum makes p verify the checksum cr declares; trailer gives the trailers of
// an aws-chunked body once it has ended.
func (p *payloadReader) withChecksum(cr checksumRequest, trailer func() http.Header) *payloadReader {
	if cr.alg == "" {
		return p
	}
	p.ck, p.ckAlg = checksumAlgorithms[cr.alg].newH(), cr.alg
	p.ckWant = func() string {
		if cr.value != "" {
			return cr.value
		}
		if trailer != nil {
			if h := trailer(); h != nil {
				return h.Get(cr.trailer)
			}
		}
		return ""
	}
	return p
}

// computeChecksum makes p compute the checksum alg of a payload the client sent none
// for, with nothing to verify it against. It must be called before the first Read.
func (p *payloadReader) computeChecksum(alg string) {
	p.ck, p.ckAlg, p.ckWant = checksumAlgorithms[alg].newH(), alg, nil
}

// checksum is the verified (or computed) checksum, valid once Read has returned io.EOF.
func (p *payloadReader) checksum() string { return p.ckValue }

func newPayloadReader(r io.Reader, declared, max int64, wantMD5, wantSHA256 []byte) *payloadReader {
	p := &payloadReader{r: r, declared: declared, max: max, wantMD5: wantMD5, wantSHA2: wantSHA256}
	if wantMD5 != nil {
		p.md5 = md5.New()
	}
	if wantSHA256 != nil {
		p.sha256 = sha256.New()
	}
	return p
}

func (p *payloadReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if len(b) == 0 {
		return 0, nil
	}
	limit := p.max
	if p.declared >= 0 {
		limit = p.declared
	}
	if p.n == limit {
		// Everything allowed has been read: the stream must end here.
		var probe [1]byte
		n, err := p.r.Read(probe[:])
		switch {
		case n > 0 && p.declared >= 0:
			p.err = errs.New(errs.InvalidArgument, "The request body is longer than the declared content length of %d bytes.", p.declared)
		case n > 0:
			p.err = errs.New(errs.EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size of %d bytes.", p.max)
		case err == io.EOF:
			p.err = p.finish()
		case err != nil:
			p.err = readFailure(err, "")
		}
		if p.err == nil {
			return 0, nil // a (0, nil) read; ask again
		}
		return 0, p.err
	}
	if int64(len(b)) > limit-p.n {
		b = b[:limit-p.n]
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.md5 != nil {
		p.md5.Write(b[:n])
	}
	if p.sha256 != nil {
		p.sha256.Write(b[:n])
	}
	if p.ck != nil {
		p.ck.Write(b[:n])
	}
	switch {
	case err == io.EOF:
		p.err = p.finish()
	case err != nil:
		p.err = readFailure(err, "")
	}
	if n > 0 {
		return n, nil // any error is reported by the next Read
	}
	return 0, p.err
}

// finish checks the payload once its stream has ended; it returns io.EOF if all is well.
func (p *payloadReader) finish() error {
	if p.declared >= 0 && p.n < p.declared {
		return errs.New(errs.IncompleteBody, "The request body has %d bytes, fewer than the declared content length of %d.", p.n, p.declared)
	}
	if p.md5 != nil && !bytes.Equal(p.md5.Sum(nil), p.wantMD5) {
		return errs.New(errs.BadDigest, "The Content-MD5 you specified did not match what we received.")
	}
	if p.sha256 != nil && !bytes.Equal(p.sha256.Sum(nil), p.wantSHA2) {
		return errs.New(errs.ContentSHA256Mismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	if p.ck != nil {
		got := base64.StdEncoding.EncodeToString(p.ck.Sum(nil))
		if p.ckWant != nil {
			want := p.ckWant()
			if want == "" {
				return errs.New(errs.InvalidRequest, "The %s checksum announced in x-amz-trailer was not sent.", p.ckAlg)
			}
			if got != want {
				return errs.New(errs.BadDigest, "The %s you specified did not match the calculated checksum.", p.ckAlg)
			}
		}
		p.ckValue = got
	}
	return io.EOF
}
