// Package cell says what a cell is: its id, the roles of the nodes in it, the states a
// node goes through, the topology of a cluster of cells, and the gossip membership every
// daemon joins to tell the others who it is and whether it is ready.
//
// A cell is an independent slice of the whole store: its own index, placement and
// storage nodes. Nothing in one cell calls another cell; only the router in the gateway
// spans cells.
package cell

import (
	"fmt"
	"time"
)

// Role is the job of a node.
type Role string

const (
	RoleIndex     Role = "index"
	RolePlacement Role = "placement"
	RoleStorage   Role = "storage"
	RoleGateway   Role = "gateway"
	// RoleObserver is a member that only watches the gossip (cellctl status).
	RoleObserver Role = "observer"
	// RoleRouter is the front router before a fleet of gateways: it picks a tenant's
	// gateways from the request's access key and forwards the request as it came.
	RoleRouter Role = "router"
	// RoleMap is a member of the map group: it holds the cell map (slot and bucket →
	// cell), replicated by raft among the group's nodes, and serves it to gateways.
	RoleMap Role = "map"
)

// Tiers are the roles that live inside a cell, in the order a cell starts them.
var Tiers = []Role{RoleIndex, RolePlacement, RoleStorage}

// ParseRole returns the Role named s.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleIndex, RolePlacement, RoleStorage, RoleGateway, RoleObserver, RoleRouter, RoleMap:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want index, placement, storage or gateway)", s)
}

// State is where a node is in its life. Only ready nodes get work.
type State string

const (
	StateStarting   State = "starting"
	StateRebuilding State = "rebuilding"
	StateReady      State = "ready"
	StateDraining   State = "draining"
	StateDrained    State = "drained"
	// StateReadOnly is a storage node that serves reads and deletes but cannot take new
	// writes: its disk is full or failing. Placement does not choose it; the router
	// still reads from it. Its /readyz says why.
	StateReadOnly State = "read-only"
)

// ID returns the id of the i-th cell: "cell-0", "cell-1", ...
func ID(i int) string { return fmt.Sprintf("cell-%d", i) }

// NodeID returns the id of the i-th node of a role in a cell: "cell-0-index-0".
// Gateways belong to no cell: "gateway-0".
func NodeID(cellID string, role Role, i int) string {
	if cellID == "" {
		return fmt.Sprintf("%s-%d", role, i)
	}
	return fmt.Sprintf("%s-%s-%d", cellID, role, i)
}

// Node is what a member of the cluster says about itself through gossip.
type Node struct {
	ID        string    `json:"id"`
	Role      Role      `json:"role"`
	Cell      string    `json:"cell,omitempty"`
	State     State     `json:"state"`
	PID       int       `json:"pid"`
	GRPCAddr  string    `json:"grpc_addr,omitempty"`
	AdminAddr string    `json:"admin_addr,omitempty"`
	Gossip    string    `json:"gossip_addr,omitempty"`
	Started   time.Time `json:"started"`
	// Progress is the rebuild progress in [0,1] while State is rebuilding.
	Progress float64 `json:"progress,omitempty"`
	// Leader is true on the index node that leads its cell's replication group.
	Leader bool `json:"leader,omitempty"`
	// AppliedIndex is the last replication log index an index node has applied.
	AppliedIndex uint64 `json:"applied_index,omitempty"`
	// GroupSize is, on an index node, how many members its cell's index group was
	// declared with (its initial peers). An observer that has never seen the other
	// members still knows from it how many make a majority.
	GroupSize int `json:"group_size,omitempty"`
	// MapVersion is, on a gateway, the version of the cell map it routes by; on a
	// member of the map group, the version it holds.
	MapVersion uint64 `json:"map_version,omitempty"`
}
