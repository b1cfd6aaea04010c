package localcluster

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

func TestTopologyJSONRoundTrip(t *testing.T) {
	in := cell.DefaultTopology()
	in.Cells, in.StorageNodes, in.Partition, in.S3Addr = 3, 5, cell.PartitionByKey, "127.0.0.1:9100"
	b, err := json.Marshal(Topology{in})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"cells":3`, `"storage_nodes":5`, `"partition":"key"`, `"s3_addr":"127.0.0.1:9100"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("topology JSON %s lacks %s", b, key)
		}
	}
	if !strings.HasPrefix(string(b), `{"cells":3,`) {
		t.Errorf("topology JSON does not keep the YAML order: %s", b)
	}
	var out Topology
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out.Topology, in) {
		t.Errorf("round trip: got %+v, want %+v", out.Topology, in)
	}

	// Keys a file lacks keep the defaults.
	var partial Topology
	if err := json.Unmarshal([]byte(`{"cells":2}`), &partial); err != nil {
		t.Fatal(err)
	}
	want := cell.DefaultTopology()
	want.Cells = 2
	if !reflect.DeepEqual(partial.Topology, want) {
		t.Errorf("partial: got %+v, want %+v", partial.Topology, want)
	}
}

func TestClusterFileWriteRead(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadClusterFile(dir); !errors.Is(err, ErrNoClusterFile) {
		t.Fatalf("ReadClusterFile of an empty dir: %v, want ErrNoClusterFile", err)
	}
	f := &ClusterFile{
		Version: 1, Running: true, DataDir: dir, S3Endpoint: "http://127.0.0.1:9000",
		Topology: Topology{cell.DefaultTopology()},
		Nodes: []Node{
			{ID: "cell-0-storage-0", Role: cell.RoleStorage, Cell: "cell-0", Process: ProcRunning, PID: 10, GossipAddr: "127.0.0.1:2"},
			{ID: "cell-0-index-0", Role: cell.RoleIndex, Cell: "cell-0", Process: ProcRunning, PID: 11, GossipAddr: "127.0.0.1:1"},
			{ID: "cell-1-index-0", Role: cell.RoleIndex, Cell: "cell-1", Process: ProcExited, GossipAddr: "127.0.0.1:3"},
		},
	}
	if err := f.write(dir); err != nil {
		t.Fatal(err)
	}
	got, err := ReadClusterFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Nodes, f.Nodes) || !reflect.DeepEqual(got.Topology, f.Topology) {
		t.Errorf("read back %+v, want %+v", got, f)
	}
	// Seeds: running nodes only, index nodes first.
	if seeds := got.GossipAddrs(); !reflect.DeepEqual(seeds, []string{"127.0.0.1:1", "127.0.0.1:2"}) {
		t.Errorf("GossipAddrs = %v", seeds)
	}
}
