package daemon

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"

	"github.com/cellarsim/cellar/internal/pki"
	"github.com/cellarsim/cellar/internal/testwait"
)

// names is a name service for the tests below, as Docker's is for containers: a name
// resolves to where its node runs now. A channel resolves its name once, when it is
// made, and never again (a name service's answer kept for the channel's life: the
// worst case for a connection cache).
var names = &nameService{addrs: map[string]string{}}

type nameService struct {
	mu    sync.Mutex
	addrs map[string]string
}

func (n *nameService) set(name, addr string) {
	n.mu.Lock()
	n.addrs[name] = addr
	n.mu.Unlock()
}

func (n *nameService) Scheme() string { return "connstest" }

func (n *nameService) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	n.mu.Lock()
	addr := n.addrs[target.Endpoint()]
	n.mu.Unlock()
	if err := cc.UpdateState(resolver.State{Addresses: []resolver.Address{{Addr: addr}}}); err != nil {
		return nil, err
	}
	return fixedResolver{}, nil
}

type fixedResolver struct{}

func (fixedResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (fixedResolver) Close()                                {}

func init() { resolver.Register(names) }

// creds issues, in a new cluster's PKI, the credentials of each node named.
func creds(t *testing.T, cluster string, ids ...pki.Identity) map[string]*pki.Creds {
	t.Helper()
	dir := filepath.Join(t.TempDir(), cluster)
	var members []pki.Member
	for _, id := range ids {
		members = append(members, pki.Member{Identity: id, Hosts: []string{"127.0.0.1"}})
	}
	if _, err := pki.Init(dir, pki.InitOptions{Cluster: cluster, Members: members}); err != nil {
		t.Fatal(err)
	}
	out := map[string]*pki.Creds{}
	for _, id := range ids {
		c, err := pki.Load(pki.Dir(dir).Files(id.Node))
		if err != nil {
			t.Fatal(err)
		}
		out[id.Node] = c
	}
	return out
}

// serve runs a gRPC server with the health service on ln, with c's certificate,
// letting in the roles given; it stops when the test ends or stop is called.
func serve(t *testing.T, ln net.Listener, c *pki.Creds, roles ...string) (stop func()) {
	t.Helper()
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(c.ServerTLS(pki.AllowRoles(roles...)))))
	healthpb.RegisterHealthServer(s, health.NewServer())
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return s.Stop
}

func listenAt(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// A node that restarted elsewhere, while another server took its old address: the
// pool drops the connection that keeps dialling the old address and reaches the node
// at the new one, whether the handshake there fails on the client's side (a
// certificate of another cluster, or of another node than the one whose name was
// dialled) or the server's (it refuses the caller's role). No call reaches the server
// at the old address.
func TestConnsRedialsANodeWhoseAddressWentToAnotherServer(t *testing.T) {
	gw := pki.Identity{Role: "gateway", Node: "gateway-0"}
	st0 := pki.Identity{Role: "storage", Cell: "cell-0", Node: "cell-0-storage-0"}
	st1 := pki.Identity{Role: "storage", Cell: "cell-0", Node: "cell-0-storage-1"}
	idx0 := pki.Identity{Role: "index", Cell: "cell-0", Node: "cell-0-index-0"}
	ours := creds(t, "ours", gw, st0, st1, idx0)
	theirs := creds(t, "theirs", st0)

	cases := []struct {
		name     string
		squatter func(t *testing.T, ln net.Listener)
	}{
		{"certificate of another cluster", func(t *testing.T, ln net.Listener) {
			serve(t, ln, theirs[st0.Node], "gateway")
		}},
		{"another node of the cluster", func(t *testing.T, ln net.Listener) {
			serve(t, ln, ours[st1.Node], "gateway") // refused: the name dialled is storage-0's
		}},
		{"server that refuses the caller", func(t *testing.T, ln net.Listener) {
			serve(t, ln, ours[idx0.Node], "operator") // a node of ours, that lets no gateway in
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A name as nodes advertise them in Docker: the node's id, then a domain.
			host := st0.Node + ".net" + string(rune('a'+i))
			name := "connstest:///" + host
			first := listenAt(t, "127.0.0.1:0")
			oldAddr := first.Addr().String()
			names.set(host, oldAddr)
			stopFirst := serve(t, first, ours[st0.Node], "gateway")

			conns := NewTLSConns(ours[gw.Node].ClientTLS())
			conns.RedialAfter = 200 * time.Millisecond
			t.Cleanup(conns.Close)
			dial := func() (*grpc.ClientConn, error) { return conns.Get(name) }
			check := func() (string, error) {
				cc, err := dial()
				if err != nil {
					return "", err
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				var p peer.Peer
				_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p))
				if err != nil {
					return "", err
				}
				return p.Addr.String(), nil
			}
			if at, err := check(); err != nil || at != oldAddr {
				t.Fatalf("first call: at %q, %v; want a call to %s", at, err, oldAddr)
			}
			before, _ := dial()

			// The node stops; another server takes its address; the node comes back
			// at a new address, which its name now resolves to.
			stopFirst()
			tc.squatter(t, listenAt(t, oldAddr))
			moved := listenAt(t, "127.0.0.1:0")
			names.set(host, moved.Addr().String())
			serve(t, moved, ours[st0.Node], "gateway")

			testwait.Succeeds(t, 20*time.Second, "a call by name reaches the node at its new address", func() error {
				at, err := check()
				if err != nil {
					return err
				}
				if at != moved.Addr().String() {
					t.Fatalf("a call by name reached %s; the node is at %s", at, moved.Addr())
				}
				return nil
			})
			if after, _ := dial(); after == before {
				t.Error("the pool still hands out the connection to the old address")
			}
		})
	}
}

// A node that is merely down keeps its connection while it restarts: the pool dials
// anew only after RedialAfter, and the same connection reaches the node back on its
// address.
func TestConnsKeepsAConnectionThatRecovers(t *testing.T) {
	gw := pki.Identity{Role: "gateway", Node: "gateway-0"}
	st0 := pki.Identity{Role: "storage", Cell: "cell-0", Node: "cell-0-storage-0"}
	ours := creds(t, "ours", gw, st0)
	ln := listenAt(t, "127.0.0.1:0")
	addr := ln.Addr().String()
	stop := serve(t, ln, ours[st0.Node], "gateway")
	conns := NewTLSConns(ours[gw.Node].ClientTLS())
	conns.RedialAfter = time.Minute // longer than the test: the connection must recover by itself
	t.Cleanup(conns.Close)
	call := func() error {
		cc, err := conns.Get(addr)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := call(); err != nil {
		t.Fatal(err)
	}
	before, _ := conns.Get(addr)
	stop()
	if err := call(); err == nil {
		t.Fatal("a call to a stopped server succeeded")
	}
	serve(t, listenAt(t, addr), ours[st0.Node], "gateway")
	testwait.Succeeds(t, 20*time.Second, "a call reaches the restarted node", call)
	if after, _ := conns.Get(addr); after != before {
		t.Error("the pool dialled anew a connection that was failing for less than RedialAfter")
	}
}
