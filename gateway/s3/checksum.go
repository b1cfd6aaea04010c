package s3

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"net/http"
	"strings"

	"github.com/cellarsim/cellar/internal/errs"
)

// The additional checksums of S3 (x-amz-checksum-*): sent in a header or, with
// aws-chunked bodies, in a trailer that x-amz-trailer announces; verified over the
// payload (BadDigest on mismatch), stored with the object, and returned when the client
// asks with x-amz-checksum-mode: ENABLED.

// checksumAlgorithms are the algorithms by S3 name, with their header and digest size.
var checksumAlgorithms = map[string]struct {
	header string
	size   int
	newH   func() hash.Hash
}{
	"CRC32":     {"x-amz-checksum-crc32", 4, func() hash.Hash { return crc32.NewIEEE() }},
	"CRC32C":    {"x-amz-checksum-crc32c", 4, func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) }},
	"CRC64NVME": {"x-amz-checksum-crc64nvme", 8, func() hash.Hash { return crc64.New(crc64NVME) }},
	"SHA1":      {"x-amz-checksum-sha1", 20, sha1.New},
	"SHA256":    {"x-amz-checksum-sha256", 32, sha256.New},
}

// crc64NVME is CRC-64/NVME (polynomial 0xad93d23594c93659, reflected).
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

// checksumRequest is the checksum a request declares.
type checksumRequest struct {
	alg     string // "" when none
	value   string // base64, from the header; "" when it comes in a trailer
	trailer string // the trailer's name, when it does
}

// parseChecksumHeaders reads the checksum a PUT or UploadPart declares. allowTrailer
// says whether the body is aws-chunked (and so may carry trailers).
func parseChecksumHeaders(h http.Header, allowTrailer bool) (checksumRequest, error) {
	var cr checksumRequest
	for alg, a := range checksumAlgorithms {
		v := h.Get(a.header)
		if v == "" {
			continue
		}
		if cr.alg != "" {
			return cr, errs.New(errs.InvalidRequest, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(raw) != a.size {
			return cr, errs.New(errs.InvalidDigest, "Value for %s header is invalid.", a.header)
		}
		cr.alg, cr.value = alg, v
	}
	if t := strings.ToLower(strings.TrimSpace(h.Get("x-amz-trailer"))); t != "" {
		if !allowTrailer {
			return cr, errs.New(errs.InvalidRequest, "The x-amz-trailer header needs an aws-chunked body.")
		}
		alg := ""
		for name, a := range checksumAlgorithms {
			if a.header == t {
				alg = name
			}
		}
		if alg == "" {
			return cr, errs.New(errs.InvalidRequest, "The value specified in the x-amz-trailer header is not supported.")
		}
		if cr.alg != "" && cr.alg != alg {
			return cr, errs.New(errs.InvalidRequest, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		cr.alg, cr.trailer = alg, t
	}
	if sdk := strings.ToUpper(h.Get("x-amz-sdk-checksum-algorithm")); sdk != "" {
		if _, ok := checksumAlgorithms[sdk]; !ok {
			return cr, errs.New(errs.InvalidRequest, "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
		}
		if cr.alg != "" && cr.alg != sdk {
			return cr, errs.New(errs.InvalidRequest, "Value for x-amz-sdk-checksum-algorithm header is invalid.")
		}
	}
	return cr, nil
}

// checksumAlgorithmOf reads the algorithm CreateMultipartUpload asks for.
func checksumAlgorithmOf(h http.Header) (string, error) {
	v := strings.ToUpper(h.Get("x-amz-checksum-algorithm"))
	if v == "" {
		return "", nil
	}
	if _, ok := checksumAlgorithms[v]; !ok {
		return "", errs.New(errs.InvalidRequest, "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
	}
	return v, nil
}

// setChecksumHeader returns the object's checksum in its header.
func setChecksumHeader(h http.Header, alg, value string) {
	if a, ok := checksumAlgorithms[alg]; ok && value != "" {
		h.Set(a.header, value)
		if strings.Contains(value, "-") {
			h.Set("x-amz-checksum-type", "COMPOSITE")
		} else {
			h.Set("x-amz-checksum-type", "FULL_OBJECT")
		}
	}
}
