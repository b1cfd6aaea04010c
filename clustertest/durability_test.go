package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/cellarsim/cellar/cell"
)

// Durability: every acknowledged object keeps the copies its cell promises, and a read
// never lies (no short body while a good copy exists, no 404 for a key that exists).

// blobFiles lists the blob files on one storage node.
func blobFiles(t *testing.T, cl *Cluster, nodeID string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(cl.Dir, nodeID, "blobs", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// newBlob returns the one blob file on nodeID that is not in before.
func newBlob(t *testing.T, cl *Cluster, nodeID string, before []string) string {
	t.Helper()
	var added []string
	for _, f := range blobFiles(t, cl, nodeID) {
		if !slices.Contains(before, f) {
			added = append(added, f)
		}
	}
	if len(added) != 1 {
		t.Fatalf("%s has %d new blobs, want 1: %v", nodeID, len(added), added)
	}
	return added[0]
}

// flipByteAt inverts the byte at off of a file (a blob file starts with the object's
// bytes, so off is also the object's offset).
func flipByteAt(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// s3Message is the S3 error message of an SDK error.
func s3Message(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

// waitStorage waits until both the gateway and the placement node of the cell see its
// storage nodes in the given states ("" for gone): a PUT right after would otherwise be
// placed on what placement saw a moment ago.
func waitStorage(t *testing.T, cl *Cluster, cellID string, want map[string]cell.State) {
	t.Helper()
	placement := cl.Node(cell.NodeID(cellID, cell.RolePlacement, 0))
	check := func(who string, view map[string]cell.Node) error {
		for id, st := range want {
			if got := view[id].State; got != st {
				return fmt.Errorf("%s sees %s %q, want %q", who, id, got, st)
			}
		}
		return nil
	}
	cl.waitView(30*time.Second, func(view map[string]cell.Node) error {
		if err := check("the gateway", view); err != nil {
			return err
		}
		if st := view[placement.Spec.ID].State; st != cell.StateReady {
			return fmt.Errorf("placement is %q", st)
		}
		resp, err := http.Get("http://" + placement.AdminAddr + "/members")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var nodes []cell.Node
		if err := json.NewDecoder(resp.Body).Decode(&nodes); err != nil {
			return err
		}
		pview := map[string]cell.Node{}
		for _, n := range nodes {
			pview[n.ID] = n
		}
		return check("placement", pview)
	})
}

// startCell starts a one-cell cluster and waits until placement, too, sees both storage
// nodes ready, so that the first PUT gets its two copies.
func startCell(t *testing.T, topo cell.Topology) *Cluster {
	t.Helper()
	cl := Start(t, topo)
	s0, s1 := cell.NodeID(cell.ID(0), cell.RoleStorage, 0), cell.NodeID(cell.ID(0), cell.RoleStorage, 1)
	waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: cell.StateReady, s1: cell.StateReady})
	return cl
}

// TestGetSwitchesReplicaMidStream: a 3 MiB object whose copies each have one bad byte,
// in different blocks, is still read whole on every GET: the gateway goes on from the
// same offset on the other replica when a block fails its checksum mid-stream, instead
// of cutting the connection after the headers promised the full length.
func TestGetSwitchesReplicaMidStream(t *testing.T) {
	cl := startCell(t, topology(1))
	ctx := context.Background()
	c := cl.S3()
	mustCreateBucket(t, c, "corrupt")
	nodes := []string{cell.NodeID(cell.ID(0), cell.RoleStorage, 0), cell.NodeID(cell.ID(0), cell.RoleStorage, 1)}
	before := [][]string{blobFiles(t, cl, nodes[0]), blobFiles(t, cl, nodes[1])}
	body := randomBytes(t, 3<<20)
	if err := put(ctx, c, "corrupt", "obj", body); err != nil {
		t.Fatal(err)
	}
	// One copy is bad at 2 MiB, the other at 1 MiB: whichever replica the gateway reads
	// first, it has to switch at least once mid-stream, and every byte has a good copy.
	flipByteAt(t, newBlob(t, cl, nodes[0], before[0]), 2<<20)
	flipByteAt(t, newBlob(t, cl, nodes[1], before[1]), 1<<20+7)

	for i := range 3 {
		got, err := get(ctx, c, "corrupt", "obj")
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("GET %d: %d of %d bytes, equal %v, err %v", i, len(got), len(body), bytes.Equal(got, body), err)
		}
	}
	// A range that spans both bad blocks.
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("corrupt"), Key: aws.String("obj"),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", 1<<20-5, 2<<20+5))})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, body[1<<20-5:2<<20+6]) {
		t.Fatalf("ranged GET: %d bytes, err %v", len(got), err)
	}
}

// TestOverwritesNeverAnswerNoSuchKey: GETs of keys that always exist, while they are
// overwritten again and again, get one whole version each, never a 404: the blob a GET
// looked up stays readable until no read can still reach it.
func TestOverwritesNeverAnswerNoSuchKey(t *testing.T) {
	cl := startCell(t, topology(1))
	ctx := context.Background()
	c := cl.S3()
	mustCreateBucket(t, c, "overwritten")
	keys := []string{"a", "b", "c"}
	version := func(key string, v int) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("%s v%06d|", key, v)), 512)
	}
	for _, k := range keys {
		if err := put(ctx, c, "overwritten", k, version(k, 0)); err != nil {
			t.Fatal(err)
		}
	}
	const overwrites = 150 // per key
	var writers, readers sync.WaitGroup
	done := make(chan struct{})
	var reads, notFound, torn atomic.Int64
	var otherMu sync.Mutex
	var other []error
	for _, k := range keys {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for v := 1; v <= overwrites; v++ {
				if err := put(ctx, c, "overwritten", k, version(k, v)); err != nil {
					otherMu.Lock()
					other = append(other, fmt.Errorf("put %s v%d: %w", k, v, err))
					otherMu.Unlock()
					return
				}
			}
		}()
	}
	for r := range 6 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				k := keys[(r+i)%len(keys)]
				got, err := get(ctx, c, "overwritten", k)
				reads.Add(1)
				switch {
				case codeString(err) == "404 NoSuchKey":
					notFound.Add(1)
				case err != nil:
					otherMu.Lock()
					other = append(other, fmt.Errorf("get %s: %w", k, err))
					otherMu.Unlock()
				case len(got) == 0 || !bytes.Equal(got, bytes.Repeat(got[:bytes.IndexByte(got, '|')+1], 512)):
					torn.Add(1)
				}
			}
		}()
	}
	writers.Wait()
	close(done)
	readers.Wait()
	t.Logf("%d GETs during %d overwrites", reads.Load(), overwrites*len(keys))
	if notFound.Load() > 0 || torn.Load() > 0 || len(other) > 0 {
		t.Fatalf("of %d GETs of keys that always exist: %d answered NoSuchKey, %d were not one whole version; other errors: %v",
			reads.Load(), notFound.Load(), torn.Load(), other)
	}
}

// TestWritesNeedEveryPromisedCopy: with the default topology (2 copies, degraded_writes
// off), a PUT is refused with a clear 503 whenever fewer storage nodes of the cell can
// take it than the copies promised: one node stopped, or one node whose data directory
// is gone (it says so on /readyz and gossips read-only). Reads go on from the other copy.
func TestWritesNeedEveryPromisedCopy(t *testing.T) {
	topo := topology(1)
	cl := startCell(t, topo)
	ctx := context.Background()
	c := cl.S3()
	mustCreateBucket(t, c, "promise")
	body := randomBytes(t, 100<<10)
	if err := put(ctx, c, "promise", "before", body); err != nil {
		t.Fatal(err)
	}
	s0, s1 := cell.NodeID(cell.ID(0), cell.RoleStorage, 0), cell.NodeID(cell.ID(0), cell.RoleStorage, 1)
	refused := func(t *testing.T, what string) {
		t.Helper()
		for i := range 4 {
			err := put(ctx, c, "promise", fmt.Sprintf("%s-%d", what, i), []byte("x"))
			if status, s3code := code(err); status != 503 || s3code != "ServiceUnavailable" || !strings.Contains(s3Message(err), "copies") {
				t.Fatalf("%s: PUT %d got %v (message %q), want 503 ServiceUnavailable about copies", what, i, err, s3Message(err))
			}
		}
		if got, err := get(ctx, c, "promise", "before"); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%s: GET of an object written before: %d bytes, %v", what, len(got), err)
		}
	}

	t.Run("node stopped", func(t *testing.T) {
		cl.StopNode(s1)
		waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: cell.StateReady, s1: ""})
		refused(t, "stopped")
		cl.StartNode(s1)
		waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: cell.StateReady, s1: cell.StateReady})
		if err := put(ctx, c, "promise", "after-restart", []byte("x")); err != nil {
			t.Fatalf("PUT with both storage nodes back: %v", err)
		}
	})

	t.Run("data directory gone", func(t *testing.T) {
		if err := os.RemoveAll(filepath.Join(cl.Dir, s0)); err != nil {
			t.Fatal(err)
		}
		waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: cell.StateReadOnly, s1: cell.StateReady})
		resp, err := http.Get("http://" + cl.Node(s0).AdminAddr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		why, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || !strings.HasPrefix(string(why), string(cell.StateReadOnly)) || !strings.Contains(string(why), "write") {
			t.Errorf("/readyz of a node that cannot write: %d %q, want 503 saying read-only and why", resp.StatusCode, why)
		}
		refused(t, "no data dir")
	})
}

// TestDegradedWritesWhenTheTopologySaysSo: with degraded_writes on, a PUT while one of
// the two storage nodes cannot take it (stopped, or read-only with its data directory
// gone) succeeds with the one copy it can have, on the other node, and reads back.
func TestDegradedWritesWhenTheTopologySaysSo(t *testing.T) {
	topo := topology(1)
	topo.DegradedWrites = true
	cl := startCell(t, topo)
	ctx := context.Background()
	c := cl.S3()
	mustCreateBucket(t, c, "degraded")
	s0, s1 := cell.NodeID(cell.ID(0), cell.RoleStorage, 0), cell.NodeID(cell.ID(0), cell.RoleStorage, 1)
	oneCopy := func(t *testing.T, key, on, off string) {
		t.Helper()
		before := [2][]string{blobFiles(t, cl, on), blobFiles(t, cl, off)}
		body := randomBytes(t, 100<<10)
		if err := put(ctx, c, "degraded", key, body); err != nil {
			t.Fatalf("PUT while %s cannot take it, with degraded_writes on: %v", off, err)
		}
		newBlob(t, cl, on, before[0])
		if after := blobFiles(t, cl, off); len(after) != len(before[1]) {
			t.Errorf("%s got a copy although it cannot take writes", off)
		}
		if got, err := get(ctx, c, "degraded", key); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("GET of the under-replicated object: %d bytes, %v", len(got), err)
		}
	}

	t.Run("node stopped", func(t *testing.T) {
		cl.StopNode(s1)
		waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: cell.StateReady, s1: ""})
		oneCopy(t, "while-stopped", s0, s1)
		cl.StartNode(s1)
		waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: cell.StateReady, s1: cell.StateReady})
	})

	t.Run("data directory gone", func(t *testing.T) {
		if err := os.RemoveAll(filepath.Join(cl.Dir, s0)); err != nil {
			t.Fatal(err)
		}
		waitStorage(t, cl, cell.ID(0), map[string]cell.State{s0: cell.StateReadOnly, s1: cell.StateReady})
		for i := range 3 {
			oneCopy(t, fmt.Sprintf("read-only-%d", i), s1, s0)
		}
	})
}
