package clustertest

import (
	"path/filepath"

	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/pki"
)

// The in-process cluster runs as a cellctl up cluster does: with Topology.TLS (the
// default) every node has a certificate of a CA made for the test, gRPC and raft are
// mutual TLS, and the gossip is encrypted. A test that calls nodes itself does so as
// the operator (OperatorConns), or with the files in PKIDir.

// PKIDir is the directory of the cluster's CA, certificates and gossip key ("" when
// TLS is off).
func (c *Cluster) PKIDir() string {
	if !c.Topology.TLS {
		return ""
	}
	return filepath.Join(c.Dir, "pki")
}

// initPKI makes the cluster's CA, a certificate per node, the operator's and the
// gossip key, when TLS is on.
func (c *Cluster) initPKI() {
	c.t.Helper()
	dir := c.PKIDir()
	if dir == "" {
		return
	}
	var members []pki.Member
	for _, n := range c.Topology.Nodes() {
		members = append(members, pki.Member{Identity: pki.Identity{Role: string(n.Role), Cell: n.Cell, Node: n.ID}})
	}
	if _, err := pki.Init(dir, pki.InitOptions{Cluster: "clustertest", Members: members}); err != nil {
		c.t.Fatal(err)
	}
}

// Creds are the credentials of a certificate of the cluster: a node's id, or
// pki.OperatorName. Nil when TLS is off.
func (c *Cluster) Creds(name string) *pki.Creds {
	c.t.Helper()
	dir := c.PKIDir()
	if dir == "" {
		return nil
	}
	creds, err := pki.Load(pki.Dir(dir).Files(name))
	if err != nil {
		c.t.Fatal(err)
	}
	return creds
}

// OperatorConns is a pool of connections that calls the cluster's nodes as the
// operator (plain when TLS is off). It is closed when the test ends.
func (c *Cluster) OperatorConns() *daemon.Conns {
	conns := daemon.NewConns()
	if creds := c.Creds(pki.OperatorName); creds != nil {
		conns = daemon.NewTLSConns(creds.ClientTLS())
	}
	c.t.Cleanup(conns.Close)
	return conns
}

// GossipKey is the cluster's gossip key, nil when TLS is off.
func (c *Cluster) GossipKey() []byte {
	c.t.Helper()
	dir := c.PKIDir()
	if dir == "" {
		return nil
	}
	key, err := pki.LoadGossipKey(pki.Dir(dir).GossipKey())
	if err != nil {
		c.t.Fatal(err)
	}
	return key
}
