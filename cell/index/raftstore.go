package index

import "github.com/cellarsim/cellar/internal/raftpebble"

// The raft log and raft's stable state live in the node's Pebble database beside the
// records (raftpebble.Store), under keys that start with these bytes; the records'
// keys start with any other.
const (
	prefixLog    = raftpebble.PrefixLog
	prefixStable = raftpebble.PrefixStable
)
