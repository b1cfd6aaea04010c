package storage

import (
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string // "" for valid
	}{
		{"data directory", func(*Config) {}, ""},
		{"no data directory", func(c *Config) { c.DataDir = "" }, "--data-dir is required"},
		{"bad daemon options", func(c *Config) { c.StopTimeout = -1 }, "stop timeout"},
		{"negative probe interval", func(c *Config) { c.ProbeInterval = -1 }, "probe interval"},
		{"negative stream idle timeout", func(c *Config) { c.StreamIdleTimeout = -1 }, "stream idle timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{DataDir: t.TempDir()}
			c.Cell = "cell-0"
			tt.change(&c)
			c.EnsureDefaults()
			if c.Role != cell.RoleStorage || c.NodeID != "cell-0-storage-0" {
				t.Errorf("role %q, node id %q after EnsureDefaults", c.Role, c.NodeID)
			}
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
