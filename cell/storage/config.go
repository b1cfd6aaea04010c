package storage

import (
	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/internal/daemon"
)

// Config configures one storage node.
type Config struct {
	daemon.Options
	// DataDir holds the node's blobs.
	DataDir string
}

// AddFlags registers the storage node's flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.Options.AddFlags(fs)
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the node's object data")
}
