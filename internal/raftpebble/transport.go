package raftpebble

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"log/slog"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/cellarsim/cellar/internal/pki"
)

// TransportConfig says where a raft transport listens and whom it lets in.
type TransportConfig struct {
	// Bind is the address the transport listens on; Advertise, if not nil, the one
	// peers reach it by.
	Bind      string
	Advertise net.Addr
	// TLS, when set, puts raft on mutual TLS: both ends show a certificate of the
	// cluster's CA, and Peer (required with TLS) accepts or refuses the other end's
	// identity, on both sides of a connection.
	TLS  *pki.Creds
	Peer func(pki.Identity) error
}

// NewTransport is a group's raft transport: raft's own TCP transport, or, with TLS,
// raft's network transport over a TLS stream layer.
func NewTransport(cfg TransportConfig, logOut io.Writer) (*raft.NetworkTransport, error) {
	if cfg.TLS == nil {
		return raft.NewTCPTransport(cfg.Bind, cfg.Advertise, 3, 2*time.Second, logOut)
	}
	if cfg.Peer == nil {
		return nil, errors.New("raft: a TLS transport needs a peer check")
	}
	server := cfg.TLS.ServerTLS(cfg.Peer)
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
		return cfg.Peer(id)
	}
	ln, err := net.Listen("tcp", cfg.Bind)
	if err != nil {
		return nil, err
	}
	adv := cfg.Advertise
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

// NewConfig is raft's configuration for a member of a cellar group, more patient than
// raft's defaults, because on a busy 2-core machine a healthy process can be off the
// CPU for a second or more, and every leader change is an outage nobody caused:
//   - A follower calls an election only after missing heartbeats for 2-4 s (raft
//     draws the timer between HeartbeatTimeout and twice that). The cost is failover
//     after a leader really dies: about 2-4 s plus a vote.
//   - The leader steps down only if no majority answered it for the same 2 s. With a
//     1 s lease, most of the leader changes measured under load were leaders stepping
//     down for having been descheduled. A longer lease risks no safety: writes still
//     need a majority to commit and reads still ask one.
//   - Pre-vote (raft's default) and followers that refuse to vote while they still
//     hear a leader keep a slow follower from deposing a healthy leader.
func NewConfig(nodeID string, logOut io.Writer) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(nodeID)
	rc.HeartbeatTimeout = 2 * time.Second
	rc.ElectionTimeout = 2 * time.Second
	rc.LeaderLeaseTimeout = 2 * time.Second
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Output: logOut, Level: hclog.Info})
	return rc
}

// LogWriter turns raft's log lines into slog records of log, tagged with component.
// A peer that is down makes raft log an error every few milliseconds; in cellar that
// is a drill, not a fault of this node, so raft's errors and warnings are info here.
type LogWriter struct {
	Log       *slog.Logger
	Component string
}

func (w *LogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	switch {
	case strings.Contains(line, "[ERROR]"), strings.Contains(line, "[WARN]"):
		w.Log.Info(line, "component", w.Component)
	default:
		w.Log.Debug(line, "component", w.Component)
	}
	return len(p), nil
}
