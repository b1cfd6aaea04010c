package cell

import (
	_ "embed"
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
	// Partition is "bucket" (default) or "key".
	Partition string `yaml:"partition"`
	// Slots in the slot table: hash(partition key) mod Slots picks a slot, the slot a cell.
	Slots int `yaml:"slots"`
	// S3Addr is where the first gateway listens.
	S3Addr string `yaml:"s3_addr"`
	// Credentials clients sign requests with.
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	Region    string `yaml:"region"`
	// Auth makes the gateways verify every request's AWS Signature V4 against the
	// credentials above (the default). Off, anyone who can reach a gateway can read
	// and write everything: for workshops only.
	Auth bool `yaml:"auth"`
	// UploadMaxAge is how old a multipart upload may grow before the gateways abort it
	// and reclaim its parts ("24h"; 0 means 24 hours, negative never).
	UploadMaxAge time.Duration `yaml:"upload_max_age"`
}

// DefaultTopology returns the embedded defaults.
func DefaultTopology() Topology {
	var t Topology
	if err := yaml.Unmarshal(defaultsYAML, &t); err != nil {
		panic("cell: embedded defaults.yaml: " + err.Error())
	}
	return t
}

// LoadTopology reads a YAML file over the embedded defaults.
func LoadTopology(path string) (Topology, error) {
	t := DefaultTopology()
	b, err := os.ReadFile(path)
	if err != nil {
		return t, fmt.Errorf("read topology: %w", err)
	}
	if err := yaml.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("parse topology %s: %w", path, err)
	}
	return t, t.Validate()
}

// Validate reports the first thing wrong with t, in words an operator can act on.
func (t Topology) Validate() error {
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
	case t.Auth && (t.AccessKey == "" || t.SecretKey == ""):
		return fmt.Errorf("auth is on but access_key or secret_key is empty")
	}
	return nil
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
// storage; then the gateways.
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
	for i := 0; i < t.Gateways; i++ {
		out = append(out, NodeSpec{ID: NodeID("", RoleGateway, i), Role: RoleGateway})
	}
	return out
}
