package clustertest

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// One in-process cluster at a time on the machine. `go test ./...` runs two test
// binaries at once on a 2-core machine; two whole clusters under the race detector then
// starve each other's raft heartbeats and gossip probes, and a test that checks that
// untouched cells keep serving fails for reasons that are not cellar's. Start takes a
// lock shared by every test binary on the machine (flock on a file in the temporary
// directory) and the cluster's cleanup releases it. Clusters of the same test binary
// share the hold, so a test may run two at once.
var machine struct {
	mu    sync.Mutex
	holds int
	f     *os.File
}

// holdMachine waits for the machine-wide lock (or joins this binary's hold) until the
// test ends.
func holdMachine(t testing.TB) {
	t.Helper()
	machine.mu.Lock()
	defer machine.mu.Unlock()
	if machine.holds == 0 {
		f, err := os.OpenFile(filepath.Join(os.TempDir(), "cellar-clustertest.lock"), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			t.Fatalf("machine lock: %v", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			t.Fatalf("machine lock: %v", err)
		}
		machine.f = f
	}
	machine.holds++
	t.Cleanup(func() {
		machine.mu.Lock()
		defer machine.mu.Unlock()
		if machine.holds--; machine.holds == 0 {
			machine.f.Close() // closing the file releases the lock
			machine.f = nil
		}
	})
}
