package pki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File names in a PKI directory.
const (
	CAFile        = "ca.pem"
	CAKeyFile     = "ca.key"
	GossipKeyFile = "gossip.key"
	// ObserverDir is the directory, beside each node's own, given to a status view:
	// the CA certificate and the gossip key, no certificate (see Give).
	ObserverDir = "observer"
)

// Dir is a directory of a cluster's certificates, keys and gossip key.
type Dir string

// CA is the path of the CA certificate.
func (d Dir) CA() string { return filepath.Join(string(d), CAFile) }

// GossipKey is the path of the gossip key.
func (d Dir) GossipKey() string { return filepath.Join(string(d), GossipKeyFile) }

// Files are the paths of a node's certificate, key and the CA it trusts.
func (d Dir) Files(node string) Files {
	return Files{
		Cert: filepath.Join(string(d), node+".pem"),
		Key:  filepath.Join(string(d), node+".key"),
		CA:   d.CA(),
	}
}

// Exists reports whether the directory holds a CA certificate.
func (d Dir) Exists() bool {
	_, err := os.Stat(d.CA())
	return err == nil
}

// Member is a node Init issues a certificate to: its identity and the host names and
// IPs it is reached by (see CA.Issue).
type Member struct {
	Identity
	Hosts []string
}

// InitOptions say what Init makes.
type InitOptions struct {
	// Cluster names the cluster in the CA's subject.
	Cluster string
	// Members are the nodes to issue certificates to; the operator's is always issued.
	Members []Member
}

// InitResult says what Init made and what it kept.
type InitResult struct {
	NewCA     bool
	Issued    []string // node ids (and "operator") issued a certificate now
	Kept      []string // node ids whose certificate was already there and still good
	NewGossip bool
}

// Init makes the directory (0700) and what is missing in it: the CA, a certificate for
// every member and for the operator, and the gossip key, each file 0600. What is
// there is kept: the CA and gossip key always, a node's certificate while it was
// issued by this CA to the same identity and has more than 30 days left. So Init on a
// cluster's directory is what starting it again does, and it can add nodes.
func Init(dir string, opts InitOptions) (*InitResult, error) {
	d := Dir(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	res := &InitResult{}
	ca, err := loadCA(d)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		name := opts.Cluster
		if name == "" {
			name = filepath.Base(filepath.Dir(dir))
		}
		if ca, err = NewCA(name); err != nil {
			return nil, err
		}
		key, err := ca.KeyPEM()
		if err != nil {
			return nil, err
		}
		if err := writePrivate(filepath.Join(dir, CAKeyFile), key); err != nil {
			return nil, err
		}
		if err := writePrivate(d.CA(), ca.CertPEM()); err != nil {
			return nil, err
		}
		res.NewCA = true
	case err != nil:
		return nil, err
	}
	members := append(slices.Clone(opts.Members), Member{Identity: Identity{Role: RoleOperator, Node: OperatorName}})
	for _, m := range members {
		f := d.Files(m.Node)
		if !res.NewCA && stillGood(f, ca, m.Identity) {
			res.Kept = append(res.Kept, m.Node)
			continue
		}
		cert, key, err := ca.Issue(m.Identity, m.Hosts)
		if err != nil {
			return nil, err
		}
		if err := writePrivate(f.Key, key); err != nil {
			return nil, err
		}
		if err := writePrivate(f.Cert, cert); err != nil {
			return nil, err
		}
		res.Issued = append(res.Issued, m.Node)
	}
	if _, err := os.Stat(d.GossipKey()); errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("pki: gossip key: %w", err)
		}
		if err := writePrivate(d.GossipKey(), []byte(base64.StdEncoding.EncodeToString(key)+"\n")); err != nil {
			return nil, err
		}
		res.NewGossip = true
	} else if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return res, nil
}

func loadCA(d Dir) (*CA, error) {
	certPEM, err := os.ReadFile(d.CA())
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(string(d), CAKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("pki: %s has a CA certificate but not its key (%s): certificates cannot be issued here", d, CAKeyFile)
	}
	if err != nil {
		return nil, err
	}
	return ParseCA(certPEM, keyPEM)
}

// stillGood reports whether f holds a certificate and key of id from ca with more
// than renewBefore left.
func stillGood(f Files, ca *CA, id Identity) bool {
	pair, err := loadPair(f)
	if err != nil {
		return false
	}
	leaf := pair.Leaf
	if got, err := IdentityOf(leaf); err != nil || got != id || time.Until(leaf.NotAfter) < renewBefore {
		return false
	}
	return leaf.CheckSignatureFrom(ca.Cert) == nil
}

// LoadGossipKey reads a gossip key file: base64 of 16, 24 or 32 bytes (what Init
// writes), as memberlist's keyring takes.
func LoadGossipKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("gossip key %s: not base64: %w", path, err)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("gossip key %s: %d bytes, want 16, 24 or 32", path, len(key))
}

// writePrivate writes b to path, readable by its owner only (0600), replacing it
// atomically.
func writePrivate(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// parseCertPEM reads the first certificate of a PEM file.
func parseCertPEM(b []byte) (*x509.Certificate, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no certificate in PEM")
		}
		if blk.Type == "CERTIFICATE" {
			return x509.ParseCertificate(blk.Bytes)
		}
	}
}

// Give copies into dst (made 0700) what one holder needs and nothing more: the CA
// certificate, the gossip key, and, when node is not "", that node's certificate and
// key. The CA's key and every other node's key stay behind, so a container given dst
// can prove who it is and check its peers, but cannot pass for another node or issue
// certificates. Files keep the names they have in d. A uid or gid of -1 leaves the
// owner as it is; others make dst and its files that user's (for a container whose
// user is not the one running Give).
func (d Dir) Give(node, dst string, uid, gid int) error {
	names := []string{CAFile, GossipKeyFile}
	if node != "" {
		f := d.Files(node)
		names = append(names, filepath.Base(f.Cert), filepath.Base(f.Key))
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.Chmod(dst, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(string(d), name))
		if err != nil {
			return fmt.Errorf("pki: %w", err)
		}
		if err := writePrivate(filepath.Join(dst, name), b); err != nil {
			return err
		}
		if err := chown(filepath.Join(dst, name), uid, gid); err != nil {
			return err
		}
	}
	return chown(dst, uid, gid)
}

func chown(path string, uid, gid int) error {
	if uid < 0 && gid < 0 {
		return nil
	}
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}
