package index

import (
	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/internal/daemon"
)

// Config configures one index node.
type Config struct {
	daemon.Options
	// DataDir holds the node's Pebble database.
	DataDir string
}

// AddFlags registers the index node's flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.Options.AddFlags(fs)
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the node's Pebble database")
}
