package clustertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/testwait"
)

// fastRepair makes the cell's repair loop pass every half second and collect orphans
// a second after it first sees them.
func fastRepair(c *Cluster) { c.RepairInterval, c.GCGrace = 500*time.Millisecond, time.Second }

// TestRepairRefillsAWipedNodeReplacesACorruptCopyAndCollectsGarbage walks the three
// jobs of a cell's repair loop on one cell of two storage nodes:
//
//   - a storage node whose disk is lost comes back empty and is refilled, so that its
//     partner can then be stopped and every object is still read whole;
//   - a copy with a flipped byte is found by the scrubber and rewritten from the other;
//   - an orphan blob (no index record names it) is deleted after the grace, and no
//     blob an object uses is.
func TestRepairRefillsAWipedNodeReplacesACorruptCopyAndCollectsGarbage(t *testing.T) {
	cl := Start(t, topology(1), fastRepair)
	s0, s1 := cell.NodeID(cell.ID(0), cell.RoleStorage, 0), cell.NodeID(cell.ID(0), cell.RoleStorage, 1)
	waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: cell.StateReady, s1: cell.StateReady})
	ctx := context.Background()
	c := cl.S3()
	mustCreateBucket(t, c, "disks")
	const objects = 24
	bodies := map[string][]byte{}
	for i := range objects {
		key := fmt.Sprintf("k%02d", i)
		bodies[key] = randomBytes(t, 1<<10+i*23<<10)
		if err := put(ctx, c, "disks", key, bodies[key]); err != nil {
			t.Fatal(err)
		}
	}
	readAll := func(t *testing.T, what string) {
		t.Helper()
		for key, want := range bodies {
			// A 503 (a busy machine: the index's answer came late) is retried; any
			// other answer than the object's bytes fails.
			var got []byte
			var err error
			testwait.Until(t, 60*time.Second, "GET "+key+" answers other than 503", func() bool {
				got, err = get(ctx, c, "disks", key)
				status, _ := code(err)
				return status != 503
			})
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: GET %s: %d bytes (want %d), %v", what, key, len(got), len(want), err)
			}
		}
	}
	status := func() *cellarv1.RepairStatusResponse {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := cl.Repair(cell.ID(0)).Status(rctx, &cellarv1.RepairStatusRequest{})
		if err != nil {
			return &cellarv1.RepairStatusResponse{}
		}
		return st
	}

	t.Run("wiped node refilled", func(t *testing.T) {
		cl.WipeNode(s1)
		waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: cell.StateReady, s1: cell.StateReady})
		testwait.Until(t, 60*time.Second, "the wiped node holds every object again", func() bool {
			return len(blobFiles(t, cl, s1)) >= objects
		})
		testwait.Until(t, 30*time.Second, "repair reports nothing under-replicated", func() bool {
			st := status()
			return st.Passes > 0 && st.UnderReplicated == 0 && st.RepairedObjects >= objects
		})
		cl.StopNode(s0)
		waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: "", s1: cell.StateReady})
		readAll(t, "partner of the wiped node stopped")
		cl.StartNode(s0)
		waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: cell.StateReady, s1: cell.StateReady})
	})

	t.Run("corrupt copy rewritten", func(t *testing.T) {
		before := status().CorruptRepaired
		files := blobFiles(t, cl, s0)
		victim := files[len(files)/2]
		flipByteAt(t, victim, 100)
		testwait.Until(t, 60*time.Second, "the scrubber rewrites the corrupt copy", func() bool {
			return status().CorruptRepaired > before
		})
		// Only the rewritten copy on s0 is left: it must read whole.
		cl.StopNode(s1)
		waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: cell.StateReady, s1: ""})
		readAll(t, "after the scrub, with only the node that had the corrupt copy")
		cl.StartNode(s1)
		waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: cell.StateReady, s1: cell.StateReady})
	})

	t.Run("orphans collected", func(t *testing.T) {
		// An orphan: a blob written straight to the storage node, named by no record.
		id := make([]byte, 16)
		rand.Read(id)
		writeBlob(t, cl, cl.Node(s0).GRPCAddr, id, []byte("nobody's"))
		orphan := filepath.Join(cl.DataDir(s0), "blobs", fmt.Sprintf("%02x", id[0]), fmt.Sprintf("%x", id))
		if _, err := os.Stat(orphan); err != nil {
			t.Fatal(err)
		}
		testwait.Until(t, 30*time.Second, "garbage collection deletes the orphan", func() bool {
			_, err := os.Stat(orphan)
			return os.IsNotExist(err)
		})
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		resp, err := cl.Repair(cell.ID(0)).CollectGarbage(rctx, &cellarv1.CollectGarbageRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range resp.Nodes {
			if n.EligibleBlobs+n.PendingBlobs != 0 || n.Error != "" {
				t.Errorf("after collection %s has orphans: %+v", n.NodeId, n)
			}
		}
		readAll(t, "after garbage collection")
	})
}

// writeBlob stores a blob on a storage node directly, as a gateway's PUT does before
// its commit.
func writeBlob(t *testing.T, cl *Cluster, addr string, id, data []byte) {
	t.Helper()
	conns := cl.OperatorConns()
	cc, err := conns.Get(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, err := cellarv1.NewStorageClient(cc).Write(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Send(&cellarv1.WriteRequest{Msg: &cellarv1.WriteRequest_Header{Header: &cellarv1.WriteHeader{ObjectId: id, Size: int64(len(data))}}}); err != nil {
		t.Fatal(err)
	}
	if err := ws.Send(&cellarv1.WriteRequest{Msg: &cellarv1.WriteRequest_Data{Data: data}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
}
