// Package pki makes and reads the certificates a cellar cluster's daemons trust one
// another with: a certificate authority of the cluster's own, one certificate per node
// that names the node's role and cell, a certificate for the operator's tools, and the
// key that encrypts the cluster's gossip.
//
// Everything is stdlib: keys are ECDSA P-256 from crypto/ecdsa, certificates are made
// with crypto/x509, and connections are crypto/tls. A node's identity is in its
// certificate twice, once for people and once for code: the subject's organizational
// unit is its role, and a URI subject alternative name says
//
//	cellar://<role>/<cell>/<node-id>    (cell "-" for nodes of no cell: gateways, operator)
//
// which IdentityOf reads back from a verified certificate. Servers require a client
// certificate issued by the cluster's CA and check the caller's role per method;
// clients check that the server's certificate was issued by the same CA to a node.
//
// On disk (Init writes it, Load reads it), a directory holds, all 0600 in a 0700
// directory:
//
//	ca.pem, ca.key          the cluster's CA (the key stays with whoever makes certificates)
//	<node-id>.pem, .key     one pair per node
//	operator.pem, .key      the operator's tools (cellctl)
//	gossip.key              32 random bytes, base64, memberlist's encryption key
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// Roles that are not daemons' roles but hold certificates.
const (
	// RoleOperator is the operator's tools: cellctl and the supervisor. Only it may
	// change a replication group (NodeAdmin.RemoveServer, AddVoter, TransferLeadership).
	RoleOperator = "operator"
	// OperatorName is the operator certificate's file name (without extension).
	OperatorName = "operator"
	// RoleSupervisor is the supervisor of a 'cellctl up' cluster (its control
	// endpoint): the role that runs the operations the guardrails judge, such as a
	// bucket's move. Its certificate's file name is the same.
	RoleSupervisor = "supervisor"
)

// Validity of what Init issues. A node certificate is issued again by Init when less
// than renewBefore of it is left.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	nodeValidity = 2 * 365 * 24 * time.Hour
	renewBefore  = 30 * 24 * time.Hour
)

// Identity is who a certificate is issued to.
type Identity struct {
	Role string // index, placement, storage, gateway, observer or operator
	Cell string // "" for nodes of no cell
	Node string // node id, unique in the cluster ("operator" for the operator)
}

// String is the identity as its URI: cellar://role/cell/node.
func (id Identity) String() string { return id.URI().String() }

// URI is the identity as the certificate's URI subject alternative name.
func (id Identity) URI() *url.URL {
	c := id.Cell
	if c == "" {
		c = "-"
	}
	return &url.URL{Scheme: "cellar", Host: id.Role, Path: "/" + c + "/" + id.Node}
}

// Validate reports an identity a certificate cannot carry.
func (id Identity) Validate() error {
	for _, f := range []struct{ name, v string }{{"role", id.Role}, {"cell", id.Cell}, {"node", id.Node}} {
		if strings.ContainsAny(f.v, "/?#: ") {
			return fmt.Errorf("pki: %s %q has a character a certificate identity cannot hold", f.name, f.v)
		}
	}
	if id.Role == "" || id.Node == "" {
		return errors.New("pki: an identity needs a role and a node id")
	}
	return nil
}

// IdentityOf reads the identity of a certificate issued by a cellar CA. It does not
// verify the certificate: call it on one from a verified chain.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	for _, u := range cert.URIs {
		if u.Scheme != "cellar" {
			continue
		}
		c, node, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		if !ok || u.Host == "" || node == "" {
			return Identity{}, fmt.Errorf("pki: malformed identity %q", u)
		}
		if c == "-" {
			c = ""
		}
		return Identity{Role: u.Host, Cell: c, Node: node}, nil
	}
	return Identity{}, fmt.Errorf("pki: certificate of %q names no cellar identity", cert.Subject.CommonName)
}

// CA is a cluster's certificate authority.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA makes a new CA for the cluster called name.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"cellar"}, CommonName: "cellar cluster CA " + name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key}, nil
}

// ParseCA reads a CA from its PEM certificate and key.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: CA: %w", err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("pki: the CA key is not an ECDSA key")
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("pki: the CA certificate is not a CA's")
	}
	return &CA{Cert: cert, key: key}, nil
}

// CertPEM is the CA's certificate in PEM, what every node trusts.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// KeyPEM is the CA's private key in PEM.
func (ca *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Issue makes a certificate and key for id. hosts are the DNS names and IPs the node
// is reached by, put in the certificate for tools that check host names (cellar's own
// clients check the CA and the role instead); 127.0.0.1, ::1 and localhost are always
// in a node's. A node's certificate serves and calls (server and client auth); the
// operator's only calls.
func (ca *CA) Issue(id Identity, hosts []string) (certPEM, keyPEM []byte, err error) {
	if err := id.Validate(); err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: key for %s: %w", id.Node, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization:       []string{"cellar"},
			OrganizationalUnit: []string{id.Role},
			CommonName:         id.Node,
		},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(nodeValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:        []*url.URL{id.URI()},
	}
	if cn := id.Cell; cn != "" {
		tmpl.Subject.Locality = []string{cn}
	}
	if id.Role != RoleOperator {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		hosts = append([]string{"localhost", "127.0.0.1", "::1", id.Node}, hosts...)
		seen := map[string]bool{}
		for _, h := range hosts {
			if h == "" || seen[h] {
				continue
			}
			seen[h] = true
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: certificate for %s: %w", id.Node, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return s, nil
}
