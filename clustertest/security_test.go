package clustertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/pki"
	"github.com/cellarsim/cellar/internal/testwait"
)

// TestInternalPlaneRefusesStrangers reproduces, against a running cluster with TLS on
// (the default), what anyone who could reach a node's ports could do before the
// internal plane had mutual TLS, role checks and an encrypted gossip, and checks that
// each is now refused.
func TestInternalPlaneRefusesStrangers(t *testing.T) {
	topo := topology(2)
	topo.IndexNodes, topo.StorageNodes = 3, 1
	cl := Start(t, topo)
	if cl.PKIDir() == "" {
		t.Fatal("the in-process cluster runs without TLS by default")
	}
	idx0 := cl.Node(cell.NodeID("cell-0", cell.RoleIndex, 0))
	sto0 := cl.Node(cell.NodeID("cell-0", cell.RoleStorage, 0))

	// dial calls addr with a client TLS configuration (nil: plain TCP).
	dial := func(t *testing.T, addr string, cfg *tls.Config) *grpc.ClientConn {
		t.Helper()
		tc := insecure.NewCredentials()
		if cfg != nil {
			tc = credentials.NewTLS(cfg)
		}
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(tc))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	as := func(name string) *tls.Config { return cl.Creds(name).ClientTLS() }
	call := func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := cellarv1.NewIndexClient(cc).Lookup(ctx, &cellarv1.LookupRequest{Bucket: "b", Key: "k"})
		return err
	}
	ctx := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("plain gRPC is refused", func(t *testing.T) {
		err := call(ctx(t), dial(t, idx0.GRPCAddr, nil))
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("Index.Lookup over plain TCP: %v, want Unavailable (no connection)", err)
		}
	})
	t.Run("no client certificate is refused", func(t *testing.T) {
		cfg := as(pki.OperatorName)
		cfg.Certificates = nil
		err := call(ctx(t), dial(t, idx0.GRPCAddr, cfg))
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("Index.Lookup without a client certificate: %v, want Unavailable (handshake refused)", err)
		}
	})
	t.Run("a certificate of another cluster is refused", func(t *testing.T) {
		other := pki.Dir(t.TempDir())
		if _, err := pki.Init(string(other), pki.InitOptions{}); err != nil {
			t.Fatal(err)
		}
		creds, err := pki.Load(other.Files(pki.OperatorName))
		if err != nil {
			t.Fatal(err)
		}
		if err := call(ctx(t), dial(t, idx0.GRPCAddr, creds.ClientTLS())); status.Code(err) != codes.Unavailable {
			t.Fatalf("Index.Lookup with another CA's certificate: %v, want Unavailable", err)
		}
	})

	// Calls by role: who may call what. A refusal is PermissionDenied naming the role
	// and the method; an allowed call reaches the handler (whatever it answers).
	group := func() *cellarv1.GroupStatusResponse {
		st, err := cellarv1.NewNodeAdminClient(dial(t, idx0.GRPCAddr, as(pki.OperatorName))).GroupStatus(ctx(t), &cellarv1.GroupStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	voters := len(group().Members)
	for _, tc := range []struct {
		name, as, addr string
		call           func(context.Context, *grpc.ClientConn) error
		denied         bool
		method         string
	}{
		{"gateway removes an index node", "gateway-0", idx0.GRPCAddr, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := cellarv1.NewNodeAdminClient(cc).RemoveServer(ctx, &cellarv1.RemoveServerRequest{Id: cell.NodeID("cell-0", cell.RoleIndex, 2)})
			return err
		}, true, "/cellar.v1.NodeAdmin/RemoveServer"},
		{"index node moves the leadership", cell.NodeID("cell-0", cell.RoleIndex, 1), idx0.GRPCAddr, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := cellarv1.NewNodeAdminClient(cc).TransferLeadership(ctx, &cellarv1.TransferLeadershipRequest{})
			return err
		}, true, "/cellar.v1.NodeAdmin/TransferLeadership"},
		{"storage node commits to the index", sto0.Spec.ID, idx0.GRPCAddr, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := cellarv1.NewIndexClient(cc).Commit(ctx, &cellarv1.CommitRequest{})
			return err
		}, true, "/cellar.v1.Index/Commit"},
		{"index node reads a blob", idx0.Spec.ID, sto0.GRPCAddr, func(ctx context.Context, cc *grpc.ClientConn) error {
			rs, err := cellarv1.NewStorageClient(cc).Read(ctx, &cellarv1.ReadRequest{ObjectId: make([]byte, 16)})
			if err != nil {
				return err
			}
			_, err = rs.Recv()
			return err
		}, true, "/cellar.v1.Storage/Read"},
		{"placement of another cell asks the index", cell.NodeID("cell-1", cell.RolePlacement, 0), idx0.GRPCAddr, call, true, "/cellar.v1.Index/Lookup"},
		{"gateway looks a key up", "gateway-0", idx0.GRPCAddr, call, false, ""},
		{"operator asks the group", pki.OperatorName, idx0.GRPCAddr, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := cellarv1.NewNodeAdminClient(cc).GroupStatus(ctx, &cellarv1.GroupStatusRequest{})
			return err
		}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(ctx(t), dial(t, tc.addr, as(tc.as)))
			if !tc.denied {
				// The node's own answer may be an error (a follower says it is not
				// the leader): what matters is that the call got past the checks.
				// A transport failure is Unavailable without the node's error kind.
				c := status.Code(err)
				answered := c != codes.Unavailable || strings.Contains(err.Error(), "cellar-kind=")
				if c == codes.PermissionDenied || c == codes.Unauthenticated || !answered {
					t.Fatalf("as %s: %v, want the call to reach the node", tc.as, err)
				}
				return
			}
			role := cl.Creds(tc.as).ID.Role
			if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), role) || !strings.Contains(err.Error(), tc.method) {
				t.Fatalf("as %s: %v, want PermissionDenied naming %s and %s", tc.as, err, role, tc.method)
			}
		})
	}
	if n := len(group().Members); n != voters {
		t.Errorf("the index group went from %d to %d members", voters, n)
	}

	t.Run("raft without a certificate is refused", func(t *testing.T) {
		// raft's own plain TCP transport, as any process could open it, asks for a vote.
		trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		defer trans.Close()
		var resp raft.RequestVoteResponse
		err = trans.RequestVote("intruder", raft.ServerAddress(idx0.RaftAddr), &raft.RequestVoteRequest{
			RPCHeader: raft.RPCHeader{ID: []byte("intruder"), Addr: []byte(trans.LocalAddr())}, Term: 1 << 40,
		}, &resp)
		if err == nil {
			t.Fatalf("a plain raft RequestVote was answered: %+v", resp)
		}
		// TLS with a certificate of the cluster, but not an index node's of the cell.
		for _, name := range []string{"gateway-0", cell.NodeID("cell-1", cell.RoleIndex, 0)} {
			conn, err := tls.Dial("tcp", idx0.RaftAddr, as(name))
			if err == nil {
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
			}
			if err == nil || !strings.Contains(err.Error(), "certificate") && !strings.Contains(err.Error(), "tls") {
				t.Fatalf("raft connection as %s: %v, want the handshake refused", name, err)
			}
		}
		if st := group(); st.Term >= 1<<40 {
			t.Fatalf("the intruder's term reached the group: %d", st.Term)
		}
	})

	t.Run("gossip without the key", func(t *testing.T) {
		seeds := []string{idx0.GossipAddr, cl.Gateway().GossipAddr}
		join := func(n cell.Node, key []byte) (*cell.Membership, error) {
			m, err := cell.JoinCluster(cell.MembershipConfig{
				Self: n, BindAddr: "127.0.0.1:0", Fast: true, SecretKey: key,
				Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Leave(200 * time.Millisecond) })
			return m, m.Join(seeds)
		}
		// A fake copy of an index node that says it is starting (which made its cell
		// answer 503) and claims the leadership (which took a cell's commits).
		victim := cell.NodeID("cell-0", cell.RoleIndex, 1)
		fake := cell.Node{ID: victim, Role: cell.RoleIndex, Cell: "cell-0", State: cell.StateStarting, Leader: true,
			GRPCAddr: "127.0.0.1:1", Started: time.Now().Add(time.Hour)}
		for _, key := range [][]byte{nil, bytes.Repeat([]byte{7}, 32)} {
			m, err := join(fake, key)
			if err == nil {
				t.Fatalf("a member with key %x joined the gossip", key)
			}
			if n := len(m.Nodes()); n != 1 {
				t.Fatalf("the intruder sees %d members, want only itself", n)
			}
		}
		view, err := cl.GatewayView()
		if err != nil {
			t.Fatal(err)
		}
		if got := view[victim]; got.State != cell.StateReady || got.GRPCAddr == "127.0.0.1:1" {
			t.Fatalf("the gateway sees %s as %+v after the intruders", victim, got)
		}
		// With the key, the same join works: the refusals above are the key's doing.
		obs := cell.Node{ID: "observer-with-key", Role: cell.RoleObserver, State: cell.StateReady, Started: time.Now()}
		m, err := join(obs, cl.GossipKey())
		if err != nil {
			t.Fatalf("a member with the key could not join: %v", err)
		}
		testwait.Until(t, 10*time.Second, "the observer with the key sees the cluster", func() bool {
			for _, n := range m.Nodes() {
				if n.ID == idx0.Spec.ID {
					return true
				}
			}
			return false
		})
	})
}
