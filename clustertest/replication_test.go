package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/index"
)

// replicated is a topology whose cells each have an index group of 3.
func replicated(cells int) cell.Topology {
	t := topology(cells)
	t.IndexNodes = 3
	return t
}

func TestIndexGroupServesWithAMajorityAndStopsWithout(t *testing.T) {
	cl := Start(t, replicated(4))
	buckets := seedBuckets(t, cl, 2)
	ctx := context.Background()
	c := cl.S3()

	down := cell.ID(1)
	acked := map[string]string{} // bucket/key → body, every write that got a 200
	write := func(b, k string) error {
		body := fmt.Sprintf("%s/%s@%d", b, k, time.Now().UnixNano())
		err := put(ctx, c, b, k, []byte(body))
		if err == nil {
			acked[b+"/"+k] = body
		}
		return err
	}
	for i := 0; i < 10; i++ {
		for _, b := range buckets[down] {
			if err := write(b, fmt.Sprintf("before-%d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}

	// One of three index nodes gone (the leader, to force an election): the cell
	// still reads and writes.
	view, _ := cl.GatewayView()
	first := cl.Leader(view, down)
	cl.StopNode(first)
	cl.WaitGone(first)
	waitLeader(t, cl, down)
	for _, b := range buckets[down] {
		for op, err := range allOps(ctx, c, b) {
			if err != nil {
				t.Errorf("with 2 of 3 index nodes, %s %s: %v", op, b, err)
			}
		}
		if err := write(b, "with-two"); err != nil {
			t.Fatal(err)
		}
	}

	// Two of three gone: no majority. That cell answers 503 (at once, from the
	// gateway's view of the group, or when the index call fails; never by hanging
	// until the client gives up); every other cell serves every request.
	view, _ = cl.GatewayView()
	second := cl.Leader(view, down)
	cl.StopNode(second)
	for cellID, names := range buckets {
		for _, b := range names {
			for op, err := range allOps(ctx, c, b) {
				if cellID != down {
					if err != nil {
						t.Errorf("healthy %s, %s %s: %v", cellID, op, b, err)
					}
					continue
				}
				if status, _ := code(err); status != http.StatusServiceUnavailable {
					t.Errorf("cell without quorum, %s %s: %v, want 503", op, b, err)
				}
			}
		}
	}

	// Bring both back: the cell serves again and every acknowledged write is there.
	cl.StartNode(first)
	cl.StartNode(second)
	cl.WaitReady(first, second)
	for k, body := range acked {
		b, key := splitKey(k)
		got, err := get(ctx, c, b, key)
		if err != nil || string(got) != body {
			t.Fatalf("acknowledged write %s: got %q, %v", k, got, err)
		}
	}
}

func splitKey(k string) (bucket, key string) {
	for i := range k {
		if k[i] == '/' {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}

// waitLeader waits until the gateway sees a leader in the cell's index group.
func waitLeader(t *testing.T, cl *Cluster, cellID string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if view, err := cl.GatewayView(); err == nil {
			if id := cl.Leader(view, cellID); id != "" {
				return id
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no leader in %s's index group", cellID)
	return ""
}

func TestStoppedIndexNodeCatchesUpFromASnapshot(t *testing.T) {
	topo := replicated(1)
	topo.StorageNodes = 1
	cl := Start(t, topo)
	// Compact the log often, so that the stopped node is too far behind to catch up
	// from the log and gets a snapshot instead.
	cl.SnapshotThreshold, cl.TrailingLogs = 32, 8
	for _, id := range cl.order {
		if cl.Node(id).Spec.Role == cell.RoleIndex {
			cl.StopNode(id)
			cl.StartNode(id)
		}
	}
	cl.WaitReady(cl.order...)
	ctx := context.Background()
	c := cl.S3()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("catch-up")}); err != nil {
		t.Fatal(err)
	}
	view, _ := cl.GatewayView()
	leader := cl.Leader(view, cell.ID(0))
	var follower string
	for i := 0; i < 3; i++ {
		if id := cell.NodeID(cell.ID(0), cell.RoleIndex, i); id != leader {
			follower = id
		}
	}
	cl.StopNode(follower)
	for i := 0; i < 200; i++ {
		key := fmt.Sprintf("k%03d", i)
		if err := put(ctx, c, "catch-up", key, []byte(key)); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 && i > 0 {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("catch-up"), Key: aws.String(fmt.Sprintf("k%03d", i-1))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	cl.StartNode(follower)
	cl.WaitReady(follower)
	// Wait until the follower has applied as much as the leader.
	deadline := time.Now().Add(30 * time.Second)
	for {
		view, _ := cl.GatewayView()
		l, f := view[cl.Leader(view, cell.ID(0))], view[follower]
		if l.AppliedIndex > 0 && f.AppliedIndex >= l.AppliedIndex {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower applied %d, leader %d", f.AppliedIndex, l.AppliedIndex)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every node's Pebble holds the same records.
	cl.StopAll()
	var want []string
	for i := 0; i < 3; i++ {
		id := cell.NodeID(cell.ID(0), cell.RoleIndex, i)
		s, err := index.Open(filepath.Join(cl.Dir, id), nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.List("catch-up", index.ListOptions{})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range res.Entries {
			got = append(got, fmt.Sprintf("%s=%x", e.Key, e.ObjectId))
		}
		if len(got) != 134 {
			t.Errorf("%s holds %d objects, want 134", id, len(got))
		}
		if want == nil {
			want = got
		} else if !slices.Equal(got, want) {
			t.Errorf("%s's records differ from the others'", id)
		}
	}
}
