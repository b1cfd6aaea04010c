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
// is the router's. The gateway also aborts multipart uploads abandoned longer than the
// configured age and reclaims their parts.
//
// # Durability: what a 200 promises, and what a read may answer
//
// Copies. A PUT is acknowledged only once every storage node placement chose has the
// object durably and the index has committed it, and placement must have chosen as many
// nodes as the cell promises (the topology's copies, 2 by default, at most its storage
// nodes). When fewer storage nodes of the cell can take writes (stopped, or read-only
// because their disk is full or failing), the PUT is refused with 503 ServiceUnavailable
// before any byte moves, unless the topology says degraded_writes: true; then it is
// stored with the copies it can have, and its index location lists fewer replicas than
// promised: that is how repair will find under-replicated objects
// (cellar_gateway_degraded_writes_total counts them).
//
// Reads never lie. Every byte a storage node sends has passed its block's checksum there
// first. A GET reads from one replica and, if that replica fails at any point (a block
// that fails its checksum, a node that stops or makes no progress for
// StorageIdleTimeout), goes on from the same offset on the next one; it fails only when
// no replica can send the next byte. Before the first byte the failure is a well-formed
// S3 error; after it, the connection is cut short of Content-Length, never padded.
//
// Reclaim. An object version that an overwrite or a DELETE replaced is not deleted at
// once: a GET may have looked it up just before and not yet opened it. The gateway
// deletes the blobs of a replaced version ReclaimGrace (1 minute) after the index
// stopped pointing to it. The grace is longer than the longest a read can take between
// its lookup and opening its blob (a lookup's call deadline, then a progress deadline
// per replica tried), and a storage read keeps the blob file open once it has started,
// so a read that has started finishes. A read that finds its blob gone anyway (it
// switched replica, or reached the next part of a multipart object, after the grace)
// looks the key up once more before its first byte and serves the version there is
// now, or 404 if the key was deleted meanwhile; after its first byte it can only cut the
// connection. Blobs that no read can reach (a PUT whose commit the index refused, the
// parts of an aborted upload) are deleted at once. Reclaims pending when a gateway stops
// are dropped: their blobs stay on disk until the storage tier's garbage collection.
//
// Nothing waits forever. Every unary call to a cell is bounded (callTimeout); a storage
// stream that makes no progress for StorageIdleTimeout is cancelled; the S3 listener
// bounds the time to send headers and between requests, and a request body that brings
// no byte for BodyTimeout fails the request with 400 RequestTimeout (a storage node ends
// a write stream that brings nothing, and removes its temp file, too).
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
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/cellmap"
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
	opts        cellsOptions
	reclaims    *reclaimer
	metrics     cellsMetrics
	// maps follows the cell map, when the topology has a map group (nil otherwise):
	// buckets are registered in it and listed from it.
	maps *cellmap.Follower
}

// cellsOptions are the data path's policies (see the package doc); the zero value of a
// field takes its default.
type cellsOptions struct {
	// Copies is how many copies of every object a cell promises (cell.DefaultCopies).
	Copies int
	// DegradedWrites accepts a PUT with fewer copies than promised.
	DegradedWrites bool
	// StorageIdle cancels a storage stream that makes no progress for this long
	// (DefaultStorageIdleTimeout).
	StorageIdle time.Duration
	// ReclaimGrace is how long the blobs of a replaced object version stay readable
	// (DefaultReclaimGrace).
	ReclaimGrace time.Duration
}

func (o *cellsOptions) ensureDefaults() {
	if o.Copies == 0 {
		o.Copies = cell.DefaultCopies
	}
	if o.StorageIdle == 0 {
		o.StorageIdle = DefaultStorageIdleTimeout
	}
	if o.ReclaimGrace == 0 {
		o.ReclaimGrace = DefaultReclaimGrace
	}
}

// cellsMetrics are what the data path counts besides the S3 handler's request metrics.
type cellsMetrics struct {
	degradedWrites *prometheus.CounterVec // objects stored with fewer copies than promised
	readFailovers  *prometheus.CounterVec // reads that went on from another replica
}

// DefaultMinPartSize is S3's minimum size of every part of a multipart upload but the last.
const DefaultMinPartSize = 5 << 20

// NewCellBackend returns the s3.Backend that serves S3 requests from the cells r routes
// to, with the default policies (2 copies, no degraded writes).
func NewCellBackend(r *router.Router, logger *slog.Logger) s3.Backend {
	return newCells(r, logger, cellsOptions{})
}

func newCells(r *router.Router, logger *slog.Logger, o cellsOptions) *cells {
	if logger == nil {
		logger = slog.Default()
	}
	o.ensureDefaults()
	return &cells{r: r, log: logger, minPartSize: DefaultMinPartSize, opts: o,
		reclaims: newReclaimer(o.ReclaimGrace),
		metrics: cellsMetrics{
			degradedWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "cellar_gateway_degraded_writes_total",
				Help: "Objects (and parts) stored with fewer copies than their cell promises, as degraded_writes allows: under-replicated until repaired.",
			}, []string{"cell"}),
			readFailovers: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "cellar_gateway_read_failovers_total",
				Help: "Reads that went on from another replica after one failed (a bad checksum, a stopped or stalled node).",
			}, []string{"cell"}),
		},
	}
}

// registerMetrics exports the data path's metrics to reg.
func (c *cells) registerMetrics(reg prometheus.Registerer) error {
	for _, col := range []prometheus.Collector{c.metrics.degradedWrites, c.metrics.readFailovers,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellar_gateway_reclaims_pending",
			Help: "Replaced object versions whose blobs wait out the reclaim grace before they are deleted.",
		}, func() float64 { return float64(c.reclaims.len()) }),
	} {
		if err := reg.Register(col); err != nil {
			return fmt.Errorf("gateway: metrics: %w", err)
		}
	}
	return nil
}

func (c *cells) index(cellID string) (cellarv1.IndexClient, error) { return c.r.Index(cellID) }

// mapCell is what x-cellar-cell says of a request answered from the cell map alone.
const mapCell = "map"

// ListBuckets lists the buckets of the cell map, when the gateway holds one from the
// map group: no cell is asked, so the listing answers whichever cell is down. Without
// a map group (or before its first map), every cell is asked.
func (c *cells) ListBuckets(ctx context.Context) (string, []s3.BucketInfo, error) {
	if c.maps != nil && c.maps.Version() > 0 {
		entries := cellmap.Buckets(c.maps.Map())
		out := make([]s3.BucketInfo, len(entries))
		for i, b := range entries {
			out[i] = s3.BucketInfo{Name: b.Name, Created: time.Unix(0, b.CreatedUnixNano), Cell: b.Cell}
		}
		return mapCell, out, nil
	}
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

// CreateBucket creates the bucket in its home cell, then registers it in the cell map
// (when there is a map group). A failure between the two leaves a bucket that its cell
// holds and the map does not list; the client's retry finds it in the cell (which
// answers that it exists) and registers it.
//
// With a map group, the home cell comes from the map group's map of now, not from the
// map this gateway holds. That one may be older than a move of the bucket, and would
// send the create to the cell the bucket moved from: there the records the move
// dropped do not stop a create, and the cell would hold a new, empty bucket of that
// name that the map does not list. By the map of now, the create of a bucket the map
// lists goes to the cell its entry names and no other, which answers that it exists.
// When the map group cannot be reached the create fails with Unavailable rather than
// go by an older map: its registration needs the group anyway.
func (c *cells) CreateBucket(ctx context.Context, bucket string) (string, error) {
	if c.maps != nil {
		if err := c.readMap(ctx); err != nil {
			return mapCell, errs.Wrap(errs.Unavailable, err, "The cell map group cannot be reached to find the home cell of bucket %s; please try again.", bucket)
		}
	}
	cellID := c.r.BucketCell(bucket)
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, err
	}
	resp, err := ix.CreateBucket(ctx, &cellarv1.CreateBucketRequest{Name: bucket})
	if c.maps == nil || (err != nil && !errs.Is(err, errs.BucketExists)) {
		return cellID, err
	}
	created := resp.GetBucket().GetCreatedUnixNano()
	if err != nil {
		got, gerr := ix.GetBucket(ctx, &cellarv1.GetBucketRequest{Name: bucket})
		if gerr != nil {
			return cellID, gerr
		}
		created = got.GetBucket().GetCreatedUnixNano()
	}
	if rerr := c.changeMap(ctx, &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Register{Register: &cellarv1.RegisterBucket{
		Name: bucket, Cell: cellID, CreatedUnixNano: created}}}); rerr != nil {
		return cellID, rerr
	}
	return cellID, err
}

// changeMap applies cmd through the map group's leader and routes by the map it
// answers with at once.
func (c *cells) changeMap(ctx context.Context, cmd *cellarv1.MapCommand) error {
	mc, err := c.r.MapGroup(true)
	if err != nil {
		return err
	}
	m, err := mc.Apply(ctx, cmd)
	if err != nil {
		return err
	}
	c.maps.Offer(m)
	return nil
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
	if e := c.r.Map().GetBuckets()[bucket]; e.GetMovedFrom() != "" {
		// The cell it moved from still holds the old copy's records: deleted now, the
		// bucket's entry would go with the only trace of them, and a bucket of the
		// same name made later in that cell would find them again.
		return cellID, errs.New(errs.Unavailable,
			"Bucket %s moved to %s, and %s still holds its old copy until the move is finished; it cannot be deleted before that. An operator finishes the move with: cellctl move --bucket %s --to %s (then again with --confirm and --reason).",
			bucket, e.GetCell(), e.GetMovedFrom(), bucket, e.GetCell())
	}
	if !c.r.ObjectsInBucketCell() {
		// The bucket's objects are in other cells too: it is empty only if each says so
		// (of its versions and delete markers too).
		if _, page, err := c.r.List(ctx, &cellarv1.ListRequest{Bucket: bucket, Limit: 1, Versions: true}); err != nil {
			return cellID, err
		} else if len(page.Entries) > 0 {
			return cellID, errs.New(errs.BucketNotEmpty, "The bucket you tried to delete is not empty.")
		}
	}
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, err
	}
	_, err = ix.DeleteBucket(ctx, &cellarv1.DeleteBucketRequest{Name: bucket})
	if c.maps == nil || (err != nil && !errs.Is(err, errs.NoSuchBucket)) {
		return cellID, err
	}
	// The cell checked that the bucket is empty and deleted it: now its entry goes.
	// A failure here leaves an entry for a bucket its cell no longer holds; the
	// client's retry (which the cell answers NoSuchBucket) removes it.
	if uerr := c.changeMap(ctx, &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Unregister{
		Unregister: &cellarv1.UnregisterBucket{Name: bucket, Cell: cellID}}}); uerr != nil {
		return cellID, uerr
	}
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
	requireBucket, versioning, err := c.bucketVersioning(ctx, in.Bucket)
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
	loc.ModifiedUnixNano, loc.Replicas, loc.VersionId = time.Now().UnixNano(), replicas, newVersionID()
	if in.Checksum != nil {
		loc.Checksum = in.Checksum()
	}
	resp, err := ix.Commit(ctx, &cellarv1.CommitRequest{Location: loc, RequireBucket: requireBucket,
		IfMatch: in.Cond.IfMatch, IfNoneMatch: in.Cond.IfNoneMatch, Versioning: versioning})
	if err != nil {
		// Not committed: the blobs are garbage no read can reach. (If the commit did
		// land and only its answer was lost, the object is readable and these deletes
		// would break it; so only reclaim when the index said no.)
		if !errs.Is(err, errs.Unavailable) {
			c.reclaimBlob(cellID, loc.ObjectId, loc.Replicas)
		}
		return cellID, s3.ObjectInfo{}, err
	}
	if resp.Previous != nil {
		c.reclaim(cellID, resp.Previous)
	}
	loc.VersionId = resp.VersionId
	info := infoOf(loc)
	info.VersionID = versionLabel(resp.VersionId, resp.Versioning)
	return cellID, info, nil
}

// writeBlob allocates a blob in the cell and streams body to its replicas. It refuses,
// before any byte moves, a write that would have fewer copies than the cell promises,
// unless degraded writes are allowed.
func (c *cells) writeBlob(ctx context.Context, cellID, bucket, key string, size int64, body io.Reader) (objectID []byte, replicas []string, n int64, sum []byte, err error) {
	alloc, err := c.allocate(ctx, cellID, &cellarv1.AllocateRequest{Bucket: bucket, Key: key, Size: size})
	if err != nil {
		return nil, nil, 0, nil, err
	}
	for _, rep := range alloc.Replicas {
		replicas = append(replicas, rep.NodeId)
	}
	degraded := len(replicas) < c.opts.Copies
	if degraded && !c.opts.DegradedWrites {
		return nil, nil, 0, nil, errs.New(errs.Unavailable,
			"Only %d storage node(s) of %s can take writes now, fewer than the %d copies it keeps of every object; the write is refused rather than stored with fewer copies. Retry later.",
			len(replicas), cellID, c.opts.Copies)
	}
	n, sum, err = c.writeReplicas(ctx, cellID, alloc, size, body)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	if degraded {
		// The location will list fewer replicas than promised: repair finds it so.
		c.metrics.degradedWrites.WithLabelValues(cellID).Inc()
		c.log.Warn("degraded write: stored with fewer copies than the cell promises", "cell", cellID,
			"bucket", bucket, "key", key, "object_id", hex.EncodeToString(alloc.ObjectId),
			"copies", len(replicas), "promised", c.opts.Copies, "replicas", replicas)
	}
	return alloc.ObjectId, replicas, n, sum, nil
}

// allocateSettle bounds how long allocate asks placement again when the two disagree.
const allocateSettle = 2 * time.Second

// allocate asks placement for the storage nodes of a new blob. When placement gives fewer
// than the cell promises while this gateway sees enough storage nodes ready, their two
// gossip views disagree for a moment (a node has just started, or come back): it asks
// again, for up to allocateSettle, before it takes the short answer. When the gateway
// sees too few as well, the short answer is taken at once.
func (c *cells) allocate(ctx context.Context, cellID string, req *cellarv1.AllocateRequest) (*cellarv1.AllocateResponse, error) {
	pl, err := c.r.Placement(cellID)
	if err != nil {
		return nil, err
	}
	settle := time.NewTimer(allocateSettle)
	defer settle.Stop()
	retry := time.NewTicker(allocateSettle / 20)
	defer retry.Stop()
	for {
		alloc, err := pl.Allocate(ctx, req)
		if err != nil || len(alloc.Replicas) >= c.opts.Copies || c.r.ReadyStorage(cellID) < c.opts.Copies {
			return alloc, err
		}
		select {
		case <-retry.C:
		case <-settle.C:
			return alloc, nil
		case <-ctx.Done():
			return alloc, nil
		}
	}
}

// locationOf gives a Location carrying an object's metadata.
func locationOf(m s3.ObjectMeta) *cellarv1.Location {
	return &cellarv1.Location{
		ContentType: m.ContentType, ContentEncoding: m.ContentEncoding, CacheControl: m.CacheControl,
		ContentDisposition: m.ContentDisposition, ContentLanguage: m.ContentLanguage, Expires: m.Expires,
		UserMetadata: m.UserMeta, ChecksumAlgorithm: m.ChecksumAlgorithm, Checksum: m.Checksum,
		Tags: tagsToProto(m.Tags),
	}
}

func metaOf(loc *cellarv1.Location) s3.ObjectMeta {
	return s3.ObjectMeta{
		ContentType: loc.GetContentType(), ContentEncoding: loc.GetContentEncoding(), CacheControl: loc.GetCacheControl(),
		ContentDisposition: loc.GetContentDisposition(), ContentLanguage: loc.GetContentLanguage(), Expires: loc.GetExpires(),
		UserMeta: loc.GetUserMetadata(), ChecksumAlgorithm: loc.GetChecksumAlgorithm(), Checksum: loc.GetChecksum(),
		Tags: tagsOf(loc.GetTags()),
	}
}

// writeReplicas streams the body to every allocated storage node at once, hashing it
// on the way. Every message goes to all replicas concurrently, and the replicas' final
// answers (each given once that node has the blob durably) are awaited together, so a
// PUT waits for the slowest replica's fsync, not for the sum of them. Any failure, of a
// replica or of the body, cancels every stream, so no replica keeps a partial blob. A
// storage node that takes no message (or gives no answer) for StorageIdle fails the
// write; the time spent waiting for the client's body does not count against it (the
// S3 server bounds that).
func (c *cells) writeReplicas(ctx context.Context, cellID string, alloc *cellarv1.AllocateResponse, size int64, body io.Reader) (int64, []byte, error) {
	ctx, pd := router.WithProgressDeadline(ctx, c.opts.StorageIdle)
	defer pd.Stop()
	streams := make([]replicaStream, 0, len(alloc.Replicas))
	for _, rep := range alloc.Replicas {
		st, err := c.r.Storage(cellID, rep.NodeId)
		if err != nil {
			return 0, nil, err
		}
		ws, err := st.Write(ctx)
		if err != nil {
			return 0, nil, storageWriteErr(cellID, rep.NodeId, err)
		}
		streams = append(streams, replicaStream{node: rep.NodeId, ws: ws})
	}
	hdr := &cellarv1.WriteRequest{Msg: &cellarv1.WriteRequest_Header{Header: &cellarv1.WriteHeader{ObjectId: alloc.ObjectId, Size: size}}}
	if err := sendAll(cellID, pd, streams, hdr); err != nil {
		return 0, nil, err
	}
	h := md5.New()
	buf := getChunk(size)
	defer putChunk(buf)
	var written int64
	for {
		n, rerr := io.ReadFull(body, buf)
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return 0, nil, rerr // the client's body: its error says what was wrong with it
		}
		if n > 0 {
			h.Write(buf[:n])
			written += int64(n)
			// Send has marshalled the message when it returns: buf may be reused.
			msg := &cellarv1.WriteRequest{Msg: &cellarv1.WriteRequest_Data{Data: buf[:n]}}
			if err := sendAll(cellID, pd, streams, msg); err != nil {
				return 0, nil, err
			}
		}
		if rerr != nil {
			break
		}
	}
	// Every replica is told the body is complete before any answer is awaited: they
	// commit (fsync) in parallel.
	err := pd.Step(func() error {
		return eachReplica(streams, func(rs replicaStream) error {
			_, err := rs.ws.CloseAndRecv()
			return storageWriteErr(cellID, rs.node, err)
		})
	})
	if err != nil {
		return 0, nil, err
	}
	return written, h.Sum(nil), nil
}

// replicaStream is the write stream to one replica.
type replicaStream struct {
	node string
	ws   cellarv1.Storage_WriteClient
}

// sendAll sends msg to every replica, concurrently, as one step of the progress
// deadline. A failed Send learns the real error from the stream's answer.
func sendAll(cellID string, pd *router.ProgressDeadline, streams []replicaStream, msg *cellarv1.WriteRequest) error {
	return pd.Step(func() error {
		return eachReplica(streams, func(rs replicaStream) error {
			err := rs.ws.Send(msg)
			if errors.Is(err, io.EOF) {
				if _, rerr := rs.ws.CloseAndRecv(); rerr != nil {
					err = rerr
				}
			}
			return storageWriteErr(cellID, rs.node, err)
		})
	})
}

// eachReplica runs f on every stream at once (the first inline) and returns the first
// error, in replica order.
func eachReplica(streams []replicaStream, f func(replicaStream) error) error {
	if len(streams) == 1 {
		return f(streams[0])
	}
	results := make([]error, len(streams))
	var wg sync.WaitGroup
	for i := 1; i < len(streams); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = f(streams[i])
		}()
	}
	results[0] = f(streams[0])
	wg.Wait()
	for _, err := range results {
		if err != nil {
			return err
		}
	}
	return nil
}

// chunks are the buffers of whole chunks a PUT reads its body into: reused, not
// allocated (and zeroed) per request.
var chunks = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// getChunk returns a buffer for the body of an object of size bytes (-1: unknown): a
// pooled chunk, or a small buffer of just the size for a small object.
func getChunk(size int64) []byte {
	if size >= 0 && size < chunkSize {
		return make([]byte, max(size, 1))
	}
	return *chunks.Get().(*[]byte)
}

func putChunk(b []byte) {
	if cap(b) == chunkSize {
		b = b[:chunkSize]
		chunks.Put(&b)
	}
}

// storageWriteErr turns the failure of a storage node to store an object into what the
// S3 client gets: a node that is down, stalled, out of space or failing its disk is a
// 503 (retry: placement will leave a node that cannot write out), never a 500 with the
// node's own words. The cause is kept for the log.
func storageWriteErr(cellID, nodeID string, err error) error {
	if err == nil {
		return nil
	}
	switch errs.KindOf(err) {
	case errs.Unavailable, errs.Internal, errs.Corrupt, errs.SlowDown:
		return errs.Wrap(errs.Unavailable, err, "Storage node %s of %s could not store the object. Retry later.", nodeID, cellID)
	}
	return err
}

// reclaim deletes, once no read can reach them any more (after the reclaim grace), the
// blobs of an object version (its parts' too) that the index no longer points to:
// one an overwrite, a DELETE or a completed upload replaced. reclaimLoop does the
// deleting.
func (c *cells) reclaim(cellID string, loc *cellarv1.Location) {
	c.reclaims.add(cellID, loc)
}

// reclaimNow deletes the blobs of a location (its parts' too) at once, in the background.
func (c *cells) reclaimNow(cellID string, loc *cellarv1.Location) {
	if len(loc.GetObjectId()) > 0 {
		c.reclaimBlob(cellID, loc.ObjectId, loc.Replicas)
	}
	c.reclaimParts(cellID, loc.GetParts())
}

// reclaimParts deletes, at once, parts that no read can reach (never part of an object).
func (c *cells) reclaimParts(cellID string, parts []*cellarv1.PartLocation) {
	for _, p := range parts {
		c.reclaimBlob(cellID, p.ObjectId, p.Replicas)
	}
}

// reclaimBlob deletes, at once and in the background, a blob that no read can reach.
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

// reclaimLoop deletes the blobs of replaced object versions as their grace runs out,
// until ctx is done. What is still pending then is dropped (and logged): those blobs
// stay on disk, unreferenced, for the storage tier's garbage collection.
func (c *cells) reclaimLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		for _, p := range c.reclaims.due(time.Now()) {
			c.reclaimNow(p.cellID, p.loc)
		}
		wait := time.Hour
		if next, ok := c.reclaims.next(); ok {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			if n := c.reclaims.len(); n > 0 {
				c.log.Warn("gateway stopping with replaced object versions not yet reclaimed; their blobs stay until garbage collection", "pending", n)
			}
			return
		case <-c.reclaims.wake:
		case <-timer.C:
		}
	}
}

// reclaimer is the queue of replaced object versions waiting out the reclaim grace.
// Every entry waits the same grace, so the queue is in due order.
type reclaimer struct {
	grace time.Duration
	wake  chan struct{} // signalled when the queue was empty and is not
	mu    sync.Mutex
	queue []pendingReclaim
}

type pendingReclaim struct {
	due    time.Time
	cellID string
	loc    *cellarv1.Location
}

func newReclaimer(grace time.Duration) *reclaimer {
	return &reclaimer{grace: grace, wake: make(chan struct{}, 1)}
}

func (r *reclaimer) add(cellID string, loc *cellarv1.Location) {
	r.mu.Lock()
	r.queue = append(r.queue, pendingReclaim{due: time.Now().Add(r.grace), cellID: cellID, loc: loc})
	first := len(r.queue) == 1
	r.mu.Unlock()
	if first {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// due removes and returns the entries due at now.
func (r *reclaimer) due(now time.Time) []pendingReclaim {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := 0
	for i < len(r.queue) && !r.queue[i].due.After(now) {
		i++
	}
	out := slices.Clone(r.queue[:i])
	r.queue = slices.Delete(r.queue, 0, i)
	return out
}

// next is when the first entry is due, if there is one.
func (r *reclaimer) next() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) == 0 {
		return time.Time{}, false
	}
	return r.queue[0].due, true
}

func (r *reclaimer) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
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
	return c.lookupVersion(ctx, bucket, key, "")
}

// lookupReq is one Lookup, once more by a newer map when the bucket has moved.
func (c *cells) lookupReq(ctx context.Context, req *cellarv1.LookupRequest) (string, *cellarv1.Location, error) {
	cellID, loc, err := c.lookupOnce(ctx, req)
	if errs.Is(err, errs.Unavailable) && c.refreshMap(ctx, req.Bucket, cellID) {
		// The bucket moved away from the cell this gateway's map named: once more, by
		// the newer map.
		return c.lookupOnce(ctx, req)
	}
	return cellID, loc, err
}

func (c *cells) lookupOnce(ctx context.Context, req *cellarv1.LookupRequest) (string, *cellarv1.Location, error) {
	bucket, key := req.Bucket, req.Key
	cellID := c.r.ObjectCell(bucket, key)
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, nil, err
	}
	resp, err := ix.Lookup(ctx, req)
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
	cellID, loc, err := c.lookupVersion(ctx, in.Bucket, in.Key, in.VersionID)
	if err != nil {
		return cellID, s3.ObjectInfo{}, nil, err
	}
	info, body, err := c.openObject(ctx, cellID, loc, in.Choose, in.VersionID)
	if errors.Is(err, errBlobGone) {
		// The version looked up was replaced (or deleted) and reclaimed before this read
		// opened it: look the key up once more and serve what it is now.
		prev := loc
		if cellID, loc, err = c.lookupVersion(ctx, in.Bucket, in.Key, in.VersionID); err != nil {
			return cellID, s3.ObjectInfo{}, nil, err
		}
		if proto.Equal(loc, prev) {
			c.log.Error("object data missing on every replica", "cell", cellID, "bucket", in.Bucket, "key", in.Key,
				"object_id", hex.EncodeToString(loc.GetObjectId()), "replicas", loc.GetReplicas())
			return cellID, s3.ObjectInfo{}, nil, errs.Wrap(errs.Internal, err, "object data missing on every replica")
		}
		info, body, err = c.openObject(ctx, cellID, loc, in.Choose, in.VersionID)
		if errors.Is(err, errBlobGone) {
			// A version current a moment ago cannot have been reclaimed yet.
			err = errs.Wrap(errs.Internal, err, "object data missing on every replica")
		}
	}
	if err != nil {
		return cellID, s3.ObjectInfo{}, nil, err
	}
	return cellID, info, body, nil
}

// openObject opens the range of the object at loc that choose picks (all of it if
// choose is nil): the first bytes are read before it returns, so that a read that
// cannot start is an error rather than a short body.
func (c *cells) openObject(ctx context.Context, cellID string, loc *cellarv1.Location, choose func(s3.ObjectInfo) (int64, int64, error), versionID string) (s3.ObjectInfo, io.ReadCloser, error) {
	info := versionInfoOf(loc, versionID)
	off, n := int64(0), loc.Size
	if choose != nil {
		var err error
		if off, n, err = choose(info); err != nil {
			return info, nil, err
		}
	}
	if n == 0 {
		return info, io.NopCloser(strings.NewReader("")), nil
	}
	if len(loc.Parts) == 0 {
		body, err := c.openBlob(ctx, cellID, loc.ObjectId, loc.Replicas, off, n)
		if err != nil {
			return info, nil, err
		}
		return info, body, nil
	}
	// A multipart object: read the parts the range overlaps, one after the other.
	pr := &partsReader{c: c, ctx: ctx, cellID: cellID, parts: loc.Parts, off: off, left: n}
	if err := pr.next(); err != nil {
		return info, nil, err
	}
	return info, pr, nil
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

// errBlobGone is (wrapped in) the error of a read whose blob no replica has: it was
// reclaimed, or lost.
var errBlobGone = errors.New("no replica has the blob")

// openBlob opens a read of length bytes at offset of a blob, from its replicas (see
// blobReader), and reads its first bytes before it returns. If no replica can send them
// the error is Unavailable if one of them was, errBlobGone (a NoSuchKey) if every one
// said it has no such blob, else the last replica's.
func (c *cells) openBlob(ctx context.Context, cellID string, objectID []byte, replicas []string, offset, length int64) (io.ReadCloser, error) {
	b := &blobReader{c: c, ctx: ctx, cellID: cellID, objectID: objectID, replicas: replicas, off: offset, left: length, gone: true}
	if err := b.fill(); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// blobReader reads a range of one blob from its replicas. It reads from one replica at
// a time; when that replica fails (a block that fails its checksum, a node that stops, or
// makes no progress for StorageIdle), it goes on from the first byte it has not received,
// on the next replica. Every byte it returns has passed its block's checksum on the node
// that sent it. It gives up when every replica has failed at the same offset.
type blobReader struct {
	c        *cells
	ctx      context.Context
	cellID   string
	objectID []byte
	replicas []string

	off, left int64  // the first byte not yet received, and how many are left to receive
	buf       []byte // received, not yet returned
	cur       *replicaRead
	next      int // index in replicas of the replica to try next
	tries     int // replicas tried since the last byte was received

	// What the replicas said, to choose the error when none can go on.
	lastErr     error
	unavailable error // the last Unavailable error
	gone        bool  // every replica tried said it has no such blob
	received    bool  // some byte was received: a later failure is a failover
}

// replicaRead is the read stream open on one replica.
type replicaRead struct {
	node   string
	stream cellarv1.Storage_ReadClient
	pd     *router.ProgressDeadline
}

func (b *blobReader) Read(p []byte) (int, error) {
	if len(b.buf) == 0 {
		if b.left == 0 {
			return 0, io.EOF
		}
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

// fill receives the next bytes of the range into buf, switching replica as needed.
func (b *blobReader) fill() error {
	for len(b.buf) == 0 && b.left > 0 {
		if b.cur == nil {
			if b.tries == len(b.replicas) {
				return b.failure()
			}
			node := b.replicas[b.next%len(b.replicas)]
			b.next++
			b.tries++
			b.open(node)
			continue
		}
		var msg *cellarv1.ReadResponse
		err := b.cur.pd.Step(func() error {
			var err error
			msg, err = b.cur.stream.Recv()
			return err
		})
		if errors.Is(err, io.EOF) {
			err = errs.New(errs.Internal, "read stream ended %d bytes short", b.left)
		}
		if err != nil {
			b.failed(err)
			continue
		}
		data := msg.GetData()
		if int64(len(data)) > b.left {
			data = data[:b.left]
		}
		if len(data) > 0 {
			b.buf, b.off, b.left = data, b.off+int64(len(data)), b.left-int64(len(data))
			b.tries, b.received = 0, true
		}
	}
	if b.left == 0 && b.cur != nil {
		b.cur.pd.Stop() // everything received: release the stream
		b.cur = nil
	}
	return nil
}

// open starts reading the rest of the range from node; a failure is recorded.
func (b *blobReader) open(node string) {
	st, err := b.c.r.Storage(b.cellID, node)
	if err != nil {
		b.record(node, err)
		return
	}
	ctx, pd := router.WithProgressDeadline(b.ctx, b.c.opts.StorageIdle)
	var stream cellarv1.Storage_ReadClient
	err = pd.Step(func() error {
		var err error
		stream, err = st.Read(ctx, &cellarv1.ReadRequest{ObjectId: b.objectID, Offset: b.off, Length: b.left})
		return err
	})
	if err != nil {
		pd.Stop()
		b.record(node, err)
		return
	}
	b.cur = &replicaRead{node: node, stream: stream, pd: pd}
}

// failed closes the stream of the current replica after err.
func (b *blobReader) failed(err error) {
	node := b.cur.node
	b.cur.pd.Stop()
	b.cur = nil
	b.record(node, err)
	if b.received {
		b.c.metrics.readFailovers.WithLabelValues(b.cellID).Inc()
	}
}

// record notes what a replica said when it could not go on.
func (b *blobReader) record(node string, err error) {
	b.lastErr = err
	if !errs.Is(err, errs.NoSuchKey) {
		b.gone = false
		b.c.log.Warn("read replica failed; trying another", "cell", b.cellID, "node", node,
			"object_id", hex.EncodeToString(b.objectID), "offset", b.off, "err", err)
	}
	if errs.Is(err, errs.Unavailable) {
		b.unavailable = err
	}
}

// failure is the error of a read that no replica can go on with.
func (b *blobReader) failure() error {
	switch {
	case b.gone && !b.received:
		return errs.Wrap(errs.NoSuchKey, fmt.Errorf("%w: %w", errBlobGone, b.lastErr), "The specified key does not exist.")
	case b.unavailable != nil:
		return b.unavailable
	case b.lastErr != nil:
		return b.lastErr
	}
	return errs.New(errs.Unavailable, "no replica of this object is available")
}

func (b *blobReader) Close() error {
	if b.cur != nil {
		b.cur.pd.Stop()
		b.cur = nil
	}
	return nil
}

// DeleteObject deletes a key as its bucket's versioning says (DeleteObjectVersion).
func (c *cells) DeleteObject(ctx context.Context, bucket, key string) (string, error) {
	cellID, _, err := c.DeleteObjectVersion(ctx, bucket, key, "")
	return cellID, err
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
