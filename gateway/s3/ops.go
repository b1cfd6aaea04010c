package s3

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cellarsim/cellar/internal/errs"
)

// DeleteObjects, ListObjectVersions, GetBucketVersioning and CopyObject: operations
// the handler builds from the Backend's single-object calls.

const (
	maxDeleteObjects    = 1000
	maxDeleteBody       = 2 << 20
	deleteParallelism   = 8
	maxCompleteBody     = 4 << 20
	versionNull         = "null"
	copyMetadataCopy    = "COPY"
	copyMetadataReplace = "REPLACE"
)

type deleteRequestXML struct {
	XMLName xml.Name `xml:"Delete"`
	Quiet   bool     `xml:"Quiet"`
	Objects []struct {
		Key       string  `xml:"Key"`
		VersionID *string `xml:"VersionId"`
	} `xml:"Object"`
}

type deletedXML struct {
	Key                   xmlText `xml:"Key"`
	VersionID             string  `xml:"VersionId,omitempty"`
	DeleteMarker          bool    `xml:"DeleteMarker,omitempty"`
	DeleteMarkerVersionID string  `xml:"DeleteMarkerVersionId,omitempty"`
}

type deleteErrorXML struct {
	Key     xmlText `xml:"Key"`
	Code    string  `xml:"Code"`
	Message string  `xml:"Message"`
}

type deleteResultXML struct {
	XMLName xml.Name         `xml:"DeleteResult"`
	Xmlns   string           `xml:"xmlns,attr"`
	Deleted []deletedXML     `xml:"Deleted"`
	Errors  []deleteErrorXML `xml:"Error"`
}

// readXML decodes a small XML request body (readXMLBody) into v.
func readXML(x *exchange, limit int64, v any, bodyChecksum bool) error {
	b, err := readXMLBody(x, limit, bodyChecksum)
	if err != nil {
		return err
	}
	if err := xml.Unmarshal(b, v); err != nil {
		return malformedXML(err)
	}
	return nil
}

// readXMLBody reads a small XML request body, checking Content-MD5 and, when
// bodyChecksum is set, any x-amz-checksum-* header the client sent for it (those of a
// CompleteMultipartUpload are the object's, not the body's).
func readXMLBody(x *exchange, limit int64, bodyChecksum bool) ([]byte, error) {
	var wantMD5 []byte
	if _, ok := x.r.Header["Content-Md5"]; ok {
		var err error
		if wantMD5, err = parseContentMD5(x.r.Header.Get("Content-MD5")); err != nil {
			return nil, err
		}
	}
	var cr checksumRequest
	if bodyChecksum {
		var err error
		if cr, err = parseChecksumHeaders(x.r.Header, false); err != nil {
			return nil, err
		}
	}
	csha, err := parseContentSHA256(x.r.Header.Get("x-amz-content-sha256"))
	if err != nil {
		return nil, err
	}
	if csha.streaming {
		return nil, errs.New(errs.InvalidRequest, "This request does not accept an aws-chunked body.")
	}
	declared := x.r.ContentLength
	if declared > limit {
		return nil, errs.New(errs.MalformedXML, "The XML you provided is larger than %d bytes.", limit)
	}
	body := newPayloadReader(x.r.Body, declared, limit, wantMD5, csha.digest).withChecksum(cr, nil)
	b, err := io.ReadAll(body)
	if err != nil {
		if errs.Is(err, errs.EntityTooLarge) {
			return nil, errs.New(errs.MalformedXML, "The XML you provided is larger than %d bytes.", limit)
		}
		return nil, err
	}
	return b, nil
}

func malformedXML(err error) error {
	return errs.Wrap(errs.MalformedXML, err, "The XML you provided was not well-formed or did not validate against our published schema.")
}

func (h *handler) deleteObjects(x *exchange) error {
	var req deleteRequestXML
	if err := readXML(x, maxDeleteBody, &req, true); err != nil {
		return err
	}
	if len(req.Objects) == 0 || len(req.Objects) > maxDeleteObjects {
		return errs.New(errs.MalformedXML, "A DeleteObjects request names 1 to %d objects.", maxDeleteObjects)
	}
	// The bucket must exist; after that each key succeeds or fails on its own.
	cell, err := h.b.HeadBucket(x.r.Context(), x.req.bucket)
	x.setCell(cell)
	if err != nil {
		return err
	}
	results := make([]error, len(req.Objects))
	cells := make([]string, len(req.Objects))
	infos := make([]DeleteInfo, len(req.Objects))
	vb, versioned := h.versioned()
	sem := make(chan struct{}, deleteParallelism)
	var wg sync.WaitGroup
	for i, o := range req.Objects {
		if err := validateKey(o.Key); err != nil || o.Key == "" {
			if err == nil {
				err = errs.New(errs.InvalidArgument, "An object key must not be empty.")
			}
			results[i] = err
			continue
		}
		if o.VersionID != nil && (*o.VersionID == "" || !versioned && *o.VersionID != versionNull) {
			results[i] = errs.New(errs.InvalidArgument, "Invalid version id specified")
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var c string
			var err error
			if versioned {
				vid := ""
				if o.VersionID != nil {
					vid = *o.VersionID
				}
				c, infos[i], err = vb.DeleteObjectVersion(x.r.Context(), x.req.bucket, o.Key, vid)
			} else {
				c, err = h.b.DeleteObject(x.r.Context(), x.req.bucket, o.Key)
			}
			if errs.Is(err, errs.NoSuchKey) {
				err = nil
			}
			results[i], cells[i] = err, c
		}()
	}
	wg.Wait()
	res := deleteResultXML{Xmlns: xmlNamespace}
	for i, o := range req.Objects {
		x.setCell(cells[i])
		if err := results[i]; err != nil {
			_, code, msg := errs.S3(err)
			h.log.Info("gateway: DeleteObjects key failed", "request_id", x.id, "bucket", x.req.bucket, "key", o.Key, "err", err)
			res.Errors = append(res.Errors, deleteErrorXML{Key: xmlText(o.Key), Code: code, Message: msg})
			continue
		}
		if !req.Quiet {
			d := deletedXML{Key: xmlText(o.Key)}
			if o.VersionID != nil {
				d.VersionID = *o.VersionID
			}
			if in := infos[i]; in.DeleteMarker {
				d.DeleteMarker, d.DeleteMarkerVersionID = true, versionLabel(in.VersionID)
			}
			res.Deleted = append(res.Deleted, d)
		}
	}
	return x.writeXML(http.StatusOK, res)
}

type versionXML struct {
	Key          xmlText  `xml:"Key"`
	VersionID    string   `xml:"VersionId"`
	IsLatest     bool     `xml:"IsLatest"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
	Size         int64    `xml:"Size"`
	Owner        ownerXML `xml:"Owner"`
	StorageClass string   `xml:"StorageClass"`
}

type listVersionsResultXML struct {
	XMLName             xml.Name          `xml:"ListVersionsResult"`
	Xmlns               string            `xml:"xmlns,attr"`
	Name                string            `xml:"Name"`
	Prefix              xmlText           `xml:"Prefix"`
	KeyMarker           xmlText           `xml:"KeyMarker"`
	VersionIDMarker     string            `xml:"VersionIdMarker"`
	NextKeyMarker       xmlText           `xml:"NextKeyMarker,omitempty"`
	NextVersionIDMarker string            `xml:"NextVersionIdMarker,omitempty"`
	MaxKeys             int               `xml:"MaxKeys"`
	Delimiter           xmlText           `xml:"Delimiter,omitempty"`
	EncodingType        string            `xml:"EncodingType,omitempty"`
	IsTruncated         bool              `xml:"IsTruncated"`
	Versions            []versionXML      `xml:"Version"`
	CommonPrefixes      []commonPrefixXML `xml:"CommonPrefixes"`
}

// listObjectVersions lists an unversioned bucket as S3 does: one version per key,
// with version id "null".
func (h *handler) listObjectVersions(x *exchange) error {
	q := x.req.query
	enc, maxKeys, err := objectListingParams(q)
	if err != nil {
		return err
	}
	if q.Get("version-id-marker") != "" && q.Get("key-marker") == "" {
		return errs.New(errs.InvalidArgument, "A version-id marker cannot be specified without a key marker.")
	}
	for _, p := range []string{"prefix", "delimiter", "key-marker"} {
		if !utf8Valid(q.Get(p)) {
			return errs.New(errs.InvalidArgument, "The %s parameter must be valid UTF-8.", p)
		}
	}
	opts := ListOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), StartAfter: q.Get("key-marker"), MaxKeys: maxKeys}
	res := listVersionsResultXML{
		Xmlns: xmlNamespace, Name: x.req.bucket, Prefix: enc.enc(opts.Prefix), KeyMarker: enc.enc(opts.StartAfter),
		VersionIDMarker: q.Get("version-id-marker"), MaxKeys: maxKeys, Delimiter: enc.enc(opts.Delimiter),
	}
	if enc {
		res.EncodingType = "url"
	}
	lr, err := h.listPage(x, opts)
	if err != nil {
		return err
	}
	for _, o := range lr.Objects {
		res.Versions = append(res.Versions, versionXML{
			Key: enc.enc(o.Key), VersionID: versionNull, IsLatest: true, LastModified: xmlTime(o.LastModified),
			ETag: quoteETag(o.ETag), Size: o.Size, Owner: owner, StorageClass: "STANDARD",
		})
	}
	for _, p := range lr.CommonPrefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, commonPrefixXML{Prefix: enc.enc(p)})
	}
	res.IsTruncated = lr.IsTruncated
	if lr.IsTruncated {
		next := lr.Next
		if next == "" {
			next = lastListed(lr)
		}
		res.NextKeyMarker, res.NextVersionIDMarker = enc.enc(next), versionNull
	}
	return x.writeXML(http.StatusOK, res)
}

type versioningConfigurationXML struct {
	XMLName xml.Name `xml:"VersioningConfiguration"`
	Xmlns   string   `xml:"xmlns,attr"`
}

// getBucketVersioning says what it says for a bucket whose versioning was never
// enabled: nothing.
func (h *handler) getBucketVersioning(x *exchange) error {
	cell, err := h.b.HeadBucket(x.r.Context(), x.req.bucket)
	x.setCell(cell)
	if err != nil {
		return err
	}
	return x.writeXML(http.StatusOK, versioningConfigurationXML{Xmlns: xmlNamespace})
}

type copyObjectResultXML struct {
	XMLName      xml.Name `xml:"CopyObjectResult"`
	Xmlns        string   `xml:"xmlns,attr"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

// parseCopySource reads x-amz-copy-source: "[/]bucket/key[?versionId=null]", URL-encoded.
func parseCopySource(v string) (bucket, key string, err error) {
	bad := func(why string) error {
		return errs.New(errs.InvalidArgument, "Invalid copy source: %s.", why)
	}
	path, query, _ := strings.Cut(v, "?")
	if query != "" {
		q, perr := url.ParseQuery(query)
		if perr != nil || len(q) != 1 || q.Get("versionId") != versionNull {
			return "", "", bad("only versionId=null may follow the key")
		}
	}
	p, uerr := url.PathUnescape(path)
	if uerr != nil {
		return "", "", bad("the source is not URL-encoded correctly")
	}
	bucket, key, _ = strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if bucket == "" || key == "" {
		return "", "", bad("it must name a bucket and a key")
	}
	if err := validateBucketName(bucket); err != nil {
		return "", "", err
	}
	if err := validateKey(key); err != nil {
		return "", "", err
	}
	return bucket, key, nil
}

// copyPreconditions evaluates the x-amz-copy-source-if-* headers: 412 when they fail.
func copyPreconditions(h http.Header, info ObjectInfo) error {
	failed := false
	lm := info.LastModified.Truncate(time.Second)
	if v := h.Get("x-amz-copy-source-if-match"); v != "" {
		failed = failed || !etagMatches(v, info.ETag)
	} else if v := h.Get("x-amz-copy-source-if-unmodified-since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && lm.After(t) {
			failed = true
		}
	}
	if v := h.Get("x-amz-copy-source-if-none-match"); v != "" {
		failed = failed || etagMatches(v, info.ETag)
	} else if v := h.Get("x-amz-copy-source-if-modified-since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && !lm.After(t) {
			failed = true
		}
	}
	if failed {
		return errs.New(errs.PreconditionFailed, "At least one of the pre-conditions you specified did not hold")
	}
	return nil
}

// copyObject streams the source object through the gateway into the destination:
// both may be in different cells.
func (h *handler) copyObject(x *exchange) error {
	hdr := x.r.Header
	srcBucket, srcKey, err := parseCopySource(hdr.Get("x-amz-copy-source"))
	if err != nil {
		return err
	}
	directive := strings.ToUpper(hdr.Get("x-amz-metadata-directive"))
	if directive == "" {
		directive = copyMetadataCopy
	}
	if directive != copyMetadataCopy && directive != copyMetadataReplace {
		return errs.New(errs.InvalidArgument, "Unknown metadata directive.")
	}
	if srcBucket == x.req.bucket && srcKey == x.req.key && directive == copyMetadataCopy {
		return errs.New(errs.InvalidRequest, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	cond, err := writePrecondition(hdr)
	if err != nil {
		return err
	}
	replaceTags, newTags, err := copyTagging(hdr)
	if err != nil {
		return err
	}
	var newMeta ObjectMeta
	if directive == copyMetadataReplace {
		if newMeta, err = metaFromHeaders(hdr); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(x.r.Context())
	defer cancel()
	cell, src, body, err := h.b.GetObject(ctx, GetInput{Bucket: srcBucket, Key: srcKey, Choose: func(info ObjectInfo) (int64, int64, error) {
		if err := copyPreconditions(hdr, info); err != nil {
			return 0, 0, err
		}
		if info.Size > h.maxSize {
			return 0, 0, errs.New(errs.InvalidRequest, "The specified copy source is larger than the maximum allowable size for a copy source: %d", h.maxSize)
		}
		return 0, info.Size, nil
	}})
	x.setCell(cell)
	if err != nil {
		return err
	}
	defer body.Close()
	meta := src.ObjectMeta
	if directive == copyMetadataReplace {
		meta = newMeta
	}
	meta.Tags = src.Tags // x-amz-tagging-directive COPY, the default
	if replaceTags {
		meta.Tags = newTags
	}
	// A full-object checksum of the source still holds for the copy, and is verified
	// on the way; a composite one (of parts) does not.
	var cr checksumRequest
	if src.ChecksumAlgorithm != "" && !strings.Contains(src.Checksum, "-") {
		cr = checksumRequest{alg: src.ChecksumAlgorithm, value: src.Checksum}
	}
	meta.ChecksumAlgorithm, meta.Checksum = cr.alg, ""
	payload := newPayloadReader(body, src.Size, h.maxSize, nil, nil).withChecksum(cr, nil)
	in := PutInput{Bucket: x.req.bucket, Key: x.req.key, Size: src.Size, Body: payload, Meta: meta, Cond: cond}
	if cr.alg != "" {
		in.Checksum = payload.checksum
	}
	cell, info, err := h.b.PutObject(x.r.Context(), in)
	x.setCell(cell)
	if err != nil {
		if errs.Is(err, errs.IncompleteBody) || errs.Is(err, errs.BadDigest) {
			// The source, not the client, was short or damaged.
			return errs.Wrap(errs.Internal, err, "copy source read failed")
		}
		return err
	}
	if err := checkConsumed(payload, x); err != nil {
		return err
	}
	setVersionHeaders(x.w.Header(), info.VersionID, false)
	return x.writeXML(http.StatusOK, copyObjectResultXML{Xmlns: xmlNamespace, LastModified: xmlTime(info.LastModified), ETag: quoteETag(info.ETag)})
}
