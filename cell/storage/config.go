package storage

import (
	"errors"
	"fmt"
	"time"

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
	// ProbeInterval is how often the node checks that it can write (default 5s).
	ProbeInterval time.Duration
	// MinFreeBytes is the free space under which the node stops taking writes and says
	// it is read-only (default 64 MiB; negative: no minimum).
	MinFreeBytes int64
	// StreamIdleTimeout ends a write stream that brings nothing for this long, and
	// removes its temp file: a writer that froze or vanished (default 1m).
	StreamIdleTimeout time.Duration
	// Faults, if not nil, makes the node fail on purpose; for tests.
	Faults *Faults
}

// Defaults of Config.
const (
	DefaultProbeInterval     = 5 * time.Second
	DefaultMinFreeBytes      = 64 << 20
	DefaultStreamIdleTimeout = time.Minute
)

// Command is the storage node as a program: storaged, and 'cellctl daemon storage'.
func Command() daemon.Command {
	return daemon.NewCommand("Runs one storage node: it keeps object bytes in its data directory.", Run)
}

// AddFlags registers the storage node's flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.Options.AddFlags(fs)
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the node's object data")
	fs.DurationVar(&c.ProbeInterval, "probe-interval", DefaultProbeInterval, "how often the node checks that it can write to its data directory")
	fs.Int64Var(&c.MinFreeBytes, "min-free-bytes", DefaultMinFreeBytes, "free disk space under which the node takes no more writes (negative: no minimum)")
	fs.DurationVar(&c.StreamIdleTimeout, "stream-idle-timeout", DefaultStreamIdleTimeout, "end a write stream that brings nothing for this long")
}

// EnsureDefaults sets the role and fills the fields left at their zero value.
func (c *Config) EnsureDefaults() {
	c.Role = cell.RoleStorage
	c.Options.EnsureDefaults()
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultMinFreeBytes
	}
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
}

// Validate reports what makes the configuration unusable.
func (c *Config) Validate() error {
	if err := c.Options.Validate(); err != nil {
		return err
	}
	switch {
	case c.DataDir == "":
		return errors.New("storage: --data-dir is required")
	case c.ProbeInterval < 0:
		return fmt.Errorf("storage: probe interval %v is negative", c.ProbeInterval)
	case c.StreamIdleTimeout < 0:
		return fmt.Errorf("storage: stream idle timeout %v is negative", c.StreamIdleTimeout)
	}
	return nil
}
