package daemon

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

// /status and /members list addresses and pids: an admin server on an address other
// hosts reach serves them to its own host only, unless told otherwise; the paths
// Prometheus and probes use answer everyone.
func TestStatusAndMembersStayOnTheHost(t *testing.T) {
	for _, tc := range []struct {
		name      string
		adminAddr string
		remote    bool
		// what a caller on another host gets from /status and /members
		want int
	}{
		{"admin on loopback", "127.0.0.1:0", false, http.StatusOK},
		{"admin on every interface", "0.0.0.0:0", false, http.StatusForbidden},
		{"admin on every interface, --status-remote", "0.0.0.0:0", true, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(Options{NodeID: "n", Role: cell.RoleStorage, Cell: "cell-0", GRPCAddr: "127.0.0.1:0",
				AdminAddr: tc.adminAddr, StatusRemote: tc.remote})
			if err != nil {
				t.Fatal(err)
			}
			defer d.grpcLn.Close()
			defer d.adminLn.Close()
			get := func(path, from string) int {
				r := httptest.NewRequest(http.MethodGet, path, nil)
				r.RemoteAddr = from
				w := httptest.NewRecorder()
				d.Admin.ServeHTTP(w, r)
				return w.Code
			}
			for _, path := range []string{"/status", "/members"} {
				if got := get(path, "10.1.2.3:40000"); got != tc.want {
					t.Errorf("%s from another host: %d, want %d", path, got, tc.want)
				}
				if got := get(path, "127.0.0.1:40000"); got != http.StatusOK {
					t.Errorf("%s from this host: %d", path, got)
				}
				if got := get(path, "[::1]:40000"); got != http.StatusOK {
					t.Errorf("%s from this host over IPv6: %d", path, got)
				}
			}
			for path, want := range map[string]int{"/metrics": http.StatusOK, "/healthz": http.StatusOK, "/readyz": http.StatusServiceUnavailable} {
				if got := get(path, "10.1.2.3:40000"); got != want {
					t.Errorf("%s from another host: %d, want %d", path, got, want)
				}
			}
		})
	}
}
