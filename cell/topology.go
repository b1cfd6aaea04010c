package cell

import (
	"crypto/rand"
	_ "embed"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed defaults.yaml
var defaultsYAML []byte

// Partition names what the slot table hashes to pick a cell.
const (
	PartitionByBucket = "bucket" // a bucket lives in one cell
	PartitionByKey    = "key"    // a bucket spans cells; LIST fans out to all of them
)

// Topology is the shape of a cluster: how many cells, how many nodes of each role per
// cell, and how keys are spread over the cells. The defaults are embedded in the binary;
// a YAML file overrides any of them.
type Topology struct {
	Cells int `yaml:"cells"`
	// Nodes of each tier in every cell.
	IndexNodes     int `yaml:"index_nodes"`
	PlacementNodes int `yaml:"placement_nodes"`
	StorageNodes   int `yaml:"storage_nodes"`
	Gateways       int `yaml:"gateways"`
	// MapNodes is the size of the map group, the raft group that holds the cell map
	// (slot and bucket → cell) and serves it to the gateways: 3 survives the loss of
	// one, 1 is allowed. 0 (the default) runs no map group: gateways route by the
	// slot table computed from this topology, and list buckets by asking every cell.
	MapNodes int `yaml:"map_nodes,omitempty"`
	// Partition is "bucket" (default) or "key".
	Partition string `yaml:"partition"`
	// Slots in the slot table: hash(partition key) mod Slots picks a slot, the slot a cell.
	Slots int `yaml:"slots"`
	// S3Addr is where the first gateway listens.
	S3Addr string `yaml:"s3_addr"`
	// Credentials clients sign requests with. None are built in: 'cellctl up' makes
	// a new cluster its own (see NewCredentials) and keeps them in its data directory;
	// a topology file may give fixed ones. LoadTopology reads keys a file leaves out
	// from the environment variables CELLAR_ACCESS_KEY and CELLAR_SECRET_KEY, which is
	// how containers get them from a secret.
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	Region    string `yaml:"region"`
	// Auth makes the gateways verify every request's AWS signature against the
	// credentials above (the default). Off, anyone who can reach a gateway can read
	// and write everything: for workshops only.
	Auth bool `yaml:"auth"`
	// SigV2 lets old clients sign with AWS Signature Version 2 (the default), whose
	// header form does not cover the body; false refuses it and accepts Version 4 only.
	SigV2 bool `yaml:"sigv2"`
	// TLS runs the internal plane (gRPC, raft) on mutual TLS with the cluster's own CA
	// and encrypts the gossip (the default). Off, nodes trust whoever reaches their
	// ports: for teaching and for measuring what TLS costs.
	TLS bool `yaml:"tls"`
	// UploadMaxAge is how old a multipart upload may grow before the gateways abort it
	// and reclaim its parts ("24h"; 0 means 24 hours, negative never).
	UploadMaxAge time.Duration `yaml:"upload_max_age"`
	// Copies is how many storage nodes of its cell hold every object: what a PUT's
	// 200 promises (0 means 2; a cell with fewer storage nodes promises as many as it
	// has, see PromisedCopies). Placement's --copies must be at least this.
	Copies int `yaml:"copies"`
	// DegradedWrites lets a PUT succeed with fewer copies than promised when too few
	// storage nodes of the cell can take writes; the object is then under-replicated
	// (its index location lists fewer replicas than PromisedCopies) until repair
	// copies it. Off (the default), such a PUT is refused with 503.
	DegradedWrites bool `yaml:"degraded_writes"`
	// Repair paces each cell's repair loop: how fast a wiped or replaced storage node
	// is refilled, and what that may cost foreground requests (see RepairPacing).
	Repair RepairPacing `yaml:"repair,omitempty"`
	// Guardrails is "on" (the default, also when empty) or "off". Off, the guardrail
	// policy lets through what it would refuse (a drain below a tier's floor, over
	// the cap, a restart against the dependency order), still planning and auditing
	// every operation and saying so loudly: for teaching the 2017 outage only.
	Guardrails string `yaml:"guardrails,omitempty"`
	// ReadLease is "off" (the default, also when empty) or "on". On, an index leader
	// serves reads under a lease it renews twice a second while reads come in; off,
	// it asks a majority of its group for every read. Off by default until a leader
	// that lost its quorum is shown to stop serving within a lease (docs/leaders.md).
	ReadLease string `yaml:"read_lease,omitempty"`

	// Tenants, routers, the sharding of the gateway fleet and fault injection: see
	// tenants.go.
	Tenants   []Tenant `yaml:"tenants,omitempty"`
	Routers   int      `yaml:"routers,omitempty"`
	Sharding  string   `yaml:"sharding,omitempty"`
	ShardSize int      `yaml:"shard_size,omitempty"`
	Faults    bool     `yaml:"faults,omitempty"`
}

// Values of Topology.Guardrails.
const (
	GuardrailsOn  = "on"
	GuardrailsOff = "off"
)

// GuardrailsOff reports whether the topology turns the guardrails off (teaching only).
func (t Topology) GuardrailsOff() bool { return t.Guardrails == GuardrailsOff }

// ReadLeaseOn reports whether the topology turns the index leaders' read lease on.
func (t Topology) ReadLeaseOn() bool { return t.ReadLease == "on" }

// DefaultCopies is how many copies of every object a cell keeps when the topology does
// not say.
const DefaultCopies = 2

// PromisedCopies is how many storage nodes of its cell hold every object acknowledged
// with a 200 (unless DegradedWrites): Copies, at most the cell's storage nodes.
func (t Topology) PromisedCopies() int {
	c := t.Copies
	if c == 0 {
		c = DefaultCopies
	}
	return max(1, min(c, t.StorageNodes))
}

// DefaultTopology returns the embedded defaults.
func DefaultTopology() Topology {
	var t Topology
	if err := yaml.Unmarshal(defaultsYAML, &t); err != nil {
		panic("cell: embedded defaults.yaml: " + err.Error())
	}
	return t
}

// Environment variables LoadTopology reads the credentials from when a topology file
// does not give them.
const (
	EnvAccessKey = "CELLAR_ACCESS_KEY"
	EnvSecretKey = "CELLAR_SECRET_KEY"
)

// LoadTopology reads a YAML file over the embedded defaults; credentials the file does
// not give come from EnvAccessKey and EnvSecretKey when they are set, and tenants from
// EnvTenants. It checks the
// shape of the cluster (ValidateShape), not the credentials: a topology that deploys
// a cluster may leave them to a secret. A daemon checks them with Validate.
func LoadTopology(path string) (Topology, error) {
	t := DefaultTopology()
	b, err := os.ReadFile(path)
	if err != nil {
		return t, fmt.Errorf("read topology: %w", err)
	}
	if err := yaml.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("parse topology %s: %w", path, err)
	}
	if t.AccessKey == "" && t.SecretKey == "" {
		t.AccessKey, t.SecretKey = os.Getenv(EnvAccessKey), os.Getenv(EnvSecretKey)
	}
	if err := t.tenantsFromEnv(); err != nil {
		return t, err
	}
	return t, t.ValidateShape()
}

// Validate reports the first thing wrong with t, in words an operator can act on: its
// shape (ValidateShape), then its credentials.
func (t Topology) Validate() error {
	if err := t.ValidateShape(); err != nil {
		return err
	}
	if t.Auth && (t.AccessKey == "" || t.SecretKey == "") {
		return fmt.Errorf("auth is on but access_key or secret_key is empty: give both in the topology or in %s and %s "+
			"('cellctl credentials --new' makes a pair), or let 'cellctl up' make them", EnvAccessKey, EnvSecretKey)
	}
	return nil
}

// ValidateShape reports the first thing wrong with t other than its credentials.
func (t Topology) ValidateShape() error {
	switch {
	case t.Cells < 1 || t.Cells > 256:
		return fmt.Errorf("cells must be between 1 and 256, not %d", t.Cells)
	case t.IndexNodes < 1:
		return fmt.Errorf("index_nodes must be at least 1, not %d", t.IndexNodes)
	case t.PlacementNodes < 1:
		return fmt.Errorf("placement_nodes must be at least 1, not %d", t.PlacementNodes)
	case t.StorageNodes < 1:
		return fmt.Errorf("storage_nodes must be at least 1, not %d", t.StorageNodes)
	case t.Gateways < 1:
		return fmt.Errorf("gateways must be at least 1, not %d", t.Gateways)
	case t.Partition != PartitionByBucket && t.Partition != PartitionByKey:
		return fmt.Errorf("partition must be %q or %q, not %q", PartitionByBucket, PartitionByKey, t.Partition)
	case t.Slots < t.Cells:
		return fmt.Errorf("slots (%d) must be at least the number of cells (%d)", t.Slots, t.Cells)
	case t.Copies < 0:
		return fmt.Errorf("copies must be at least 1, not %d", t.Copies)
	case t.MapNodes < 0 || t.MapNodes > 7:
		return fmt.Errorf("map_nodes must be between 0 (no map group) and 7, not %d", t.MapNodes)
	case (t.AccessKey == "") != (t.SecretKey == ""):
		return fmt.Errorf("access_key and secret_key go together: give both or neither")
	case t.Guardrails != "" && t.Guardrails != GuardrailsOn && t.Guardrails != GuardrailsOff:
		return fmt.Errorf("guardrails must be %q or %q, not %q", GuardrailsOn, GuardrailsOff, t.Guardrails)
	case t.ReadLease != "" && t.ReadLease != "on" && t.ReadLease != "off":
		return fmt.Errorf("read_lease must be \"on\" or \"off\", not %q", t.ReadLease)
	}
	if err := t.Repair.Validate(); err != nil {
		return err
	}
	return t.validateTenants()
}

// CellIDs returns the ids of the cells, in order.
func (t Topology) CellIDs() []string {
	ids := make([]string, t.Cells)
	for i := range ids {
		ids[i] = ID(i)
	}
	return ids
}

// NodeSpec is one node the topology asks for.
type NodeSpec struct {
	ID   string
	Role Role
	Cell string // "" for gateways
}

// Nodes lists every node of the topology in start order: per cell index, placement,
// storage; then the map group; then the gateways.
func (t Topology) Nodes() []NodeSpec {
	var out []NodeSpec
	counts := map[Role]int{RoleIndex: t.IndexNodes, RolePlacement: t.PlacementNodes, RoleStorage: t.StorageNodes}
	for _, role := range Tiers {
		for _, c := range t.CellIDs() {
			for i := 0; i < counts[role]; i++ {
				out = append(out, NodeSpec{ID: NodeID(c, role, i), Role: role, Cell: c})
			}
		}
	}
	for i := 0; i < t.MapNodes; i++ {
		out = append(out, NodeSpec{ID: NodeID("", RoleMap, i), Role: RoleMap})
	}
	for i := 0; i < t.Gateways; i++ {
		out = append(out, NodeSpec{ID: NodeID("", RoleGateway, i), Role: RoleGateway})
	}
	return out
}

// NewCredentials makes a new pair of S3 credentials from crypto/rand: an access key of
// 20 upper-case letters and digits, as AWS's look, and a secret key of 40 characters
// that carry 240 random bits.
func NewCredentials() (accessKey, secretKey string, err error) {
	b := make([]byte, 10+30)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("make credentials: %w", err)
	}
	return "CELL" + base32.StdEncoding.EncodeToString(b[:10]), base64.RawURLEncoding.EncodeToString(b[10:]), nil
}
