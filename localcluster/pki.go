package localcluster

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/pki"
)

// PKIDirName is the directory of a cluster's data directory that holds its CA, the
// nodes' and the operator's certificates and the gossip key (see internal/pki).
const PKIDirName = "pki"

// supervisorName is the name of the certificate the control endpoint serves with.
const supervisorName = pki.RoleSupervisor

// PKIDir is the PKI directory of the cluster in dataDir.
func PKIDir(dataDir string) string { return filepath.Join(dataDir, PKIDirName) }

// PKIMembers lists the certificates a cluster of topology t needs: one per node, named
// by its id, role and cell.
func PKIMembers(t cell.Topology) []pki.Member {
	var ms []pki.Member
	for _, n := range t.Nodes() {
		ms = append(ms, pki.Member{Identity: pki.Identity{Role: string(n.Role), Cell: n.Cell, Node: n.ID}})
	}
	return ms
}

// initPKI makes (or completes) the cluster's PKI in DIR/pki: the CA on the first start,
// a certificate for every node of the topology, one for the control endpoint, the
// operator's and the gossip key.
func (s *Supervisor) initPKI() error {
	dir := PKIDir(s.dir)
	members := append(PKIMembers(s.topo), pki.Member{Identity: pki.Identity{Role: supervisorName, Node: supervisorName}})
	res, err := pki.Init(dir, pki.InitOptions{Cluster: filepath.Base(s.dir), Members: members})
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	switch {
	case res.NewCA:
		s.printf("made the cluster's CA, %d certificates and the gossip key in %s (0600)\n", len(res.Issued), dir)
	case len(res.Issued) > 0:
		s.printf("issued %d certificates from the cluster's CA in %s\n", len(res.Issued), dir)
	}
	s.pkiDir = dir
	return nil
}

// OperatorCreds are the operator's credentials of the cluster in dataDir: what
// cellctl calls nodes and the control endpoint with. A cluster without a PKI
// directory gives an error that wraps fs.ErrNotExist.
func OperatorCreds(dataDir string) (*pki.Creds, error) {
	d := pki.Dir(PKIDir(dataDir))
	f := d.Files(pki.OperatorName)
	if _, err := os.Stat(f.Cert); err != nil {
		return nil, fmt.Errorf("the operator's certificate: %w", err)
	}
	return pki.Load(f)
}

// OperatorConns is a pool of gRPC connections to the nodes of the cluster in dataDir,
// as the operator: over mutual TLS with the operator's certificate when the cluster
// has a PKI directory, plain otherwise.
func OperatorConns(dataDir string) (*daemon.Conns, error) {
	creds, err := OperatorCreds(dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return daemon.NewConns(), nil
	}
	if err != nil {
		return nil, err
	}
	return daemon.NewTLSConns(creds.ClientTLS()), nil
}

// GossipKey is the gossip key of the cluster in dataDir, or nil when it has none (its
// gossip is not encrypted).
func GossipKey(dataDir string) ([]byte, error) {
	if dataDir == "" {
		return nil, nil
	}
	path := pki.Dir(PKIDir(dataDir)).GossipKey()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return pki.LoadGossipKey(path)
}

// controlClient is the HTTP client of a control endpoint: over mutual TLS with the
// operator's certificate when the endpoint serves TLS.
func controlClient(f *ClusterFile) (*http.Client, string, error) {
	if !f.ControlTLS {
		return &http.Client{}, "http://", nil
	}
	creds, err := OperatorCreds(f.DataDir)
	if err != nil {
		return nil, "", fmt.Errorf("the control endpoint needs the operator's certificate from %s: %w", PKIDir(f.DataDir), err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: creds.ClientTLS()}}, "https://", nil
}
