package daemon

import (
	"net"
	"net/http"
)

// hostOnly guards an admin handler that tells what only the node's own host should
// see (addresses, pids): when the admin listener is not on loopback, as in containers,
// it answers callers on loopback only, unless Options.StatusRemote lets others in.
func (d *Daemon) hostOnly(h http.HandlerFunc) http.HandlerFunc {
	if d.opts.StatusRemote || onLoopback(d.adminLn.Addr()) {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, r.URL.Path+" answers callers on this node's host only (--status-remote opens it)", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}

// onLoopback reports whether a listener's address is on the loopback interface.
func onLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
