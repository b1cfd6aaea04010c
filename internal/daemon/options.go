package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/pki"
)

// localAddr is where a daemon listens when given no address: a port the kernel picks,
// on the loopback interface.
const localAddr = "127.0.0.1:0"

// Options configure the parts every daemon has. Zero values are usable defaults, set
// by EnsureDefaults; Validate says what is wrong with the rest. New calls both.
type Options struct {
	// NodeID is unique in the cluster (default: the role's first node in its cell,
	// cell-0-index-0 or gateway-0).
	NodeID string
	Role   cell.Role
	Cell   string // "" for gateways and observers

	// Listeners passed in are used as they are; otherwise the daemon listens on the
	// address ("127.0.0.1:0" when empty).
	GRPCListener  net.Listener
	AdminListener net.Listener
	GRPCAddr      string
	AdminAddr     string
	// StatusRemote serves the admin server's /status and /members (addresses, pids)
	// to callers on other hosts too. Off, an admin listener that is not on loopback
	// (as in containers) serves them to callers on this host only; /metrics, /healthz
	// and /readyz answer everyone.
	StatusRemote bool

	// AdvertiseHost is the host name or IP other nodes use to reach this node, for
	// nodes that listen on all interfaces (0.0.0.0) as they do in containers. When set,
	// the gRPC and admin addresses the node gossips carry this host, and a gossip
	// address on all interfaces is narrowed to the IP the host resolves to (memberlist
	// advertises an IP). Empty: the listeners' own addresses are gossiped.
	AdvertiseHost string

	// GossipAddr is this node's memberlist address ("127.0.0.1:0" when empty); Join the
	// addresses of members to join.
	GossipAddr string
	Join       []string
	// FastGossip shortens gossip timers, for clusters on one machine.
	FastGossip bool

	// TLS is the node's certificate, its key and the cluster's CA certificate (see
	// internal/pki). Given, the node serves gRPC over mutual TLS only, checks each
	// caller's role per method (Callers), and calls other nodes with its certificate.
	// Empty, the internal plane is plain TCP and the node says so loudly at start.
	TLS pki.Files
	// GossipKeyFile holds the key that encrypts and authenticates the node's gossip
	// (pki.LoadGossipKey). Empty, the gossip is in the clear.
	GossipKeyFile string

	// Logger is where the daemon logs (default: slog.Default()).
	Logger *slog.Logger
	// StopTimeout bounds the graceful stop; after it, calls in flight are cut (default 5s).
	StopTimeout time.Duration
}

// EnsureDefaults fills the fields left at their zero value. Call it after Role and Cell
// are set: the default node id is made of them.
func (o *Options) EnsureDefaults() {
	if o.NodeID == "" && o.Role != "" {
		o.NodeID = cell.NodeID(o.Cell, o.Role, 0)
	}
	if o.GRPCListener == nil && o.GRPCAddr == "" {
		o.GRPCAddr = localAddr
	}
	if o.AdminListener == nil && o.AdminAddr == "" {
		o.AdminAddr = localAddr
	}
	if o.GossipAddr == "" {
		o.GossipAddr = localAddr
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 5 * time.Second
	}
}

// Validate reports what makes the options unusable: no role or node id, an address
// that is not host:port, a negative stop timeout.
func (o *Options) Validate() error {
	if o.Role == "" {
		return errors.New("daemon: a role is required")
	}
	if _, err := cell.ParseRole(string(o.Role)); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	if o.NodeID == "" {
		return errors.New("daemon: a node id is required")
	}
	addrs := []struct {
		name, addr string
		given      bool // a listener was passed in: the address is not used
	}{
		{"gRPC", o.GRPCAddr, o.GRPCListener != nil},
		{"admin", o.AdminAddr, o.AdminListener != nil},
		{"gossip", o.GossipAddr, false},
	}
	for _, a := range addrs {
		if err := CheckAddr(a.addr); err != nil && !a.given {
			return fmt.Errorf("daemon: %s address: %w", a.name, err)
		}
	}
	if err := o.TLS.Validate(); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	if o.StopTimeout < 0 {
		return fmt.Errorf("daemon: stop timeout %s is negative", o.StopTimeout)
	}
	return nil
}

// CheckAddr reports whether addr is an address to listen on, host:port (the host may
// be empty: all interfaces). Role configs check their own addresses with it.
func CheckAddr(addr string) error {
	if addr == "" {
		return errors.New("empty address, want host:port")
	}
	_, _, err := net.SplitHostPort(addr)
	return err
}
