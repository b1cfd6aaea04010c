package s3

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"net/http"
	"strconv"
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

// fullObjectAlgorithms are the algorithms whose full-object checksum of a multipart
// object can be combined from its parts' checksums: the CRCs.
var fullObjectAlgorithms = map[string]bool{"CRC32": true, "CRC32C": true, "CRC64NVME": true}

// requestedChecksumType reads the checksum type CreateMultipartUpload asks for with
// algorithm alg (x-amz-checksum-type), or chooses S3's default: FULL_OBJECT for
// CRC64NVME, which has no composite form, COMPOSITE for the others.
func requestedChecksumType(h http.Header, alg string) (string, error) {
	typ, err := checksumTypeHeader(h)
	if err != nil {
		return "", err
	}
	switch {
	case typ == "" && alg == "CRC64NVME":
		return ChecksumFullObject, nil
	case typ == "" && alg != "":
		return ChecksumComposite, nil
	case typ == "":
		return "", nil
	case alg == "":
		return "", errs.New(errs.InvalidRequest, "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.")
	case typ == ChecksumFullObject && !fullObjectAlgorithms[alg]:
		return "", errs.New(errs.InvalidRequest, "The FULL_OBJECT checksum type cannot be used with the %s checksum algorithm.", alg)
	case typ == ChecksumComposite && alg == "CRC64NVME":
		return "", errs.New(errs.InvalidRequest, "The COMPOSITE checksum type cannot be used with the %s checksum algorithm.", alg)
	}
	return typ, nil
}

// checksumTypeHeader reads x-amz-checksum-type: "", FULL_OBJECT or COMPOSITE.
func checksumTypeHeader(h http.Header) (string, error) {
	switch typ := strings.ToUpper(strings.TrimSpace(h.Get("x-amz-checksum-type"))); typ {
	case "", ChecksumFullObject, ChecksumComposite:
		return typ, nil
	}
	return "", errs.New(errs.InvalidRequest, "Value for x-amz-checksum-type header is invalid: it must be FULL_OBJECT or COMPOSITE.")
}

// declaredObjectChecksum reads what a CompleteMultipartUpload declares of the whole
// object's checksum: at most one x-amz-checksum-<algorithm> header, whose value a
// composite checksum may end with "-<parts>", and x-amz-checksum-type.
func declaredObjectChecksum(h http.Header) (alg, value, typ string, err error) {
	for name, a := range checksumAlgorithms {
		v := strings.TrimSpace(h.Get(a.header))
		if v == "" {
			continue
		}
		if alg != "" {
			return "", "", "", errs.New(errs.InvalidRequest, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		digest, parts, composite := strings.Cut(v, "-")
		raw, derr := base64.StdEncoding.DecodeString(digest)
		if derr != nil || len(raw) != a.size || composite && !isPartCount(parts) {
			return "", "", "", errs.New(errs.InvalidDigest, "Value for %s header is invalid.", a.header)
		}
		alg, value = name, v
	}
	typ, err = checksumTypeHeader(h)
	return alg, value, typ, err
}

// isPartCount reports whether s is a part count: 1 to maxPartNumber, in decimal.
func isPartCount(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= maxPartNumber && strconv.Itoa(n) == s
}

// checksumTypeOfValue is the type of a stored checksum: composite values end in
// "-<parts>".
func checksumTypeOfValue(value string) string {
	if strings.Contains(value, "-") {
		return ChecksumComposite
	}
	return ChecksumFullObject
}

// setChecksumHeader returns the object's checksum in its header.
func setChecksumHeader(h http.Header, alg, value string) {
	if a, ok := checksumAlgorithms[alg]; ok && value != "" {
		h.Set(a.header, value)
		h.Set("x-amz-checksum-type", checksumTypeOfValue(value))
	}
}
