package placement

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/repair"
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
	// Repair configures the cell's repair, scrub and garbage collection loop, which
	// runs in a placement node (package cell/repair); Cell, Self and Copies come from
	// the fields above.
	Repair RepairConfig
}

// RepairConfig is what a placement node's flags set of the repair loop; zero values
// take the loop's defaults (repair.Options).
type RepairConfig struct {
	Interval  time.Duration
	Rate      int64
	Ops       int64
	ScrubRate int64
	Workers   int
	GCGrace   time.Duration
	NoAutoGC  bool
	Off       bool
}

// Command is the placement node as a program: placementd, and 'cellctl daemon placement'.
func Command() daemon.Command {
	return daemon.NewCommand("Runs one placement node: it chooses the storage nodes of its cell that receive each new object.", Run)
}

// AddFlags registers the placement node's flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.Options.AddFlags(fs)
	fs.IntVar(&c.Copies, "copies", 2, "storage nodes that receive each object")
	fs.DurationVar(&c.Repair.Interval, "repair-interval", 30*time.Second, "time between passes of the cell's repair loop")
	fs.Int64Var(&c.Repair.Rate, "repair-rate", repair.DefaultRepairRate, "bytes per second the repair loop may copy, over all copies in flight (negative: no limit)")
	fs.Int64Var(&c.Repair.Ops, "repair-ops", repair.DefaultRepairOps, "blobs per second the repair loop may copy, over all copies in flight (negative: no limit)")
	fs.Int64Var(&c.Repair.ScrubRate, "scrub-rate", repair.DefaultScrubRate, "bytes per second the scrubber may verify (negative: no scrub)")
	fs.IntVar(&c.Repair.Workers, "repair-workers", repair.DefaultWorkers, "objects the repair loop copies at once (its window)")
	fs.DurationVar(&c.Repair.GCGrace, "gc-grace", time.Minute, "how long an orphan blob is kept before garbage collection deletes it; at least the gateways' --reclaim-grace")
	fs.BoolVar(&c.Repair.NoAutoGC, "no-auto-gc", false, "leave orphan blobs to 'cellctl gc --apply' instead of deleting them every pass")
	fs.BoolVar(&c.Repair.Off, "no-repair", false, "run no repair loop on this node")
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
