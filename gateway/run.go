package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/gateway/s3"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/router"
)

// Run runs a gateway until ctx is done: the S3 API on cfg.S3Addr, routing every request
// to the cell that owns its bucket (or key) through the router.
func Run(ctx context.Context, cfg Config) error {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	d, ln, err := daemon.StartWithListener(cfg.Options, cfg.S3Listener, cfg.S3Addr, "gateway")
	if err != nil {
		return err
	}
	conns := d.Conns(router.CallDeadline(callTimeout))
	rt := router.New(cfg.Topology, d.Members, conns)
	backend := newCells(rt, d.Log, cellsOptions{
		Copies: cfg.Topology.PromisedCopies(), DegradedWrites: cfg.Topology.DegradedWrites,
		StorageIdle: cfg.StorageIdleTimeout, ReclaimGrace: cfg.ReclaimGrace,
	})
	if err := backend.registerMetrics(d.Metrics); err != nil {
		ln.Close()
		return errors.Join(err, d.Stop(nil))
	}
	if backend.maps, err = followMap(cfg, d, rt); err != nil {
		ln.Close()
		return errors.Join(err, d.Stop(nil))
	}
	opts := s3.HandlerOptions{Region: cfg.Topology.Region, Logger: d.Log, Registerer: d.Metrics, MaxObjectSize: cfg.MaxObjectSize}
	if cfg.Topology.Auth {
		opts.Credentials = cfg.Topology.Credentials()
		d.Log.Info("S3 authentication is on: requests must be signed (AWS Signature V4)", "access_key", cfg.Topology.AccessKey,
			"tenants", len(cfg.Topology.Tenants))
	} else {
		d.Log.Warn("S3 AUTHENTICATION IS OFF: anyone who can reach " + ln.Addr().String() +
			" can read, write and delete every object. Set auth: true in the topology unless this is a workshop.")
	}
	if len(cfg.Topology.Tenants) > 0 {
		opts.Tenants = cfg.Topology.TenantNames()
	}
	var h http.Handler = s3.NewHandler(backend, opts)
	if !cfg.Topology.SigV2 {
		h = s3.AcceptV4Only(h)
		d.Log.Info("S3 Signature Version 2 is off: only Version 4 signatures are accepted")
	}
	var faults *faultWatch
	if cfg.FaultsFile != "" {
		faults = newFaultWatch(cfg.FaultsFile, d.Log)
		if cfg.Crash != nil {
			faults.exit = cfg.Crash
		}
		h = faults.wrap(h)
		d.Log.Warn("faults may be armed in this cluster by the drill tooling", "faults_file", cfg.FaultsFile)
	}
	maxAge := cfg.UploadMaxAge
	srv := newS3Server(h, cfg)
	if faults != nil {
		// A process that exits serves nothing more. Run in a process of its own, the
		// gateway gets that from os.Exit; run beside others (a test cluster, whose
		// exit stops the node gracefully, leaving the gossip first) it would go on
		// answering meanwhile: its S3 server closes at once first.
		exit := faults.exit
		faults.exit = func(code int) { srv.Close(); exit(code) }
	}
	serveErr := make(chan error, 1)
	go func() {
		if err := srv.Serve(s3.XMLErrorListener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	}()
	d.Log.Info("S3 API listening", "addr", ln.Addr().String(), "router", rt.String())
	// A gateway holds no state: it is ready as soon as it listens. It keeps serving
	// with the cell map it has when the cells are away (static stability).
	d.SetState(cell.StateReady, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if maxAge > 0 {
		go backend.reapLoop(wctx, maxAge, max(min(maxAge/4, 10*time.Minute), 100*time.Millisecond))
	}
	go backend.reclaimLoop(wctx)
	if backend.maps != nil {
		go backend.maps.Run(wctx)
	}
	if faults != nil {
		go faults.run(wctx)
	}
	go func() {
		select {
		case err := <-serveErr:
			d.Log.Error("S3 server failed", "err", err)
			cancel()
		case <-wctx.Done():
		}
	}()
	return d.Wait(wctx, func() error {
		err := d.ShutdownHTTP(srv, "s3", 5*time.Second)
		conns.Close()
		return err
	})
}

// readHeaderTimeout bounds how long a client may take to send a request's headers.
const readHeaderTimeout = 10 * time.Second

// newS3Server is the HTTP server of the S3 API: a client gets readHeaderTimeout to send
// its headers and may keep a connection idle cfg.IdleTimeout between requests; a request
// body that brings no byte for cfg.BodyTimeout fails with 400 RequestTimeout, and a
// response the client takes no byte of for that long is cut (see progressDeadlines).
func newS3Server(h http.Handler, cfg Config) *http.Server {
	return &http.Server{
		Handler:           progressDeadlines(h, cfg.BodyTimeout),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
}

// progressDeadlines bounds how long a request may go without progress on its body and
// its response, whatever their size: before every read of the body and every write of
// the response, the connection's deadline is set d ahead. A body read that times out
// returns a RequestTimeout error, which the S3 handler answers with 400 RequestTimeout
// (net/http also cancels the request's context, which cancels its storage streams).
func progressDeadlines(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		var body *progressBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &progressBody{ReadCloser: r.Body, rc: rc, d: d}
			r.Body = body
		}
		next.ServeHTTP(&progressWriter{ResponseWriter: w, rc: rc, d: d}, r)
		if body != nil && !body.ended {
			// net/http reads what is left of a body the handler did not finish (up to
			// 256 KiB) before it answers: a client that stalls must not hold it.
			_ = rc.SetReadDeadline(time.Now().Add(d))
		}
		// The connection may serve another request, whose writes are not bounded until
		// its handler writes.
		_ = rc.SetWriteDeadline(time.Time{})
	})
}

// requestTimeoutMessage is S3's answer to a client that stops sending its body.
const requestTimeoutMessage = "Your socket connection to the server was not read from or written to within the timeout period."

// progressBody is a request body with a read deadline d ahead of every read.
type progressBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	d     time.Duration
	ended bool // the body has been read to its end: the deadline is lifted
}

func (b *progressBody) Read(p []byte) (int, error) {
	if b.ended {
		return b.ReadCloser.Read(p)
	}
	_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		// Lift the deadline: net/http goes on reading the connection in the background
		// (to see the next request, or the client leave), and a timeout there would
		// cancel this request while it finishes.
		b.ended = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, errs.Wrap(errs.RequestTimeout, err, "%s", requestTimeoutMessage)
	}
	return n, err
}

// progressWriter is a response writer with a write deadline d ahead of every write.
type progressWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *progressWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(p)
}

// Unwrap lets an http.ResponseController reach the connection under the wrapper.
func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
