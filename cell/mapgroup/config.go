// Package mapgroup is the map group: a small raft group of its own (3 nodes by
// default, 1 allowed) that holds the cell map (package cell/cellmap) and serves it to
// the gateways over the CellMap gRPC service. It is no part of any cell, and calls no
// cell: gateways read the map from it (Get waits for a newer version, so a change
// reaches them as soon as it is applied) and change it through its leader (Apply):
// a gateway registers the buckets it creates, the mover steps a bucket through a move.
//
// Each member keeps the group's log and raft state in Pebble (internal/raftpebble, as
// the index groups do) and the map in memory, snapshotted by raft. A group that has
// lost its majority still answers Get with the map each member holds, but refuses
// changes; gateways keep serving with the map they have (static stability).
//
//	err := mapgroup.Run(ctx, mapgroup.Config{Options: opts, DataDir: dir, Peers: peers})
package mapgroup

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/raftpebble"
)

// Config configures one member of the map group. Run fills its zero values with
// EnsureDefaults and refuses it if Validate finds fault with it.
type Config struct {
	daemon.Options
	// DataDir holds the member's Pebble database (raft log and state) and raft's
	// snapshots of the map. Required.
	DataDir string
	// RaftAddr is where this member's raft transport listens (default 127.0.0.1 on a
	// port the kernel picks); RaftAdvertise the address peers use, if another.
	RaftAddr      string
	RaftAdvertise string
	// Peers is the initial group, "id=host:port" each, the same list on every initial
	// member (itself included). Empty, the member is a group of one.
	Peers []string
}

// Command is the map group member as a program: mapd, and 'cellctl daemon map'.
func Command() daemon.Command {
	return daemon.NewCommand("Runs one member of the map group: the cell map (slot and bucket to cell), replicated by raft and served to the gateways.", Run)
}

// AddFlags registers the member's flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.Options.AddFlags(fs)
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the member's raft log and snapshots")
	fs.StringVar(&c.RaftAddr, "raft-addr", c.RaftAddr, "address of the map group's raft transport")
	fs.StringVar(&c.RaftAdvertise, "raft-advertise", c.RaftAdvertise, "raft address other members use, if not --raft-addr")
	fs.StringSliceVar(&c.Peers, "peers", c.Peers, "initial map group: id=host:port,... (the same on each member; empty: a group of one)")
}

// EnsureDefaults sets the role and fills the fields left at their zero value. A map
// group member belongs to no cell.
func (c *Config) EnsureDefaults() {
	c.Role = cell.RoleMap
	c.Cell = ""
	c.Options.EnsureDefaults()
	if c.RaftAddr == "" {
		c.RaftAddr = "127.0.0.1:0"
	}
}

// Validate reports what makes the configuration unusable.
func (c *Config) Validate() error {
	if err := c.Options.Validate(); err != nil {
		return err
	}
	if c.DataDir == "" {
		return errors.New("mapgroup: a data directory is required")
	}
	if _, err := raftpebble.ParsePeers(c.Peers); err != nil {
		return fmt.Errorf("mapgroup: %w", err)
	}
	if err := daemon.CheckAddr(c.RaftAddr); err != nil {
		return fmt.Errorf("mapgroup: raft address: %w", err)
	}
	if c.RaftAdvertise != "" {
		if err := daemon.CheckAddr(c.RaftAdvertise); err != nil {
			return fmt.Errorf("mapgroup: raft advertise address: %w", err)
		}
	}
	return nil
}
