package storage

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

// Config configures one storage node. Run fills its zero values with EnsureDefaults and
// refuses it if Validate finds fault with it.
type Config struct {
	daemon.Options
	// DataDir holds the node's blobs. Required.
	DataDir string
}

// Command is the storage node as a program: storaged, and 'cellctl daemon storage'.
func Command() daemon.Command {
	return daemon.NewCommand("Runs one storage node: it keeps object bytes in its data directory.", Run)
}

// AddFlags registers the storage node's flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.Options.AddFlags(fs)
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the node's object data")
}

// EnsureDefaults sets the role and fills the fields left at their zero value.
func (c *Config) EnsureDefaults() {
	c.Role = cell.RoleStorage
	c.Options.EnsureDefaults()
}

// Validate reports what makes the configuration unusable.
func (c *Config) Validate() error {
	if err := c.Options.Validate(); err != nil {
		return err
	}
	if c.DataDir == "" {
		return errors.New("storage: --data-dir is required")
	}
	return nil
}
