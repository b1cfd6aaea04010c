package cell

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tenants a topology file leaves out come from CELLAR_TENANTS, in YAML or as the
// tenants.json 'cellctl up' keeps; a file's own tenants win, and a list that does not
// parse or repeats a key is an error that names the variable or the tenant.
func TestLoadTopologyTenantsFromEnv(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := write("plain.yaml", "gateways: 4\nrouters: 1\nshard_size: 2\n")
	own := write("own.yaml", "tenants:\n  - {name: acme, access_key: AKACME, secret_key: s}\n")
	for _, tc := range []struct {
		name, file, env string
		want            []string // tenant names, or the error's words
		fails           bool
	}{
		{"none", plain, "", nil, false},
		{"json", plain, `[{"name": "tenant-000", "access_key": "AK0", "secret_key": "s0"}, {"name": "tenant-001", "access_key": "AK1", "secret_key": "s1"}]`,
			[]string{"tenant-000", "tenant-001"}, false},
		{"yaml", plain, "- {name: globex, access_key: AKG, secret_key: sg}\n", []string{"globex"}, false},
		{"the file's own win", own, `[{"name": "other", "access_key": "AKO", "secret_key": "so"}]`, []string{"acme"}, false},
		{"not a list", plain, "{name: x", []string{"the tenants in CELLAR_TENANTS"}, true},
		{"a key twice", plain, `[{"name": "a", "access_key": "AK", "secret_key": "s"}, {"name": "b", "access_key": "AK", "secret_key": "s"}]`,
			[]string{"tenant b has the same access key as tenant a"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvTenants, tc.env)
			topo, err := LoadTopology(tc.file)
			if tc.fails {
				if err == nil || !strings.Contains(err.Error(), tc.want[0]) {
					t.Fatalf("LoadTopology: %v, want an error saying %q", err, tc.want[0])
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tn := range topo.Tenants {
				names = append(names, tn.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.want, ",") {
				t.Errorf("tenants %v, want %v", names, tc.want)
			}
		})
	}
}
