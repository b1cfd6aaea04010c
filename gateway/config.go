package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

// Config configures one gateway.
type Config struct {
	daemon.Options
	// S3Addr is where the S3 HTTP API listens, unless S3Listener is given.
	S3Addr     string
	S3Listener net.Listener
	// Topology gives the cells, the partition key and the slot count, and the
	// credentials requests are signed with (unless its Auth is off).
	Topology cell.Topology
	// UploadMaxAge is how old a multipart upload may grow before the gateway aborts it
	// and reclaims its parts; 0 means the topology's upload_max_age (24 hours by
	// default), negative never.
	UploadMaxAge time.Duration
	// MaxObjectSize is the largest object (and part) accepted; 0 means 5 GiB.
	MaxObjectSize int64

	// Timeouts (see the package doc); 0 means the default.
	//
	// StorageIdleTimeout cancels a storage stream that makes no progress for this long.
	StorageIdleTimeout time.Duration
	// ReclaimGrace is how long the blobs of a replaced or deleted object version stay
	// readable; it must exceed what a read may wait before it opens its blob.
	ReclaimGrace time.Duration
	// BodyTimeout fails a request whose body brings no byte for this long (400
	// RequestTimeout), and cuts a response the client takes no byte of for this long.
	BodyTimeout time.Duration
	// IdleTimeout closes a client connection idle this long between requests.
	IdleTimeout time.Duration

	// StateDir is where the gateway keeps the last cell map it had, to route by it
	// after a restart while the map group is away (static stability); empty, it keeps
	// the map in memory only. Used when the topology has a map group.
	StateDir string

	// FaultsFile is the file the drill tooling arms faults in (see Faults); empty,
	// the gateway has no faults to arm.
	FaultsFile string
	// Crash ends the gateway when an armed fault says so (default os.Exit: the whole
	// process). A cluster run in one process passes a function that ends this node
	// only; the request that carried the fault then gets no answer, as from a crash.
	Crash func(code int)
}

// Defaults of Config's timeouts.
const (
	DefaultStorageIdleTimeout = 10 * time.Second
	DefaultReclaimGrace       = time.Minute
	DefaultBodyTimeout        = 20 * time.Second
	DefaultIdleTimeout        = 2 * time.Minute
)

// AddFlags registers the gateway's flags. The topology comes from --topology (a YAML
// file over the embedded defaults) and is read by the caller.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.Options.AddFlags(fs)
	fs.StringVar(&c.S3Addr, "s3-addr", "127.0.0.1:9000", "address for the S3 HTTP API")
	fs.DurationVar(&c.UploadMaxAge, "upload-max-age", 0, "abort multipart uploads older than this and reclaim their parts (default: the topology's upload_max_age; negative: never)")
	fs.Int64Var(&c.MaxObjectSize, "max-object-size", 5<<30, "largest object or part accepted, in bytes")
	fs.DurationVar(&c.StorageIdleTimeout, "storage-idle-timeout", DefaultStorageIdleTimeout, "cancel a storage stream that makes no progress for this long")
	fs.DurationVar(&c.ReclaimGrace, "reclaim-grace", DefaultReclaimGrace, "keep the data of a replaced or deleted object readable this long before deleting it")
	fs.DurationVar(&c.BodyTimeout, "body-timeout", DefaultBodyTimeout, "fail a request whose body brings no byte for this long (400 RequestTimeout)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", DefaultIdleTimeout, "close a client connection idle this long between requests")
	fs.StringVar(&c.StateDir, "state-dir", "", "directory the gateway keeps the last cell map in, to serve with it across restarts while the map group is away")
	fs.StringVar(&c.FaultsFile, "faults-file", "", "file in which the drill tooling arms faults such as the poison pill (set by 'cellctl up --faults'; empty: none)")
}

// EnsureDefaults sets the role and fills the fields left at their zero value: the
// embedded default topology, the S3 address and upload age the topology gives. A
// gateway belongs to no cell.
func (c *Config) EnsureDefaults() {
	c.Role = cell.RoleGateway
	c.Cell = ""
	c.Options.EnsureDefaults()
	if c.Topology.Cells == 0 {
		c.Topology = cell.DefaultTopology()
	}
	if c.S3Listener == nil && c.S3Addr == "" {
		c.S3Addr = c.Topology.S3Addr
	}
	if c.UploadMaxAge == 0 {
		c.UploadMaxAge = c.Topology.UploadMaxAge
	}
	if c.UploadMaxAge == 0 {
		c.UploadMaxAge = 24 * time.Hour
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.StorageIdleTimeout, DefaultStorageIdleTimeout}, {&c.ReclaimGrace, DefaultReclaimGrace},
		{&c.BodyTimeout, DefaultBodyTimeout}, {&c.IdleTimeout, DefaultIdleTimeout},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
}

// Validate reports what makes the configuration unusable.
func (c *Config) Validate() error {
	if err := c.Options.Validate(); err != nil {
		return err
	}
	if err := c.Topology.Validate(); err != nil {
		return fmt.Errorf("gateway: topology: %w", err)
	}
	if c.StorageIdleTimeout < 0 || c.BodyTimeout < 0 || c.IdleTimeout < 0 {
		return fmt.Errorf("gateway: negative timeout (storage idle %v, body %v, idle %v)", c.StorageIdleTimeout, c.BodyTimeout, c.IdleTimeout)
	}
	// A read may wait a call deadline for its lookup, then a storage idle timeout on each
	// replica, before it opens its blob: the grace must outlast that.
	if wait := callTimeout + time.Duration(c.Topology.PromisedCopies())*c.StorageIdleTimeout; c.ReclaimGrace <= wait {
		return fmt.Errorf("gateway: reclaim grace %v must be longer than %v, the longest a read may wait before it opens its data (storage idle timeout %v per copy, plus a lookup)",
			c.ReclaimGrace, wait, c.StorageIdleTimeout)
	}
	return nil
}

// Command is the gateway as a program: gatewayd, and 'cellctl daemon gateway'. Besides
// AddFlags' flags it takes --topology, a YAML file over the embedded defaults, whose
// s3_addr is the S3 address unless --s3-addr is given.
func Command() daemon.Command {
	return daemon.Command{
		About: "Runs one gateway: the S3 HTTP API and the router that sends each request to the cell that holds it.",
		Flags: func(fs *pflag.FlagSet) daemon.RunFunc {
			var c Config
			c.AddFlags(fs)
			path := fs.String("topology", "", "YAML topology file over the embedded defaults (cells, slots, partition, credentials)")
			sigv2 := fs.Bool("sigv2", true, "accept AWS Signature Version 2 from old clients (overrides the topology's sigv2)")
			return func(ctx context.Context, log *slog.Logger) error {
				c.Topology = cell.DefaultTopology()
				if *path != "" {
					t, err := cell.LoadTopology(*path)
					if err != nil {
						return err
					}
					c.Topology = t
				}
				if fs.Changed("sigv2") {
					c.Topology.SigV2 = *sigv2
				}
				if !fs.Changed("s3-addr") && c.Topology.S3Addr != "" {
					c.S3Addr = c.Topology.S3Addr
				}
				c.Logger = log
				return Run(ctx, c)
			}
		},
	}
}
