// Package node describes one cellar node once, for every way a node is run.
//
// A Spec says who a node is (id, role, cell), where it listens and whom it joins, and
// what it keeps (data directory, place in its cell's index group). Args renders a Spec
// as the daemon's command line, the one description the local supervisor
// (localcluster), docker-compose and the Kubernetes manifests (deploy) start nodes
// with. Run runs a Spec in this process, as 'cellctl daemon' and the in-process test
// cluster (clustertest) do; Command gives a role's daemon command line parser.
//
//	spec := node.Spec{ID: "cell-0-storage-0", Role: cell.RoleStorage, Cell: "cell-0", DataDir: dir}
//	args := append([]string{"daemon", string(spec.Role)}, spec.Args()...) // a child process
//	err := node.Run(ctx, spec, node.RunOptions{Logger: log})            // or in this process
//
// This package links every role. The daemon binaries (cmd/indexd, ...) do not import
// it: each runs its own role's Command with daemon.Main and links nothing else.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/index"
	"github.com/cellarsim/cellar/cell/mapgroup"
	"github.com/cellarsim/cellar/cell/placement"
	"github.com/cellarsim/cellar/cell/storage"
	"github.com/cellarsim/cellar/frontrouter"
	"github.com/cellarsim/cellar/gateway"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/pki"
)

// Spec describes one node. Every field but Role is optional: what is left empty is not
// rendered, and the daemon uses its default. Each field is one flag of the daemon.
type Spec struct {
	ID   string    // --id
	Role cell.Role // the daemon to run; not a flag
	Cell string    // --cell; empty for gateways

	GRPCAddr   string // --grpc-addr
	AdminAddr  string // --admin-addr
	GossipAddr string // --gossip-addr
	// AdvertiseHost is the host other nodes reach this one by, when it listens on all
	// interfaces (--advertise-host).
	AdvertiseHost string
	Join          []string // --join: gossip addresses of members to join
	FastGossip    bool     // --fast-gossip: short gossip timers, for one machine
	// LogFormat is the format of a child process's log (--log-format); Run logs to
	// RunOptions.Logger instead.
	LogFormat string
	// StopTimeout bounds the graceful stop (--stop-timeout).
	StopTimeout time.Duration

	// The node's certificate, its key and the cluster's CA certificate (--tls-cert,
	// --tls-key, --tls-ca; see internal/pki): given, gRPC and raft are mutual TLS. The
	// file with the gossip's encryption key (--gossip-key).
	TLSCert, TLSKey, TLSCA string
	GossipKey              string

	// DataDir holds an index or storage node's data (--data-dir).
	DataDir string

	// An index node in its cell's replication group: where its raft transport listens
	// (--raft-addr), the address its peers use if another (--raft-advertise), the
	// initial group as id=host:port (--peers), and raft's log compaction
	// (--raft-snapshot-threshold, --raft-trailing-logs).
	RaftAddr          string
	RaftAdvertise     string
	Peers             []string
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// ReadLease turns the index leader's read lease on (--read-lease).
	ReadLease bool

	// A gateway: where its S3 API listens (--s3-addr; default the topology's) and the
	// topology file it reads (--topology; default the embedded topology).
	S3Addr       string
	TopologyFile string
	// A gateway of a cluster with a map group: the directory it keeps the last cell
	// map in (--state-dir).
	StateDir string

	// A placement node: the pacing of its cell's repair loop (--repair-interval,
	// --repair-rate, --repair-ops, --repair-workers, --scrub-rate: the topology's
	// repair section) and how long an orphan blob is kept before garbage collection
	// deletes it (--gc-grace).
	Repair  cell.RepairPacing
	GCGrace time.Duration

	// A front router: the gateways' S3 addresses, in the fleet's order (--backends);
	// it also takes --s3-addr and --topology. A gateway or index node of a cluster
	// whose faults may be armed: the file the drill tooling arms them in (--faults-file).
	Backends   []string
	FaultsFile string
}

// Args renders the spec as the daemon's flags, in --flag=value form, one string each;
// the role is not among them (it is the binary, or the argument of 'cellctl daemon').
// The order is fixed: identity, listeners and gossip, then the role's own flags.
func (s Spec) Args() []string {
	var a []string
	flag := func(name, value string) {
		if value != "" {
			a = append(a, "--"+name+"="+value)
		}
	}
	flag("id", s.ID)
	flag("cell", s.Cell)
	flag("grpc-addr", s.GRPCAddr)
	flag("admin-addr", s.AdminAddr)
	flag("gossip-addr", s.GossipAddr)
	flag("advertise-host", s.AdvertiseHost)
	flag("join", strings.Join(s.Join, ","))
	if s.FastGossip {
		a = append(a, "--fast-gossip")
	}
	flag("log-format", s.LogFormat)
	if s.StopTimeout != 0 {
		flag("stop-timeout", s.StopTimeout.String())
	}
	flag("tls-cert", s.TLSCert)
	flag("tls-key", s.TLSKey)
	flag("tls-ca", s.TLSCA)
	flag("gossip-key", s.GossipKey)
	flag("data-dir", s.DataDir)
	flag("raft-addr", s.RaftAddr)
	flag("raft-advertise", s.RaftAdvertise)
	flag("peers", strings.Join(s.Peers, ","))
	if s.SnapshotThreshold != 0 {
		flag("raft-snapshot-threshold", strconv.FormatUint(s.SnapshotThreshold, 10))
	}
	if s.TrailingLogs != 0 {
		flag("raft-trailing-logs", strconv.FormatUint(s.TrailingLogs, 10))
	}
	if s.ReadLease {
		a = append(a, "--read-lease")
	}
	flag("s3-addr", s.S3Addr)
	flag("topology", s.TopologyFile)
	flag("backends", strings.Join(s.Backends, ","))
	flag("faults-file", s.FaultsFile)
	flag("state-dir", s.StateDir)
	if p := s.Repair; p != (cell.RepairPacing{}) {
		if p.Interval != 0 {
			flag("repair-interval", p.Interval.String())
		}
		if p.Rate != 0 {
			flag("repair-rate", strconv.FormatInt(int64(p.Rate), 10))
		}
		if p.Ops != 0 {
			flag("repair-ops", strconv.FormatInt(p.Ops, 10))
		}
		if p.Window != 0 {
			flag("repair-workers", strconv.Itoa(p.Window))
		}
		if p.ScrubRate != 0 {
			flag("scrub-rate", strconv.FormatInt(int64(p.ScrubRate), 10))
		}
	}
	if s.GCGrace != 0 {
		flag("gc-grace", s.GCGrace.String())
	}
	return a
}

// Validate reports an unknown role, or a field set that the role does not take (its
// daemon would refuse the flag).
func (s Spec) Validate() error {
	if _, ok := roles[s.Role]; !ok {
		return fmt.Errorf("node %s: unknown role %q (want index, placement, storage, gateway, router or map)", s.ID, s.Role)
	}
	idx, sto, gw, mp := cell.RoleIndex, cell.RoleStorage, cell.RoleGateway, cell.RoleMap
	for _, f := range []struct {
		flag  string
		set   bool
		roles []cell.Role
	}{
		{"data-dir", s.DataDir != "", []cell.Role{idx, sto, mp}},
		{"raft-addr", s.RaftAddr != "", []cell.Role{idx, mp}},
		{"raft-advertise", s.RaftAdvertise != "", []cell.Role{idx, mp}},
		{"peers", len(s.Peers) > 0, []cell.Role{idx, mp}},
		{"state-dir", s.StateDir != "", []cell.Role{gw}},
		{"raft-snapshot-threshold", s.SnapshotThreshold != 0, []cell.Role{idx}},
		{"raft-trailing-logs", s.TrailingLogs != 0, []cell.Role{idx}},
		{"read-lease", s.ReadLease, []cell.Role{idx}},
		{"s3-addr", s.S3Addr != "", []cell.Role{gw, cell.RoleRouter}},
		{"topology", s.TopologyFile != "", []cell.Role{gw, cell.RoleRouter}},
		{"backends", len(s.Backends) > 0, []cell.Role{cell.RoleRouter}},
		{"faults-file", s.FaultsFile != "", []cell.Role{gw, idx}},
		{"repair-interval, --repair-rate, --repair-ops, --repair-workers or --scrub-rate", s.Repair != (cell.RepairPacing{}), []cell.Role{cell.RolePlacement}},
		{"gc-grace", s.GCGrace != 0, []cell.Role{cell.RolePlacement}},
	} {
		if f.set && !slices.Contains(f.roles, s.Role) {
			return fmt.Errorf("node %s: a %s node takes no --%s", s.ID, s.Role, f.flag)
		}
	}
	return nil
}

// RunOptions is what a node run in this process takes besides its Spec.
type RunOptions struct {
	// Logger is where the node logs (default: slog.Default()).
	Logger *slog.Logger
	// Topology, if not nil, is the topology a gateway routes with, instead of the one
	// in Spec.TopologyFile.
	Topology *cell.Topology
	// Crash, if not nil, is how a gateway or index node whose armed fault fires ends
	// (see gateway.Config.Crash, index.Config.Crash); nil ends the process.
	Crash func(code int)
}

// Run runs the node of spec in this process until ctx ends, and returns what its role's
// Run returns: nil after a clean stop.
func Run(ctx context.Context, spec Spec, opts RunOptions) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	o := daemon.Options{
		NodeID: spec.ID, Role: spec.Role, Cell: spec.Cell,
		GRPCAddr: spec.GRPCAddr, AdminAddr: spec.AdminAddr, GossipAddr: spec.GossipAddr,
		AdvertiseHost: spec.AdvertiseHost, Join: spec.Join, FastGossip: spec.FastGossip,
		Logger: opts.Logger, StopTimeout: spec.StopTimeout,
		TLS:           pki.Files{Cert: spec.TLSCert, Key: spec.TLSKey, CA: spec.TLSCA},
		GossipKeyFile: spec.GossipKey,
	}
	return roles[spec.Role].run(ctx, spec, o, opts)
}

// Command returns the daemon command of role: its flags and what runs it, as its own
// binary has them. It is what 'cellctl daemon <role>' runs.
func Command(role cell.Role) (daemon.Command, bool) {
	r, ok := roles[role]
	if !ok {
		return daemon.Command{}, false
	}
	return r.command(), true
}

// roles is the one table of the roles a node can have: each role's command line, and
// how a Spec becomes its Config.
var roles = map[cell.Role]struct {
	command func() daemon.Command
	run     func(ctx context.Context, s Spec, o daemon.Options, opts RunOptions) error
}{
	cell.RoleIndex:     {index.Command, runIndex},
	cell.RolePlacement: {placement.Command, runPlacement},
	cell.RoleStorage:   {storage.Command, runStorage},
	cell.RoleGateway:   {gateway.Command, runGateway},
	cell.RoleRouter:    {frontrouter.Command, runRouter},
	cell.RoleMap:       {mapgroup.Command, runMap},
}

func runMap(ctx context.Context, s Spec, o daemon.Options, _ RunOptions) error {
	return mapgroup.Run(ctx, mapgroup.Config{Options: o, DataDir: s.DataDir,
		RaftAddr: s.RaftAddr, RaftAdvertise: s.RaftAdvertise, Peers: s.Peers})
}

func runRouter(ctx context.Context, s Spec, o daemon.Options, opts RunOptions) error {
	cfg := frontrouter.Config{Options: o, S3Addr: s.S3Addr, Backends: s.Backends}
	t, err := specTopology(s, opts)
	if err != nil {
		return err
	}
	cfg.Topology = t
	return frontrouter.Run(ctx, cfg)
}

// specTopology is the topology a gateway or router runs with: the one given in
// process, else the spec's file, else none (the daemon's defaults).
func specTopology(s Spec, opts RunOptions) (cell.Topology, error) {
	switch {
	case opts.Topology != nil:
		return *opts.Topology, nil
	case s.TopologyFile != "":
		return cell.LoadTopology(s.TopologyFile)
	}
	return cell.Topology{}, nil
}

func runIndex(ctx context.Context, s Spec, o daemon.Options, opts RunOptions) error {
	return index.Run(ctx, index.Config{
		Options: o, DataDir: s.DataDir,
		RaftAddr: s.RaftAddr, RaftAdvertise: s.RaftAdvertise, Peers: s.Peers,
		SnapshotThreshold: s.SnapshotThreshold, TrailingLogs: s.TrailingLogs, ReadLease: s.ReadLease,
		FaultsFile: s.FaultsFile, Crash: opts.Crash,
	})
}

func runPlacement(ctx context.Context, s Spec, o daemon.Options, _ RunOptions) error {
	p := s.Repair
	return placement.Run(ctx, placement.Config{Options: o, Repair: placement.RepairConfig{
		Interval: p.Interval, Rate: int64(p.Rate), Ops: p.Ops, Workers: p.Window, ScrubRate: int64(p.ScrubRate), GCGrace: s.GCGrace,
	}})
}

func runStorage(ctx context.Context, s Spec, o daemon.Options, _ RunOptions) error {
	return storage.Run(ctx, storage.Config{Options: o, DataDir: s.DataDir})
}

func runGateway(ctx context.Context, s Spec, o daemon.Options, opts RunOptions) error {
	cfg := gateway.Config{Options: o, S3Addr: s.S3Addr, FaultsFile: s.FaultsFile, StateDir: s.StateDir, Crash: opts.Crash}
	t, err := specTopology(s, opts)
	if err != nil {
		return err
	}
	cfg.Topology = t
	return gateway.Run(ctx, cfg)
}

// WithPKI gives the spec the certificate, key, CA and gossip key files of its node in
// the PKI directory dir (as pki.Init writes it): the node runs with mutual TLS and
// encrypted gossip.
func (s Spec) WithPKI(dir string) Spec {
	f := pki.Dir(dir).Files(s.ID)
	s.TLSCert, s.TLSKey, s.TLSCA = f.Cert, f.Key, f.CA
	s.GossipKey = pki.Dir(dir).GossipKey()
	return s
}

// MapPeers is the initial map group of topology t as Spec.Peers takes it, the same
// for every member: id=host:port for each member, in order, with raftAddr giving a
// member's raft address as its peers reach it.
func MapPeers(t cell.Topology, raftAddr func(id string) string) []string {
	var peers []string
	for i := range t.MapNodes {
		id := cell.NodeID("", cell.RoleMap, i)
		peers = append(peers, id+"="+raftAddr(id))
	}
	return peers
}

// IndexPeers is the initial index group of a cell of topology t as Spec.Peers takes it,
// the same for every member: id=host:port for each index node of the cell, in order,
// with raftAddr giving a node's raft address as its peers reach it.
func IndexPeers(t cell.Topology, cellID string, raftAddr func(id string) string) []string {
	var peers []string
	for i := range t.IndexNodes {
		id := cell.NodeID(cellID, cell.RoleIndex, i)
		peers = append(peers, id+"="+raftAddr(id))
	}
	return peers
}
