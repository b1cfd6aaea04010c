package router

import (
	"cmp"
	"context"
	"slices"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
)

// Fan-out: a call that needs several cells runs on each of them at once, and their
// answers are merged here, so that nothing else in cellar spans cells. A fan-out fails
// when any of its cells fails: a listing that lacked a cell would be wrong, not short.

// FanOut calls call with the index of each of cellIDs, all at once, and returns the
// results in the order of cellIDs, or the first error to come back (Unavailable for a
// cell without a ready index).
func FanOut[T any](r *Router, cellIDs []string, call func(cellID string, ix cellarv1.IndexClient) (T, error)) ([]T, error) {
	return gather(cellIDs, func(cellID string) (T, error) {
		ix, err := r.Index(cellID)
		if err != nil {
			var zero T
			return zero, err
		}
		return call(cellID, ix)
	})
}

// gather calls call for each of cellIDs, all at once, and returns the results in the
// order of cellIDs, or the first error to come back.
func gather[T any](cellIDs []string, call func(cellID string) (T, error)) ([]T, error) {
	results := make([]T, len(cellIDs))
	errc := make(chan error, len(cellIDs))
	for i, id := range cellIDs {
		go func() {
			var err error
			results[i], err = call(id)
			errc <- err
		}()
	}
	var first error
	for range cellIDs {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	return results, nil
}

// CellBucket is a bucket and the cell that holds its record.
type CellBucket struct {
	Cell string
	*cellarv1.Bucket
}

// ListBuckets lists the buckets of every cell (each holds some), sorted by name.
func (r *Router) ListBuckets(ctx context.Context) ([]CellBucket, error) {
	pages, err := FanOut(r, r.cells, func(_ string, ix cellarv1.IndexClient) (*cellarv1.ListBucketsResponse, error) {
		return ix.ListBuckets(ctx, &cellarv1.ListBucketsRequest{})
	})
	if err != nil {
		return nil, err
	}
	return mergeBuckets(r.cells, pages), nil
}

// mergeBuckets merges the bucket lists of cellIDs (one page per cell, in that order)
// into one list sorted by name.
func mergeBuckets(cellIDs []string, pages []*cellarv1.ListBucketsResponse) []CellBucket {
	var out []CellBucket
	for i, p := range pages {
		for _, b := range p.GetBuckets() {
			out = append(out, CellBucket{Cell: cellIDs[i], Bucket: b})
		}
	}
	slices.SortFunc(out, func(a, b CellBucket) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return out
}

// List returns one page of a bucket's keys and common prefixes, in order: it asks every
// cell of BucketCells(req.Bucket) for a page of req.Limit entries and merges them. It
// returns the cells it asked. The page's Next, when it is truncated, is the StartAfter
// of the page that follows.
func (r *Router) List(ctx context.Context, req *cellarv1.ListRequest) ([]string, *cellarv1.ListResponse, error) {
	cellIDs := r.BucketCells(req.GetBucket())
	pages, err := FanOut(r, cellIDs, func(_ string, ix cellarv1.IndexClient) (*cellarv1.ListResponse, error) {
		return ix.List(ctx, req)
	})
	if err != nil {
		return cellIDs, nil, err
	}
	return cellIDs, mergeListings(pages, int(req.GetLimit())), nil
}

// mergeListings merges pages of sorted keys and common prefixes (one page per cell,
// each of at most maxKeys entries after the same StartAfter) into one page of at most
// maxKeys entries, in order, without duplicate prefixes. The merged page is truncated
// when it had to leave entries out or when a cell's page was truncated; its Next is
// then the last key or prefix it holds, so that a listing continued from there misses
// nothing of any cell.
func mergeListings(pages []*cellarv1.ListResponse, maxKeys int) *cellarv1.ListResponse {
	if maxKeys <= 0 || maxKeys > 1000 {
		maxKeys = 1000
	}
	type item struct {
		name   string
		loc    *cellarv1.Location
		prefix bool
	}
	var items []item
	truncated := false
	for _, p := range pages {
		for _, e := range p.GetEntries() {
			items = append(items, item{name: e.GetKey(), loc: e})
		}
		for _, cp := range p.GetCommonPrefixes() {
			items = append(items, item{name: cp, prefix: true})
		}
		truncated = truncated || p.GetTruncated()
	}
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(a.name, b.name) })
	out := &cellarv1.ListResponse{}
	count := 0
	for i, it := range items {
		if it.prefix && i > 0 && items[i-1].prefix && items[i-1].name == it.name {
			continue
		}
		if count == maxKeys {
			truncated = true
			break
		}
		if it.prefix {
			out.CommonPrefixes = append(out.CommonPrefixes, it.name)
		} else {
			out.Entries = append(out.Entries, it.loc)
		}
		out.Next = it.name
		count++
	}
	out.Truncated = truncated
	if !truncated {
		out.Next = ""
	}
	return out
}

// ListUploads returns one page of a bucket's multipart uploads in progress, in key then
// upload id order: it asks every cell of BucketCells(req.Bucket) for a page of
// req.Limit uploads and merges them. It returns the cells it asked.
func (r *Router) ListUploads(ctx context.Context, req *cellarv1.ListUploadsRequest) ([]string, *cellarv1.ListUploadsResponse, error) {
	cellIDs := r.BucketCells(req.GetBucket())
	pages, err := FanOut(r, cellIDs, func(_ string, ix cellarv1.IndexClient) (*cellarv1.ListUploadsResponse, error) {
		return ix.ListUploads(ctx, req)
	})
	if err != nil {
		return cellIDs, nil, err
	}
	return cellIDs, mergeUploads(pages, int(req.GetLimit())), nil
}

// mergeUploads merges pages of uploads (one page per cell) into one page in key then
// upload id order, of at most limit uploads when limit is above 0. It is truncated
// when it had to leave uploads out or when a cell's page was truncated.
func mergeUploads(pages []*cellarv1.ListUploadsResponse, limit int) *cellarv1.ListUploadsResponse {
	out := &cellarv1.ListUploadsResponse{}
	for _, p := range pages {
		out.Uploads = append(out.Uploads, p.GetUploads()...)
		out.Truncated = out.Truncated || p.GetTruncated()
	}
	slices.SortFunc(out.Uploads, func(a, b *cellarv1.Upload) int {
		return cmp.Or(cmp.Compare(a.GetKey(), b.GetKey()), cmp.Compare(a.GetUploadId(), b.GetUploadId()))
	})
	if limit > 0 && len(out.Uploads) > limit {
		out.Uploads, out.Truncated = out.Uploads[:limit], true
	}
	return out
}
