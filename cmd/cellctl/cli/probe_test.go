package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			w.Write([]byte("ready\n"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("starting\n"))
	}))
	defer srv.Close()
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"probe", srv.URL + "/readyz"}, ExitOK},
		{[]string{"probe", srv.URL + "/other"}, ExitError},
		{[]string{"probe", "http://127.0.0.1:1/readyz", "--timeout", "500ms"}, ExitError},
		{[]string{"probe", "127.0.0.1:1/readyz"}, ExitUsage},
		{[]string{"probe"}, ExitUsage},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		if got := Main(tt.args, &stdout, &stderr); got != tt.want {
			t.Errorf("cellctl %v: exit %d, want %d (stderr %q)", tt.args, got, tt.want, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("cellctl %v printed %q", tt.args, stdout.String())
		}
	}
}
