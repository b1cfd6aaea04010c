package deploy

import (
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/node"
)

// In containers, as with cellctl up, a topology with tls (the default) gives every
// node a certificate of the cluster's own CA and the gossip key, made by 'cellctl pki
// init'. In compose a one-shot service (PKIService) makes them in its volume and gives
// each node a copy of only its own files in a volume that node alone mounts, read-only,
// at PKIDir (NodePKIVolume). In Kubernetes each node's pod mounts a Secret of its own
// (PKISecret), made from the directory 'cellctl pki init --node-dirs' gives that node
// (see docs/docker.md and docs/security.md).
const (
	// PKIDir is where a container finds the cluster's certificates and gossip key.
	PKIDir = "/etc/cellar/pki"
	// PKIService is the compose service that makes them, and PKIVolume the volume it
	// makes them in.
	PKIService = "pki"
	PKIVolume  = "pki"
	// PKINodeDirs is where the one-shot service writes each node's own copy (in the
	// node's own volume, NodePKIVolume), for 'cellctl pki init --node-dirs'.
	PKINodeDirs = "/pki-nodes"
	// ImageUser is the user the image's processes run as (deploy/Dockerfile).
	ImageUser = "65532:65532"
)

// withPKI gives spec its certificate files under PKIDir when t runs with TLS.
func withPKI(t cell.Topology, spec node.Spec) node.Spec {
	if !t.TLS {
		return spec
	}
	return spec.WithPKI(PKIDir)
}

// pkiArgs is the command line of the one-shot service that makes the certificates of
// every node of the topology the gateways read.
func pkiArgs() []string {
	return []string{"pki", "init", "--dir=" + PKIDir, "--topology=" + TopologyPath, "--node-dirs=" + PKINodeDirs, "--node-dirs-owner=" + ImageUser}
}

// NodePKIVolume is the compose volume that holds what node id (or the status view,
// pki.ObserverDir) is given of the cluster's PKI: its own certificate and key, the CA
// certificate and the gossip key.
func NodePKIVolume(id string) string { return "pki-" + id }
