package index

import (
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

func TestConfigEnsureDefaults(t *testing.T) {
	c := Config{Options: daemon.Options{Cell: "cell-1"}, DataDir: "d"}
	c.EnsureDefaults()
	if c.Role != cell.RoleIndex || c.NodeID != "cell-1-index-0" {
		t.Errorf("role %q, node id %q; want index, cell-1-index-0", c.Role, c.NodeID)
	}
	if c.RaftAddr != "" || c.replicated() {
		t.Errorf("a node with no peers got raft address %q", c.RaftAddr)
	}
	g := Config{DataDir: "d", Peers: []string{"a=127.0.0.1:1", "b=127.0.0.1:2"}}
	g.EnsureDefaults()
	if g.RaftAddr != "127.0.0.1:0" || !g.replicated() {
		t.Errorf("a group member got raft address %q, want 127.0.0.1:0", g.RaftAddr)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string // "" for valid
	}{
		{"standalone", func(*Config) {}, ""},
		{"group member", func(c *Config) {
			c.RaftAddr, c.RaftAdvertise = "0.0.0.0:7100", "cell-0-index-0:7100"
			c.Peers = []string{"cell-0-index-0=cell-0-index-0:7100", "cell-0-index-1=cell-0-index-1:7100"}
		}, ""},
		{"slowdown while rebuilding", func(c *Config) { c.Pending, c.RebuildWorkers = PendingSlowDown, 4 }, ""},
		{"no data directory", func(c *Config) { c.DataDir = "" }, "data directory is required"},
		{"peer without address", func(c *Config) { c.Peers = []string{"cell-0-index-0"} }, "want id=host:port"},
		{"raft address without port", func(c *Config) { c.RaftAddr = "127.0.0.1" }, "raft address"},
		{"raft advertise without port", func(c *Config) { c.RaftAddr, c.RaftAdvertise = "127.0.0.1:0", "host" }, "raft advertise address"},
		{"unknown pending mode", func(c *Config) { c.Pending = Pending(7) }, "rebuild pending"},
		{"negative workers", func(c *Config) { c.RebuildWorkers = -1 }, "rebuild workers"},
		{"bad daemon options", func(c *Config) { c.GossipAddr = "nonsense" }, "gossip address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{DataDir: t.TempDir()}
			tt.change(&c)
			c.EnsureDefaults()
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}
