package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
)

// Files are where a node's certificate, its key and the cluster's CA certificate are.
type Files struct{ Cert, Key, CA string }

// Set reports whether any path is given.
func (f Files) Set() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Validate reports files given in part: all three paths are needed.
func (f Files) Validate() error {
	if !f.Set() || (f.Cert != "" && f.Key != "" && f.CA != "") {
		return nil
	}
	return errors.New("TLS needs a certificate, its key and the CA certificate (--tls-cert, --tls-key, --tls-ca), all three")
}

// Creds are a node's TLS credentials: its certificate and key, who they say it is,
// and the cluster's CA that it trusts.
type Creds struct {
	ID    Identity
	pair  tls.Certificate
	roots *x509.CertPool
}

// Load reads a node's credentials from files.
func Load(f Files) (*Creds, error) {
	pair, err := loadPair(f)
	if err != nil {
		return nil, err
	}
	id, err := IdentityOf(pair.Leaf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Cert, err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	ca, err := parseCertPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate %s: %w", f.CA, err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("pki: %s was not issued by the CA in %s: %w", f.Cert, f.CA, err)
	}
	return &Creds{ID: id, pair: pair, roots: roots}, nil
}

func loadPair(f Files) (tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return pair, fmt.Errorf("pki: certificate %s: %w", f.Cert, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return pair, err
		}
	}
	return pair, nil
}

// Allow decides whether a verified peer may connect at all; nil allows every holder
// of a certificate of the cluster's CA.
type Allow func(peer Identity) error

// ServerTLS is the configuration of a server that requires a client certificate
// issued by the cluster's CA (mutual TLS), from a peer that allow lets in.
func (c *Creds) ServerTLS(allow Allow) *tls.Config {
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    c.roots,
	}
	if allow != nil {
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			id, err := PeerIdentity(cs)
			if err != nil {
				return err
			}
			return allow(id)
		}
	}
	return cfg
}

// ClientTLS is the configuration of a client that presents its certificate and
// accepts a server whose certificate the cluster's CA issued to a node (not to the
// operator). What makes a server trusted is the cluster's CA, not its address; a
// server reached by a name must also be the node of that name (checkNodeName).
func (c *Creds) ClientTLS() *tls.Config {
	roots := c.roots
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.pair},
		// The chain is verified below, against the cluster's CA alone, without a host
		// name check; skipping the default check is what makes that possible.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, ic := range cs.PeerCertificates[1:] {
				inter.AddCert(ic)
			}
			leaf := cs.PeerCertificates[0]
			if _, err := leaf.Verify(x509.VerifyOptions{
				Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			}); err != nil {
				return fmt.Errorf("the server's certificate is not from this cluster's CA: %w", err)
			}
			id, err := IdentityOf(leaf)
			if err != nil {
				return err
			}
			if id.Role == RoleOperator {
				return errors.New("the server presented the operator's certificate, not a node's")
			}
			return checkNodeName(cs.ServerName, id, leaf)
		},
	}
}

// checkNodeName refuses a server reached by the name of another node. Nodes gossip
// addresses that are either IP addresses or names whose first label is the node's id
// (cell-1-index-0.cellar in compose, a pod's name in Kubernetes); a name can come to
// point at another node of the same cluster when containers restart and addresses are
// handed out again, and the CA check alone would then accept the wrong node. A name
// the certificate itself lists (--host of cellctl pki init) is accepted too. IP
// addresses, and a client that gives no name, are not checked.
func checkNodeName(serverName string, id Identity, leaf *x509.Certificate) error {
	if serverName == "" || serverName == "localhost" || net.ParseIP(serverName) != nil {
		return nil
	}
	if label, _, _ := strings.Cut(serverName, "."); label == id.Node {
		return nil
	}
	if leaf.VerifyHostname(serverName) == nil {
		return nil
	}
	return fmt.Errorf("the server reached as %s is %s, not the node that name is for", serverName, id.Node)
}

// PeerIdentity is the identity of the peer of a server-side connection whose client
// certificate was verified (ServerTLS).
func PeerIdentity(cs tls.ConnectionState) (Identity, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Identity{}, errors.New("no verified client certificate")
	}
	return IdentityOf(cs.VerifiedChains[0][0])
}

// AllowRoles lets in peers of the given roles.
func AllowRoles(roles ...string) Allow {
	return func(p Identity) error {
		if slices.Contains(roles, p.Role) {
			return nil
		}
		return fmt.Errorf("a %s certificate (%s) may not connect here", p.Role, p.Node)
	}
}
