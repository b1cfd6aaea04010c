package cell

import (
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// The fields of Topology about tenants and the front routers:
//
//   - Tenants are the clients of the cluster, each signing with its own access key:
//     every request is attributed to the tenant whose key signed it, and a front router
//     sends it to that tenant's shard of the gateways. The cluster's own key
//     (AccessKey) belongs to no tenant and reaches every gateway.
//   - Routers is how many front routers run before the gateways (0: none, clients
//     reach the gateways directly). The first listens on S3Addr.
//   - Sharding is how the routers spread tenants over the gateways: "all" (every
//     tenant on every gateway), "plain" (the gateways split into fixed groups of
//     ShardSize, a tenant on one group) or "shuffle" (a tenant on its own combination
//     of ShardSize gateways). Empty means "shuffle" when ShardSize is set, else "all".
//   - ShardSize is how many gateways serve one tenant under plain and shuffle sharding
//     (0 means DefaultShardSize).
//   - Faults lets the drill tooling arm injected faults (the poison pill) through the
//     supervisor's control endpoint. Off (the default), no fault can be armed.

// Tenant is one client of the cluster and the credentials it signs with.
type Tenant struct {
	Name      string `yaml:"name" json:"name"`
	AccessKey string `yaml:"access_key" json:"access_key"`
	SecretKey string `yaml:"secret_key" json:"secret_key"`
}

// Sharding modes of the gateway fleet.
const (
	ShardingAll     = "all"
	ShardingPlain   = "plain"
	ShardingShuffle = "shuffle"
)

// DefaultShardSize is how many gateways serve a tenant when the topology does not say.
const DefaultShardSize = 2

// ShardingMode is the sharding mode in effect: Sharding, or its default.
func (t Topology) ShardingMode() string {
	switch {
	case t.Sharding != "":
		return t.Sharding
	case t.ShardSize > 0:
		return ShardingShuffle
	}
	return ShardingAll
}

// TenantShardSize is how many gateways serve one tenant: all of them under "all"
// sharding, else ShardSize (default DefaultShardSize).
func (t Topology) TenantShardSize() int {
	if t.ShardingMode() == ShardingAll {
		return t.Gateways
	}
	if t.ShardSize == 0 {
		return DefaultShardSize
	}
	return t.ShardSize
}

// RouterNodes lists the front routers the topology asks for (router-0, router-1, ...):
// they belong to no cell, and Nodes does not list them.
func (t Topology) RouterNodes() []NodeSpec {
	var out []NodeSpec
	for i := range t.Routers {
		out = append(out, NodeSpec{ID: NodeID("", RoleRouter, i), Role: RoleRouter})
	}
	return out
}

// Credentials maps every access key the cluster accepts (its own and its tenants')
// to its secret key.
func (t Topology) Credentials() map[string]string {
	m := make(map[string]string, 1+len(t.Tenants))
	if t.AccessKey != "" {
		m[t.AccessKey] = t.SecretKey
	}
	for _, tn := range t.Tenants {
		m[tn.AccessKey] = tn.SecretKey
	}
	return m
}

// TenantNames maps each tenant's access key to its name.
func (t Topology) TenantNames() map[string]string {
	m := make(map[string]string, len(t.Tenants))
	for _, tn := range t.Tenants {
		m[tn.AccessKey] = tn.Name
	}
	return m
}

// EnvTenants is the environment variable LoadTopology reads the tenants from when the
// topology file declares none: a list of {name, access_key, secret_key} in YAML or
// JSON, such as the tenants.json that 'cellctl up --tenants N' keeps. It is how the
// gateways and the front routers in containers get the tenants' keys from a secret,
// as they get the cluster's own from EnvAccessKey and EnvSecretKey.
const EnvTenants = "CELLAR_TENANTS"

// tenantsFromEnv sets t's tenants from EnvTenants when t has none and it is set.
func (t *Topology) tenantsFromEnv() error {
	v := os.Getenv(EnvTenants)
	if len(t.Tenants) > 0 || strings.TrimSpace(v) == "" {
		return nil
	}
	var ts []Tenant
	if err := yaml.Unmarshal([]byte(v), &ts); err != nil {
		return fmt.Errorf("the tenants in %s: want a list of {name, access_key, secret_key} in YAML or JSON: %w", EnvTenants, err)
	}
	t.Tenants = ts
	return nil
}

// NewTenants makes n tenants named tenant-000, tenant-001, ..., each with new
// credentials from NewCredentials.
func NewTenants(n int) ([]Tenant, error) {
	out := make([]Tenant, n)
	for i := range out {
		ak, sk, err := NewCredentials()
		if err != nil {
			return nil, err
		}
		out[i] = Tenant{Name: fmt.Sprintf("tenant-%03d", i), AccessKey: ak, SecretKey: sk}
	}
	return out, nil
}

// validateTenants checks the tenants, the routers and the sharding of the gateways.
func (t Topology) validateTenants() error {
	names, keys := map[string]bool{}, map[string]string{}
	if t.AccessKey != "" {
		keys[t.AccessKey] = "the cluster's own access_key"
	}
	for i, tn := range t.Tenants {
		switch {
		case tn.Name == "":
			return fmt.Errorf("tenant %d has no name", i+1)
		case tn.AccessKey == "" || tn.SecretKey == "":
			return fmt.Errorf("tenant %s needs an access_key and a secret_key", tn.Name)
		case names[tn.Name]:
			return fmt.Errorf("tenant name %s is given twice: every tenant needs a name of its own", tn.Name)
		}
		if other, dup := keys[tn.AccessKey]; dup {
			return fmt.Errorf("tenant %s has the same access key as %s: every tenant needs a key of its own", tn.Name, other)
		}
		names[tn.Name], keys[tn.AccessKey] = true, "tenant "+tn.Name
	}
	mode, k := t.ShardingMode(), t.TenantShardSize()
	switch {
	case t.Routers < 0:
		return fmt.Errorf("routers must be 0 or more, not %d", t.Routers)
	case mode != ShardingAll && mode != ShardingPlain && mode != ShardingShuffle:
		return fmt.Errorf("sharding must be %q, %q or %q, not %q", ShardingAll, ShardingPlain, ShardingShuffle, t.Sharding)
	case t.ShardSize < 0:
		return fmt.Errorf("shard_size must be at least 1, not %d", t.ShardSize)
	case mode != ShardingAll && k > t.Gateways:
		return fmt.Errorf("shard_size %d is larger than the fleet of %d gateway%s: a tenant's shard is some of the gateways",
			k, t.Gateways, pluralS(t.Gateways))
	case mode == ShardingPlain && t.Gateways%k != 0:
		return fmt.Errorf("plain sharding splits the gateways into groups of shard_size: %d gateways do not split into groups of %d",
			t.Gateways, k)
	}
	return nil
}

func pluralS(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
