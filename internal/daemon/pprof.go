package daemon

import (
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync"
)

// Go's profiles of a daemon under load, on its admin listener at /debug/pprof/, for
// callers on the node's own host only (whatever --status-remote says: a profile shows
// the code and the data in flight):
//
//	go tool pprof http://127.0.0.1:ADMIN/debug/pprof/profile?seconds=20
//	go tool pprof http://127.0.0.1:ADMIN/debug/pprof/block?seconds=20
//	go tool pprof http://127.0.0.1:ADMIN/debug/pprof/mutex?seconds=20
//
// Blocking and mutex contention are not sampled normally (it costs on every wait); a
// block or mutex profile asked for with seconds=N turns their sampling on for those N
// seconds, and off again after.

// Sampling while a timed block or mutex profile runs: one blocking event per
// blockProfileRate nanoseconds blocked, one contention event in mutexProfileFraction.
const (
	blockProfileRate     = 10_000
	mutexProfileFraction = 10
)

// profiling counts the timed block and mutex profiles in flight in this process
// (several daemons may share one, in tests).
var profiling struct {
	sync.Mutex
	n int
}

func startSampling() {
	profiling.Lock()
	defer profiling.Unlock()
	if profiling.n == 0 {
		runtime.SetBlockProfileRate(blockProfileRate)
		runtime.SetMutexProfileFraction(mutexProfileFraction)
	}
	profiling.n++
}

func stopSampling() {
	profiling.Lock()
	defer profiling.Unlock()
	profiling.n--
	if profiling.n == 0 {
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
	}
}

// registerPprof adds /debug/pprof/ to the admin mux.
func (d *Daemon) registerPprof() {
	d.Admin.HandleFunc("/debug/pprof/", loopbackOnly(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/debug/pprof/block", "/debug/pprof/mutex":
			if r.FormValue("seconds") != "" {
				startSampling()
				defer stopSampling()
			}
		}
		pprof.Index(w, r)
	}))
	d.Admin.HandleFunc("/debug/pprof/cmdline", loopbackOnly(pprof.Cmdline))
	d.Admin.HandleFunc("/debug/pprof/profile", loopbackOnly(pprof.Profile))
	d.Admin.HandleFunc("/debug/pprof/symbol", loopbackOnly(pprof.Symbol))
	d.Admin.HandleFunc("/debug/pprof/trace", loopbackOnly(pprof.Trace))
}

// loopbackOnly answers callers on the loopback interface only.
func loopbackOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, r.URL.Path+" answers callers on this node's host only", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}
