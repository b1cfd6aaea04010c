package s3

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/cellarsim/cellar/internal/errs"
)

// S3 versioning: PutBucketVersioning and GetBucketVersioning, a version id per write
// (x-amz-version-id), GET, HEAD and DELETE of one version (?versionId), delete markers,
// and ListObjectVersions. A Backend that also implements VersioningBackend serves them;
// over any other Backend every bucket is unversioned, as S3's are until versioning is
// enabled: ListObjectVersions lists one "null" version per key, and versionId is
// accepted as "null" only.

// Bucket versioning states, as S3 names them ("" for a bucket never versioned).
const (
	VersioningEnabled   = "Enabled"
	VersioningSuspended = "Suspended"
)

// VersionInfo is one version of a key in a listing.
type VersionInfo struct {
	ObjectInfo        // Bucket, Key, VersionID, LastModified, and for a version with data the rest
	IsLatest     bool // the key's current version
	DeleteMarker bool // a delete marker: no data
}

// ListVersionsOptions selects the versions a ListObjectVersions call returns.
type ListVersionsOptions struct {
	Prefix, Delimiter string
	// Versions after (KeyMarker, VersionIDMarker): with no VersionIDMarker, the
	// versions of keys after KeyMarker.
	KeyMarker, VersionIDMarker string
	MaxKeys                    int // 1..1000: versions plus common prefixes
}

// ListVersionsResult is one page of versions, in key order and, within a key, newest
// first.
type ListVersionsResult struct {
	Versions       []VersionInfo
	CommonPrefixes []string
	IsTruncated    bool
	// when truncated: where the next page starts (a version id "" when the page
	// ends with a common prefix).
	NextKeyMarker, NextVersionIDMarker string
}

// DeleteInfo is what a delete did in a versioned bucket.
type DeleteInfo struct {
	// VersionID is the version deleted (with a version id) or the delete marker made;
	// "" when the bucket was never versioned and no version was named.
	VersionID string
	// DeleteMarker: a delete marker was made, or the version deleted is one.
	DeleteMarker bool
}

// VersioningBackend is a Backend with S3 versioning. ObjectInfo.VersionID carries the
// version of an object written or read ("" in a bucket never versioned); GetInput's
// VersionID selects the version to read.
type VersioningBackend interface {
	Backend
	PutBucketVersioning(ctx context.Context, bucket, status string) (cell string, err error)
	// GetBucketVersioning returns VersioningEnabled, VersioningSuspended or "".
	GetBucketVersioning(ctx context.Context, bucket string) (cell, status string, err error)
	// HeadObjectVersion is HeadObject of one version ("" for the current one).
	HeadObjectVersion(ctx context.Context, bucket, key, versionID string) (cell string, info ObjectInfo, err error)
	// DeleteObjectVersion deletes one version for good, or, with versionID "", the key
	// as the bucket's versioning says.
	DeleteObjectVersion(ctx context.Context, bucket, key, versionID string) (cell string, res DeleteInfo, err error)
	ListObjectVersions(ctx context.Context, bucket string, opts ListVersionsOptions) (cell string, res ListVersionsResult, err error)
}

// DeleteMarkerError is the error of a read that found a delete marker: NoSuchKey when
// it is the key's current version, MethodNotAllowed when the read named it. The
// answer carries x-amz-delete-marker: true and the marker's version id.
type DeleteMarkerError struct {
	Err          error
	VersionID    string
	LastModified time.Time
}

func (e *DeleteMarkerError) Error() string { return e.Err.Error() }
func (e *DeleteMarkerError) Unwrap() error { return e.Err }

// versioned returns the backend's versioning, if it has any.
func (h *handler) versioned() (VersioningBackend, bool) {
	vb, ok := h.b.(VersioningBackend)
	return vb, ok
}

// checkVersionID refuses a versionId the backend cannot serve: any but "null" when it
// has no versioning, and an empty one.
func (h *handler) checkVersionID(q map[string][]string) error {
	vs, ok := q[versionIDParam]
	if !ok {
		return nil
	}
	v := ""
	if len(vs) > 0 {
		v = vs[0]
	}
	if _, ok := h.versioned(); ok {
		if v == "" || len(v) > 1024 || !utf8.ValidString(v) {
			return errs.New(errs.InvalidArgument, "Invalid version id specified")
		}
		return nil
	}
	if v != versionNull {
		return errs.New(errs.InvalidArgument, "Invalid version id specified: buckets of this gateway are not versioned.")
	}
	return nil
}

// requestVersion is the versionId of the request for a versioning backend ("" when
// it names none).
func (h *handler) requestVersion(x *exchange) string {
	if _, ok := h.versioned(); !ok {
		return ""
	}
	return x.req.query.Get(versionIDParam)
}

// setVersionHeaders sets x-amz-version-id (and x-amz-delete-marker) of an answer.
func setVersionHeaders(hdr http.Header, versionID string, deleteMarker bool) {
	if versionID != "" {
		hdr.Set("x-amz-version-id", versionID)
	}
	if deleteMarker {
		hdr.Set("x-amz-delete-marker", "true")
	}
}

// setDeleteMarkerHeaders adds to an error answer what S3 says of a delete marker
// that a read found.
func setDeleteMarkerHeaders(hdr http.Header, err error) {
	var dm *DeleteMarkerError
	if !errors.As(err, &dm) {
		return
	}
	setVersionHeaders(hdr, dm.VersionID, true)
	if errs.Is(err, errs.MethodNotAllowed) && !dm.LastModified.IsZero() {
		hdr.Set("Last-Modified", dm.LastModified.UTC().Format(http.TimeFormat))
	}
}

type versioningConfigurationInXML struct {
	XMLName   xml.Name `xml:"VersioningConfiguration"`
	Status    string   `xml:"Status"`
	MfaDelete string   `xml:"MfaDelete"`
}

type versioningStatusXML struct {
	XMLName xml.Name `xml:"VersioningConfiguration"`
	Xmlns   string   `xml:"xmlns,attr"`
	Status  string   `xml:"Status,omitempty"`
}

const maxVersioningBody = 64 << 10

// putBucketVersioning serves PutBucketVersioning: Enabled or Suspended. MFA delete is
// not implemented.
func (h *handler) putBucketVersioning(x *exchange) error {
	vb, ok := h.versioned()
	if !ok {
		return errs.New(errs.NotImplemented, "cellar does not implement PutBucketVersioning on this gateway.")
	}
	var cfg versioningConfigurationInXML
	if err := readXML(x, maxVersioningBody, &cfg, true); err != nil {
		return err
	}
	if cfg.Status != VersioningEnabled && cfg.Status != VersioningSuspended {
		return errs.New(errs.MalformedXML, "The versioning Status must be Enabled or Suspended.")
	}
	switch cfg.MfaDelete {
	case "", "Disabled":
	case "Enabled":
		return errs.New(errs.NotImplemented, "cellar does not implement MFA delete.")
	default:
		return errs.New(errs.MalformedXML, "MfaDelete must be Enabled or Disabled.")
	}
	if x.r.Header.Get("x-amz-mfa") != "" {
		return errs.New(errs.NotImplemented, "cellar does not implement MFA delete.")
	}
	cell, err := vb.PutBucketVersioning(x.r.Context(), x.req.bucket, cfg.Status)
	x.setCell(cell)
	if err != nil {
		return err
	}
	x.w.Header().Set("Content-Length", "0")
	x.writeHeader(http.StatusOK)
	return nil
}

// getBucketVersioningStatus serves GetBucketVersioning from a versioning backend.
func (h *handler) getBucketVersioningStatus(x *exchange, vb VersioningBackend) error {
	cell, status, err := vb.GetBucketVersioning(x.r.Context(), x.req.bucket)
	x.setCell(cell)
	if err != nil {
		return err
	}
	return x.writeXML(http.StatusOK, versioningStatusXML{Xmlns: xmlNamespace, Status: status})
}

type versionEntryXML struct {
	XMLName xml.Name `xml:"Version"`
	versionXML
}

type deleteMarkerXML struct {
	XMLName      xml.Name `xml:"DeleteMarker"`
	Key          xmlText  `xml:"Key"`
	VersionID    string   `xml:"VersionId"`
	IsLatest     bool     `xml:"IsLatest"`
	LastModified string   `xml:"LastModified"`
	Owner        ownerXML `xml:"Owner"`
}

// listVersionsXML is ListVersionsResult with delete markers. Versions and delete
// markers are written in listing order, each as its own element.
type listVersionsXML struct {
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
	Entries             []any             // versionXML and deleteMarkerXML, in order
	CommonPrefixes      []commonPrefixXML `xml:"CommonPrefixes"`
}

// listVersions serves ListObjectVersions from a versioning backend.
func (h *handler) listVersions(x *exchange, vb VersioningBackend) error {
	q := x.req.query
	enc, maxKeys, err := objectListingParams(q)
	if err != nil {
		return err
	}
	if q.Get("version-id-marker") != "" && q.Get("key-marker") == "" {
		return errs.New(errs.InvalidArgument, "A version-id marker cannot be specified without a key marker.")
	}
	for _, p := range []string{"prefix", "delimiter", "key-marker", "version-id-marker"} {
		if !utf8Valid(q.Get(p)) {
			return errs.New(errs.InvalidArgument, "The %s parameter must be valid UTF-8.", p)
		}
	}
	opts := ListVersionsOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"),
		KeyMarker: q.Get("key-marker"), VersionIDMarker: q.Get("version-id-marker"), MaxKeys: maxKeys}
	res := listVersionsXML{
		Xmlns: xmlNamespace, Name: x.req.bucket, Prefix: enc.enc(opts.Prefix), KeyMarker: enc.enc(opts.KeyMarker),
		VersionIDMarker: opts.VersionIDMarker, MaxKeys: maxKeys, Delimiter: enc.enc(opts.Delimiter),
	}
	if enc {
		res.EncodingType = "url"
	}
	var lr ListVersionsResult
	var cell string
	if maxKeys == 0 {
		cell, err = h.b.HeadBucket(x.r.Context(), x.req.bucket)
	} else {
		cell, lr, err = vb.ListObjectVersions(x.r.Context(), x.req.bucket, opts)
	}
	x.setCell(cell)
	if err != nil {
		return err
	}
	for _, v := range lr.Versions {
		id := v.VersionID
		if id == "" {
			id = versionNull
		}
		if v.DeleteMarker {
			res.Entries = append(res.Entries, deleteMarkerXML{
				Key: enc.enc(v.Key), VersionID: id, IsLatest: v.IsLatest, LastModified: xmlTime(v.LastModified), Owner: owner})
			continue
		}
		res.Entries = append(res.Entries, versionEntryXML{versionXML: versionXML{
			Key: enc.enc(v.Key), VersionID: id, IsLatest: v.IsLatest, LastModified: xmlTime(v.LastModified),
			ETag: quoteETag(v.ETag), Size: v.Size, Owner: owner, StorageClass: storageClassStandard,
		}})
	}
	for _, p := range lr.CommonPrefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, commonPrefixXML{Prefix: enc.enc(p)})
	}
	res.IsTruncated = lr.IsTruncated
	if lr.IsTruncated {
		res.NextKeyMarker = enc.enc(lr.NextKeyMarker)
		res.NextVersionIDMarker = lr.NextVersionIDMarker
	}
	return x.writeXML(http.StatusOK, res)
}

// deleteVersion serves DeleteObject through a versioning backend.
func (h *handler) deleteVersion(x *exchange, vb VersioningBackend) error {
	versionID := x.req.query.Get(versionIDParam)
	cell, res, err := vb.DeleteObjectVersion(x.r.Context(), x.req.bucket, x.req.key, versionID)
	x.setCell(cell)
	if err != nil && !errs.Is(err, errs.NoSuchKey) {
		return err
	}
	setVersionHeaders(x.w.Header(), res.VersionID, res.DeleteMarker)
	x.writeHeader(http.StatusNoContent)
	return nil
}

// versionLabel is how S3 writes a version id in a body: "null" for the null version.
func versionLabel(id string) string {
	if id == "" {
		return versionNull
	}
	return id
}

// opPutBucketVersioning is PUT /bucket?versioning.
const opPutBucketVersioning operation = 2000

func init() { configOpNames[opPutBucketVersioning] = "PutBucketVersioning" }

// serveVersioning serves the requests versioning changes, and reports whether it did.
func (h *handler) serveVersioning(x *exchange) (bool, error) {
	if err := h.checkVersionID(x.req.query); err != nil {
		return true, err
	}
	if x.req.op == opPutBucketVersioning {
		return true, h.putBucketVersioning(x)
	}
	vb, ok := h.versioned()
	if !ok {
		return false, nil
	}
	switch x.req.op {
	case opGetBucketVersioning:
		return true, h.getBucketVersioningStatus(x, vb)
	case opListObjectVersions:
		return true, h.listVersions(x, vb)
	case opDeleteObject:
		return true, h.deleteVersion(x, vb)
	}
	return false, nil
}

// headObject is HeadObject of the version named ("" for the current one).
func (h *handler) headObject(ctx context.Context, bucket, key, versionID string) (string, ObjectInfo, error) {
	if vb, ok := h.versioned(); ok {
		return vb.HeadObjectVersion(ctx, bucket, key, versionID)
	}
	return h.b.HeadObject(ctx, bucket, key)
}
