package localcluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cellarsim/cellar/cell"
)

// ClusterFileName is the file in the data directory that says what runs there.
const ClusterFileName = "cluster.json"

// ErrNoClusterFile is returned by ReadClusterFile when the directory has no cluster.json.
var ErrNoClusterFile = errors.New("no " + ClusterFileName)

// ClusterFile is the content of DIR/cluster.json: what a Supervisor runs, so that other
// commands (cellctl status, drills) can find the cluster. The supervisor rewrites it on
// every change; when the cluster is stopped, Running is false and no pid is left in it.
type ClusterFile struct {
	Version       int       `json:"version"`
	Running       bool      `json:"running"`
	SupervisorPID int       `json:"supervisor_pid,omitempty"`
	Started       time.Time `json:"started,omitzero"`
	Updated       time.Time `json:"updated"`
	DataDir       string    `json:"data_dir"`
	S3Endpoint    string    `json:"s3_endpoint"`
	AccessKey     string    `json:"access_key"`
	SecretKey     string    `json:"secret_key"`
	Region        string    `json:"region"`
	FastGossip    bool      `json:"fast_gossip"`
	Topology      Topology  `json:"topology"`
	Nodes         []Node    `json:"nodes"`
	// ControlAddr is where the supervisor serves its node controls (see ServeControl);
	// requests carry ControlToken. Empty when no control endpoint runs.
	ControlAddr  string `json:"control_addr,omitempty"`
	ControlToken string `json:"control_token,omitempty"`
	// ControlTLS says the control endpoint serves mutual TLS: clients show the
	// operator's certificate (DataDir/pki/operator.pem) besides the token.
	ControlTLS bool `json:"control_tls,omitempty"`
}

// GossipAddrs lists the gossip addresses of the nodes whose process runs (all nodes if
// none is known to run), index nodes first: the seeds to join the cluster's gossip.
func (f *ClusterFile) GossipAddrs() []string {
	var first, rest []string
	for _, n := range f.Nodes {
		if n.GossipAddr == "" || (f.Running && n.Process != ProcRunning && n.Process != ProcStarting) {
			continue
		}
		if n.Role == cell.RoleIndex {
			first = append(first, n.GossipAddr)
		} else {
			rest = append(rest, n.GossipAddr)
		}
	}
	if len(first)+len(rest) == 0 {
		for _, n := range f.Nodes {
			if n.GossipAddr != "" {
				rest = append(rest, n.GossipAddr)
			}
		}
	}
	return append(first, rest...)
}

// ReadClusterFile reads DIR/cluster.json. A directory without one gives an error that
// wraps ErrNoClusterFile.
func ReadClusterFile(dir string) (*ClusterFile, error) {
	var f ClusterFile
	if err := readJSON(filepath.Join(dir, ClusterFileName), ErrNoClusterFile, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// readJSON reads the JSON file at path into v. A missing file gives an error that
// wraps missing.
func readJSON(path string, missing error, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", path, missing)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

// write replaces DIR/cluster.json atomically. It holds the cluster's credentials and
// its control token, so only its owner may read it.
func (f *ClusterFile) write(dir string) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return writePrivate(filepath.Join(dir, ClusterFileName), append(b, '\n'))
}

// Topology is a cell.Topology that reads and writes JSON with the same snake_case keys
// as its YAML form (cells, index_nodes, s3_addr, ...).
type Topology struct{ cell.Topology }

// MarshalJSON writes the topology with its YAML keys, in the YAML order.
func (t Topology) MarshalJSON() ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(t.Topology); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("topology encodes as YAML kind %d, not a mapping", doc.Kind)
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i := 0; i+1 < len(doc.Content); i += 2 {
		var v any
		if err := doc.Content[i+1].Decode(&v); err != nil {
			return nil, err
		}
		k, err := json.Marshal(doc.Content[i].Value)
		if err != nil {
			return nil, err
		}
		val, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(val)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON reads a topology written by MarshalJSON; keys it lacks keep the
// embedded defaults.
func (t *Topology) UnmarshalJSON(b []byte) error {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	y, err := yaml.Marshal(m)
	if err != nil {
		return err
	}
	t.Topology = cell.DefaultTopology()
	return yaml.Unmarshal(y, &t.Topology)
}
