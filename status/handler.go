package status

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The page's HTML, CSS and script live in the binary: the status page must load when
// nothing else does.
//
//go:embed assets
var assets embed.FS

// Handler serves the status page at /, its assets under /assets/, the view as JSON at
// /api/status, the view as Prometheus series at /metrics (cellar_status_*) and its own
// liveness at /healthz. view is usually Collector.Snapshot.
func Handler(view func() Snapshot) http.Handler {
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic("status: embedded assets: " + err.Error())
	}
	page, err := fs.ReadFile(static, "index.html")
	if err != nil {
		panic("status: embedded index.html: " + err.Error())
	}
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", noCache(http.FileServerFS(static))))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		if r.URL.Query().Has("pretty") {
			enc.SetIndent("", "  ")
		}
		_ = enc.Encode(view())
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(newViewCollector(view))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
