package gateway

import (
	"context"
	"log/slog"

	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/router"
)

// Copier copies objects from one cell to another over the gateway's own data path:
// the bytes are read from the source cell's replicas as a GET reads them (a replica
// that fails is replaced mid-stream), and written to the target cell as a PUT writes
// them (placement.Allocate, every promised copy, then index.Commit). It is what a move
// of a bucket between cells copies with (package gateway/mover).
type Copier struct{ c *cells }

// NewCopier returns a copier over the cells r routes to, with the copies and timeouts
// of topo.
func NewCopier(r *router.Router, topo cell.Topology, logger *slog.Logger) *Copier {
	return &Copier{c: newCells(r, logger, cellsOptions{Copies: topo.PromisedCopies(), DegradedWrites: topo.DegradedWrites})}
}

// CopyObject copies the object at loc from cell src to cell dst: new blobs in dst
// holding the same bytes (each part of a multipart object a blob of its own, as in
// src), and a commit in dst of the same object (key, metadata, ETag, checksum, time).
// A version it replaces in dst, which no read can reach while the bucket is served by
// src, has its blobs deleted at once. It returns the location committed in dst.
func (cp *Copier) CopyObject(ctx context.Context, src, dst string, loc *cellarv1.Location) (*cellarv1.Location, error) {
	c := cp.c
	out := proto.Clone(loc).(*cellarv1.Location)
	var written []*cellarv1.PartLocation // blobs written so far, deleted if the copy fails
	fail := func(err error) (*cellarv1.Location, error) {
		c.reclaimParts(dst, written)
		return nil, err
	}
	copyBlob := func(objectID []byte, replicas []string, size int64) ([]byte, []string, error) {
		body, err := c.openBlob(ctx, src, objectID, replicas, 0, size)
		if err != nil {
			return nil, nil, err
		}
		defer body.Close()
		id, reps, _, _, err := c.writeBlob(ctx, dst, loc.Bucket, loc.Key, size, body)
		if err == nil {
			written = append(written, &cellarv1.PartLocation{ObjectId: id, Replicas: reps})
		}
		return id, reps, err
	}
	if len(loc.Parts) == 0 {
		id, reps, err := copyBlob(loc.ObjectId, loc.Replicas, loc.Size)
		if err != nil {
			return fail(err)
		}
		out.ObjectId, out.Replicas = id, reps
	}
	for i, p := range loc.Parts {
		id, reps, err := copyBlob(p.ObjectId, p.Replicas, p.Size)
		if err != nil {
			return fail(err)
		}
		out.Parts[i].ObjectId, out.Parts[i].Replicas = id, reps
	}
	ix, err := c.index(dst)
	if err != nil {
		return fail(err)
	}
	resp, err := ix.Commit(ctx, &cellarv1.CommitRequest{Location: out, RequireBucket: true})
	if err != nil {
		if errs.Is(err, errs.Unavailable) {
			// The commit may have landed with only its answer lost (a leader gone, the
			// copy cancelled): the blobs may be what the target's record points to,
			// so they are left, as a PUT leaves them. A copy that did not land leaves
			// them unreferenced, for the storage tier's garbage collection.
			return nil, err
		}
		return fail(err)
	}
	if resp.Previous != nil {
		c.reclaimNow(dst, resp.Previous)
	}
	return out, nil
}

// DeleteBlobs deletes the blobs of loc in cellID at once, in the background.
func (cp *Copier) DeleteBlobs(cellID string, loc *cellarv1.Location) { cp.c.reclaimNow(cellID, loc) }
