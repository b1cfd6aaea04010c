package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/testwait"
)

// TestRepairRefillsEveryVersion: an acknowledged older version keeps its copies as
// the current one does. A versioned bucket holds a key with three versions and one
// whose two versions lie under a delete marker; one storage node loses its disk and
// comes back empty; after the repair its partner is stopped, and every version still
// reads whole by its versionId.
func TestRepairRefillsEveryVersion(t *testing.T) {
	began := time.Now()
	cl := Start(t, topology(1), fastRepair)
	t.Logf("cluster up after %s", time.Since(began).Round(time.Millisecond))
	s0, s1 := cell.NodeID(cell.ID(0), cell.RoleStorage, 0), cell.NodeID(cell.ID(0), cell.RoleStorage, 1)
	waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: cell.StateReady, s1: cell.StateReady})
	ctx := context.Background()
	c := cl.S3()
	mustCreateBucket(t, c, "history")
	setVersioning(t, c, "history", types.BucketVersioningStatusEnabled)

	type version struct{ key, id string }
	bodies := map[version][]byte{}
	write := func(key string, i int) {
		t.Helper()
		body := randomBytes(t, 8<<10+i*5<<10)
		out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("history"), Key: aws.String(key), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		if aws.ToString(out.VersionId) == "" {
			t.Fatalf("put %s in a versioned bucket: no version id", key)
		}
		bodies[version{key, aws.ToString(out.VersionId)}] = body
	}
	for i := range 3 {
		write("state.tfstate", i)
	}
	for i := range 2 {
		write("removed", i)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("history"), Key: aws.String("removed")}); err != nil {
		t.Fatal(err)
	}
	if n := len(blobFiles(t, cl, s1)); n != len(bodies) {
		t.Fatalf("%s holds %d blobs before the wipe, want one per version (%d)", s1, n, len(bodies))
	}

	cl.WipeNode(s1)
	wiped := time.Now()
	waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: cell.StateReady, s1: cell.StateReady})
	testwait.Until(t, 60*time.Second, "the wiped node holds a copy of every version again", func() bool {
		return len(blobFiles(t, cl, s1)) >= len(bodies)
	})
	testwait.Until(t, 30*time.Second, "repair reports nothing under-replicated", func() bool {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := cl.Repair(cell.ID(0)).Status(rctx, &cellarv1.RepairStatusRequest{})
		return err == nil && st.Passes > 0 && st.UnderReplicated == 0 && st.Lost == 0 && st.RepairedObjects >= int64(len(bodies))
	})

	t.Logf("wiped node refilled, nothing under-replicated, %s after the wipe", time.Since(wiped).Round(time.Millisecond))
	cl.StopNode(s0)
	waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: "", s1: cell.StateReady})
	for v, want := range bodies {
		var got []byte
		var err error
		// A 503 (a busy machine: the index answered late) is retried; any other
		// answer than the version's bytes fails.
		testwait.Until(t, 60*time.Second, fmt.Sprintf("GET %s?versionId=%s answers other than 503", v.key, v.id), func() bool {
			got, err = getVersion(ctx, c, "history", v.key, v.id)
			status, _ := code(err)
			return status != 503
		})
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("with only the wiped node left, GET %s?versionId=%s: %d bytes (want %d), %v", v.key, v.id, len(got), len(want), err)
		}
	}
}

// getVersion reads one version of a key.
func getVersion(ctx context.Context, c *s3.Client, bucket, key, id string) ([]byte, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: aws.String(id)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}
