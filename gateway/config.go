package gateway

import (
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
