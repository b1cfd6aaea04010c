package frontrouter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

// Config configures one front router daemon.
type Config struct {
	daemon.Options
	// S3Addr is where the router's S3 endpoint listens, unless S3Listener is given.
	S3Addr     string
	S3Listener net.Listener
	// Topology gives the tenants, the sharding and the number of gateways.
	Topology cell.Topology
	// Backends are the gateways' S3 addresses, in the fleet's order.
	Backends []string
}

// EnsureDefaults sets the role and fills the zero fields.
func (c *Config) EnsureDefaults() {
	c.Role = cell.RoleRouter
	c.Cell = ""
	c.Options.EnsureDefaults()
	if c.Topology.Cells == 0 {
		c.Topology = cell.DefaultTopology()
	}
	if c.S3Listener == nil && c.S3Addr == "" {
		c.S3Addr = c.Topology.S3Addr
	}
}

// Validate reports what makes the configuration unusable.
func (c *Config) Validate() error {
	if err := c.Options.Validate(); err != nil {
		return err
	}
	if err := c.Topology.ValidateShape(); err != nil {
		return fmt.Errorf("router: topology: %w", err)
	}
	if len(c.Backends) != c.Topology.Gateways {
		return fmt.Errorf("router: --backends gives %d gateway addresses; the topology has %d gateways", len(c.Backends), c.Topology.Gateways)
	}
	return nil
}

// Run runs a front router until ctx ends: the S3 endpoint clients use, forwarding each
// request to a gateway of its tenant's shard.
func Run(ctx context.Context, cfg Config) error {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	d, ln, err := daemon.StartWithListener(cfg.Options, cfg.S3Listener, cfg.S3Addr, "router")
	if err != nil {
		return err
	}
	rt, err := New(Options{Topology: cfg.Topology, Backends: cfg.Backends, Logger: d.Log, Registerer: d.Metrics})
	if err != nil {
		ln.Close()
		return errors.Join(err, d.Stop(nil))
	}
	srv := &http.Server{Handler: rt, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	serveErr := make(chan error, 1)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	}()
	d.Log.Info("front router listening", "addr", ln.Addr().String(), "gateways", len(cfg.Backends),
		"sharding", cfg.Topology.ShardingMode(), "shard_size", cfg.Topology.TenantShardSize(), "tenants", len(cfg.Topology.Tenants))
	// The router holds no state: it is ready as soon as it listens.
	d.SetState(cell.StateReady, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case err := <-serveErr:
			d.Log.Error("router: S3 server failed", "err", err)
			cancel()
		case <-wctx.Done():
		}
	}()
	return d.Wait(wctx, func() error {
		return d.ShutdownHTTP(srv, "s3", 5*time.Second)
	})
}

// Command is the router as a program: routerd, and 'cellctl daemon router'.
func Command() daemon.Command {
	return daemon.Command{
		About: "Runs a front router: the S3 endpoint before a fleet of gateways, sending each request to a gateway of its tenant's shard as it came.",
		Flags: func(fs *pflag.FlagSet) daemon.RunFunc {
			var c Config
			c.Options.AddFlags(fs)
			fs.StringVar(&c.S3Addr, "s3-addr", "127.0.0.1:9000", "address of the router's S3 endpoint")
			backends := fs.String("backends", "", "the gateways' S3 addresses, host:port, comma-separated, in the fleet's order")
			path := fs.String("topology", "", "YAML topology file over the embedded defaults (tenants, sharding, gateways)")
			return func(ctx context.Context, log *slog.Logger) error {
				c.Topology = cell.DefaultTopology()
				if *path != "" {
					t, err := cell.LoadTopology(*path)
					if err != nil {
						return err
					}
					c.Topology = t
				}
				for _, b := range strings.Split(*backends, ",") {
					if b = strings.TrimSpace(b); b != "" {
						c.Backends = append(c.Backends, b)
					}
				}
				c.Logger = log
				return Run(ctx, c)
			}
		},
	}
}
