package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/gateway/mover"
	"github.com/cellarsim/cellar/internal/testwait"
)

// A pass copies many objects at once. With every copy succeeding, each object is
// copied exactly once, and the bucket (5 pages of a listing) is listed once: the
// passes after the first read the source's change log, which lists nothing here, and
// so delete nothing in the target. With the source's storage node crashed part way
// through the copy, the copies under way fail, the first failure stops the pass, and
// its next try, once the node is back, copies what was not copied yet: every object
// reaches the target whole, and none is copied more than once but those that were
// under way. With objects retagged, overwritten, deleted and made between the copy
// pass and the first catch-up pass, the catch-up reads those from the source's change
// log, and the target ends with each as the source has it.
func TestMoveCopiesInParallel(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster with faults")
	}
	const concurrency = 8
	topo := withMapGroup()
	cl := Start(t, topo)
	cl.waitMap()
	ctx := context.Background()
	c := cl.S3()
	src, dst := cell.ID(0), cell.ID(1)
	cases := []struct {
		name    string
		objects int
		crash   bool
		changes bool
	}{
		{"every copy succeeds", 4500, false, false},
		{"the source's storage node crashes part way", 300, true, false},
		{"objects change between passes", 40, false, true},
	}
	buckets := BucketsPerCell(topo, cellOf(topo), len(cases))[src]
	createBuckets(t, ctx, c, buckets...)
	for i, b := range buckets {
		putMany(t, ctx, c, b, cases[i].objects, []byte(b))
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bucket, objects := buckets[i], int64(tc.objects)
			reg := prometheus.NewRegistry()
			metrics, err := mover.NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			m, _ := newMover(t, cl)
			m.CopyConcurrency, m.Metrics, m.ProgressEvery = concurrency, metrics, time.Nanosecond
			victim := cell.NodeID(src, cell.RoleStorage, 0)
			crashed := make(chan struct{})
			var once, changeOnce sync.Once
			var last int64
			m.Progress = func(p mover.Progress) {
				// Called by the mover's own goroutine, in order: the count never goes back.
				if p.Objects < last {
					t.Errorf("progress went back from %d to %d objects", last, p.Objects)
				}
				last = p.Objects
				if tc.crash && p.Step == "copy" && p.Objects >= objects/3 {
					once.Do(func() { cl.crash(victim); close(crashed) })
				}
				if tc.changes && p.Step == "catch-up" {
					// The copy pass is over and the catch-up pass has not read the
					// log yet: the mover waits for this call.
					changeOnce.Do(func() { changeBetweenPasses(t, ctx, c, bucket) })
				}
			}
			done := make(chan error, 1)
			var st mover.Stats
			go func() {
				var err error
				st, err = m.MoveBucket(ctx, bucket, src, dst)
				done <- err
			}()
			if tc.crash {
				select {
				case <-crashed:
				case err := <-done:
					t.Fatalf("the move ended (%v) before its fault", err)
				}
				testwait.Until(t, patience, "the mover tries a failed pass again", func() bool {
					return counter(t, reg, "cellar_move_step_retries_total") > 0
				})
				cl.StartNode(victim)
			}
			if err := <-done; err != nil {
				t.Fatalf("the move of %s: %v", bucket, err)
			}
			if tc.crash {
				cl.WaitReady(victim)
			}
			copiedTotal := counter(t, reg, "cellar_move_objects_copied_total")
			t.Logf("%s: %d objects copied in %d passes (%v copies counted, %d objects listed, %d changes read), %d records dropped in the source",
				bucket, st.Objects, st.Passes, copiedTotal, st.Listed, st.Changes, st.Reclaimed)
			if st.Passes < 3 {
				t.Errorf("%d passes, want at least the copy, a catch-up and the final pass", st.Passes)
			}
			switch {
			case tc.changes && (st.Listed != objects || st.Changes < 4):
				t.Errorf("the source listed %d objects and %d changes, want the bucket listed once (%d) and the 4 changes read", st.Listed, st.Changes, objects)
			case tc.changes:
			case !tc.crash && (st.Listed != objects || st.Changes != 0):
				t.Errorf("the source listed %d objects and %d changes, want the bucket listed once (%d) and no change", st.Listed, st.Changes, objects)
			case tc.crash && st.Listed < objects:
				t.Errorf("the source listed %d objects, want at least the %d of the bucket", st.Listed, objects)
			}
			switch {
			case tc.changes:
				checkChangedBetweenPasses(t, ctx, c, bucket, dst)
				return
			case !tc.crash && st.Objects != objects:
				t.Errorf("%d objects copied, want each of the %d exactly once", st.Objects, objects)
			case tc.crash && (st.Objects < objects || st.Objects > objects+concurrency):
				t.Errorf("%d objects copied, want %d, and at most the %d copies under way at the crash again", st.Objects, objects, concurrency)
			}
			if copiedTotal != float64(st.Objects) {
				t.Errorf("cellar_move_objects_copied_total %v, the move's stats %d", copiedTotal, st.Objects)
			}
			if st.Reclaimed != objects {
				t.Errorf("the source dropped %d records, want %d", st.Reclaimed, objects)
			}
			// The target holds every object, whole, and nothing else. (A gateway that
			// has not the new map yet answers a LIST with 503 from the source.)
			testwait.Succeeds(t, patience, "the target lists every object of "+bucket, func() error {
				listed := 0
				p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
				for p.HasMorePages() {
					page, err := p.NextPage(ctx)
					if err != nil {
						return err
					}
					listed += len(page.Contents)
				}
				if int64(listed) != objects {
					t.Errorf("the target lists %d objects of %s, want %d", listed, bucket, objects)
				}
				return nil
			})
			var servedBy string
			cs := cl.S3(cellHeader(&servedBy))
			for k := range tc.objects {
				got, err := get(ctx, cs, bucket, benchKey(k))
				if err != nil || !bytes.Equal(got, []byte(bucket)) || servedBy != dst {
					t.Errorf("%s/%s after the move: %q, %v, served by %s", bucket, benchKey(k), got, err, servedBy)
				}
			}
		})
	}
}

// counter is the value of the counter name in reg (0 when it has none yet).
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) > 0 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// changeBetweenPasses retags, overwrites and deletes three objects of bucket and makes
// a new one.
func changeBetweenPasses(t *testing.T, ctx context.Context, c *s3.Client, bucket string) {
	t.Helper()
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(benchKey(0)),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("moved"), Value: aws.String("retagged")}}}}); err != nil {
		t.Errorf("retag: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(benchKey(1)),
		Body: bytes.NewReader([]byte("overwritten"))}); err != nil {
		t.Errorf("overwrite: %v", err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(benchKey(2))}); err != nil {
		t.Errorf("delete: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("new"),
		Body: bytes.NewReader([]byte("new"))}); err != nil {
		t.Errorf("new object: %v", err)
	}
}

// checkChangedBetweenPasses checks that the target serves bucket as
// changeBetweenPasses left it.
func checkChangedBetweenPasses(t *testing.T, ctx context.Context, c *s3.Client, bucket, dst string) {
	t.Helper()
	var servedBy string
	cs := s3.New(c.Options(), cellHeader(&servedBy))
	testwait.Succeeds(t, patience, "the target serves "+bucket, func() error {
		if _, err := get(ctx, cs, bucket, benchKey(3)); err != nil {
			return err
		}
		if servedBy != dst {
			return fmt.Errorf("served by %s", servedBy)
		}
		return nil
	})
	tags, err := cs.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(benchKey(0))})
	if err != nil {
		t.Errorf("the retagged object's tags in the target: %v", err)
	} else if len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Value) != "retagged" {
		t.Errorf("the retagged object has %d tags in the target, want moved=retagged", len(tags.TagSet))
	}
	for key, want := range map[string]string{benchKey(1): "overwritten", "new": "new", benchKey(3): bucket} {
		if got, err := get(ctx, cs, bucket, key); err != nil || string(got) != want {
			t.Errorf("%s/%s in the target: %q, %v; want %q", bucket, key, got, err, want)
		}
	}
	var nf *types.NoSuchKey
	if _, err := get(ctx, cs, bucket, benchKey(2)); !errors.As(err, &nf) {
		t.Errorf("the deleted %s/%s in the target: %v, want NoSuchKey", bucket, benchKey(2), err)
	}
}
