package gateway

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/gateway/s3"
	"github.com/cellarsim/cellar/internal/errs"
)

// S3 versioning over the cells (s3.VersioningBackend). A bucket's versioning state is
// in its record, in the index of its cell; every version of a key is in the key's
// record, in the index of the key's cell (cell/index: versioning.go). The gateway
// chooses the id of each new version, so that every node of a replicated index
// applies the same one; the index decides, by the bucket's state, whether the write
// makes a new version or the null one. A version's blobs are reclaimed only when the
// version is deleted for good (DELETE with versionId), or, for the null version, when
// a write replaces it.

var _ s3.VersioningBackend = (*cells)(nil)

// newVersionID returns a fresh version id: 32 hex digits, the time then randomness.
func newVersionID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	rand.Read(b[8:])
	return hex.EncodeToString(b[:])
}

// versionStatus is how S3 names a versioning state.
func versionStatus(v cellarv1.BucketVersioning) string {
	switch v {
	case cellarv1.BucketVersioning_BUCKET_VERSIONING_ENABLED:
		return s3.VersioningEnabled
	case cellarv1.BucketVersioning_BUCKET_VERSIONING_SUSPENDED:
		return s3.VersioningSuspended
	}
	return ""
}

// versionLabel is the x-amz-version-id of a version written or read under versioning
// v: none in a bucket never versioned, "null" for the null version.
func versionLabel(id string, v cellarv1.BucketVersioning) string {
	if v == cellarv1.BucketVersioning_BUCKET_VERSIONING_OFF && id == "" {
		return ""
	}
	if id == "" {
		return "null"
	}
	return id
}

// bucketVersioning returns, for a write of an object of bucket, whether its commit
// must require the bucket (its cell holds the bucket, and then also knows its
// versioning) and otherwise the bucket's versioning, asked of the bucket's cell.
func (c *cells) bucketVersioning(ctx context.Context, bucket string) (requireBucket bool, v cellarv1.BucketVersioning, err error) {
	if c.r.ObjectsInBucketCell() {
		return true, cellarv1.BucketVersioning_BUCKET_VERSIONING_OFF, nil
	}
	b, err := c.getBucket(ctx, bucket)
	return false, b.GetVersioning(), err
}

func (c *cells) getBucket(ctx context.Context, bucket string) (*cellarv1.Bucket, error) {
	ix, err := c.index(c.r.BucketCell(bucket))
	if err != nil {
		return nil, err
	}
	resp, err := ix.GetBucket(ctx, &cellarv1.GetBucketRequest{Name: bucket})
	return resp.GetBucket(), err
}

func (c *cells) PutBucketVersioning(ctx context.Context, bucket, status string) (string, error) {
	cellID := c.r.BucketCell(bucket)
	v := cellarv1.BucketVersioning_BUCKET_VERSIONING_SUSPENDED
	if status == s3.VersioningEnabled {
		v = cellarv1.BucketVersioning_BUCKET_VERSIONING_ENABLED
	}
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, err
	}
	_, err = ix.SetBucketVersioning(ctx, &cellarv1.SetBucketVersioningRequest{Name: bucket, Versioning: v})
	return cellID, err
}

func (c *cells) GetBucketVersioning(ctx context.Context, bucket string) (string, string, error) {
	b, err := c.getBucket(ctx, bucket)
	return c.r.BucketCell(bucket), versionStatus(b.GetVersioning()), err
}

func (c *cells) HeadObjectVersion(ctx context.Context, bucket, key, versionID string) (string, s3.ObjectInfo, error) {
	cellID, loc, err := c.lookupVersion(ctx, bucket, key, versionID)
	if err != nil {
		return cellID, s3.ObjectInfo{}, err
	}
	return cellID, versionInfoOf(loc, versionID), nil
}

// versionInfoOf is infoOf with the version id a read answers with: the version's id,
// if it has one, and "null" when the read asked for a version.
func versionInfoOf(loc *cellarv1.Location, asked string) s3.ObjectInfo {
	info := infoOf(loc)
	if asked != "" || loc.GetVersionId() != "" {
		info.VersionID = versionLabel(loc.GetVersionId(), cellarv1.BucketVersioning_BUCKET_VERSIONING_ENABLED)
	}
	return info
}

// deleteMarkerErr is the error of a read that found a delete marker: NoSuchKey for
// the current version, MethodNotAllowed for a version the read named.
func deleteMarkerErr(loc *cellarv1.Location, named bool) error {
	err := errs.New(errs.NoSuchKey, "The specified key does not exist.")
	if named {
		err = errs.New(errs.MethodNotAllowed, "The specified method is not allowed against this resource.")
	}
	return &s3.DeleteMarkerError{Err: err, VersionID: versionLabel(loc.GetVersionId(), cellarv1.BucketVersioning_BUCKET_VERSIONING_ENABLED),
		LastModified: time.Unix(0, loc.GetModifiedUnixNano())}
}

func (c *cells) DeleteObjectVersion(ctx context.Context, bucket, key, versionID string) (string, s3.DeleteInfo, error) {
	cellID := c.r.ObjectCell(bucket, key)
	_, v, err := c.bucketVersioning(ctx, bucket)
	if err != nil {
		return cellID, s3.DeleteInfo{}, err
	}
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, s3.DeleteInfo{}, err
	}
	resp, err := ix.Delete(ctx, &cellarv1.DeleteRequest{Bucket: bucket, Key: key, VersionId: versionID,
		Versioning: v, MarkerVersionId: newVersionID()})
	if err != nil {
		return cellID, s3.DeleteInfo{}, err
	}
	if resp.Previous != nil {
		c.reclaim(cellID, resp.Previous)
	} else if !resp.DeleteMarker {
		// S3 answers NoSuchBucket for a delete in a missing bucket. When objects are
		// partitioned by key, the bucket is known to its own cell, not to the key's;
		// a bucket cell that cannot answer leaves the delete as it is (done).
		if _, berr := c.HeadBucket(ctx, bucket); errs.Is(berr, errs.NoSuchBucket) {
			return cellID, s3.DeleteInfo{}, berr
		}
	}
	res := s3.DeleteInfo{DeleteMarker: resp.DeleteMarker}
	if versionID != "" {
		res.VersionID = versionID
	} else {
		res.VersionID = versionLabel(resp.VersionId, resp.Versioning)
	}
	return cellID, res, nil
}

// lookupVersion looks up one version of a key ("" for the current one), as lookup
// does; a delete marker found is a DeleteMarkerError.
func (c *cells) lookupVersion(ctx context.Context, bucket, key, versionID string) (string, *cellarv1.Location, error) {
	req := &cellarv1.LookupRequest{Bucket: bucket, Key: key, VersionId: versionID, DeleteMarkers: true}
	cellID, loc, err := c.lookupReq(ctx, req)
	if err == nil && loc.GetDeleteMarker() {
		return cellID, nil, deleteMarkerErr(loc, versionID != "")
	}
	if errs.Is(err, errs.NoSuchVersion) && versionID != "" {
		if _, berr := c.HeadBucket(ctx, bucket); errs.Is(berr, errs.NoSuchBucket) {
			return cellID, nil, berr
		}
	}
	return cellID, loc, err
}

// listPageSize is how many keys one index call of a version listing asks for.
const listPageSize = 1000

func (c *cells) ListObjectVersions(ctx context.Context, bucket string, o s3.ListVersionsOptions) (string, s3.ListVersionsResult, error) {
	if _, err := c.HeadBucket(ctx, bucket); err != nil {
		return c.r.BucketCell(bucket), s3.ListVersionsResult{}, err
	}
	var res s3.ListVersionsResult
	limit := o.MaxKeys
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	count := 0
	full := func() bool { return count >= limit }
	// emit adds the versions of one record, those after afterVersion when it is set
	// (the version id marker), and reports whether the page has room for more.
	emit := func(rec *cellarv1.Location, afterVersion string, skipping bool) bool {
		for i, v := range versionsOf(rec) {
			if skipping {
				if versionLabel(v.GetVersionId(), cellarv1.BucketVersioning_BUCKET_VERSIONING_ENABLED) == afterVersion {
					skipping = false
				}
				continue
			}
			if full() {
				res.IsTruncated = true
				return false
			}
			info := infoOf(v)
			info.Bucket, info.Key = bucket, rec.Key
			info.VersionID = v.GetVersionId()
			res.Versions = append(res.Versions, s3.VersionInfo{ObjectInfo: info, IsLatest: i == 0, DeleteMarker: v.GetDeleteMarker()})
			res.NextKeyMarker, res.NextVersionIDMarker = rec.Key, versionLabel(v.GetVersionId(), cellarv1.BucketVersioning_BUCKET_VERSIONING_ENABLED)
			count++
		}
		return true
	}
	cellIDs := []string{c.r.ObjectCell(bucket, o.KeyMarker)}
	if o.VersionIDMarker != "" && strings.HasPrefix(o.KeyMarker, o.Prefix) {
		// The rest of the marker key's versions come first.
		cellID, rec, err := c.lookupReq(ctx, &cellarv1.LookupRequest{Bucket: bucket, Key: o.KeyMarker, Versions: true})
		cellIDs[0] = cellID
		if err != nil && !errs.Is(err, errs.NoSuchKey) {
			return cellID, s3.ListVersionsResult{}, err
		}
		if rec != nil && !emit(rec, o.VersionIDMarker, true) {
			return cellID, res, nil
		}
	}
	after := o.KeyMarker
	for {
		ids, page, err := c.r.List(ctx, &cellarv1.ListRequest{Bucket: bucket, Prefix: o.Prefix, StartAfter: after,
			Delimiter: o.Delimiter, Limit: int32(min(listPageSize, limit-count+1)), Versions: true})
		cellIDs = ids
		cell := strings.Join(cellIDs, ",")
		if err != nil {
			return cell, s3.ListVersionsResult{}, err
		}
		// Keys and common prefixes, merged in order.
		ei, pi := 0, 0
		for ei < len(page.Entries) || pi < len(page.CommonPrefixes) {
			if pi < len(page.CommonPrefixes) && (ei == len(page.Entries) || page.CommonPrefixes[pi] < page.Entries[ei].Key) {
				if full() {
					res.IsTruncated = true
					return cell, res, nil
				}
				res.CommonPrefixes = append(res.CommonPrefixes, page.CommonPrefixes[pi])
				res.NextKeyMarker, res.NextVersionIDMarker = page.CommonPrefixes[pi], ""
				count++
				pi++
				continue
			}
			if !emit(page.Entries[ei], "", false) {
				return cell, res, nil
			}
			ei++
		}
		if !page.Truncated || page.Next == "" {
			if !res.IsTruncated {
				res.NextKeyMarker, res.NextVersionIDMarker = "", ""
			}
			return cell, res, nil
		}
		if full() {
			res.IsTruncated = true
			return cell, res, nil
		}
		after = page.Next
	}
}

// versionsOf returns the versions of a record, newest (the current one) first.
// (The current one is rec itself: what is read of it ignores its Versions.)
func versionsOf(rec *cellarv1.Location) []*cellarv1.Location {
	return append([]*cellarv1.Location{rec}, rec.GetVersions()...)
}
