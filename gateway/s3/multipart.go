package s3

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cellarsim/cellar/internal/errs"
)

// Multipart uploads: CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
// AbortMultipartUpload, ListParts and ListMultipartUploads.

const maxPartNumber = 10000

func utf8Valid(s string) bool { return utf8.ValidString(s) }

type initiateResultXML struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Bucket   string   `xml:"Bucket"`
	Key      xmlText  `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

type completeRequestXML struct {
	XMLName xml.Name           `xml:"CompleteMultipartUpload"`
	Parts   []completedPartXML `xml:"Part"`
}

type completedPartXML struct {
	PartNumber int    `xml:"PartNumber"`
	ETag       string `xml:"ETag"`

	ChecksumCRC32     string `xml:"ChecksumCRC32"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME"`
	ChecksumSHA1      string `xml:"ChecksumSHA1"`
	ChecksumSHA256    string `xml:"ChecksumSHA256"`
}

// checksum returns the part checksum the request names, if any.
func (p completedPartXML) checksum() (alg, value string, err error) {
	for _, c := range []struct{ alg, value string }{
		{"CRC32", p.ChecksumCRC32}, {"CRC32C", p.ChecksumCRC32C}, {"CRC64NVME", p.ChecksumCRC64NVME},
		{"SHA1", p.ChecksumSHA1}, {"SHA256", p.ChecksumSHA256},
	} {
		if v := strings.TrimSpace(c.value); v != "" {
			if alg != "" {
				return "", "", errs.New(errs.InvalidRequest, "Part %d names more than one checksum.", p.PartNumber)
			}
			alg, value = c.alg, v
		}
	}
	return alg, value, nil
}

type completeResultXML struct {
	XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      xmlText  `xml:"Key"`
	ETag     string   `xml:"ETag"`

	ChecksumCRC32     string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string `xml:"ChecksumSHA256,omitempty"`
	ChecksumType      string `xml:"ChecksumType,omitempty"`
}

type partXML struct {
	PartNumber   int    `xml:"PartNumber"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`

	ChecksumCRC32     string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string `xml:"ChecksumSHA256,omitempty"`
}

type listPartsResultXML struct {
	XMLName              xml.Name  `xml:"ListPartsResult"`
	Xmlns                string    `xml:"xmlns,attr"`
	Bucket               string    `xml:"Bucket"`
	Key                  xmlText   `xml:"Key"`
	UploadID             string    `xml:"UploadId"`
	Initiator            ownerXML  `xml:"Initiator"`
	Owner                ownerXML  `xml:"Owner"`
	StorageClass         string    `xml:"StorageClass"`
	PartNumberMarker     int       `xml:"PartNumberMarker"`
	NextPartNumberMarker int       `xml:"NextPartNumberMarker"`
	MaxParts             int       `xml:"MaxParts"`
	IsTruncated          bool      `xml:"IsTruncated"`
	ChecksumAlgorithm    string    `xml:"ChecksumAlgorithm,omitempty"`
	ChecksumType         string    `xml:"ChecksumType,omitempty"`
	EncodingType         string    `xml:"EncodingType,omitempty"`
	Parts                []partXML `xml:"Part"`
}

type uploadXML struct {
	Key               xmlText  `xml:"Key"`
	UploadID          string   `xml:"UploadId"`
	Initiator         ownerXML `xml:"Initiator"`
	Owner             ownerXML `xml:"Owner"`
	StorageClass      string   `xml:"StorageClass"`
	Initiated         string   `xml:"Initiated"`
	ChecksumAlgorithm string   `xml:"ChecksumAlgorithm,omitempty"`
	ChecksumType      string   `xml:"ChecksumType,omitempty"`
}

type listUploadsResultXML struct {
	XMLName            xml.Name          `xml:"ListMultipartUploadsResult"`
	Xmlns              string            `xml:"xmlns,attr"`
	Bucket             string            `xml:"Bucket"`
	KeyMarker          xmlText           `xml:"KeyMarker"`
	UploadIDMarker     string            `xml:"UploadIdMarker"`
	NextKeyMarker      xmlText           `xml:"NextKeyMarker"`
	NextUploadIDMarker string            `xml:"NextUploadIdMarker"`
	Prefix             xmlText           `xml:"Prefix"`
	Delimiter          xmlText           `xml:"Delimiter,omitempty"`
	MaxUploads         int               `xml:"MaxUploads"`
	EncodingType       string            `xml:"EncodingType,omitempty"`
	IsTruncated        bool              `xml:"IsTruncated"`
	Uploads            []uploadXML       `xml:"Upload"`
	CommonPrefixes     []commonPrefixXML `xml:"CommonPrefixes"`
}

// setChecksumField puts a checksum in the XML field of its algorithm.
func setChecksumField(alg, value string, crc32, crc32c, crc64, sha1, sha256 *string) {
	switch alg {
	case "CRC32":
		*crc32 = value
	case "CRC32C":
		*crc32c = value
	case "CRC64NVME":
		*crc64 = value
	case "SHA1":
		*sha1 = value
	case "SHA256":
		*sha256 = value
	}
}

func (h *handler) createUpload(x *exchange) error {
	meta, err := metaFromHeaders(x.r.Header)
	if err != nil {
		return err
	}
	if meta.ChecksumAlgorithm, err = checksumAlgorithmOf(x.r.Header); err != nil {
		return err
	}
	if meta.ChecksumType, err = requestedChecksumType(x.r.Header, meta.ChecksumAlgorithm); err != nil {
		return err
	}
	cell, id, err := h.b.CreateUpload(x.r.Context(), x.req.bucket, x.req.key, meta)
	x.setCell(cell)
	if err != nil {
		return err
	}
	if meta.ChecksumAlgorithm != "" {
		x.w.Header().Set("x-amz-checksum-algorithm", meta.ChecksumAlgorithm)
		x.w.Header().Set("x-amz-checksum-type", meta.ChecksumType)
	}
	return x.writeXML(http.StatusOK, initiateResultXML{Xmlns: xmlNamespace, Bucket: x.req.bucket, Key: xmlText(x.req.key), UploadID: id})
}

func parsePartNumber(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxPartNumber {
		return 0, errs.New(errs.InvalidArgument, "Part number must be an integer between 1 and %d, inclusive", maxPartNumber)
	}
	return n, nil
}

// partOf reads the part number and upload id of an UploadPart or UploadPartCopy.
func partOf(x *exchange) (number int, uploadID string, err error) {
	if number, err = parsePartNumber(x.req.query.Get("partNumber")); err != nil {
		return 0, "", err
	}
	if uploadID, err = uploadIDOf(x); err != nil {
		return 0, "", err
	}
	return number, uploadID, nil
}

func uploadIDOf(x *exchange) (string, error) {
	id := x.req.query.Get("uploadId")
	if id == "" {
		return "", errs.New(errs.NoSuchUpload, "")
	}
	return id, nil
}

func (h *handler) uploadPart(x *exchange) error {
	n, id, err := partOf(x)
	if err != nil {
		return err
	}
	payload, size, err := h.requestBody(x)
	if err != nil {
		return err
	}
	in := PartInput{Bucket: x.req.bucket, Key: x.req.key, UploadID: id, Number: n, Size: size, Body: payload,
		CheckUpload: func(up UploadInfo) error { return settlePartChecksum(payload, up) }, Checksum: payload.checksum}
	cell, part, err := h.b.UploadPart(x.r.Context(), in)
	x.setCell(cell)
	if err != nil {
		return bodyFirst(payload, err)
	}
	if err := checkConsumed(payload, x); err != nil {
		return err
	}
	x.w.Header().Set("ETag", quoteETag(part.ETag))
	if payload.ckAlg != "" {
		x.w.Header().Set(checksumAlgorithms[payload.ckAlg].header, payload.checksum())
	}
	x.w.Header().Set("Content-Length", "0")
	x.writeHeader(http.StatusOK)
	return nil
}

// settlePartChecksum makes a part's checksum agree with its upload's algorithm, as S3
// does: a part in another algorithm is refused, and one that came without a checksum
// gets it computed over the bytes received (so that the object's checksum can be made
// from its parts').
func settlePartChecksum(payload *payloadReader, up UploadInfo) error {
	want := up.Meta.ChecksumAlgorithm
	switch {
	case want == "" || payload.ckAlg == want:
		return nil
	case payload.ckAlg == "":
		payload.computeChecksum(want)
		return nil
	}
	return errs.New(errs.InvalidRequest, "Checksum Type mismatch occurred, expected checksum Type: %s, actual checksum Type: %s",
		strings.ToLower(want), strings.ToLower(payload.ckAlg))
}

func (h *handler) completeUpload(x *exchange) error {
	id, err := uploadIDOf(x)
	if err != nil {
		return err
	}
	cond, err := writePrecondition(x.r.Header)
	if err != nil {
		return err
	}
	in := CompleteInput{Bucket: x.req.bucket, Key: x.req.key, UploadID: id, Cond: cond}
	// The x-amz-checksum-* headers of a completion describe the object, not the XML.
	if in.ChecksumAlgorithm, in.Checksum, in.ChecksumType, err = declaredObjectChecksum(x.r.Header); err != nil {
		return err
	}
	var req completeRequestXML
	if err := readXML(x, maxCompleteBody, &req, false); err != nil {
		return err
	}
	if len(req.Parts) == 0 {
		return errs.New(errs.MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema: it names no part.")
	}
	for _, p := range req.Parts {
		if p.PartNumber < 1 || p.PartNumber > maxPartNumber {
			return errs.New(errs.InvalidPart, "Part number must be an integer between 1 and %d, inclusive", maxPartNumber)
		}
		alg, sum, err := p.checksum()
		if err != nil {
			return err
		}
		in.Parts = append(in.Parts, CompletedPart{Number: p.PartNumber, ETag: strings.TrimSpace(p.ETag), ChecksumAlgorithm: alg, Checksum: sum})
	}
	cell, info, err := h.b.CompleteUpload(x.r.Context(), in)
	x.setCell(cell)
	if err != nil {
		return err
	}
	res := completeResultXML{Xmlns: xmlNamespace, Location: "/" + x.req.bucket + "/" + uriEncode(x.req.key, false),
		Bucket: x.req.bucket, Key: xmlText(x.req.key), ETag: quoteETag(info.ETag)}
	if info.Checksum != "" {
		setChecksumField(info.ChecksumAlgorithm, info.Checksum, &res.ChecksumCRC32, &res.ChecksumCRC32C,
			&res.ChecksumCRC64NVME, &res.ChecksumSHA1, &res.ChecksumSHA256)
		res.ChecksumType = checksumTypeOfValue(info.Checksum)
	}
	setVersionHeaders(x.w.Header(), info.VersionID, false)
	return x.writeXML(http.StatusOK, res)
}

func (h *handler) abortUpload(x *exchange) error {
	id, err := uploadIDOf(x)
	if err != nil {
		return err
	}
	cell, err := h.b.AbortUpload(x.r.Context(), x.req.bucket, x.req.key, id)
	x.setCell(cell)
	if err != nil {
		return err
	}
	x.writeHeader(http.StatusNoContent)
	return nil
}

func parseMax(q map[string][]string, name string) (int, error) {
	vs, ok := q[name]
	if !ok {
		return 1000, nil
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil || n < 0 {
		return 0, errs.New(errs.InvalidArgument, "Argument %s must be an integer between 0 and 2147483647", name)
	}
	return min(max(n, 1), 1000), nil
}

// uploadChecksumType is the checksum type of an upload with a checksum algorithm: the
// one it was created with, COMPOSITE for uploads that recorded none.
func uploadChecksumType(up UploadInfo) string {
	switch {
	case up.Meta.ChecksumAlgorithm == "":
		return ""
	case up.Meta.ChecksumType == "":
		return ChecksumComposite
	}
	return up.Meta.ChecksumType
}

func (h *handler) listParts(x *exchange) error {
	id, err := uploadIDOf(x)
	if err != nil {
		return err
	}
	q := x.req.query
	enc, err := listEncoderOf(q)
	if err != nil {
		return err
	}
	maxParts, err := parseMax(q, "max-parts")
	if err != nil {
		return err
	}
	marker := 0
	if v := q.Get("part-number-marker"); v != "" {
		if marker, err = strconv.Atoi(v); err != nil || marker < 0 {
			return errs.New(errs.InvalidArgument, "Argument part-number-marker must be an integer between 0 and 2147483647")
		}
	}
	cell, up, parts, truncated, err := h.b.ListParts(x.r.Context(), x.req.bucket, x.req.key, id, ListPartsOptions{PartNumberMarker: marker, MaxParts: maxParts})
	x.setCell(cell)
	if err != nil {
		return err
	}
	res := listPartsResultXML{Xmlns: xmlNamespace, Bucket: x.req.bucket, Key: enc.enc(x.req.key), UploadID: id,
		Initiator: owner, Owner: owner, StorageClass: "STANDARD", PartNumberMarker: marker,
		MaxParts: maxParts, IsTruncated: truncated, ChecksumAlgorithm: up.Meta.ChecksumAlgorithm,
		ChecksumType: uploadChecksumType(up)}
	if enc {
		res.EncodingType = "url"
	}
	for _, p := range parts {
		px := partXML{PartNumber: p.Number, LastModified: xmlTime(p.LastModified), ETag: quoteETag(p.ETag), Size: p.Size}
		setChecksumField(up.Meta.ChecksumAlgorithm, p.Checksum, &px.ChecksumCRC32, &px.ChecksumCRC32C,
			&px.ChecksumCRC64NVME, &px.ChecksumSHA1, &px.ChecksumSHA256)
		res.Parts = append(res.Parts, px)
		res.NextPartNumberMarker = p.Number
	}
	return x.writeXML(http.StatusOK, res)
}

func (h *handler) listUploads(x *exchange) error {
	q := x.req.query
	enc, err := listEncoderOf(q)
	if err != nil {
		return err
	}
	maxUploads, err := parseMax(q, "max-uploads")
	if err != nil {
		return err
	}
	for _, p := range []string{"prefix", "delimiter", "key-marker"} {
		if !utf8Valid(q.Get(p)) {
			return errs.New(errs.InvalidArgument, "The %s parameter must be valid UTF-8.", p)
		}
	}
	opts := ListUploadsOptions{Prefix: q.Get("prefix"), KeyMarker: q.Get("key-marker"), UploadIDMarker: q.Get("upload-id-marker"), MaxUploads: maxUploads}
	delim := q.Get("delimiter")
	page, err := h.uploadsPage(x, opts, delim)
	if err != nil {
		return err
	}
	res := listUploadsResultXML{Xmlns: xmlNamespace, Bucket: x.req.bucket, KeyMarker: enc.enc(opts.KeyMarker),
		UploadIDMarker: opts.UploadIDMarker, Prefix: enc.enc(opts.Prefix), Delimiter: enc.enc(delim),
		MaxUploads: maxUploads, IsTruncated: page.truncated}
	if enc {
		res.EncodingType = "url"
	}
	for _, e := range page.entries {
		if e.prefix != "" {
			res.CommonPrefixes = append(res.CommonPrefixes, commonPrefixXML{Prefix: enc.enc(e.prefix)})
			continue
		}
		u := e.upload
		res.Uploads = append(res.Uploads, uploadXML{Key: enc.enc(u.Key), UploadID: u.UploadID, Initiator: owner,
			Owner: owner, StorageClass: "STANDARD", Initiated: xmlTime(u.Initiated),
			ChecksumAlgorithm: u.Meta.ChecksumAlgorithm, ChecksumType: uploadChecksumType(u)})
	}
	if page.truncated && len(page.entries) > 0 {
		// Continue after the last entry: an upload, or a common prefix (whose
		// uploads the next page skips, as it skips those of a key-marker that is one).
		last := page.entries[len(page.entries)-1]
		if last.prefix != "" {
			res.NextKeyMarker = enc.enc(last.prefix)
		} else {
			res.NextKeyMarker, res.NextUploadIDMarker = enc.enc(last.upload.Key), last.upload.UploadID
		}
	}
	return x.writeXML(http.StatusOK, res)
}

// uploadEntry is one entry of a ListMultipartUploads page: an upload, or the common
// prefix of uploads rolled up by the delimiter.
type uploadEntry struct {
	upload UploadInfo
	prefix string
}

type uploadsPage struct {
	entries   []uploadEntry
	truncated bool
}

// maxUploadPages bounds the backend pages one ListMultipartUploads reads to fill its
// page when a delimiter rolls uploads up into common prefixes.
const maxUploadPages = 100

// uploadsPage reads uploads from the backend until it has opts.MaxUploads entries,
// uploads and common prefixes counted alike as S3 counts them, with each common
// prefix given once and none at or before the key marker.
func (h *handler) uploadsPage(x *exchange, opts ListUploadsOptions, delim string) (uploadsPage, error) {
	var page uploadsPage
	lastPrefix := ""
	next := opts
	for range maxUploadPages {
		cell, ups, more, err := h.b.ListUploads(x.r.Context(), x.req.bucket, next)
		x.setCell(cell)
		if err != nil {
			return page, err
		}
		if delim == "" { // nothing rolls up: the backend's page is the page
			for _, u := range ups {
				page.entries = append(page.entries, uploadEntry{upload: u})
			}
			page.truncated = more
			return page, nil
		}
		for _, u := range ups {
			cp := ""
			if i := strings.Index(u.Key[len(opts.Prefix):], delim); i >= 0 {
				cp = u.Key[:len(opts.Prefix)+i+len(delim)]
			}
			if cp != "" && (cp == lastPrefix || cp <= opts.KeyMarker) {
				continue // rolled into a prefix already given, here or on an earlier page
			}
			if len(page.entries) == opts.MaxUploads {
				page.truncated = true
				return page, nil
			}
			if cp != "" {
				lastPrefix = cp
				page.entries = append(page.entries, uploadEntry{prefix: cp})
			} else {
				page.entries = append(page.entries, uploadEntry{upload: u})
			}
		}
		if !more || len(ups) == 0 {
			return page, nil
		}
		last := ups[len(ups)-1]
		next.KeyMarker, next.UploadIDMarker = last.Key, last.UploadID
	}
	page.truncated = true // the entries so far; the client continues from the last
	return page, nil
}

type copyPartResultXML struct {
	XMLName      xml.Name `xml:"CopyPartResult"`
	Xmlns        string   `xml:"xmlns,attr"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`

	ChecksumCRC32     string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string `xml:"ChecksumSHA256,omitempty"`
}

// uploadPartCopy makes a part of an upload from (a range of) an existing object, as
// the aws CLI does to copy large objects between buckets.
func (h *handler) uploadPartCopy(x *exchange) error {
	n, id, err := partOf(x)
	if err != nil {
		return err
	}
	hdr := x.r.Header
	srcBucket, srcKey, err := parseCopySource(hdr.Get("x-amz-copy-source"))
	if err != nil {
		return err
	}
	var length int64
	cell, _, body, err := h.b.GetObject(x.r.Context(), GetInput{Bucket: srcBucket, Key: srcKey, Choose: func(info ObjectInfo) (int64, int64, error) {
		if err := copyPreconditions(hdr, info); err != nil {
			return 0, 0, err
		}
		off, n := int64(0), info.Size
		if v := hdr.Get("x-amz-copy-source-range"); v != "" {
			var first, last int64
			if _, err := fmt.Sscanf(v, "bytes=%d-%d", &first, &last); err != nil || first < 0 || last < first ||
				v != fmt.Sprintf("bytes=%d-%d", first, last) {
				return 0, 0, errs.New(errs.InvalidArgument, "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
			}
			if last >= info.Size {
				// S3 answers a well-formed range past the source with 400 InvalidArgument
				// (not the 416 InvalidRange of a GET).
				return 0, 0, errs.New(errs.InvalidArgument, "Range specified is not valid for source object of size: %d", info.Size)
			}
			off, n = first, last-first+1
		}
		if n > h.maxSize {
			return 0, 0, errs.New(errs.EntityTooLarge, "The part to copy is larger than the maximum allowed size of %d bytes.", h.maxSize)
		}
		length = n
		return off, n, nil
	}})
	x.setCell(cell)
	if err != nil {
		return err
	}
	defer body.Close()
	payload := newPayloadReader(body, length, h.maxSize, nil, nil)
	cell, part, err := h.b.UploadPart(x.r.Context(), PartInput{Bucket: x.req.bucket, Key: x.req.key, UploadID: id, Number: n, Size: length, Body: payload,
		CheckUpload: func(up UploadInfo) error { return settlePartChecksum(payload, up) }, Checksum: payload.checksum})
	x.setCell(cell)
	if err != nil {
		if errs.Is(err, errs.IncompleteBody) {
			return errs.Wrap(errs.Internal, err, "copy source read failed")
		}
		return err
	}
	if err := checkConsumed(payload, x); err != nil {
		return err
	}
	res := copyPartResultXML{Xmlns: xmlNamespace, LastModified: xmlTime(part.LastModified), ETag: quoteETag(part.ETag)}
	setChecksumField(payload.ckAlg, payload.checksum(), &res.ChecksumCRC32, &res.ChecksumCRC32C, &res.ChecksumCRC64NVME,
		&res.ChecksumSHA1, &res.ChecksumSHA256)
	return x.writeXML(http.StatusOK, res)
}
