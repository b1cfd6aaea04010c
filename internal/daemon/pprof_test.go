package daemon

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

// TestProfilesOnlyFromThisHost: /debug/pprof/ answers callers on the node's host, and
// nobody else, even with --status-remote; a timed mutex profile samples contention
// while it runs and stops after.
func TestProfilesOnlyFromThisHost(t *testing.T) {
	d, err := New(Options{NodeID: "n", Role: cell.RoleStorage, Cell: "cell-0", GRPCAddr: "127.0.0.1:0",
		AdminAddr: "0.0.0.0:0", StatusRemote: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.grpcLn.Close()
	defer d.adminLn.Close()
	get := func(path, from string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr = from
		w := httptest.NewRecorder()
		d.Admin.ServeHTTP(w, r)
		return w
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline", "/debug/pprof/heap"} {
		if w := get(path, "10.1.2.3:40000"); w.Code != http.StatusForbidden {
			t.Errorf("%s from another host: %d, want 403", path, w.Code)
		}
		if w := get(path, "127.0.0.1:40000"); w.Code != http.StatusOK {
			t.Errorf("%s from this host: %d", path, w.Code)
		}
	}
	if w := get("/debug/pprof/goroutine?debug=1", "[::1]:40000"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "goroutine") {
		t.Errorf("goroutine profile over IPv6 loopback: %d", w.Code)
	}

	if runtime.SetMutexProfileFraction(-1) != 0 {
		t.Skip("mutex profiling is already on in this process")
	}
	startSampling()
	during := runtime.SetMutexProfileFraction(-1)
	stopSampling()
	if got := during; got != mutexProfileFraction {
		t.Errorf("mutex sampling during a timed profile: %d, want %d", got, mutexProfileFraction)
	}
	if got := runtime.SetMutexProfileFraction(-1); got != 0 {
		t.Errorf("mutex sampling after the profile: %d, want 0 (off)", got)
	}
	// A timed profile through the handler turns it on and off the same way.
	if w := get("/debug/pprof/mutex?seconds=1", "127.0.0.1:40000"); w.Code != http.StatusOK {
		t.Errorf("timed mutex profile: %d %s", w.Code, w.Body.String())
	}
	if got := runtime.SetMutexProfileFraction(-1); got != 0 {
		t.Errorf("mutex sampling after a timed profile: %d, want 0", got)
	}
}
