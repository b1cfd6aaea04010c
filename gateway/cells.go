// Package gateway is the gateway daemon and cellar's data path over the cells. Run
// serves the S3 API (package gateway/s3, the protocol) from a backend that carries each
// request to the cell that holds its bucket or key, through the router:
//
//   - PUT: placement.Allocate → bytes to the chosen storage nodes → index.Commit; the
//     object exists once the commit is durable.
//   - GET and HEAD: index.Lookup → storage.Read from any replica holding the object.
//   - LIST: index.List. DELETE: index.Delete; the object's storage is reclaimed after.
//
// Multipart uploads live in the cell of their object. What spans cells (listing every
// bucket, listing a bucket partitioned by key, which cells a bucket's operations touch)
// is the router's. Every unary call to a cell is bounded (callTimeout), so that a hung
// node gives the S3 client a 503, never a hang. The gateway also aborts multipart
// uploads abandoned longer than the configured age and reclaims their parts.
//
// The gatewayd binary and cellctl run it from flags; tests run it in process:
//
//	err := gateway.Run(ctx, gateway.Config{Options: opts, S3Addr: addr, Topology: topo})
package gateway

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/gateway/s3"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/router"
)

// callTimeout bounds every unary call to a cell, so a hung node gives a 503, not a hang.
// Run installs it on the connections to the cells with router.CallDeadline.
const callTimeout = 2 * time.Second

// chunkSize is how much of an object moves in one storage message.
const chunkSize = 1 << 20

// cells is the s3.Backend that serves S3 from the cells, following the data path:
// PUT: placement.Allocate → bytes to the chosen storage nodes → index.Commit.
// GET/HEAD: index.Lookup → storage.Read. LIST: index.List. DELETE: index.Delete.
// What spans cells (listings, and which cells a bucket's operations touch) is the
// router's.
type cells struct {
	r           *router.Router
	log         *slog.Logger
	minPartSize int64
}

// DefaultMinPartSize is S3's minimum size of every part of a multipart upload but the last.
const DefaultMinPartSize = 5 << 20

// NewCellBackend returns the s3.Backend that serves S3 requests from the cells r routes to.
func NewCellBackend(r *router.Router, logger *slog.Logger) s3.Backend {
	return newCells(r, logger)
}

func newCells(r *router.Router, logger *slog.Logger) *cells {
	if logger == nil {
		logger = slog.Default()
	}
	return &cells{r: r, log: logger, minPartSize: DefaultMinPartSize}
}

func (c *cells) index(cellID string) (cellarv1.IndexClient, error) { return c.r.Index(cellID) }

func (c *cells) ListBuckets(ctx context.Context) (string, []s3.BucketInfo, error) {
	all := strings.Join(c.r.Cells(), ",")
	buckets, err := c.r.ListBuckets(ctx)
	if err != nil {
		return all, nil, err
	}
	out := make([]s3.BucketInfo, len(buckets))
	for i, b := range buckets {
		out[i] = s3.BucketInfo{Name: b.Name, Created: time.Unix(0, b.CreatedUnixNano), Cell: b.Cell}
	}
	return all, out, nil
}

func (c *cells) CreateBucket(ctx context.Context, bucket string) (string, error) {
	cellID := c.r.BucketCell(bucket)
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, err
	}
	_, err = ix.CreateBucket(ctx, &cellarv1.CreateBucketRequest{Name: bucket})
	return cellID, err
}

func (c *cells) HeadBucket(ctx context.Context, bucket string) (string, error) {
	cellID := c.r.BucketCell(bucket)
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, err
	}
	_, err = ix.GetBucket(ctx, &cellarv1.GetBucketRequest{Name: bucket})
	return cellID, err
}

func (c *cells) DeleteBucket(ctx context.Context, bucket string) (string, error) {
	cellID := c.r.BucketCell(bucket)
	if !c.r.ObjectsInBucketCell() {
		// The bucket's objects are in other cells too: it is empty only if each says so.
		if _, res, err := c.ListObjects(ctx, bucket, s3.ListOptions{MaxKeys: 1}); err != nil {
			return cellID, err
		} else if len(res.Objects) > 0 {
			return cellID, errs.New(errs.BucketNotEmpty, "The bucket you tried to delete is not empty.")
		}
	}
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, err
	}
	_, err = ix.DeleteBucket(ctx, &cellarv1.DeleteBucketRequest{Name: bucket})
	return cellID, err
}

// checkBucketFirst makes sure, before an object of bucket is written, that the bucket
// exists, when the object's own cell cannot check it in the commit. It returns whether
// the commit must require the bucket (because that cell can).
func (c *cells) checkBucketFirst(ctx context.Context, bucket string) (requireBucket bool, err error) {
	if c.r.ObjectsInBucketCell() {
		return true, nil
	}
	_, err = c.HeadBucket(ctx, bucket)
	return false, err
}

func (c *cells) PutObject(ctx context.Context, in s3.PutInput) (string, s3.ObjectInfo, error) {
	cellID := c.r.ObjectCell(in.Bucket, in.Key)
	requireBucket, err := c.checkBucketFirst(ctx, in.Bucket)
	if err != nil {
		return cellID, s3.ObjectInfo{}, err
	}
	// Placement and the index are both needed: check the index first, so that a cell
	// without its index refuses the PUT before any byte is moved.
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, s3.ObjectInfo{}, err
	}
	objectID, replicas, size, sum, err := c.writeBlob(ctx, cellID, in.Bucket, in.Key, in.Size, in.Body)
	if err != nil {
		return cellID, s3.ObjectInfo{}, err
	}
	loc := locationOf(in.Meta)
	loc.Bucket, loc.Key, loc.ObjectId, loc.Size, loc.Md5 = in.Bucket, in.Key, objectID, size, sum
	loc.ModifiedUnixNano, loc.Replicas = time.Now().UnixNano(), replicas
	if in.Checksum != nil {
		loc.Checksum = in.Checksum()
	}
	resp, err := ix.Commit(ctx, &cellarv1.CommitRequest{Location: loc, RequireBucket: requireBucket,
		IfMatch: in.Cond.IfMatch, IfNoneMatch: in.Cond.IfNoneMatch})
	if err != nil {
		// Not committed: the blobs are garbage. (If the commit did land and only its
		// answer was lost, the object is readable and these deletes would break it; so
		// only reclaim when the index said no.)
		if !errs.Is(err, errs.Unavailable) {
			c.reclaim(cellID, loc)
		}
		return cellID, s3.ObjectInfo{}, err
	}
	if resp.Previous != nil {
		c.reclaim(cellID, resp.Previous)
	}
	return cellID, infoOf(loc), nil
}

// writeBlob allocates a blob in the cell and streams body to its replicas.
func (c *cells) writeBlob(ctx context.Context, cellID, bucket, key string, size int64, body io.Reader) (objectID []byte, replicas []string, n int64, sum []byte, err error) {
	pl, err := c.r.Placement(cellID)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	alloc, err := pl.Allocate(ctx, &cellarv1.AllocateRequest{Bucket: bucket, Key: key, Size: size})
	if err != nil {
		return nil, nil, 0, nil, err
	}
	n, sum, err = c.writeReplicas(ctx, cellID, alloc, size, body)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	for _, rep := range alloc.Replicas {
		replicas = append(replicas, rep.NodeId)
	}
	return alloc.ObjectId, replicas, n, sum, nil
}

// locationOf gives a Location carrying an object's metadata.
func locationOf(m s3.ObjectMeta) *cellarv1.Location {
	return &cellarv1.Location{
		ContentType: m.ContentType, ContentEncoding: m.ContentEncoding, CacheControl: m.CacheControl,
		ContentDisposition: m.ContentDisposition, ContentLanguage: m.ContentLanguage, Expires: m.Expires,
		UserMetadata: m.UserMeta, ChecksumAlgorithm: m.ChecksumAlgorithm, Checksum: m.Checksum,
	}
}

func metaOf(loc *cellarv1.Location) s3.ObjectMeta {
	return s3.ObjectMeta{
		ContentType: loc.GetContentType(), ContentEncoding: loc.GetContentEncoding(), CacheControl: loc.GetCacheControl(),
		ContentDisposition: loc.GetContentDisposition(), ContentLanguage: loc.GetContentLanguage(), Expires: loc.GetExpires(),
		UserMeta: loc.GetUserMetadata(), ChecksumAlgorithm: loc.GetChecksumAlgorithm(), Checksum: loc.GetChecksum(),
	}
}

// writeReplicas streams the body to every allocated storage node at once, hashing it
// on the way. Any failure, of a replica or of the body, cancels every stream, so no
// replica keeps a partial blob.
func (c *cells) writeReplicas(ctx context.Context, cellID string, alloc *cellarv1.AllocateResponse, size int64, body io.Reader) (int64, []byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	streams := make([]cellarv1.Storage_WriteClient, 0, len(alloc.Replicas))
	for _, rep := range alloc.Replicas {
		st, err := c.r.Storage(cellID, rep.NodeId)
		if err != nil {
			return 0, nil, err
		}
		ws, err := st.Write(ctx)
		if err != nil {
			return 0, nil, err
		}
		hdr := &cellarv1.WriteRequest{Msg: &cellarv1.WriteRequest_Header{Header: &cellarv1.WriteHeader{ObjectId: alloc.ObjectId, Size: size}}}
		if err := ws.Send(hdr); err != nil {
			return 0, nil, sendErr(ws, err)
		}
		streams = append(streams, ws)
	}
	h := md5.New()
	buf := make([]byte, chunkSize)
	var written int64
	for {
		n, rerr := io.ReadFull(body, buf)
		if n > 0 {
			h.Write(buf[:n])
			written += int64(n)
			msg := &cellarv1.WriteRequest{Msg: &cellarv1.WriteRequest_Data{Data: buf[:n]}}
			for _, ws := range streams {
				if err := ws.Send(msg); err != nil {
					return 0, nil, sendErr(ws, err)
				}
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return 0, nil, rerr
		}
	}
	for _, ws := range streams {
		if _, err := ws.CloseAndRecv(); err != nil {
			return 0, nil, err
		}
	}
	return written, h.Sum(nil), nil
}

// sendErr returns the real error of a stream whose Send failed: gRPC reports it from
// the receiving side.
func sendErr(ws cellarv1.Storage_WriteClient, err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := ws.CloseAndRecv(); rerr != nil {
			return rerr
		}
	}
	return err
}

// reclaim deletes the blobs of a location (its parts' too) that no index record points
// to, in the background.
func (c *cells) reclaim(cellID string, loc *cellarv1.Location) {
	if len(loc.GetObjectId()) > 0 {
		c.reclaimBlob(cellID, loc.ObjectId, loc.Replicas)
	}
	c.reclaimParts(cellID, loc.GetParts())
}

func (c *cells) reclaimParts(cellID string, parts []*cellarv1.PartLocation) {
	for _, p := range parts {
		c.reclaimBlob(cellID, p.ObjectId, p.Replicas)
	}
}

func (c *cells) reclaimBlob(cellID string, objectID []byte, replicas []string) {
	go func() {
		for _, nodeID := range replicas {
			st, err := c.r.Storage(cellID, nodeID)
			if err == nil {
				_, err = st.Delete(context.Background(), &cellarv1.DeleteBlobRequest{ObjectId: objectID})
			}
			if err != nil {
				c.log.Warn("reclaim blob", "cell", cellID, "node", nodeID, "object_id", hex.EncodeToString(objectID), "err", err)
			}
		}
	}()
}

// etagOf is the S3 ETag of a location, without quotes.
func etagOf(loc *cellarv1.Location) string {
	if loc.GetEtag() != "" {
		return loc.Etag
	}
	return hex.EncodeToString(loc.GetMd5())
}

func infoOf(loc *cellarv1.Location) s3.ObjectInfo {
	var sizes []int64
	for _, p := range loc.Parts {
		sizes = append(sizes, p.Size)
	}
	return s3.ObjectInfo{PartSizes: sizes,
		Bucket: loc.Bucket, Key: loc.Key, Size: loc.Size, ETag: etagOf(loc),
		LastModified: time.Unix(0, loc.ModifiedUnixNano), PartsCount: len(loc.Parts), ObjectMeta: metaOf(loc),
	}
}

func (c *cells) lookup(ctx context.Context, bucket, key string) (string, *cellarv1.Location, error) {
	cellID := c.r.ObjectCell(bucket, key)
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, nil, err
	}
	resp, err := ix.Lookup(ctx, &cellarv1.LookupRequest{Bucket: bucket, Key: key})
	if err != nil {
		if errs.Is(err, errs.NoSuchKey) {
			// S3 says NoSuchBucket when the bucket itself is missing.
			if _, berr := c.HeadBucket(ctx, bucket); errs.Is(berr, errs.NoSuchBucket) {
				return cellID, nil, berr
			}
		}
		return cellID, nil, err
	}
	return cellID, resp.Location, nil
}

func (c *cells) HeadObject(ctx context.Context, bucket, key string) (string, s3.ObjectInfo, error) {
	cellID, loc, err := c.lookup(ctx, bucket, key)
	if err != nil {
		return cellID, s3.ObjectInfo{}, err
	}
	return cellID, infoOf(loc), nil
}

func (c *cells) GetObject(ctx context.Context, in s3.GetInput) (string, s3.ObjectInfo, io.ReadCloser, error) {
	cellID, loc, err := c.lookup(ctx, in.Bucket, in.Key)
	if err != nil {
		return cellID, s3.ObjectInfo{}, nil, err
	}
	info := infoOf(loc)
	off, n := int64(0), loc.Size
	if in.Choose != nil {
		if off, n, err = in.Choose(info); err != nil {
			return cellID, info, nil, err
		}
	}
	if n == 0 {
		return cellID, info, io.NopCloser(strings.NewReader("")), nil
	}
	if len(loc.Parts) == 0 {
		body, err := c.openBlob(ctx, cellID, loc.ObjectId, loc.Replicas, off, n)
		if err != nil {
			return cellID, s3.ObjectInfo{}, nil, err
		}
		return cellID, info, body, nil
	}
	// A multipart object: read the parts the range overlaps, one after the other. The
	// first is opened now, so that an unavailable storage tier is reported as an error
	// rather than as a short body.
	pr := &partsReader{c: c, ctx: ctx, cellID: cellID, parts: loc.Parts, off: off, left: n}
	if err := pr.next(); err != nil {
		return cellID, s3.ObjectInfo{}, nil, err
	}
	return cellID, info, pr, nil
}

// partsReader reads a range of a multipart object across its parts.
type partsReader struct {
	c      *cells
	ctx    context.Context
	cellID string
	parts  []*cellarv1.PartLocation
	off    int64 // offset of the next byte to open, from the start of parts[0]
	left   int64 // bytes of the range not yet opened
	cur    io.ReadCloser
}

// next opens the part holding the next byte of the range.
func (p *partsReader) next() error {
	for len(p.parts) > 0 && p.off >= p.parts[0].Size {
		p.off -= p.parts[0].Size
		p.parts = p.parts[1:]
	}
	if len(p.parts) == 0 || p.left == 0 {
		return io.EOF
	}
	part := p.parts[0]
	n := min(part.Size-p.off, p.left)
	body, err := p.c.openBlob(p.ctx, p.cellID, part.ObjectId, part.Replicas, p.off, n)
	if err != nil {
		return err
	}
	p.cur = body
	p.left -= n
	p.off = part.Size // the next call moves on to the following part
	return nil
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if p.cur == nil {
			return 0, io.EOF
		}
		n, err := p.cur.Read(b)
		if err == io.EOF {
			p.cur.Close()
			p.cur = nil
			if nerr := p.next(); nerr != nil {
				if n > 0 {
					return n, nil
				}
				return 0, nerr
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (p *partsReader) Close() error {
	if p.cur != nil {
		p.cur.Close()
		p.cur = nil
	}
	return nil
}

// openBlob opens a read stream of length bytes at offset of a blob on the first replica
// that answers with data (or with an empty blob), trying the others in turn.
func (c *cells) openBlob(ctx context.Context, cellID string, objectID []byte, replicas []string, offset, length int64) (io.ReadCloser, error) {
	var lastErr error = errs.New(errs.Unavailable, "no replica of this object is available")
	for _, nodeID := range replicas {
		st, err := c.r.Storage(cellID, nodeID)
		if err != nil {
			lastErr = err
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		rs, err := st.Read(sctx, &cellarv1.ReadRequest{ObjectId: objectID, Offset: offset, Length: length})
		if err != nil {
			cancel()
			lastErr = err
			continue
		}
		first, err := rs.Recv()
		if err != nil && err != io.EOF {
			cancel()
			lastErr = err
			c.log.Warn("read replica", "cell", cellID, "node", nodeID, "err", err)
			continue
		}
		br := &blobReader{stream: rs, cancel: cancel, eof: err == io.EOF}
		if first != nil {
			br.buf = first.Data
		}
		return br, nil
	}
	return nil, lastErr
}

// blobReader reads a storage read stream as an io.Reader.
type blobReader struct {
	stream cellarv1.Storage_ReadClient
	cancel context.CancelFunc
	buf    []byte
	eof    bool
}

func (b *blobReader) Read(p []byte) (int, error) {
	for len(b.buf) == 0 {
		if b.eof {
			return 0, io.EOF
		}
		msg, err := b.stream.Recv()
		if err == io.EOF {
			b.eof = true
			continue
		}
		if err != nil {
			return 0, err
		}
		b.buf = msg.Data
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

func (b *blobReader) Close() error {
	b.cancel()
	return nil
}

func (c *cells) DeleteObject(ctx context.Context, bucket, key string) (string, error) {
	cellID := c.r.ObjectCell(bucket, key)
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, err
	}
	resp, err := ix.Delete(ctx, &cellarv1.DeleteRequest{Bucket: bucket, Key: key})
	if err != nil {
		return cellID, err
	}
	if resp.Previous != nil {
		c.reclaim(cellID, resp.Previous)
	} else if c.r.ObjectsInBucketCell() {
		// S3 answers NoSuchBucket for a delete in a missing bucket.
		if _, berr := c.HeadBucket(ctx, bucket); errs.Is(berr, errs.NoSuchBucket) {
			return cellID, berr
		}
	}
	return cellID, nil
}

func (c *cells) ListObjects(ctx context.Context, bucket string, o s3.ListOptions) (string, s3.ListResult, error) {
	if _, err := c.HeadBucket(ctx, bucket); err != nil {
		return c.r.BucketCell(bucket), s3.ListResult{}, err
	}
	cellIDs, page, err := c.r.List(ctx, &cellarv1.ListRequest{Bucket: bucket, Prefix: o.Prefix, StartAfter: o.StartAfter,
		Delimiter: o.Delimiter, Limit: int32(o.MaxKeys)})
	cell := strings.Join(cellIDs, ",")
	if err != nil {
		return cell, s3.ListResult{}, err
	}
	res := s3.ListResult{CommonPrefixes: page.CommonPrefixes, IsTruncated: page.Truncated, Next: page.Next}
	for _, e := range page.Entries {
		res.Objects = append(res.Objects, infoOf(e))
	}
	return cell, res, nil
}
