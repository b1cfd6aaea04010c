package localcluster

import (
	"encoding/json"
	"errors"
	"path/filepath"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/pki"
	"github.com/cellarsim/cellar/node"
)

// TenantsFileName is the file in a cluster's data directory that holds its tenants'
// credentials, readable by its owner only (0600).
const TenantsFileName = "tenants.json"

// ErrNoTenants is returned by ReadTenants for a data directory without tenants.
var ErrNoTenants = errors.New("no " + TenantsFileName)

// ReadTenants reads the tenants of the cluster in the data directory dir.
func ReadTenants(dir string) ([]cell.Tenant, error) {
	var ts []cell.Tenant
	if err := readJSON(filepath.Join(dir, TenantsFileName), ErrNoTenants, &ts); err != nil {
		return nil, err
	}
	return ts, nil
}

// clusterTenants gives topology t of the cluster in dir its tenants: the ones t
// declares, else the ones stored in dir, made up to n (or cut to n) when n > 0: the
// first tenants keep their keys from one start to the next. They are stored 0600.
func clusterTenants(dir string, t *cell.Topology, n int) error {
	if len(t.Tenants) == 0 {
		stored, err := ReadTenants(dir)
		if err != nil && !errors.Is(err, ErrNoTenants) {
			return err
		}
		if n > 0 && len(stored) > n {
			stored = stored[:n]
		}
		if len(stored) < n {
			more, err := cell.NewTenants(n)
			if err != nil {
				return err
			}
			stored = append(stored, more[len(stored):]...)
		}
		t.Tenants = stored
	}
	if len(t.Tenants) == 0 {
		return nil
	}
	b, err := json.MarshalIndent(t.Tenants, "", "  ")
	if err != nil {
		return err
	}
	return writePrivate(filepath.Join(dir, TenantsFileName), append(b, '\n'))
}

// routerSpecLocked completes the spec of a router or a gateway: a router forwards to
// the gateways in their order and reads the tenants from the topology file; it holds
// no certificate of the internal plane (it calls no node), only the gossip's key. A
// gateway or index node of a cluster with faults on watches the faults file.
func (s *Supervisor) routerSpecLocked(spec node.Spec) node.Spec {
	switch spec.Role {
	case cell.RoleRouter:
		spec.TopologyFile = s.topoFile
		spec.Backends = nil
		for _, id := range s.gatewaysLocked() {
			spec.Backends = append(spec.Backends, s.procs[id].node.S3Addr)
		}
		spec.TLSCert, spec.TLSKey, spec.TLSCA = "", "", ""
		if s.pkiDir != "" {
			spec.GossipKey = pki.Dir(s.pkiDir).GossipKey()
		}
	case cell.RoleGateway, cell.RoleIndex:
		spec.FaultsFile = s.faultsFile()
	}
	return spec
}

// Routers lists the front routers' S3 endpoints (http://host:port), the first being
// S3Endpoint; empty when the cluster runs none.
func (s *Supervisor) Routers() []string {
	var out []string
	for _, n := range s.Nodes() {
		if n.Role == cell.RoleRouter {
			out = append(out, "http://"+n.S3Addr)
		}
	}
	return out
}
