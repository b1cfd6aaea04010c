package router

import (
	"slices"
	"testing"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

func TestPartitionPolicy(t *testing.T) {
	for _, tc := range []struct {
		partition string
		// every cell holds objects of every bucket
		everyCell bool
	}{
		{cell.PartitionByBucket, false},
		{cell.PartitionByKey, true},
	} {
		t.Run(tc.partition, func(t *testing.T) {
			topo := cell.DefaultTopology()
			topo.Cells, topo.Partition = 4, tc.partition
			conns := daemon.NewConns()
			defer conns.Close()
			r := New(topo, members{}, conns)

			for _, bucket := range []string{"photos", "logs", "b"} {
				want := []string{r.BucketCell(bucket)}
				if tc.everyCell {
					want = r.Cells()
				}
				if got := r.BucketCells(bucket); !slices.Equal(got, want) {
					t.Errorf("BucketCells(%q) = %q, want %q", bucket, got, want)
				}
				for _, key := range []string{"a", "b/c", "d"} {
					if r.ObjectsInBucketCell() && r.ObjectCell(bucket, key) != r.BucketCell(bucket) {
						t.Errorf("%s/%s is in %s, not in its bucket's cell %s", bucket, key, r.ObjectCell(bucket, key), r.BucketCell(bucket))
					}
					if !slices.Contains(r.BucketCells(bucket), r.ObjectCell(bucket, key)) {
						t.Errorf("%s/%s is in %s, which BucketCells does not list", bucket, key, r.ObjectCell(bucket, key))
					}
				}
			}
			if r.ObjectsInBucketCell() == tc.everyCell {
				t.Errorf("ObjectsInBucketCell = %v with partition by %s", r.ObjectsInBucketCell(), tc.partition)
			}
		})
	}
}
