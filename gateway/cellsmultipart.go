package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sort"
	"strings"
	"sync"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// Multipart uploads over the cells. An upload lives in the cell of its object: its
// record and its parts' records in that cell's index, its parts as blobs on that cell's
// storage nodes. Completion is one index commit, so the object appears whole or not at
// all; the parts it does not use, an aborted upload's parts, and the parts of uploads
// abandoned longer than the configured age are reclaimed.

func newUploadID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

func (c *cells) CreateUpload(ctx context.Context, bucket, key string, meta ObjectMeta) (string, string, error) {
	cellID := c.r.ObjectCell(bucket, key)
	if c.r.SpansCells() {
		if _, err := c.HeadBucket(ctx, bucket); err != nil {
			return cellID, "", err
		}
	}
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, "", err
	}
	id := newUploadID()
	meta.Checksum = ""
	up := &cellarv1.Upload{Bucket: bucket, Key: key, UploadId: id, InitiatedUnixNano: time.Now().UnixNano(), Meta: locationOf(meta)}
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	if _, err := ix.CreateUpload(ctx, &cellarv1.CreateUploadRequest{Upload: up, RequireBucket: !c.r.SpansCells()}); err != nil {
		return cellID, "", err
	}
	return cellID, id, nil
}

func (c *cells) UploadPart(ctx context.Context, in PartInput) (string, PartInfo, error) {
	cellID := c.r.ObjectCell(in.Bucket, in.Key)
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, PartInfo{}, err
	}
	// Refuse a part of an upload that does not exist before moving its bytes.
	lctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	_, err = ix.ListParts(lctx, &cellarv1.ListPartsRequest{Bucket: in.Bucket, Key: in.Key, UploadId: in.UploadID, PartNumberMarker: 10000})
	cancel()
	if err != nil {
		return cellID, PartInfo{}, err
	}
	objectID, replicas, size, sum, err := c.writeBlob(ctx, cellID, in.Bucket, in.Key, in.Size, in.Body)
	if err != nil {
		return cellID, PartInfo{}, err
	}
	part := &cellarv1.PartLocation{Number: int32(in.Number), ObjectId: objectID, Size: size, Md5: sum, Replicas: replicas,
		ModifiedUnixNano: time.Now().UnixNano()}
	if in.Checksum != nil {
		part.Checksum = in.Checksum()
	}
	pctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := ix.PutPart(pctx, &cellarv1.PutPartRequest{Bucket: in.Bucket, Key: in.Key, UploadId: in.UploadID, Part: part})
	if err != nil {
		if !errs.Is(err, errs.Unavailable) {
			c.reclaimBlob(cellID, objectID, replicas)
		}
		return cellID, PartInfo{}, err
	}
	if resp.Previous != nil {
		c.reclaimParts(cellID, []*cellarv1.PartLocation{resp.Previous})
	}
	return cellID, partInfoOf(part), nil
}

func partInfoOf(p *cellarv1.PartLocation) PartInfo {
	return PartInfo{Number: int(p.Number), ETag: hex.EncodeToString(p.Md5), Size: p.Size,
		LastModified: time.Unix(0, p.ModifiedUnixNano), Checksum: p.Checksum}
}

func uploadInfoOf(u *cellarv1.Upload) UploadInfo {
	return UploadInfo{Bucket: u.Bucket, Key: u.Key, UploadID: u.UploadId, Initiated: time.Unix(0, u.InitiatedUnixNano), Meta: metaOf(u.GetMeta())}
}

func (c *cells) CompleteUpload(ctx context.Context, in CompleteInput) (string, ObjectInfo, error) {
	cellID := c.r.ObjectCell(in.Bucket, in.Key)
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, ObjectInfo{}, err
	}
	req := &cellarv1.CompleteUploadRequest{Bucket: in.Bucket, Key: in.Key, UploadId: in.UploadID,
		MinPartSize: c.minPartSize, ModifiedUnixNano: time.Now().UnixNano(), IfMatch: in.Cond.IfMatch,
		IfNoneMatch: in.Cond.IfNoneMatch, RequireBucket: !c.r.SpansCells()}
	for _, p := range in.Parts {
		req.Parts = append(req.Parts, &cellarv1.CompletedPart{Number: int32(p.Number), Etag: p.ETag})
	}
	cctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := ix.CompleteUpload(cctx, req)
	if err != nil {
		if errs.Is(err, errs.NoSuchUpload) {
			if _, berr := c.HeadBucket(ctx, in.Bucket); errs.Is(berr, errs.NoSuchBucket) {
				return cellID, ObjectInfo{}, berr
			}
		}
		return cellID, ObjectInfo{}, err
	}
	if resp.Previous != nil {
		c.reclaim(cellID, resp.Previous)
	}
	c.reclaimParts(cellID, resp.Unused)
	return cellID, infoOf(resp.Location), nil
}

func (c *cells) AbortUpload(ctx context.Context, bucket, key, uploadID string) (string, error) {
	cellID := c.r.ObjectCell(bucket, key)
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, err
	}
	actx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := ix.AbortUpload(actx, &cellarv1.AbortUploadRequest{Bucket: bucket, Key: key, UploadId: uploadID})
	if err != nil {
		if errs.Is(err, errs.NoSuchUpload) {
			if _, berr := c.HeadBucket(ctx, bucket); errs.Is(berr, errs.NoSuchBucket) {
				return cellID, berr
			}
		}
		return cellID, err
	}
	c.reclaimParts(cellID, resp.Parts)
	return cellID, nil
}

func (c *cells) ListUploads(ctx context.Context, bucket string, o ListUploadsOptions) (string, []UploadInfo, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	home := c.r.BucketCell(bucket)
	if _, err := c.HeadBucket(ctx, bucket); err != nil {
		return home, nil, false, err
	}
	req := &cellarv1.ListUploadsRequest{Bucket: bucket, Prefix: o.Prefix, KeyMarker: o.KeyMarker,
		UploadIdMarker: o.UploadIDMarker, Limit: int32(o.MaxUploads)}
	cellIDs := []string{home}
	if c.r.SpansCells() {
		cellIDs = c.r.Cells()
	}
	var (
		mu        sync.Mutex
		all       []UploadInfo
		truncated bool
	)
	errc := make(chan error, len(cellIDs))
	for _, id := range cellIDs {
		go func() {
			errc <- func() error {
				ix, err := c.index(id)
				if err != nil {
					return err
				}
				resp, err := ix.ListUploads(ctx, req)
				if err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				for _, u := range resp.Uploads {
					all = append(all, uploadInfoOf(u))
				}
				truncated = truncated || resp.Truncated
				return nil
			}()
		}()
	}
	var first error
	for range cellIDs {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	cell := strings.Join(cellIDs, ",")
	if first != nil {
		return cell, nil, false, first
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Key != all[j].Key {
			return all[i].Key < all[j].Key
		}
		return all[i].UploadID < all[j].UploadID
	})
	if max := o.MaxUploads; max > 0 && len(all) > max {
		all, truncated = all[:max], true
	}
	return cell, all, truncated, nil
}

func (c *cells) ListParts(ctx context.Context, bucket, key, uploadID string, o ListPartsOptions) (string, UploadInfo, []PartInfo, bool, error) {
	cellID := c.r.ObjectCell(bucket, key)
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, UploadInfo{}, nil, false, err
	}
	lctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := ix.ListParts(lctx, &cellarv1.ListPartsRequest{Bucket: bucket, Key: key, UploadId: uploadID,
		PartNumberMarker: int32(o.PartNumberMarker), Limit: int32(o.MaxParts)})
	if err != nil {
		if errs.Is(err, errs.NoSuchUpload) {
			if _, berr := c.HeadBucket(ctx, bucket); errs.Is(berr, errs.NoSuchBucket) {
				return cellID, UploadInfo{}, nil, false, berr
			}
		}
		return cellID, UploadInfo{}, nil, false, err
	}
	parts := make([]PartInfo, len(resp.Parts))
	for i, p := range resp.Parts {
		parts[i] = partInfoOf(p)
	}
	return cellID, uploadInfoOf(resp.Upload), parts, resp.Truncated, nil
}

// reapUploads aborts, in every cell, the uploads initiated more than maxAge ago and
// reclaims their parts. It returns how many it aborted.
func (c *cells) reapUploads(ctx context.Context, maxAge time.Duration) (int, error) {
	var (
		mu    sync.Mutex
		total int
	)
	err := c.eachCell(func(cellID string) error {
		ix, err := c.index(cellID)
		if err != nil {
			return err
		}
		lctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		resp, err := ix.ListUploads(lctx, &cellarv1.ListUploadsRequest{InitiatedBeforeUnixNano: time.Now().Add(-maxAge).UnixNano()})
		cancel()
		if err != nil {
			return err
		}
		for _, u := range resp.Uploads {
			if _, err := c.AbortUpload(ctx, u.Bucket, u.Key, u.UploadId); err != nil && !errs.Is(err, errs.NoSuchUpload) {
				return err
			}
			c.log.Info("reclaimed an abandoned multipart upload", "cell", cellID, "bucket", u.Bucket, "key", u.Key,
				"upload_id", u.UploadId, "initiated", time.Unix(0, u.InitiatedUnixNano))
			mu.Lock()
			total++
			mu.Unlock()
		}
		return nil
	})
	return total, err
}

// reapLoop runs reapUploads every interval until ctx is done.
func (c *cells) reapLoop(ctx context.Context, maxAge, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := c.reapUploads(ctx, maxAge); err != nil && ctx.Err() == nil {
			c.log.Warn("reclaiming abandoned multipart uploads", "err", err)
		}
	}
}
