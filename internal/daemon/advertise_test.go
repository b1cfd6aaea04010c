package daemon

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/testaddr"
)

func TestAdvertiseHost(t *testing.T) {
	tests := []struct {
		name, advertise, gossip string
		wantHost, wantBind      string
	}{
		{"none", "", "127.0.0.1:0", "127.0.0.1", "127.0.0.1:0"},
		{"name on all interfaces", "localhost", "0.0.0.0:7946", "localhost", "127.0.0.1:7946"},
		{"ip on all interfaces", "127.0.0.1", ":7946", "127.0.0.1", "127.0.0.1:7946"},
		{"specific gossip address kept", "localhost", "127.0.0.1:7946", "localhost", "127.0.0.1:7946"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(Options{NodeID: "n", Role: cell.RoleStorage, Cell: "cell-0",
				GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", GossipAddr: tt.gossip, AdvertiseHost: tt.advertise})
			if err != nil {
				t.Fatal(err)
			}
			defer d.grpcLn.Close()
			defer d.adminLn.Close()
			for _, addr := range []string{d.GRPCAddr(), d.AdminAddr()} {
				host, port, err := net.SplitHostPort(addr)
				if err != nil || host != tt.wantHost || port == "0" {
					t.Errorf("advertised %q, want host %q and the listener's port", addr, tt.wantHost)
				}
			}
			bind, err := d.gossipBind()
			if err != nil || bind != tt.wantBind {
				t.Errorf("gossip bind = %q, %v; want %q", bind, err, tt.wantBind)
			}
		})
	}
}

// A node that starts before its seed is reachable finds it once the seed is up.
func TestRejoinSeedThatStartsLater(t *testing.T) {
	old := rejoinEvery
	rejoinEvery = 100 * time.Millisecond
	defer func() { rejoinEvery = old }()

	// The seed's port comes from below the kernel's ephemeral range, so the early
	// node's own listener (port 0) cannot be handed the same port meanwhile.
	seed := testaddr.Free(t)

	start := func(id, gossip string, join []string) *Daemon {
		d, err := New(Options{NodeID: id, Role: cell.RoleStorage, Cell: "cell-0", GossipAddr: gossip, Join: join, FastGossip: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Stop(nil) })
		return d
	}
	early := start("early", "127.0.0.1:0", []string{seed})
	start("seed", seed, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ids []string
		for _, n := range early.Members.Nodes() {
			ids = append(ids, n.ID)
		}
		if strings.Join(ids, ",") == "early,seed" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("early node sees %v, want early and seed", ids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
