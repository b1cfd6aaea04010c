package daemon

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
)

func TestOptionsEnsureDefaults(t *testing.T) {
	o := Options{Role: cell.RoleIndex, Cell: "cell-2"}
	o.EnsureDefaults()
	if o.NodeID != "cell-2-index-0" {
		t.Errorf("node id %q, want cell-2-index-0", o.NodeID)
	}
	for name, addr := range map[string]string{"grpc": o.GRPCAddr, "admin": o.AdminAddr, "gossip": o.GossipAddr} {
		if addr != "127.0.0.1:0" {
			t.Errorf("%s address %q, want 127.0.0.1:0", name, addr)
		}
	}
	if o.StopTimeout != 5*time.Second || o.Logger == nil {
		t.Errorf("stop timeout %s, logger %v; want 5s and a logger", o.StopTimeout, o.Logger)
	}

	gw := Options{Role: cell.RoleGateway}
	gw.EnsureDefaults()
	if gw.NodeID != "gateway-0" {
		t.Errorf("gateway node id %q, want gateway-0", gw.NodeID)
	}

	set := Options{NodeID: "n", Role: cell.RoleStorage, GRPCAddr: "127.0.0.1:7000", StopTimeout: time.Second}
	set.EnsureDefaults()
	if set.NodeID != "n" || set.GRPCAddr != "127.0.0.1:7000" || set.StopTimeout != time.Second {
		t.Errorf("EnsureDefaults changed what was set: %+v", set)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	withLn := Options{Role: cell.RoleStorage, GRPCListener: l}
	withLn.EnsureDefaults()
	if withLn.GRPCAddr != "" {
		t.Errorf("gRPC address %q set beside a listener", withLn.GRPCAddr)
	}
}

func TestOptionsValidate(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	valid := func() Options {
		o := Options{NodeID: "cell-0-storage-0", Role: cell.RoleStorage, Cell: "cell-0"}
		o.EnsureDefaults()
		return o
	}
	tests := []struct {
		name    string
		change  func(*Options)
		wantErr string // "" for valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"listeners instead of addresses", func(o *Options) { o.GRPCListener, o.GRPCAddr = l, "" }, ""},
		{"all interfaces", func(o *Options) { o.GossipAddr = ":7946" }, ""},
		{"no role", func(o *Options) { o.Role = "" }, "a role is required"},
		{"unknown role", func(o *Options) { o.Role = "janitor" }, `unknown role "janitor"`},
		{"no node id", func(o *Options) { o.NodeID = "" }, "a node id is required"},
		{"grpc address without port", func(o *Options) { o.GRPCAddr = "127.0.0.1" }, "gRPC address"},
		{"empty admin address", func(o *Options) { o.AdminAddr = "" }, "admin address"},
		{"gossip address nonsense", func(o *Options) { o.GossipAddr = "nonsense" }, "gossip address"},
		{"negative stop timeout", func(o *Options) { o.StopTimeout = -time.Second }, "stop timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid()
			tt.change(&o)
			err := o.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewRefusesInvalidOptions(t *testing.T) {
	if _, err := New(Options{NodeID: "n"}); err == nil || !strings.Contains(err.Error(), "role") {
		t.Errorf("New without a role: %v", err)
	}
}
