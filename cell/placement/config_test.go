package placement

import (
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

func TestConfigEnsureDefaults(t *testing.T) {
	var c Config
	c.Cell = "cell-3"
	c.EnsureDefaults()
	if c.Role != cell.RolePlacement || c.NodeID != "cell-3-placement-0" || c.Copies != 2 {
		t.Errorf("role %q, node id %q, copies %d; want placement, cell-3-placement-0, 2", c.Role, c.NodeID, c.Copies)
	}
	one := Config{Copies: 1}
	one.EnsureDefaults()
	if one.Copies != 1 {
		t.Errorf("copies %d after EnsureDefaults, want the 1 that was set", one.Copies)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string // "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"three copies", func(c *Config) { c.Copies = 3 }, ""},
		{"negative copies", func(c *Config) { c.Copies = -1 }, "copies -1 is negative"},
		{"bad daemon options", func(c *Config) { c.AdminAddr = "nonsense" }, "admin address"},
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
