package raftpebble

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/raft"
)

// Peer is one initial member of a group: node id and raft address.
type Peer struct{ ID, Addr string }

// ParsePeers parses "id=host:port,id=host:port".
func ParsePeers(specs []string) ([]Peer, error) {
	var out []Peer
	for _, s := range specs {
		id, addr, ok := strings.Cut(strings.TrimSpace(s), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("peer %q: want id=host:port", s)
		}
		out = append(out, Peer{ID: id, Addr: addr})
	}
	return out, nil
}

// Bootstrap gives a new group its first configuration: peers, or this node alone
// (nodeID at localAddr) when there are none. Every initial member bootstraps with the
// same configuration; a node that is not among peers (one added later) does nothing
// and waits to be added by the leader. A group that has state already is left as it is.
func Bootstrap(r *raft.Raft, nodeID string, localAddr raft.ServerAddress, peers []Peer) error {
	if len(peers) == 0 {
		peers = []Peer{{ID: nodeID, Addr: string(localAddr)}}
	}
	var conf raft.Configuration
	self := false
	for _, p := range peers {
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
		self = self || p.ID == nodeID
	}
	if !self {
		return nil
	}
	if err := r.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap raft group: %w", err)
	}
	return nil
}
