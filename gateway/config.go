package gateway

import (
	"net"

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
	// Topology gives the cells, the partition key and the slot count.
	Topology cell.Topology
}

// AddFlags registers the gateway's flags. The topology comes from --topology (a YAML
// file over the embedded defaults) and is read by the caller.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.Options.AddFlags(fs)
	fs.StringVar(&c.S3Addr, "s3-addr", "127.0.0.1:9000", "address for the S3 HTTP API")
}
