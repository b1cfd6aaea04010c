package cli

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

// pki init --node-dirs gives every node of the topology a directory with its own key
// only, and the observer one with no key at all; the CA's key stays in --dir.
func TestPKIInitNodeDirs(t *testing.T) {
	root := t.TempDir()
	dir, nodes := filepath.Join(root, "pki"), filepath.Join(root, "nodes")
	if code, _, stderr := run(t, "pki", "init", "--dir", dir, "--node-dirs", nodes); code != 0 {
		t.Fatalf("pki init: exit %d: %s", code, stderr)
	}
	names := func(d string) []string {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	topo := cell.DefaultTopology()
	for _, n := range topo.Nodes() {
		want := []string{"ca.pem", n.ID + ".key", n.ID + ".pem", "gossip.key"}
		slices.Sort(want)
		if got := names(filepath.Join(nodes, n.ID)); !slices.Equal(got, want) {
			t.Errorf("%s's directory holds %v, want %v", n.ID, got, want)
		}
	}
	if got := names(filepath.Join(nodes, "observer")); !slices.Equal(got, []string{"ca.pem", "gossip.key"}) {
		t.Errorf("the observer's directory holds %v", got)
	}
	if len(names(nodes)) != len(topo.Nodes())+1 {
		t.Errorf("%d directories under --node-dirs, want one per node and the observer's", len(names(nodes)))
	}
}

func TestPKIInitNodeDirsOwnerMustBeNumbers(t *testing.T) {
	root := t.TempDir()
	code, _, stderr := run(t, "pki", "init", "--dir", filepath.Join(root, "pki"), "--node-dirs", filepath.Join(root, "n"), "--node-dirs-owner", "nobody")
	if code == 0 {
		t.Fatal("pki init with --node-dirs-owner nobody: exit 0")
	}
	checkOneLine(t, stderr, "UID:GID")
}
