package daemon

import (
	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/cell"
)

// AddFlags registers the flags every daemon takes, filling o. The role is set by the
// caller, not by a flag.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.NodeID, "id", o.NodeID, "node id, unique in the cluster (e.g. cell-0-index-0)")
	fs.StringVar(&o.Cell, "cell", o.Cell, "cell this node belongs to (e.g. cell-0); empty for gateways")
	fs.StringVar(&o.GRPCAddr, "grpc-addr", orDefault(o.GRPCAddr, localAddr), "address for the gRPC server")
	fs.StringVar(&o.AdminAddr, "admin-addr", orDefault(o.AdminAddr, localAddr), "address for the admin HTTP server (/metrics, /healthz, /readyz, /status, /members)")
	fs.BoolVar(&o.StatusRemote, "status-remote", o.StatusRemote, "serve /status and /members (addresses, pids) to other hosts too; off, an admin address not on loopback serves them to this host only")
	fs.StringVar(&o.GossipAddr, "gossip-addr", orDefault(o.GossipAddr, localAddr), "address for memberlist gossip (TCP and UDP)")
	fs.StringVar(&o.AdvertiseHost, "advertise-host", o.AdvertiseHost, "host name or IP other nodes use to reach this node's gRPC, admin and gossip ports (needed when they listen on 0.0.0.0, as in containers)")
	fs.StringSliceVar(&o.Join, "join", o.Join, "gossip addresses of members to join (comma-separated)")
	fs.BoolVar(&o.FastGossip, "fast-gossip", o.FastGossip, "shorter gossip timers, for clusters on one machine")
	fs.StringVar(&o.TLS.Cert, "tls-cert", o.TLS.Cert, "this node's certificate (PEM), issued by the cluster's CA ('cellctl pki init'); with --tls-key and --tls-ca, gRPC and raft are mutual TLS")
	fs.StringVar(&o.TLS.Key, "tls-key", o.TLS.Key, "this node's private key (PEM)")
	fs.StringVar(&o.TLS.CA, "tls-ca", o.TLS.CA, "the cluster's CA certificate (PEM): the only issuer this node trusts")
	fs.StringVar(&o.GossipKeyFile, "gossip-key", o.GossipKeyFile, "file with the gossip encryption key (base64 of 32 bytes, 'cellctl pki init' makes it)")
	fs.DurationVar(&o.StopTimeout, "stop-timeout", o.StopTimeout, "how long a graceful stop may take before calls in flight are cut")
}

// Roles lists the daemons a node can run, for commands that take a role.
var Roles = []cell.Role{cell.RoleIndex, cell.RolePlacement, cell.RoleStorage, cell.RoleGateway}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
