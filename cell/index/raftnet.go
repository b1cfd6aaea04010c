package index

import (
	"fmt"
	"io"
	"net"

	"github.com/hashicorp/raft"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/pki"
	"github.com/cellarsim/cellar/internal/raftpebble"
)

// newRaftTransport is the group's raft transport (raftpebble.NewTransport): with a
// certificate, only index nodes of this cell are let in.
func newRaftTransport(cfg groupConfig, adv net.Addr, logOut io.Writer) (*raft.NetworkTransport, error) {
	return raftpebble.NewTransport(raftpebble.TransportConfig{
		Bind: cfg.RaftAddr, Advertise: adv, TLS: cfg.TLS,
		Peer: func(p pki.Identity) error {
			if p.Role != string(cell.RoleIndex) || p.Cell != cfg.Cell {
				return fmt.Errorf("raft of %s: a %s certificate of %q (%s) may not connect", cfg.Cell, p.Role, p.Cell, p.Node)
			}
			return nil
		},
	}, logOut)
}
