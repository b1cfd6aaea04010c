package pki_test

import (
	"crypto/tls"
	"errors"
	"io"

	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/internal/pki"
)

func initDir(t *testing.T, members ...pki.Member) pki.Dir {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	if _, err := pki.Init(dir, pki.InitOptions{Cluster: "test", Members: members}); err != nil {
		t.Fatal(err)
	}
	return pki.Dir(dir)
}

func member(role, cellID, node string) pki.Member {
	return pki.Member{Identity: pki.Identity{Role: role, Cell: cellID, Node: node}}
}

func TestInitWritesPrivateFilesAndKeepsThem(t *testing.T) {
	idx := member("index", "cell-0", "cell-0-index-0")
	d := initDir(t, idx)
	fi, err := os.Stat(string(d))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %s, want 0700", fi.Mode().Perm())
	}
	want := []string{"ca.key", "ca.pem", "cell-0-index-0.key", "cell-0-index-0.pem", "gossip.key", "operator.key", "operator.pem"}
	entries, err := os.ReadDir(string(d))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %s, want 0600", e.Name(), info.Mode().Perm())
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
	key, err := pki.LoadGossipKey(d.GossipKey())
	if err != nil || len(key) != 32 {
		t.Fatalf("gossip key: %d bytes, %v", len(key), err)
	}
	ca, _ := os.ReadFile(d.CA())

	// Again, with one node more: the CA, the gossip key and the first node's
	// certificate stay; only the new node is issued one.
	sto := member("storage", "cell-0", "cell-0-storage-0")
	res, err := pki.Init(string(d), pki.InitOptions{Members: []pki.Member{idx, sto}})
	if err != nil {
		t.Fatal(err)
	}
	if res.NewCA || res.NewGossip || !slices.Equal(res.Issued, []string{"cell-0-storage-0"}) {
		t.Errorf("second init: %+v, want only cell-0-storage-0 issued", res)
	}
	ca2, _ := os.ReadFile(d.CA())
	key2, _ := pki.LoadGossipKey(d.GossipKey())
	if string(ca) != string(ca2) || string(key) != string(key2) {
		t.Error("second init replaced the CA or the gossip key")
	}
}

func TestIdentityRoundTrip(t *testing.T) {
	d := initDir(t, member("index", "cell-3", "cell-3-index-2"), member("gateway", "", "gateway-0"))
	for _, tc := range []struct {
		node string
		want pki.Identity
		uri  string
	}{
		{"cell-3-index-2", pki.Identity{Role: "index", Cell: "cell-3", Node: "cell-3-index-2"}, "cellar://index/cell-3/cell-3-index-2"},
		{"gateway-0", pki.Identity{Role: "gateway", Node: "gateway-0"}, "cellar://gateway/-/gateway-0"},
		{"operator", pki.Identity{Role: "operator", Node: "operator"}, "cellar://operator/-/operator"},
	} {
		c, err := pki.Load(d.Files(tc.node))
		if err != nil {
			t.Fatal(err)
		}
		if c.ID != tc.want || c.ID.String() != tc.uri {
			t.Errorf("%s: identity %+v (%s), want %+v (%s)", tc.node, c.ID, c.ID, tc.want, tc.uri)
		}
	}
}

// handshake runs one TLS connection between a server and a client configuration and
// returns the server's and the client's errors.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		err = c.(*tls.Conn).Handshake()
		if err == nil {
			_, err = c.Write([]byte("ok"))
		}
		done <- err
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err == nil {
		// TLS 1.3: a client certificate the server refuses shows on the first read.
		_, err = io.ReadFull(c, make([]byte, 2))
		c.Close()
	}
	return <-done, err
}

func TestMutualTLS(t *testing.T) {
	d := initDir(t, member("index", "cell-0", "cell-0-index-0"), member("gateway", "", "gateway-0"))
	other := initDir(t, member("gateway", "", "gateway-0"))
	load := func(d pki.Dir, node string) *pki.Creds {
		c, err := pki.Load(d.Files(node))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	index, gateway, operator := load(d, "cell-0-index-0"), load(d, "gateway-0"), load(d, "operator")
	stranger := load(other, "gateway-0")

	t.Run("same CA", func(t *testing.T) {
		if serr, cerr := handshake(t, index.ServerTLS(nil), gateway.ClientTLS()); serr != nil || cerr != nil {
			t.Fatalf("server %v, client %v", serr, cerr)
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		noCert := gateway.ClientTLS()
		noCert.Certificates = nil
		serr, cerr := handshake(t, index.ServerTLS(nil), noCert)
		if serr == nil || cerr == nil {
			t.Fatalf("server %v, client %v: want both to fail", serr, cerr)
		}
	})
	t.Run("another cluster's client", func(t *testing.T) {
		if serr, _ := handshake(t, index.ServerTLS(nil), stranger.ClientTLS()); serr == nil {
			t.Fatal("a certificate of another CA was let in")
		}
	})
	t.Run("another cluster's server", func(t *testing.T) {
		if _, cerr := handshake(t, stranger.ServerTLS(nil), gateway.ClientTLS()); cerr == nil {
			t.Fatal("the client trusted a server of another CA")
		}
	})
	t.Run("role not allowed", func(t *testing.T) {
		serr, _ := handshake(t, index.ServerTLS(pki.AllowRoles("index")), gateway.ClientTLS())
		if serr == nil || !strings.Contains(serr.Error(), "gateway") {
			t.Fatalf("server %v: want a refusal naming the gateway role", serr)
		}
	})
	t.Run("reached by its own name", func(t *testing.T) {
		for _, name := range []string{"cell-0-index-0", "cell-0-index-0.cellar", "cell-0-index-0.cell-0", "127.0.0.1"} {
			client := gateway.ClientTLS()
			client.ServerName = name
			if serr, cerr := handshake(t, index.ServerTLS(nil), client); serr != nil || cerr != nil {
				t.Errorf("%s: server %v, client %v", name, serr, cerr)
			}
		}
	})
	t.Run("reached by another node's name", func(t *testing.T) {
		// A restarted container took the address another node's name pointed at: the
		// client must not take this node for that one.
		client := gateway.ClientTLS()
		client.ServerName = "cell-0-placement-0.cellar"
		_, cerr := handshake(t, index.ServerTLS(nil), client)
		if cerr == nil || !strings.Contains(cerr.Error(), "cell-0-index-0") {
			t.Fatalf("client %v: want a refusal naming the node reached", cerr)
		}
	})
	t.Run("operator is no server", func(t *testing.T) {
		// The operator's certificate is for calling only: clients refuse it as a server.
		srv := operator.ServerTLS(nil)
		if _, cerr := handshake(t, srv, gateway.ClientTLS()); cerr == nil {
			t.Fatal("a client accepted the operator's certificate as a server's")
		}
	})
}

func TestLoadRefusesMismatch(t *testing.T) {
	d := initDir(t, member("index", "cell-0", "cell-0-index-0"))
	other := initDir(t)
	f := d.Files("cell-0-index-0")
	f.CA = other.CA()
	if _, err := pki.Load(f); err == nil {
		t.Fatal("a certificate was loaded against a CA that did not issue it")
	}
	if _, err := pki.Load(d.Files("nobody")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing files: %v, want not exist", err)
	}
	if err := (pki.Files{Cert: "a"}).Validate(); err == nil {
		t.Fatal("a certificate without key and CA validated")
	}
}
