package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/gateway/s3"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/router"
)

// Run runs a gateway until ctx is done: the S3 API on cfg.S3Addr, routing every request
// to the cell that owns its bucket (or key) through the router.
func Run(ctx context.Context, cfg Config) error {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	ln := cfg.S3Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.S3Addr); err != nil {
			return fmt.Errorf("gateway: S3 listener: %w", err)
		}
	}
	d, err := daemon.New(cfg.Options)
	if err != nil {
		ln.Close()
		return err
	}
	if err := d.Start(); err != nil {
		ln.Close()
		return err
	}
	conns := daemon.NewConns(router.CallDeadline(callTimeout))
	rt := router.New(cfg.Topology, d.Members, conns)
	backend := newCells(rt, d.Log)
	opts := s3.HandlerOptions{Region: cfg.Topology.Region, Logger: d.Log, Registerer: d.Metrics, MaxObjectSize: cfg.MaxObjectSize}
	if cfg.Topology.Auth {
		opts.Credentials = map[string]string{cfg.Topology.AccessKey: cfg.Topology.SecretKey}
		d.Log.Info("S3 authentication is on: requests must be signed (AWS Signature V4)", "access_key", cfg.Topology.AccessKey)
	} else {
		d.Log.Warn("S3 AUTHENTICATION IS OFF: anyone who can reach " + ln.Addr().String() +
			" can read, write and delete every object. Set auth: true in the topology unless this is a workshop.")
	}
	h := s3.NewHandler(backend, opts)
	maxAge := cfg.UploadMaxAge
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	serveErr := make(chan error, 1)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
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
	go func() {
		select {
		case err := <-serveErr:
			d.Log.Error("S3 server failed", "err", err)
			cancel()
		case <-wctx.Done():
		}
	}()
	return d.Wait(wctx, func() error {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		err := srv.Shutdown(sctx)
		conns.Close()
		return err
	})
}
