package index

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

// Config configures one index node. Run fills its zero values with EnsureDefaults and
// refuses it if Validate finds fault with it.
type Config struct {
	daemon.Options
	// DataDir holds the node's Pebble database (records and raft log) and raft's
	// snapshots. Required.
	DataDir string

	// RaftAddr is where this node's raft transport listens (default with Peers:
	// 127.0.0.1 on a port the kernel picks). With neither RaftAddr nor Peers the node
	// runs standalone: no replication, writes synced to Pebble.
	RaftAddr string
	// RaftAdvertise is the raft address peers use, when it differs from RaftAddr.
	RaftAdvertise string
	// Peers is the initial group of the cell, "id=host:port" each, the same list on
	// every initial member (itself included). A node added later gets none.
	Peers []string
	// SnapshotThreshold and TrailingLogs tune raft's log compaction (0: raft's
	// defaults). A follower further behind than TrailingLogs catches up from a snapshot.
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// ReadLease turns the leader's read lease on (lease.go): reads are then answered
	// without a round trip to the followers while the lease lasts. Off, every read
	// waits for a majority to confirm the leadership.
	ReadLease bool

	// Pending is what a read of a key range still loading gets during the rebuild
	// of a standalone node: answered from Pebble (the default) or refused with
	// SlowDown. RebuildWorkers is the number of ranges loaded at once (0: one per core).
	Pending        Pending
	RebuildWorkers int

	// FaultsFile is the faults file of a cluster that allows faults (see
	// internal/faultfile): a write of the object its index pill names crashes this
	// node. Crash is how the node ends then (nil: the process exits with PillExitCode);
	// a cluster in one process ends only the node.
	FaultsFile string
	Crash      func(code int)
}

// Command is the index node as a program: indexd, and 'cellctl daemon index'.
func Command() daemon.Command {
	return daemon.NewCommand("Runs one index node: the key-to-location map of its cell, kept in Pebble and rebuilt in memory at start.", Run)
}

// AddFlags registers the index node's flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.Options.AddFlags(fs)
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the node's Pebble database")
	fs.StringVar(&c.RaftAddr, "raft-addr", c.RaftAddr, "address of the raft transport of the cell's index group (empty with no --peers: standalone)")
	fs.StringVar(&c.RaftAdvertise, "raft-advertise", c.RaftAdvertise, "raft address other index nodes use, if not --raft-addr")
	fs.StringSliceVar(&c.Peers, "peers", c.Peers, "initial index group of the cell: id=host:port,... (the same on each member)")
	fs.Uint64Var(&c.SnapshotThreshold, "raft-snapshot-threshold", c.SnapshotThreshold, "log entries between raft snapshots (0: default)")
	fs.Var(&c.Pending, "rebuild-pending", "what a read of a key range still loading gets while the index rebuilds: pebble (answered from Pebble) or slowdown (503 SlowDown)")
	fs.IntVar(&c.RebuildWorkers, "rebuild-workers", c.RebuildWorkers, "key ranges loaded at once by the rebuild (0: one per core)")
	fs.Uint64Var(&c.TrailingLogs, "raft-trailing-logs", c.TrailingLogs, "log entries kept after a snapshot (0: default)")
	fs.BoolVar(&c.ReadLease, "read-lease", c.ReadLease, "the leader answers reads under a read lease, instead of confirming its leadership with a majority for every read")
	fs.StringVar(&c.FaultsFile, "faults-file", c.FaultsFile, "file in which the drill tooling arms faults (a cluster started with faults on)")
}

// EnsureDefaults sets the role and fills the fields left at their zero value.
func (c *Config) EnsureDefaults() {
	c.Role = cell.RoleIndex
	c.Options.EnsureDefaults()
	if c.RaftAddr == "" && len(c.Peers) > 0 {
		c.RaftAddr = "127.0.0.1:0"
	}
}

// replicated reports whether the node is a member of its cell's replication group
// rather than standalone.
func (c *Config) replicated() bool { return c.RaftAddr != "" || len(c.Peers) > 0 }

// Validate reports what makes the configuration unusable.
func (c *Config) Validate() error {
	if err := c.Options.Validate(); err != nil {
		return err
	}
	if c.DataDir == "" {
		return errors.New("index: a data directory is required")
	}
	if _, err := ParsePeers(c.Peers); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if c.RaftAddr != "" {
		if err := daemon.CheckAddr(c.RaftAddr); err != nil {
			return fmt.Errorf("index: raft address: %w", err)
		}
	}
	if c.RaftAdvertise != "" {
		if err := daemon.CheckAddr(c.RaftAdvertise); err != nil {
			return fmt.Errorf("index: raft advertise address: %w", err)
		}
	}
	if c.Pending != PendingPebble && c.Pending != PendingSlowDown {
		return fmt.Errorf("index: unknown rebuild pending mode %s", c.Pending)
	}
	if c.RebuildWorkers < 0 {
		return fmt.Errorf("index: rebuild workers %d is negative", c.RebuildWorkers)
	}
	return nil
}
