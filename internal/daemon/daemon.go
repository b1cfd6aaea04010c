// Package daemon is the bootstrap every cellar daemon shares: listeners, structured
// logging, a Prometheus registry of its own, a gRPC server with the health and node-admin
// services, an admin HTTP server (/metrics, /healthz, /readyz, /status, and /members: the
// node's gossip view; the last two list addresses and pids, and answer only callers on
// the node's own host unless the admin listener is on loopback or Options.StatusRemote
// says otherwise), gossip membership, and a graceful stop; and the main of every
// daemon binary.
//
// A daemon's Run builds a Daemon with New, registers its gRPC services on d.GRPC, starts
// serving with d.Start, does its own start-up work (an index rebuilds its map), says
// d.SetState(cell.StateReady), and returns d.Wait(ctx).
//
// A daemon binary's main is one line: os.Exit(daemon.Main("indexd", index.Command())).
// Main parses the flags the role's Command registers (with --help, --log-format and
// --log-level), sets up log/slog, runs the daemon until SIGINT or SIGTERM and turns the
// outcome into an exit code. This package imports no command-line framework and no
// other daemon's code, so that a daemon binary links only what it runs.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/internal/pki"
)

// maxMessage is the largest gRPC message a daemon sends or takes; object data moves
// in chunks well under it.
const maxMessage = 8 << 20

// Daemon is one running cellar process (or one daemon inside a test process).
type Daemon struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	// Metrics registers this daemon's metrics with its cell and tier labels attached.
	Metrics prometheus.Registerer
	GRPC    *grpc.Server
	Admin   *http.ServeMux
	Members *cell.Membership

	opts      Options
	grpcLn    net.Listener
	adminLn   net.Listener
	adminSrv  *http.Server
	health    *health.Server
	started   time.Time
	mu        sync.Mutex
	state     cell.State
	why       string // why the node is not ready, for /readyz; "" if it does not say
	readyAt   time.Time
	gauges    func() map[string]float64
	group     GroupAdmin
	serveErrs chan error
	quit      chan struct{} // closed by Stop; ends the rejoin loop
	creds     *pki.Creds    // nil: the internal plane is plain TCP
	gossipKey []byte        // nil: the gossip is in the clear
	quitOnce  sync.Once
}

// New prepares a daemon: listeners, registry, servers. Nothing is served until Start.
func New(opts Options) (*Daemon, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	logger := opts.Logger.With("node", opts.NodeID)
	d := &Daemon{
		Log: logger, Registry: prometheus.NewRegistry(), Admin: http.NewServeMux(),
		opts: opts, started: time.Now(), state: cell.StateStarting, serveErrs: make(chan error, 2), quit: make(chan struct{}),
		health: health.NewServer(),
	}
	labels := prometheus.Labels{"tier": string(opts.Role)}
	if opts.Cell != "" {
		labels["cell"] = opts.Cell
	}
	d.Metrics = prometheus.WrapRegistererWith(labels, d.Registry)
	d.Metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cellar_node_start_to_ready_seconds",
		Help: "How long this node took from process start to its first ready state (0 until then): its restart time.",
	}, func() float64 {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.readyAt.IsZero() {
			return 0
		}
		return d.readyAt.Sub(d.started).Seconds()
	}), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cellar_node_ready",
		Help: "1 while this node is ready, else 0.",
	}, func() float64 {
		if d.State() == cell.StateReady {
			return 1
		}
		return 0
	}))
	d.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	serverOpts, err := d.loadTrust()
	if err != nil {
		return nil, err
	}
	if d.grpcLn, err = listen(opts.GRPCListener, opts.GRPCAddr); err != nil {
		return nil, fmt.Errorf("grpc listener: %w", err)
	}
	if d.adminLn, err = listen(opts.AdminListener, opts.AdminAddr); err != nil {
		d.grpcLn.Close()
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	rpcMetrics := newRPCMetrics(d.Metrics, logger)
	unary := []grpc.UnaryServerInterceptor{rpcMetrics.unary}
	stream := []grpc.StreamServerInterceptor{rpcMetrics.stream}
	if d.creds != nil {
		az := authz{cell: opts.Cell}
		unary, stream = append(unary, az.unary), append(stream, az.stream)
	}
	d.GRPC = grpc.NewServer(append(serverOpts,
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.MaxRecvMsgSize(maxMessage), grpc.MaxSendMsgSize(maxMessage),
	)...)
	healthpb.RegisterHealthServer(d.GRPC, d.health)
	d.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	cellarv1.RegisterNodeAdminServer(d.GRPC, adminServer{d: d})

	d.Admin.Handle("/metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{Registry: d.Registry}))
	d.Admin.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	d.Admin.HandleFunc("/readyz", d.serveReadyz)
	d.Admin.HandleFunc("/status", d.hostOnly(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(d.Status())
	}))
	d.Admin.HandleFunc("/members", d.hostOnly(func(w http.ResponseWriter, r *http.Request) {
		var nodes []cell.Node
		if d.Members != nil {
			nodes = d.Members.Nodes()
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(nodes)
	}))
	d.registerPprof()
	d.adminSrv = &http.Server{Handler: d.Admin, ReadHeaderTimeout: 5 * time.Second}
	return d, nil
}

// loadTrust reads the node's certificate and gossip key, and returns the gRPC server
// options that make its server mutual TLS. Without them it says loudly that the
// internal plane is open.
func (d *Daemon) loadTrust() ([]grpc.ServerOption, error) {
	var opts []grpc.ServerOption
	if d.opts.TLS.Set() {
		creds, err := pki.Load(d.opts.TLS)
		if err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
		if creds.ID.Node != d.opts.NodeID || creds.ID.Role != string(d.opts.Role) || creds.ID.Cell != d.opts.Cell {
			return nil, fmt.Errorf("daemon: the certificate %s is %s's, not this node's (%s %s of %q)",
				d.opts.TLS.Cert, creds.ID, d.opts.Role, d.opts.NodeID, d.opts.Cell)
		}
		d.creds = creds
		opts = append(opts, grpc.Creds(credentials.NewTLS(creds.ServerTLS(nil))))
		d.Log.Info("internal plane: mutual TLS", "identity", creds.ID.String())
	} else {
		d.Log.Warn("INTERNAL TLS IS OFF: gRPC and raft between nodes are plain TCP with no authentication; " +
			"anyone who reaches this node's ports can read and change its data. Give --tls-cert, --tls-key and --tls-ca unless this is a workshop or a benchmark.")
	}
	if d.opts.GossipKeyFile != "" {
		key, err := pki.LoadGossipKey(d.opts.GossipKeyFile)
		if err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
		d.gossipKey = key
	} else {
		d.Log.Warn("GOSSIP ENCRYPTION IS OFF: anyone who reaches the gossip port can read the cluster's membership and pose as a node. Give --gossip-key unless this is a workshop.")
	}
	return opts, nil
}

// TLS is the node's credentials, or nil when its internal plane is plain TCP.
func (d *Daemon) TLS() *pki.Creds { return d.creds }

// Conns returns a pool of connections to other nodes that calls them as this node:
// with its certificate when it has one (see NewConns for the interceptors).
func (d *Daemon) Conns(unary ...grpc.UnaryClientInterceptor) *Conns {
	c := NewConns(unary...)
	if d.creds != nil {
		c.tls = d.creds.ClientTLS()
	}
	return c
}

func listen(ln net.Listener, addr string) (net.Listener, error) {
	if ln != nil {
		return ln, nil
	}
	return net.Listen("tcp", addr)
}

// GRPCAddr is the address other nodes reach the gRPC server on: the listener's
// address, with the advertised host if there is one.
func (d *Daemon) GRPCAddr() string { return d.advertise(d.grpcLn.Addr()) }

// AdminAddr is the address other nodes reach the admin HTTP server on: the listener's
// address, with the advertised host if there is one.
func (d *Daemon) AdminAddr() string { return d.advertise(d.adminLn.Addr()) }

func (d *Daemon) advertise(a net.Addr) string {
	if d.opts.AdvertiseHost == "" {
		return a.String()
	}
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return net.JoinHostPort(d.opts.AdvertiseHost, port)
}

// gossipBind is the address memberlist binds to. memberlist advertises the IP it is
// bound to, so a gossip address on all interfaces is narrowed to the IP the advertised
// host resolves to.
func (d *Daemon) gossipBind() (string, error) {
	addr := d.opts.GossipAddr
	if d.opts.AdvertiseHost == "" {
		return addr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("gossip address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return addr, nil
	}
	ip, err := resolveIP(d.opts.AdvertiseHost)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// resolveIP returns the IP of host, preferring IPv4, retrying for a few seconds: in a
// container the name may be registered with the network's DNS just after start.
func resolveIP(host string) (net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip, nil
	}
	var lastErr error
	for deadline := time.Now().Add(10 * time.Second); ; {
		ips, err := net.LookupIP(host)
		if err == nil && len(ips) > 0 {
			for _, ip := range ips {
				if ip.To4() != nil {
					return ip, nil
				}
			}
			return ips[0], nil
		}
		if err == nil {
			err = errors.New("no addresses")
		}
		lastErr = err
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("resolve advertised host %q: %w", host, lastErr)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// StartWithListener makes the daemon of opts and starts it, for a daemon that serves
// an API of its own beside gRPC (the gateway's and the router's S3): ln is that API's
// listener, or, when nil, a new one on addr. On an error nothing is left open; the
// error names what (e.g. "gateway").
func StartWithListener(opts Options, ln net.Listener, addr, what string) (*Daemon, net.Listener, error) {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, nil, fmt.Errorf("%s: S3 listener: %w", what, err)
		}
	}
	d, err := New(opts)
	if err == nil {
		err = d.Start()
	}
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	return d, ln, nil
}

// Start serves gRPC and admin HTTP and joins the gossip in state starting.
func (d *Daemon) Start() error {
	bind, err := d.gossipBind()
	if err != nil {
		d.grpcLn.Close()
		d.adminLn.Close()
		return err
	}
	members, err := cell.JoinCluster(cell.MembershipConfig{
		Self: cell.Node{
			ID: d.opts.NodeID, Role: d.opts.Role, Cell: d.opts.Cell, State: cell.StateStarting,
			PID: os.Getpid(), GRPCAddr: d.GRPCAddr(), AdminAddr: d.AdminAddr(), Started: d.started,
		},
		BindAddr:  bind,
		Join:      d.opts.Join,
		Fast:      d.opts.FastGossip,
		Logger:    d.Log,
		SecretKey: d.gossipKey,
	})
	if err != nil {
		d.grpcLn.Close()
		d.adminLn.Close()
		return err
	}
	d.Members = members
	if len(d.opts.Join) > 0 {
		go d.rejoin(d.opts.Join, rejoinEvery)
	}
	go func() { d.serveErrs <- d.GRPC.Serve(d.grpcLn) }()
	go func() {
		if err := d.adminSrv.Serve(d.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.serveErrs <- err
		}
	}()
	d.Log.Info("daemon started", "role", d.opts.Role, "cell", d.opts.Cell,
		"grpc", d.GRPCAddr(), "admin", d.AdminAddr(), "gossip", members.Addr(), "pid", os.Getpid())
	return nil
}

// SetState publishes the node's state through gossip, gRPC health and /readyz.
func (d *Daemon) SetState(s cell.State, progress float64) { d.setState(s, progress, "") }

// SetStateWhy is SetState for a node that is not ready and can say why: /readyz answers
// the state on its first line and why on the second.
func (d *Daemon) SetStateWhy(s cell.State, why string) { d.setState(s, 0, why) }

func (d *Daemon) setState(s cell.State, progress float64, why string) {
	d.mu.Lock()
	prev := d.state
	d.state, d.why = s, why
	if s == cell.StateReady && d.readyAt.IsZero() {
		d.readyAt = time.Now()
	}
	d.mu.Unlock()
	if s == cell.StateReady {
		d.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	} else {
		d.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	}
	if d.Members != nil {
		d.Members.SetState(s, progress)
	}
	if prev != s {
		args := []any{"from", prev, "to", s, "since_start", time.Since(d.started).Round(time.Millisecond)}
		if why != "" {
			args = append(args, "why", why)
		}
		d.Log.Info("state", args...)
	}
}

// State is the node's current state.
func (d *Daemon) State() cell.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
}

// SetGauges sets the function whose numbers /status and NodeAdmin.Status report.
func (d *Daemon) SetGauges(f func() map[string]float64) {
	d.mu.Lock()
	d.gauges = f
	d.mu.Unlock()
}

// Status is what /status and NodeAdmin.Status report.
func (d *Daemon) Status() *cellarv1.NodeStatus {
	d.mu.Lock()
	st := &cellarv1.NodeStatus{
		NodeId: d.opts.NodeID, Role: string(d.opts.Role), Cell: d.opts.Cell, State: string(d.state),
		Pid: int64(os.Getpid()), GrpcAddr: d.GRPCAddr(), AdminAddr: d.AdminAddr(),
		StartedUnixNano: d.started.UnixNano(),
	}
	if !d.readyAt.IsZero() {
		st.ReadyUnixNano = d.readyAt.UnixNano()
	}
	gauges := d.gauges
	d.mu.Unlock()
	if d.Members != nil {
		st.GossipAddr = d.Members.Addr()
	}
	if gauges != nil {
		st.Gauges = gauges()
	}
	return st
}

func (d *Daemon) serveReadyz(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	st, why := d.state, d.why
	d.mu.Unlock()
	if st == cell.StateRebuilding && d.Members != nil {
		// The body stays the bare state; the header carries how far the rebuild is.
		w.Header().Set("X-Cellar-Progress", strconv.FormatFloat(d.Members.Self().Progress, 'f', 3, 64))
	}
	if st != cell.StateReady {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, st)
	if why != "" {
		fmt.Fprintln(w, why)
	}
}

// Wait serves until ctx is done or a server fails, then stops gracefully: the node
// says it is draining, leaves the gossip, finishes calls in flight (up to StopTimeout)
// and closes its listeners. cleanup, if not nil, runs after the servers have stopped.
func (d *Daemon) Wait(ctx context.Context, cleanup func() error) error {
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-d.serveErrs:
		d.Log.Error("server failed", "err", serveErr)
	}
	return errors.Join(serveErr, d.Stop(cleanup))
}

// Stop stops the daemon gracefully; Wait calls it. It is safe to call on a daemon that
// was never started.
func (d *Daemon) Stop(cleanup func() error) error {
	d.quitOnce.Do(func() { close(d.quit) })
	d.SetState(cell.StateDraining, 0)
	if d.Members != nil {
		d.Members.Leave(time.Second)
	}
	done := make(chan struct{})
	go func() { d.GRPC.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.opts.StopTimeout):
		d.Log.Warn("graceful stop timed out; cutting calls in flight")
		d.GRPC.Stop()
	}
	err := d.ShutdownHTTP(d.adminSrv, "admin", d.opts.StopTimeout)
	d.grpcLn.Close()
	d.adminLn.Close()
	if cleanup != nil {
		err = errors.Join(err, cleanup())
	}
	d.Log.Info("daemon stopped")
	return err
}

// ShutdownHTTP stops srv gracefully, giving the requests in flight up to timeout to
// finish, then closes whatever connections are left. A stop that had to cut
// connections is still a stop: it is logged, not returned as an error. (A connection
// accepted a moment ago that has sent nothing yet counts as busy for net/http's
// Shutdown for its first five seconds, so a server stopped just after it was started
// would otherwise fail to stop.)
func (d *Daemon) ShutdownHTTP(srv *http.Server, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		d.Log.Warn("graceful stop of an HTTP server timed out; cutting its connections", "server", name, "after", timeout)
		return srv.Close()
	}
	return err
}

type adminServer struct {
	cellarv1.UnimplementedNodeAdminServer
	d *Daemon
}

// GroupAdmin serves the replication-group calls of NodeAdmin; index nodes set one.
type GroupAdmin interface {
	GroupStatus(context.Context, *cellarv1.GroupStatusRequest) (*cellarv1.GroupStatusResponse, error)
	AddVoter(context.Context, *cellarv1.AddVoterRequest) (*cellarv1.GroupStatusResponse, error)
	RemoveServer(context.Context, *cellarv1.RemoveServerRequest) (*cellarv1.GroupStatusResponse, error)
	TransferLeadership(context.Context, *cellarv1.TransferLeadershipRequest) (*cellarv1.GroupStatusResponse, error)
}

// SetGroupAdmin makes g serve the group calls of NodeAdmin.
func (d *Daemon) SetGroupAdmin(g GroupAdmin) {
	d.mu.Lock()
	d.group = g
	d.mu.Unlock()
}

func (a adminServer) groupAdmin() (GroupAdmin, error) {
	a.d.mu.Lock()
	defer a.d.mu.Unlock()
	if a.d.group == nil {
		return nil, errs.New(errs.NotImplemented, "%s is not a member of a replication group", a.d.opts.NodeID)
	}
	return a.d.group, nil
}

func (a adminServer) GroupStatus(ctx context.Context, r *cellarv1.GroupStatusRequest) (*cellarv1.GroupStatusResponse, error) {
	g, err := a.groupAdmin()
	if err != nil {
		return nil, err
	}
	return g.GroupStatus(ctx, r)
}

func (a adminServer) AddVoter(ctx context.Context, r *cellarv1.AddVoterRequest) (*cellarv1.GroupStatusResponse, error) {
	g, err := a.groupAdmin()
	if err != nil {
		return nil, err
	}
	return g.AddVoter(ctx, r)
}

func (a adminServer) RemoveServer(ctx context.Context, r *cellarv1.RemoveServerRequest) (*cellarv1.GroupStatusResponse, error) {
	g, err := a.groupAdmin()
	if err != nil {
		return nil, err
	}
	return g.RemoveServer(ctx, r)
}

func (a adminServer) TransferLeadership(ctx context.Context, r *cellarv1.TransferLeadershipRequest) (*cellarv1.GroupStatusResponse, error) {
	g, err := a.groupAdmin()
	if err != nil {
		return nil, err
	}
	return g.TransferLeadership(ctx, r)
}

func (a adminServer) Status(context.Context, *cellarv1.StatusRequest) (*cellarv1.NodeStatus, error) {
	return a.d.Status(), nil
}
