package index

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/pki"
)

// newRaftTransport is the group's raft transport: raft's own TCP transport, or, when
// the node has a certificate, raft's network transport over a TLS stream layer where
// both ends show a certificate of the cluster's CA and only index nodes of this cell
// are let in.
func newRaftTransport(cfg groupConfig, adv net.Addr, logOut io.Writer) (*raft.NetworkTransport, error) {
	if cfg.TLS == nil {
		return raft.NewTCPTransport(cfg.RaftAddr, adv, 3, 2*time.Second, logOut)
	}
	peers := func(p pki.Identity) error {
		if p.Role != string(cell.RoleIndex) || p.Cell != cfg.Cell {
			return fmt.Errorf("raft of %s: a %s certificate of %q (%s) may not connect", cfg.Cell, p.Role, p.Cell, p.Node)
		}
		return nil
	}
	server := cfg.TLS.ServerTLS(peers)
	client := cfg.TLS.ClientTLS()
	verifyServer := client.VerifyConnection
	client.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := verifyServer(cs); err != nil {
			return err
		}
		id, err := pki.IdentityOf(cs.PeerCertificates[0])
		if err != nil {
			return err
		}
		return peers(id)
	}
	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, err
	}
	if adv == nil {
		adv = ln.Addr()
	}
	if a, ok := adv.(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		ln.Close()
		return nil, errors.New("raft: the advertised address is not a usable address (give --raft-advertise)")
	}
	stream := &tlsStream{Listener: tls.NewListener(ln, server), adv: adv, client: client}
	return raft.NewNetworkTransport(stream, 3, 2*time.Second, logOut), nil
}

// tlsStream is raft's StreamLayer over TLS.
type tlsStream struct {
	net.Listener
	adv    net.Addr
	client *tls.Config
}

// Dial connects to a peer and completes the TLS handshake within timeout, so that a
// peer that does not speak TLS or shows a wrong certificate fails the dial.
func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: s.client}
	return d.Dial("tcp", string(addr))
}

// Addr is the address peers reach this node's raft on.
func (s *tlsStream) Addr() net.Addr { return s.adv }
