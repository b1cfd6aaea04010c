package gateway

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cellarsim/cellar/cell/storage"
)

// commitGate holds a storage node in its commit (the blob's fsync) until opened. A
// small blob's write asks the disk three times: create, data, and the commit.
type commitGate struct {
	mu      sync.Mutex
	calls   int
	entered atomic.Bool
	open    chan struct{}
}

func (g *commitGate) diskWrite() error {
	g.mu.Lock()
	g.calls++
	commit := g.calls == 3
	g.mu.Unlock()
	if commit {
		g.entered.Store(true)
		<-g.open
	}
	return nil
}

// TestReplicasCommitTogether: the replicas of a PUT commit at the same time (a PUT
// waits for the slowest fsync, not for the sum), and the PUT is answered only once
// every replica has committed.
func TestReplicasCommitTogether(t *testing.T) {
	tc := newTestCell(t, cellsOptions{}, Config{})
	gates := []*commitGate{{open: make(chan struct{})}, {open: make(chan struct{})}}
	for i, g := range gates {
		tc.stores[i].InjectFaults(storage.Faults{DiskWrite: g.diskWrite})
	}
	var once [2]sync.Once
	release := func(i int) { once[i].Do(func() { close(gates[i].open) }) }
	t.Cleanup(func() { release(0); release(1) })

	data := randomData(t, 4<<10)
	answered := make(chan response, 1)
	go func() { answered <- tc.do(t, http.MethodPut, "/bkt/obj", data) }()

	// Both replicas are in their commit at once: neither waits for the other.
	waitUntil(t, "both replicas are committing at the same time", func() bool {
		return gates[0].entered.Load() && gates[1].entered.Load()
	})
	// One replica has the blob durably; the other has not: no answer yet.
	release(0)
	waitUntil(t, "the first replica has installed the blob", func() bool { return tc.tmpFiles(t, 0) == 0 })
	select {
	case r := <-answered:
		t.Fatalf("PUT answered %d while a replica was still committing", r.status)
	default:
	}
	release(1)
	r := <-answered
	if r.status != http.StatusOK {
		t.Fatalf("PUT: %d %s %s", r.status, r.code, r.message)
	}
	loc := tc.ix.location(t, "bkt", "obj")
	if len(loc.Replicas) != 2 {
		t.Fatalf("location lists %d replicas, want 2", len(loc.Replicas))
	}
	for i := range 2 {
		if !exists(tc.blobFile(i, loc)) {
			t.Errorf("storage node %d has no copy of the acknowledged object", i)
		}
	}
}

// TestPutSizesAroundTheChunk: bodies below, at and above the chunk the gateway reads
// them in (and of unknown length) arrive whole on both replicas.
func TestPutSizesAroundTheChunk(t *testing.T) {
	tc := newTestCell(t, cellsOptions{}, Config{})
	for _, n := range []int{0, 1, 4 << 10, chunkSize - 1, chunkSize, chunkSize + 1, 2*chunkSize + 5} {
		data := randomData(t, n)
		tc.put(t, "obj", data)
		loc := tc.ix.location(t, "bkt", "obj")
		if loc.Size != int64(n) || len(loc.Replicas) != 2 {
			t.Fatalf("%d bytes: location %v", n, loc)
		}
		if r := tc.do(t, http.MethodGet, "/bkt/obj", nil); r.status != 200 || len(r.body) != n || string(r.body) != string(data) {
			t.Fatalf("%d bytes: GET %d %s %s, %d bytes back", n, r.status, r.code, r.message, len(r.body))
		}
	}
}
