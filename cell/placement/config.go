package placement

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

// Config configures one placement node. Run fills its zero values with EnsureDefaults
// and refuses it if Validate finds fault with it.
type Config struct {
	daemon.Options
	// Copies is how many storage nodes get each object (default 2, fewer if the cell
	// has fewer ready storage nodes: the gateway then refuses the write unless the
	// topology allows degraded writes). It must be at least the topology's copies.
	Copies int
}

// Command is the placement node as a program: placementd, and 'cellctl daemon placement'.
func Command() daemon.Command {
	return daemon.NewCommand("Runs one placement node: it chooses the storage nodes of its cell that receive each new object.", Run)
}

// AddFlags registers the placement node's flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.Options.AddFlags(fs)
	fs.IntVar(&c.Copies, "copies", 2, "storage nodes that receive each object")
}

// EnsureDefaults sets the role and fills the fields left at their zero value.
func (c *Config) EnsureDefaults() {
	c.Role = cell.RolePlacement
	c.Options.EnsureDefaults()
	if c.Copies == 0 {
		c.Copies = 2
	}
}

// Validate reports what makes the configuration unusable.
func (c *Config) Validate() error {
	if err := c.Options.Validate(); err != nil {
		return err
	}
	if c.Copies < 0 {
		return fmt.Errorf("placement: copies %d is negative", c.Copies)
	}
	return nil
}
