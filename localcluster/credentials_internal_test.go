package localcluster

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestClusterCredentials(t *testing.T) {
	dir := t.TempDir()
	// A new cluster given none gets its own, kept for its owner only.
	topo := cell.DefaultTopology()
	made, err := clusterCredentials(dir, &topo)
	if err != nil || !made || len(topo.AccessKey) != 20 || len(topo.SecretKey) != 40 {
		t.Fatalf("new cluster: made %v, keys %q %q, %v", made, topo.AccessKey, topo.SecretKey, err)
	}
	if m := mode(t, filepath.Join(dir, CredentialsFileName)); m != 0o600 {
		t.Errorf("credentials file mode %s, want 0600", m)
	}
	// The next start keeps them.
	again := cell.DefaultTopology()
	if made, err := clusterCredentials(dir, &again); err != nil || made || again.AccessKey != topo.AccessKey || again.SecretKey != topo.SecretKey {
		t.Errorf("second start: made %v, keys %q, %v", made, again.AccessKey, err)
	}
	// Fixed ones, given knowingly, replace them.
	fixed := cell.DefaultTopology()
	fixed.AccessKey, fixed.SecretKey = "workshop", "workshop-secret"
	if made, err := clusterCredentials(dir, &fixed); err != nil || made {
		t.Fatalf("fixed keys: made %v, %v", made, err)
	}
	if c, err := ReadCredentials(dir); err != nil || c.AccessKey != "workshop" || c.SecretKey != "workshop-secret" {
		t.Errorf("stored after fixed keys: %+v, %v", c, err)
	}
	if m := mode(t, filepath.Join(dir, CredentialsFileName)); m != 0o600 {
		t.Errorf("credentials file mode %s after a rewrite, want 0600", m)
	}
}

func TestPrivateDir(t *testing.T) {
	var warn bytes.Buffer
	fresh := filepath.Join(t.TempDir(), "data")
	if err := privateDir(fresh, &warn); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, fresh); m != 0o700 {
		t.Errorf("new data directory mode %s, want 0700", m)
	}
	// A cluster's data directory made before is narrowed.
	old := t.TempDir()
	if err := os.Chmod(old, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, ClusterFileName), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := privateDir(old, &warn); err != nil || mode(t, old) != 0o700 || warn.Len() != 0 {
		t.Errorf("old data directory: mode %s, %v, warning %q", mode(t, old), err, warn.String())
	}
	// An empty one is the cluster's to be.
	empty := t.TempDir()
	if err := os.Chmod(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := privateDir(empty, &warn); err != nil || mode(t, empty) != 0o700 || warn.Len() != 0 {
		t.Errorf("empty directory: mode %s, %v, warning %q", mode(t, empty), err, warn.String())
	}
	// Any other directory is left alone, with a warning.
	other := t.TempDir()
	if err := os.Chmod(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := privateDir(other, &warn); err != nil || mode(t, other) != 0o755 || !strings.Contains(warn.String(), "other users can list") {
		t.Errorf("another directory: mode %s, %v, warning %q", mode(t, other), err, warn.String())
	}
}
