package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/gateway/s3"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/router"
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

func (c *cells) CreateUpload(ctx context.Context, bucket, key string, meta s3.ObjectMeta) (string, string, error) {
	cellID := c.r.ObjectCell(bucket, key)
	requireBucket, err := c.checkBucketFirst(ctx, bucket)
	if err != nil {
		return cellID, "", err
	}
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, "", err
	}
	id := newUploadID()
	meta.Checksum = ""
	up := &cellarv1.Upload{Bucket: bucket, Key: key, UploadId: id, InitiatedUnixNano: time.Now().UnixNano(), Meta: locationOf(meta),
		ChecksumType: meta.ChecksumType}
	if _, err := ix.CreateUpload(ctx, &cellarv1.CreateUploadRequest{Upload: up, RequireBucket: requireBucket}); err != nil {
		return cellID, "", err
	}
	return cellID, id, nil
}

func (c *cells) UploadPart(ctx context.Context, in s3.PartInput) (string, s3.PartInfo, error) {
	cellID := c.r.ObjectCell(in.Bucket, in.Key)
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, s3.PartInfo{}, err
	}
	// Refuse a part of an upload that does not exist, or that does not fit it, before
	// moving its bytes.
	upload, err := ix.ListParts(ctx, &cellarv1.ListPartsRequest{Bucket: in.Bucket, Key: in.Key, UploadId: in.UploadID, PartNumberMarker: 10000})
	if err != nil {
		return cellID, s3.PartInfo{}, err
	}
	if in.CheckUpload != nil {
		if err := in.CheckUpload(uploadInfoOf(upload.Upload)); err != nil {
			return cellID, s3.PartInfo{}, err
		}
	}
	objectID, replicas, size, sum, err := c.writeBlob(ctx, cellID, in.Bucket, in.Key, in.Size, in.Body)
	if err != nil {
		return cellID, s3.PartInfo{}, err
	}
	part := &cellarv1.PartLocation{Number: int32(in.Number), ObjectId: objectID, Size: size, Md5: sum, Replicas: replicas,
		ModifiedUnixNano: time.Now().UnixNano()}
	if in.Checksum != nil {
		part.Checksum = in.Checksum()
	}
	resp, err := ix.PutPart(ctx, &cellarv1.PutPartRequest{Bucket: in.Bucket, Key: in.Key, UploadId: in.UploadID, Part: part})
	if err != nil {
		if !errs.Is(err, errs.Unavailable) {
			c.reclaimBlob(cellID, objectID, replicas)
		}
		return cellID, s3.PartInfo{}, err
	}
	if resp.Previous != nil {
		c.reclaimParts(cellID, []*cellarv1.PartLocation{resp.Previous})
	}
	return cellID, partInfoOf(part), nil
}

func partInfoOf(p *cellarv1.PartLocation) s3.PartInfo {
	return s3.PartInfo{Number: int(p.Number), ETag: hex.EncodeToString(p.Md5), Size: p.Size,
		LastModified: time.Unix(0, p.ModifiedUnixNano), Checksum: p.Checksum}
}

func uploadInfoOf(u *cellarv1.Upload) s3.UploadInfo {
	info := s3.UploadInfo{Bucket: u.GetBucket(), Key: u.GetKey(), UploadID: u.GetUploadId(), Initiated: time.Unix(0, u.GetInitiatedUnixNano()), Meta: metaOf(u.GetMeta())}
	info.Meta.ChecksumType = u.GetChecksumType()
	return info
}

func (c *cells) CompleteUpload(ctx context.Context, in s3.CompleteInput) (string, s3.ObjectInfo, error) {
	cellID := c.r.ObjectCell(in.Bucket, in.Key)
	_, versioning, err := c.bucketVersioning(ctx, in.Bucket)
	if err != nil {
		return cellID, s3.ObjectInfo{}, err
	}
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, s3.ObjectInfo{}, err
	}
	req := &cellarv1.CompleteUploadRequest{Bucket: in.Bucket, Key: in.Key, UploadId: in.UploadID,
		Versioning: versioning, VersionId: newVersionID(),
		MinPartSize: c.minPartSize, ModifiedUnixNano: time.Now().UnixNano(), IfMatch: in.Cond.IfMatch,
		IfNoneMatch: in.Cond.IfNoneMatch, RequireBucket: c.r.ObjectsInBucketCell(),
		ChecksumAlgorithm: in.ChecksumAlgorithm, Checksum: in.Checksum, ChecksumType: in.ChecksumType}
	for _, p := range in.Parts {
		req.Parts = append(req.Parts, &cellarv1.CompletedPart{Number: int32(p.Number), Etag: p.ETag,
			ChecksumAlgorithm: p.ChecksumAlgorithm, Checksum: p.Checksum})
	}
	resp, err := ix.CompleteUpload(ctx, req)
	if err != nil {
		if errs.Is(err, errs.NoSuchUpload) {
			if _, berr := c.HeadBucket(ctx, in.Bucket); errs.Is(berr, errs.NoSuchBucket) {
				return cellID, s3.ObjectInfo{}, berr
			}
		}
		return cellID, s3.ObjectInfo{}, err
	}
	if resp.Previous != nil {
		c.reclaim(cellID, resp.Previous)
	}
	c.reclaimParts(cellID, resp.Unused)
	info := infoOf(resp.Location)
	info.VersionID = versionLabel(resp.Location.GetVersionId(), resp.Versioning)
	return cellID, info, nil
}

func (c *cells) AbortUpload(ctx context.Context, bucket, key, uploadID string) (string, error) {
	cellID := c.r.ObjectCell(bucket, key)
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, err
	}
	resp, err := ix.AbortUpload(ctx, &cellarv1.AbortUploadRequest{Bucket: bucket, Key: key, UploadId: uploadID})
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

func (c *cells) ListUploads(ctx context.Context, bucket string, o s3.ListUploadsOptions) (string, []s3.UploadInfo, bool, error) {
	if _, err := c.HeadBucket(ctx, bucket); err != nil {
		return c.r.BucketCell(bucket), nil, false, err
	}
	cellIDs, page, err := c.r.ListUploads(ctx, &cellarv1.ListUploadsRequest{Bucket: bucket, Prefix: o.Prefix,
		KeyMarker: o.KeyMarker, UploadIdMarker: o.UploadIDMarker, Limit: int32(o.MaxUploads)})
	cell := strings.Join(cellIDs, ",")
	if err != nil {
		return cell, nil, false, err
	}
	var uploads []s3.UploadInfo
	for _, u := range page.Uploads {
		uploads = append(uploads, uploadInfoOf(u))
	}
	return cell, uploads, page.Truncated, nil
}

func (c *cells) ListParts(ctx context.Context, bucket, key, uploadID string, o s3.ListPartsOptions) (string, s3.UploadInfo, []s3.PartInfo, bool, error) {
	cellID := c.r.ObjectCell(bucket, key)
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, s3.UploadInfo{}, nil, false, err
	}
	resp, err := ix.ListParts(ctx, &cellarv1.ListPartsRequest{Bucket: bucket, Key: key, UploadId: uploadID,
		PartNumberMarker: int32(o.PartNumberMarker), Limit: int32(o.MaxParts)})
	if err != nil {
		if errs.Is(err, errs.NoSuchUpload) {
			if _, berr := c.HeadBucket(ctx, bucket); errs.Is(berr, errs.NoSuchBucket) {
				return cellID, s3.UploadInfo{}, nil, false, berr
			}
		}
		return cellID, s3.UploadInfo{}, nil, false, err
	}
	parts := make([]s3.PartInfo, len(resp.Parts))
	for i, p := range resp.Parts {
		parts[i] = partInfoOf(p)
	}
	return cellID, uploadInfoOf(resp.Upload), parts, resp.Truncated, nil
}

// reapUploads aborts, in every cell, the uploads initiated more than maxAge ago and
// reclaims their parts. It returns how many it aborted.
func (c *cells) reapUploads(ctx context.Context, maxAge time.Duration) (int, error) {
	before := time.Now().Add(-maxAge).UnixNano()
	aborted, err := router.FanOut(c.r, c.r.Cells(), func(cellID string, ix cellarv1.IndexClient) (int, error) {
		resp, err := ix.ListUploads(ctx, &cellarv1.ListUploadsRequest{InitiatedBeforeUnixNano: before})
		if err != nil {
			return 0, err
		}
		n := 0
		for _, u := range resp.Uploads {
			if _, err := c.AbortUpload(ctx, u.Bucket, u.Key, u.UploadId); err != nil && !errs.Is(err, errs.NoSuchUpload) {
				return n, err
			}
			c.log.Info("reclaimed an abandoned multipart upload", "cell", cellID, "bucket", u.Bucket, "key", u.Key,
				"upload_id", u.UploadId, "initiated", time.Unix(0, u.InitiatedUnixNano))
			n++
		}
		return n, nil
	})
	total := 0
	for _, n := range aborted {
		total += n
	}
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
