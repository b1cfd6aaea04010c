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
}

// AddFlags registers the gateway's flags. The topology comes from --topology (a YAML
// file over the embedded defaults) and is read by the caller.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.Options.AddFlags(fs)
	fs.StringVar(&c.S3Addr, "s3-addr", "127.0.0.1:9000", "address for the S3 HTTP API")
	fs.DurationVar(&c.UploadMaxAge, "upload-max-age", 0, "abort multipart uploads older than this and reclaim their parts (default: the topology's upload_max_age; negative: never)")
	fs.Int64Var(&c.MaxObjectSize, "max-object-size", 5<<30, "largest object or part accepted, in bytes")
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
}

// Validate reports what makes the configuration unusable.
func (c *Config) Validate() error {
	if err := c.Options.Validate(); err != nil {
		return err
	}
	if err := c.Topology.Validate(); err != nil {
		return fmt.Errorf("gateway: topology: %w", err)
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
			return func(ctx context.Context, log *slog.Logger) error {
				c.Topology = cell.DefaultTopology()
				if *path != "" {
					t, err := cell.LoadTopology(*path)
					if err != nil {
						return err
					}
					c.Topology = t
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
