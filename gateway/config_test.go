package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
)

func TestConfigEnsureDefaults(t *testing.T) {
	var c Config
	c.Cell = "cell-0" // a gateway belongs to no cell
	c.EnsureDefaults()
	if c.Role != cell.RoleGateway || c.Cell != "" || c.NodeID != "gateway-0" {
		t.Errorf("role %q, cell %q, node id %q; want gateway, no cell, gateway-0", c.Role, c.Cell, c.NodeID)
	}
	def := cell.DefaultTopology()
	if c.Topology.Cells != def.Cells || c.S3Addr != def.S3Addr || c.UploadMaxAge != def.UploadMaxAge {
		t.Errorf("topology %d cells, S3 address %q, upload max age %s; want the embedded topology's", c.Topology.Cells, c.S3Addr, c.UploadMaxAge)
	}

	topo := cell.DefaultTopology()
	topo.S3Addr, topo.UploadMaxAge = "127.0.0.1:9100", 0
	own := Config{Topology: topo}
	own.EnsureDefaults()
	if own.S3Addr != "127.0.0.1:9100" || own.UploadMaxAge != 24*time.Hour {
		t.Errorf("S3 address %q, upload max age %s; want the topology's address and 24h", own.S3Addr, own.UploadMaxAge)
	}

	set := Config{S3Addr: "127.0.0.1:9200", UploadMaxAge: -1}
	set.EnsureDefaults()
	if set.S3Addr != "127.0.0.1:9200" || set.UploadMaxAge != -1 {
		t.Errorf("EnsureDefaults changed what was set: S3 address %q, upload max age %s", set.S3Addr, set.UploadMaxAge)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string // "" for valid
	}{
		{"defaults and keys", func(c *Config) {
			c.Topology = cell.DefaultTopology()
			c.Topology.AccessKey, c.Topology.SecretKey = "ak", "sk"
		}, ""},
		{"no credentials are built in", func(*Config) {}, "auth is on but access_key or secret_key is empty"},
		{"bad topology", func(c *Config) { c.Topology = cell.DefaultTopology(); c.Topology.Partition = "tenant" }, "gateway: topology: partition"},
		{"bad daemon options", func(c *Config) { c.GRPCAddr = "nonsense" }, "gRPC address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
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
