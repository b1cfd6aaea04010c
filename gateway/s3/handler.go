package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cellarsim/cellar/internal/errs"
)

const (
	hdrCell      = "x-cellar-cell"
	hdrRequestID = "x-amz-request-id"
	hdrID2       = "x-amz-id-2"

	cellNone             = "none" // x-cellar-cell of a request refused before any cell was involved
	defaultRegion        = "us-east-1"
	defaultMaxObjectSize = 5 << 30
	defaultContentType   = "binary/octet-stream"
	maxCreateBucketBody  = 64 << 10
	maxListBuckets       = 10000

	// outcomeClientClosed is the outcome of a request whose client went away (or
	// cancelled it) before it was answered in full; statusClientClosedRequest is the
	// status the log gives it (nginx's 499: no client ever sees it).
	outcomeClientClosed       = "ClientClosedRequest"
	statusClientClosedRequest = 499
)

// handler serves the S3 API on top of a Backend.
type handler struct {
	b       Backend
	region  string
	maxSize int64
	log     *slog.Logger
	m       *metrics
	creds   map[string]string // access key → secret; empty: authentication is off
	tenants map[string]string // access key → tenant name; empty: no tenants
	now     func() time.Time
}

// NewHandler returns the S3 API (path-style: /bucket and /bucket/key) served from b.
func NewHandler(b Backend, opts HandlerOptions) http.Handler {
	h := &handler{b: b, region: opts.Region, maxSize: opts.MaxObjectSize, log: opts.Logger, m: newMetrics(opts.Registerer),
		creds: opts.Credentials, tenants: opts.Tenants, now: opts.Now}
	if h.now == nil {
		h.now = time.Now
	}
	if h.region == "" {
		h.region = defaultRegion
	}
	if h.maxSize <= 0 {
		h.maxSize = defaultMaxObjectSize
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h
}

// exchange is one request in flight and what the handler has learnt while serving it.
// All responses are started with writeHeader, which stamps x-cellar-cell.
type exchange struct {
	w       http.ResponseWriter
	r       *http.Request
	req     request
	id      string   // x-amz-request-id
	cell    string   // cell(s) that served the request; "" until a backend answered
	status  int      // 0 until the response has started
	outcome string   // "ok" or the S3 error code, for metrics
	auth    *sigAuth // the verified signature; nil when authentication is off

	rangeSize int64 // the object's size, for the Content-Range of a 416
}

func (x *exchange) setCell(cell string) {
	if cell != "" {
		x.cell = cell
	}
}

func (x *exchange) cellName() string {
	if x.cell == "" {
		return cellNone
	}
	return x.cell
}

func (x *exchange) writeHeader(status int) {
	x.w.Header().Set(hdrCell, x.cellName())
	x.w.WriteHeader(status)
	x.status = status
}

// writeXML sends a complete XML document; documents are small (a page of a listing at most).
func (x *exchange) writeXML(status int, v any) error {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		return errs.Wrap(errs.Internal, err, "encoding %T", v)
	}
	h := x.w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	x.writeHeader(status)
	if x.r.Method != http.MethodHead {
		x.w.Write(buf.Bytes()) // a client that went away is not our error
	}
	return nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id, id2 := newRequestID()
	w.Header().Set(hdrRequestID, id)
	w.Header().Set(hdrID2, id2)
	x := &exchange{w: w, r: r, id: id, outcome: "ok"}
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				h.log.Error("gateway: panic serving S3 request", "request_id", x.id, "operation", x.req.op.String(),
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
			if x.status != 0 || p == http.ErrAbortHandler {
				x.outcome = "InternalError"
				h.done(x, start)
				panic(http.ErrAbortHandler) // the response has started: cut the connection
			}
			h.fail(x, errs.New(errs.Internal, "panic"))
		}
		h.done(x, start)
	}()

	req, err := parseRequest(r.Method, r.URL, r.Header)
	x.req = req
	if herr := checkHeaderSize(r); herr != nil {
		err = herr
	} else if req.op == opPreflight {
		// A CORS preflight is unsigned (browsers send no credentials with it); it
		// only reads the bucket's CORS rules.
	} else if auth, aerr := authenticate(r, h.creds, h.now()); aerr != nil {
		err = aerr // a request that is not authentic learns nothing else
	} else {
		x.auth = auth
	}
	if err == nil {
		h.corsForRequest(x)
		err = h.serve(x)
	}
	if err != nil {
		h.fail(x, err)
	}
}

func (h *handler) serve(x *exchange) error {
	if err := refuseEncryption(x.r.Header, x.req.query); err != nil {
		return err
	}
	switch x.req.op {
	case opPutObject, opCopyObject, opCreateUpload, opCreateBucket:
		if err := checkACLHeaders(x.r.Header); err != nil {
			return err
		}
	}
	switch x.req.op {
	case opPutObject, opCopyObject, opCreateUpload:
		if err := refuseUnsupportedWrite(x.r.Header); err != nil {
			return err
		}
	}
	if ok, err := h.serveConfig(x); ok {
		return err
	}
	if ok, err := h.serveVersioning(x); ok {
		return err
	}
	switch x.req.op {
	case opListBuckets:
		return h.listBuckets(x)
	case opCreateBucket:
		return h.createBucket(x)
	case opHeadBucket:
		return h.headBucket(x)
	case opDeleteBucket:
		return h.deleteBucket(x)
	case opGetBucketLocation:
		return h.getBucketLocation(x)
	case opListObjects:
		return h.listObjects(x, false)
	case opListObjectsV2:
		return h.listObjects(x, true)
	case opPutObject:
		return h.putObject(x)
	case opGetObject:
		return h.getObject(x, false)
	case opHeadObject:
		return h.getObject(x, true)
	case opDeleteObject:
		return h.deleteObject(x)
	case opDeleteObjects:
		return h.deleteObjects(x)
	case opListObjectVersions:
		return h.listObjectVersions(x)
	case opGetBucketVersioning:
		return h.getBucketVersioning(x)
	case opCopyObject:
		return h.copyObject(x)
	case opCreateUpload:
		return h.createUpload(x)
	case opUploadPart:
		return h.uploadPart(x)
	case opCompleteUpload:
		return h.completeUpload(x)
	case opAbortUpload:
		return h.abortUpload(x)
	case opListParts:
		return h.listParts(x)
	case opListUploads:
		return h.listUploads(x)
	case opUploadPartCopy:
		return h.uploadPartCopy(x)
	case opGetObjectTagging:
		return h.getObjectTagging(x)
	case opPutBucketEncryption, opGetBucketEncryption, opDeleteBucketEncryption:
		return bucketEncryption(x)
	case opGetBucketACL, opGetObjectACL:
		return h.getACL(x)
	case opPutBucketACL, opPutObjectACL:
		return h.putACL(x)
	}
	return errs.New(errs.NotImplemented, "cellar does not implement this request.")
}

// fail renders err as an S3 error response (or, once the response has started, only
// records and logs it). The client sees only what errs.S3 allows; the log has it all.
func (h *handler) fail(x *exchange, err error) {
	status, code, msg := errs.S3(err)
	if clientClosed(x, err) {
		// The client went away or cancelled the request, and the cell call failed
		// because of that ("context canceled"), not because of the cell: log it as
		// the client's doing, and count it apart from the service's errors. The
		// answer below only reaches a client that is still reading.
		x.outcome = outcomeClientClosed
		h.log.Info("gateway: client closed the request", "request_id", x.id,
			"operation", x.req.op.String(), "bucket", x.req.bucket, "key", x.req.key, "cell", x.cellName(),
			"status", statusClientClosedRequest, "err", err, "response_started", x.status != 0)
	} else {
		x.outcome = code
		level := slog.LevelInfo // the client's mistake
		switch {
		case status == http.StatusServiceUnavailable || status == http.StatusNotImplemented:
			level = slog.LevelWarn
		case status >= 500:
			level = slog.LevelError
		}
		h.log.Log(x.r.Context(), level, "gateway: S3 request failed", "request_id", x.id,
			"operation", x.req.op.String(), "bucket", x.req.bucket, "key", x.req.key, "cell", x.cellName(),
			"status", status, "code", code, "err", err, "response_started", x.status != 0)
	}
	if x.status != 0 {
		return
	}
	// Drop headers set for a success that did not happen (ETag, Content-Range...).
	hdr := x.w.Header()
	for k := range hdr {
		if k != http.CanonicalHeaderKey(hdrRequestID) && k != http.CanonicalHeaderKey(hdrID2) && !isCORSHeader(k) {
			delete(hdr, k)
		}
	}
	if status == http.StatusServiceUnavailable {
		hdr.Set("Retry-After", "1")
	}
	setDeleteMarkerHeaders(hdr, err)
	if status == http.StatusRequestedRangeNotSatisfiable {
		hdr.Set("Content-Range", fmt.Sprintf("bytes */%d", x.rangeSize))
	}
	if x.r.Method == http.MethodHead {
		x.writeHeader(status)
		return
	}
	x.writeXML(status, errorResponse{Code: code, Message: msg, Resource: x.r.URL.Path, RequestID: x.id})
}

// clientClosed reports whether err is the failure of a request that its client
// cancelled: the request's context is done, and err is what a cancelled call returns
// (a cancelled context, or the Unavailable that a cancelled gRPC call becomes).
func clientClosed(x *exchange, err error) bool {
	return x.r.Context().Err() != nil && (errors.Is(err, context.Canceled) || errs.Is(err, errs.Unavailable))
}

// done records the request in metrics and the access log.
func (h *handler) done(x *exchange, start time.Time) {
	d := time.Since(start)
	h.m.observe(x.req.op.String(), x.cellName(), x.outcome, d)
	if len(h.tenants) > 0 {
		h.m.observeTenant(tenantLabel(h.tenants, RequestAccessKey(x.r)), x.outcome)
	}
	status := x.status
	if x.outcome == outcomeClientClosed {
		status = statusClientClosedRequest // whatever was sent, the client did not read it all
	}
	h.log.Debug("gateway: S3 request", "request_id", x.id, "method", x.r.Method, "operation", x.req.op.String(),
		"bucket", x.req.bucket, "key", x.req.key, "status", status, "outcome", x.outcome,
		"cell", x.cellName(), "duration", d)
}

// newRequestID returns a fresh x-amz-request-id (16 hex digits, as S3's) and x-amz-id-2.
func newRequestID() (id, id2 string) {
	var b [24]byte
	rand.Read(b[:]) // never fails
	return strings.ToUpper(hex.EncodeToString(b[:8])), base64.StdEncoding.EncodeToString(b[:])
}

// --- service and bucket operations ---

func (h *handler) listBuckets(x *exchange) error {
	q := x.req.query
	maxBuckets := maxListBuckets
	if q.Has("max-buckets") {
		n, err := strconv.Atoi(q.Get("max-buckets"))
		if err != nil || n < 1 || n > maxListBuckets {
			return errs.New(errs.InvalidArgument, "max-buckets must be an integer between 1 and %d.", maxListBuckets)
		}
		maxBuckets = n
	}
	var after string
	if q.Has("continuation-token") {
		var err error
		if after, err = decodeContinuationToken(q.Get("continuation-token")); err != nil {
			return err
		}
	}
	prefix := q.Get("prefix")

	cell, buckets, err := h.b.ListBuckets(x.r.Context())
	x.setCell(cell)
	if err != nil {
		return err
	}
	slices.SortFunc(buckets, func(a, b BucketInfo) int { return strings.Compare(a.Name, b.Name) })
	res := listAllMyBucketsResult{Xmlns: xmlNamespace, Owner: owner, Buckets: []bucketXML{}, Prefix: prefix}
	if r := q.Get("bucket-region"); r != "" && r != h.region {
		buckets = nil
	}
	for _, b := range buckets {
		if !strings.HasPrefix(b.Name, prefix) || b.Name <= after {
			continue
		}
		if len(res.Buckets) == maxBuckets {
			res.ContinuationToken = encodeContinuationToken(res.Buckets[len(res.Buckets)-1].Name)
			break
		}
		res.Buckets = append(res.Buckets, bucketXML{Name: b.Name, CreationDate: xmlTime(b.Created), BucketRegion: h.region})
	}
	return x.writeXML(http.StatusOK, res)
}

func (h *handler) createBucket(x *exchange) error {
	body, err := io.ReadAll(io.LimitReader(x.r.Body, maxCreateBucketBody+1))
	if err != nil {
		return readFailure(err, "")
	}
	if len(body) > maxCreateBucketBody {
		return errs.New(errs.MalformedXML, "The CreateBucket configuration is too large.")
	}
	if len(bytes.TrimSpace(body)) > 0 {
		var cfg createBucketConfiguration
		if err := xml.Unmarshal(body, &cfg); err != nil {
			return errs.Wrap(errs.MalformedXML, err, "The XML you provided was not well-formed or did not validate against our published schema.")
		}
		if lc := cfg.LocationConstraint; lc != "" && lc != h.region {
			return errs.New(errs.IllegalLocation, "The %s location constraint is incompatible for the region specific endpoint this request was sent to (%s).",
				clip(lc, 64), h.region)
		}
	}
	if v := x.r.Header.Get("x-amz-bucket-object-lock-enabled"); strings.EqualFold(v, "true") {
		return errs.New(errs.NotImplemented, "cellar does not implement object lock.")
	}
	cell, err := h.b.CreateBucket(x.r.Context(), x.req.bucket)
	x.setCell(cell)
	if errs.Is(err, errs.BucketExists) && h.region == defaultRegion {
		// us-east-1 answers 200 to its owner creating a bucket again (every bucket of
		// a cluster has the one owner); other regions answer 409 BucketAlreadyOwnedByYou.
		err = nil
	}
	if err != nil {
		return err
	}
	x.w.Header().Set("Location", "/"+x.req.bucket)
	x.w.Header().Set("Content-Length", "0")
	x.writeHeader(http.StatusOK)
	return nil
}

func (h *handler) headBucket(x *exchange) error {
	cell, err := h.b.HeadBucket(x.r.Context(), x.req.bucket)
	x.setCell(cell)
	if err != nil {
		return err
	}
	x.w.Header().Set("x-amz-bucket-region", h.region)
	x.writeHeader(http.StatusOK)
	return nil
}

func (h *handler) deleteBucket(x *exchange) error {
	cell, err := h.b.DeleteBucket(x.r.Context(), x.req.bucket)
	x.setCell(cell)
	if err != nil {
		return err
	}
	x.writeHeader(http.StatusNoContent)
	return nil
}

func (h *handler) getBucketLocation(x *exchange) error {
	cell, err := h.b.HeadBucket(x.r.Context(), x.req.bucket)
	x.setCell(cell)
	if err != nil {
		return err
	}
	loc := locationConstraintXML{Xmlns: xmlNamespace, Region: h.region}
	if h.region == defaultRegion {
		loc.Region = "" // S3 reports us-east-1 as an empty constraint
	}
	return x.writeXML(http.StatusOK, loc)
}

// listPage lists one page of the request's bucket; with MaxKeys 0 there is nothing to
// list, but the bucket must exist.
func (h *handler) listPage(x *exchange, opts ListOptions) (ListResult, error) {
	var (
		lr   ListResult
		cell string
		err  error
	)
	if opts.MaxKeys == 0 {
		cell, err = h.b.HeadBucket(x.r.Context(), x.req.bucket)
	} else {
		cell, lr, err = h.b.ListObjects(x.r.Context(), x.req.bucket, opts)
	}
	x.setCell(cell)
	return lr, err
}

// listObjects serves ListObjects (v1: marker) and ListObjectsV2 (continuation tokens).
func (h *handler) listObjects(x *exchange, v2 bool) error {
	q := x.req.query
	enc, maxKeys, err := objectListingParams(q)
	if err != nil {
		return err
	}
	for _, p := range []string{"prefix", "delimiter", "marker", "start-after"} {
		if !utf8.ValidString(q.Get(p)) {
			return errs.New(errs.InvalidArgument, "The %s parameter must be valid UTF-8.", p)
		}
	}
	opts := ListOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), MaxKeys: maxKeys}
	res := listBucketResult{
		Xmlns:     xmlNamespace,
		Name:      x.req.bucket,
		Prefix:    enc.enc(opts.Prefix),
		Delimiter: enc.enc(opts.Delimiter),
		MaxKeys:   maxKeys,
	}
	if enc {
		res.EncodingType = "url"
	}
	if v2 {
		opts.StartAfter = q.Get("start-after")
		res.StartAfter = enc.enc(opts.StartAfter)
		if q.Has("continuation-token") {
			tok := q.Get("continuation-token")
			if opts.StartAfter, err = decodeContinuationToken(tok); err != nil {
				return err
			}
			res.ContToken = tok
		}
	} else {
		opts.StartAfter = q.Get("marker")
		marker := enc.enc(opts.StartAfter)
		res.Marker = &marker
	}

	lr, err := h.listPage(x, opts)
	if err != nil {
		return err
	}

	withOwner := !v2 || q.Get("fetch-owner") == "true"
	for _, o := range lr.Objects {
		ox := objectXML{
			Key:               enc.enc(o.Key),
			LastModified:      xmlTime(o.LastModified),
			ETag:              quoteETag(o.ETag),
			ChecksumAlgorithm: o.ChecksumAlgorithm,
			Size:              o.Size,
			StorageClass:      "STANDARD",
		}
		if withOwner {
			ox.Owner = &owner
		}
		res.Contents = append(res.Contents, ox)
	}
	for _, p := range lr.CommonPrefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, commonPrefixXML{Prefix: enc.enc(p)})
	}
	res.IsTruncated = lr.IsTruncated
	next := lr.Next
	if lr.IsTruncated && next == "" {
		next = lastListed(lr)
		if next == "" {
			return errs.New(errs.Internal, "backend listing is truncated but returned nothing to continue from")
		}
	}
	if v2 {
		kc := len(res.Contents) + len(res.CommonPrefixes)
		res.KeyCount = &kc
		if lr.IsTruncated {
			res.NextContToken = encodeContinuationToken(next)
		}
	} else if lr.IsTruncated && opts.Delimiter != "" {
		res.NextMarker = enc.enc(next)
	}
	return x.writeXML(http.StatusOK, res)
}

// lastListed is the greatest key or common prefix of a page.
func lastListed(lr ListResult) string {
	var last string
	if n := len(lr.Objects); n > 0 {
		last = lr.Objects[n-1].Key
	}
	if n := len(lr.CommonPrefixes); n > 0 && lr.CommonPrefixes[n-1] > last {
		last = lr.CommonPrefixes[n-1]
	}
	return last
}

// --- object operations ---

// requestBody prepares the payload of a PutObject or UploadPart: the declared size,
// aws-chunked decoding (with chunk signatures verified when authentication is on),
// and every digest the client sent, verified as the backend reads.
func (h *handler) requestBody(x *exchange) (*payloadReader, int64, error) {
	hdr := x.r.Header
	csha, err := parseContentSHA256(hdr.Get("x-amz-content-sha256"))
	if err != nil {
		return nil, 0, err
	}
	mode := hdr.Get("x-amz-content-sha256")
	chunked := csha.streaming || hasToken(strings.Join(hdr.Values("Content-Encoding"), ","), "aws-chunked")
	size := x.r.ContentLength // -1 when unknown (Transfer-Encoding: chunked)
	if chunked {
		size = -1
		if v := hdr.Get("x-amz-decoded-content-length"); v != "" {
			if size, err = strconv.ParseInt(v, 10, 64); err != nil || size < 0 {
				return nil, 0, errs.New(errs.InvalidArgument, "x-amz-decoded-content-length must be a non-negative integer.")
			}
		}
		csha.digest = nil // a digest would cover the encoded body; chunk signatures cover the payload
	}
	if size > h.maxSize {
		return nil, 0, errs.New(errs.EntityTooLarge, "Your proposed upload of %d bytes exceeds the maximum allowed object size of %d bytes.", size, h.maxSize)
	}
	var wantMD5 []byte
	if _, ok := hdr["Content-Md5"]; ok {
		if wantMD5, err = parseContentMD5(hdr.Get("Content-MD5")); err != nil {
			return nil, 0, err
		}
	}
	cr, err := parseChecksumHeaders(hdr, chunked)
	if err != nil {
		return nil, 0, err
	}
	var hook chunkHook
	if x.auth != nil {
		switch mode {
		case streamingSigned, streamingSignedTrailer:
			hook = newSigChunkHook(x.auth, mode == streamingSignedTrailer)
		case streamingECDSA, streamingECDSATrailer:
			return nil, 0, errs.New(errs.NotImplemented, "cellar does not implement SigV4a (ECDSA) streaming signatures.")
		}
	}
	var body io.Reader = x.r.Body
	var trailer func() http.Header
	if chunked {
		cr := newChunkedReader(body, hook)
		body, trailer = cr, cr.Trailer
	}
	payload := newPayloadReader(body, size, h.maxSize, wantMD5, csha.digest).withChecksum(cr, trailer)
	return payload, size, nil
}

func (h *handler) putObject(x *exchange) error {
	hdr := x.r.Header
	cond, err := writePrecondition(hdr)
	if err != nil {
		return err
	}
	meta, err := metaFromHeaders(hdr)
	if err != nil {
		return err
	}
	payload, size, err := h.requestBody(x)
	if err != nil {
		return err
	}
	meta.ChecksumAlgorithm = payload.ckAlg
	in := PutInput{Bucket: x.req.bucket, Key: x.req.key, Size: size, Body: payload, Meta: meta, Cond: cond}
	if payload.ckAlg != "" {
		in.Checksum = payload.checksum
	}
	cell, info, err := h.b.PutObject(x.r.Context(), in)
	x.setCell(cell)
	if err != nil {
		return bodyFirst(payload, err)
	}
	if err := checkConsumed(payload, x); err != nil {
		return err
	}
	x.w.Header().Set("ETag", quoteETag(info.ETag))
	setVersionHeaders(x.w.Header(), info.VersionID, false)
	setChecksumHeader(x.w.Header(), payload.ckAlg, payload.checksum())
	x.w.Header().Set("Content-Length", "0")
	x.writeHeader(http.StatusOK)
	return nil
}

// bodyFirst returns the error of the request body when reading it failed (cut short,
// a digest that does not match, a stalled client), and err otherwise. A client that
// closes its connection mid-body also cancels the request's context, so the backend
// may fail first with a cancelled call to a cell (Unavailable, a 503); the fault was
// the body's, and the answer is its 400 (IncompleteBody...).
func bodyFirst(payload *payloadReader, err error) error {
	if payload.err != nil && payload.err != io.EOF {
		return payload.err
	}
	return err
}

// checkConsumed makes sure a backend that accepted a body read it to its end, so that
// the length and digest checks ran.
func checkConsumed(payload *payloadReader, x *exchange) error {
	if payload.err != io.EOF {
		// The backend committed without reading the body to its end, so the length and
		// digest checks never ran. That is a backend bug; make it loud.
		return errs.New(errs.Internal, "backend committed %s/%s without reading the request body to EOF (read error: %v)",
			x.req.bucket, x.req.key, payload.err)
	}
	return nil
}

// writePrecondition reads If-Match and If-None-Match of a PUT or a completion.
func writePrecondition(hdr http.Header) (Precondition, error) {
	var c Precondition
	if v := hdr.Get("If-None-Match"); v != "" {
		if strings.TrimSpace(v) != "*" {
			return c, errs.New(errs.NotImplemented, "If-None-Match on a write supports only \"*\".")
		}
		c.IfNoneMatch = true
	}
	c.IfMatch = strings.TrimSpace(hdr.Get("If-Match"))
	if c.IfNoneMatch && c.IfMatch != "" {
		// S3 does not take both on one write.
		return c, errs.New(errs.NotImplemented, "A write takes If-Match or If-None-Match, not both.")
	}
	return c, nil
}

// errNotModified ends a GET or HEAD with 304; its headers are already set.
var errNotModified = errs.New(errs.PreconditionFailed, "not modified")

func (h *handler) getObject(x *exchange, head bool) error {
	ctx := x.r.Context()
	hdr := x.w.Header()
	var (
		status = http.StatusOK
		length int64
	)
	choose := func(info ObjectInfo) (int64, int64, error) {
		if err := checkPreconditions(x.r.Header, info); err != nil {
			return 0, 0, err
		}
		if notModified(x.r.Header, info) {
			hdr.Set("ETag", quoteETag(info.ETag))
			hdr.Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
			return 0, 0, errNotModified
		}
		if x.req.query.Has("partNumber") {
			return partRange(x, info, &status, &length)
		}
		rg, st := parseRange(x.r.Header.Get("Range"), info.Size)
		switch st {
		case rangeUnsatisfiable:
			return 0, 0, errs.New(errs.InvalidRange, "The requested range is not satisfiable for an object of %d bytes.", info.Size)
		case rangeOK:
			status, length = http.StatusPartialContent, rg.length
			hdr.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rg.start, rg.start+rg.length-1, info.Size))
			return rg.start, rg.length, nil
		}
		length = info.Size
		return 0, info.Size, nil
	}
	var (
		cell string
		info ObjectInfo
		body io.ReadCloser
		err  error
	)
	versionID := h.requestVersion(x)
	if head {
		cell, info, err = h.headObject(ctx, x.req.bucket, x.req.key, versionID)
		if err == nil {
			_, _, err = choose(info)
		}
	} else {
		cell, info, body, err = h.b.GetObject(ctx, GetInput{Bucket: x.req.bucket, Key: x.req.key, Choose: choose, VersionID: versionID})
	}
	x.setCell(cell)
	if err == errNotModified {
		x.outcome = "NotModified"
		x.writeHeader(http.StatusNotModified)
		return nil
	}
	if err != nil {
		if errs.Is(err, errs.InvalidRange) || errs.Is(err, errs.InvalidPartNumber) {
			x.rangeSize = info.Size
		}
		return err
	}
	if body != nil {
		defer body.Close()
	}
	setObjectHeaders(hdr, info)
	if status == http.StatusOK && strings.EqualFold(x.r.Header.Get("x-amz-checksum-mode"), "ENABLED") {
		setChecksumHeader(hdr, info.ChecksumAlgorithm, info.Checksum)
	}
	for param, header := range responseOverrides {
		if v := x.req.query.Get(param); v != "" {
			hdr.Set(header, v)
		}
	}
	hdr.Set("Content-Length", strconv.FormatInt(length, 10))
	x.writeHeader(status)
	if head {
		return nil
	}
	src := &readRecorder{r: body}
	if n, err := io.CopyN(x.w, src, length); err != nil {
		if src.err == nil { // the write failed: the client went away
			x.outcome = outcomeClientClosed
			h.log.Debug("gateway: client went away during GET", "request_id", x.id, "sent", n, "of", length)
			return nil
		}
		return bodyFailure(src.err) // the connection is closed short of Content-Length
	}
	return nil
}

// partRange chooses the bytes of the part GET or HEAD ?partNumber=N asks for: part N
// of a multipart object, or the whole of a single-part one as its part 1.
func partRange(x *exchange, info ObjectInfo, status *int, length *int64) (int64, int64, error) {
	if x.r.Header.Get("Range") != "" {
		return 0, 0, errs.New(errs.InvalidRequest, "Cannot specify both Range header and partNumber query parameter.")
	}
	n, err := parsePartNumber(x.req.query.Get("partNumber"))
	if err != nil {
		return 0, 0, err
	}
	sizes := info.PartSizes
	if len(sizes) == 0 {
		sizes = []int64{info.Size}
	}
	if n > len(sizes) {
		return 0, 0, errs.New(errs.InvalidPartNumber, "The requested partnumber is not satisfiable")
	}
	var off int64
	for _, sz := range sizes[:n-1] {
		off += sz
	}
	*status, *length = http.StatusPartialContent, sizes[n-1]
	hdr := x.w.Header()
	hdr.Set("x-amz-mp-parts-count", strconv.Itoa(len(sizes)))
	if sizes[n-1] > 0 {
		hdr.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+sizes[n-1]-1, info.Size))
	}
	return off, sizes[n-1], nil
}

// setObjectHeaders sets the headers that describe an object on GET and HEAD.
func setObjectHeaders(hdr http.Header, info ObjectInfo) {
	hdr.Set("ETag", quoteETag(info.ETag))
	hdr.Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	ct := info.ContentType
	if ct == "" {
		ct = defaultContentType
	}
	hdr.Set("Content-Type", ct)
	hdr.Set("Accept-Ranges", "bytes")
	for name, v := range map[string]string{
		"Content-Encoding": info.ContentEncoding, "Cache-Control": info.CacheControl,
		"Content-Disposition": info.ContentDisposition, "Content-Language": info.ContentLanguage,
		"Expires": info.Expires,
	} {
		if v != "" {
			hdr.Set(name, v)
		}
	}
	for k, v := range info.UserMeta {
		hdr["X-Amz-Meta-"+k] = []string{encodeMetaValue(v)}
	}
	if info.PartsCount > 0 {
		hdr.Set("x-amz-mp-parts-count", strconv.Itoa(info.PartsCount))
	}
	setTaggingCount(hdr, info)
	setVersionHeaders(hdr, info.VersionID, false)
}

// responseOverrides are the GetObject query parameters that set response headers.
var responseOverrides = map[string]string{
	"response-content-type":        "Content-Type",
	"response-content-language":    "Content-Language",
	"response-expires":             "Expires",
	"response-cache-control":       "Cache-Control",
	"response-content-disposition": "Content-Disposition",
	"response-content-encoding":    "Content-Encoding",
}

// bodyFailure classifies an error reading an object body from the backend.
func bodyFailure(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errs.Wrap(errs.Internal, err, "backend object body is shorter than its size")
	}
	return err
}

// readRecorder remembers the first read error other than io.EOF, so that a failed copy
// can be blamed on the right side.
type readRecorder struct {
	r   io.Reader
	err error
}

func (rr *readRecorder) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && rr.err == nil {
		rr.err = err
		if err == io.EOF {
			rr.err = io.ErrUnexpectedEOF // CopyN asked for more than there was
		}
	}
	return n, err
}

func (h *handler) deleteObject(x *exchange) error {
	cell, err := h.b.DeleteObject(x.r.Context(), x.req.bucket, x.req.key)
	x.setCell(cell)
	if err != nil && !errs.Is(err, errs.NoSuchKey) {
		return err
	}
	x.writeHeader(http.StatusNoContent)
	return nil
}

func quoteETag(etag string) string { return `"` + etag + `"` }

// etagMatches reports whether an If-Match/If-None-Match list matches etag.
func etagMatches(list, etag string) bool {
	for part := range strings.SplitSeq(list, ",") {
		part = strings.TrimPrefix(strings.TrimSpace(part), "W/")
		if part == "*" || strings.Trim(part, `"`) == etag {
			return true
		}
	}
	return false
}

// notModified evaluates If-None-Match and If-Modified-Since for a GET or HEAD.
func notModified(h http.Header, info ObjectInfo) bool {
	if v := h.Get("If-None-Match"); v != "" {
		return etagMatches(v, info.ETag)
	}
	if v := h.Get("If-Modified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil {
			return !info.LastModified.Truncate(time.Second).After(t)
		}
	}
	return false
}

// checkPreconditions evaluates If-Match and If-Unmodified-Since: 412 when they fail.
func checkPreconditions(h http.Header, info ObjectInfo) error {
	failed := false
	if v := h.Get("If-Match"); v != "" {
		failed = !etagMatches(v, info.ETag)
	} else if v := h.Get("If-Unmodified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil {
			failed = info.LastModified.Truncate(time.Second).After(t)
		}
	}
	if failed {
		return errs.New(errs.PreconditionFailed, "At least one of the pre-conditions you specified did not hold")
	}
	return nil
}
