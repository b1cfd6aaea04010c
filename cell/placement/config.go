package placement

import (
	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/internal/daemon"
)

// Config configures one placement node.
type Config struct {
	daemon.Options
	// Copies is how many storage nodes get each object (default 2, fewer if the cell
	// has fewer ready storage nodes).
	Copies int
}

// AddFlags registers the placement node's flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.Options.AddFlags(fs)
	fs.IntVar(&c.Copies, "copies", 2, "storage nodes that receive each object")
}
