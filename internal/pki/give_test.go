package pki

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestGiveHandsOverOnlyWhatOneHolderNeeds(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "pki")
	members := []Member{
		{Identity: Identity{Role: "index", Cell: "cell-0", Node: "cell-0-index-0"}, Hosts: []string{"127.0.0.1"}},
		{Identity: Identity{Role: "index", Cell: "cell-0", Node: "cell-0-index-1"}, Hosts: []string{"127.0.0.1"}},
	}
	if _, err := Init(src, InitOptions{Cluster: "test", Members: members}); err != nil {
		t.Fatal(err)
	}
	list := func(dir string) []string {
		t.Helper()
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			info, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s/%s: mode %v, want 0600", dir, e.Name(), info.Mode().Perm())
			}
			names = append(names, e.Name())
		}
		return names
	}

	node := filepath.Join(root, "nodes", "cell-0-index-0")
	if err := Dir(src).Give("cell-0-index-0", node, -1, -1); err != nil {
		t.Fatal(err)
	}
	want := []string{"ca.pem", "cell-0-index-0.key", "cell-0-index-0.pem", "gossip.key"}
	if got := list(node); !slices.Equal(got, want) {
		t.Errorf("a node's directory holds %v, want %v (no CA key, no other node's key)", got, want)
	}
	if info, err := os.Stat(node); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("a node's directory: %v %v, want mode 0700", info.Mode().Perm(), err)
	}
	// What it was given works: the node's pair loads and chains to the CA.
	if _, err := Load(Dir(node).Files("cell-0-index-0")); err != nil {
		t.Errorf("the node's files do not load: %v", err)
	}
	if _, err := LoadGossipKey(Dir(node).GossipKey()); err != nil {
		t.Error(err)
	}

	observer := filepath.Join(root, "nodes", "observer")
	if err := Dir(src).Give("", observer, os.Getuid(), os.Getgid()); err != nil {
		t.Fatal(err)
	}
	if got := list(observer); !slices.Equal(got, []string{"ca.pem", "gossip.key"}) {
		t.Errorf("an observer's directory holds %v, want the CA certificate and the gossip key", got)
	}

	if err := Dir(src).Give("no-such-node", filepath.Join(root, "nodes", "x"), -1, -1); err == nil {
		t.Error("giving the files of a node that has none: no error")
	}
}
