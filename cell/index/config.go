package index

import (
	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/internal/daemon"
)

// Config configures one index node.
type Config struct {
	daemon.Options
	// DataDir holds the node's Pebble database (records and raft log) and raft's
	// snapshots.
	DataDir string

	// RaftAddr is where this node's raft transport listens. With neither RaftAddr nor
	// Peers the node runs standalone: no replication, writes synced to Pebble.
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

	// Pending is what a read of a key range still loading gets during the rebuild
	// of a standalone node: answered from Pebble (the default) or refused with
	// SlowDown. RebuildWorkers is the number of ranges loaded at once (0: one per core).
	Pending        Pending
	RebuildWorkers int
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
}
