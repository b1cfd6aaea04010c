package router

// The partition policy: which cells an operation on a bucket must touch, and what one
// cell can check by itself. Partitioned by bucket, a bucket's record, objects and
// multipart uploads are all in its home cell (BucketCell). Partitioned by key, the
// record is in the home cell and the objects and uploads are spread over every cell.

// BucketCells returns the cells that hold a bucket's objects and uploads: its home
// cell, or every cell when buckets span cells. A listing of the bucket asks each one.
func (r *Router) BucketCells(bucket string) []string {
	if r.SpansCells() {
		return r.cells
	}
	return []string{r.BucketCell(bucket)}
}

// ObjectsInBucketCell reports whether every object is in the cell that holds its
// bucket's record. Then that cell's index checks by itself, in the same commit, that the
// bucket exists when it writes an object (RequireBucket) and that the bucket is empty
// when it deletes it. Otherwise the caller asks the bucket's home cell whether the
// bucket exists before writing in it, and every cell whether it is empty before
// deleting it.
func (r *Router) ObjectsInBucketCell() bool { return !r.SpansCells() }
