package node

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/testaddr"
)

// specs has a node of every role with every field its daemon takes.
var specs = map[string]Spec{
	"index": {
		ID: "cell-0-index-1", Role: cell.RoleIndex, Cell: "cell-0",
		GRPCAddr: "0.0.0.0:7000", AdminAddr: "0.0.0.0:7001", GossipAddr: "0.0.0.0:7946",
		AdvertiseHost: "cell-0-index-1", Join: []string{"gateway-0:7946", "cell-0-index-0:7946"},
		FastGossip: true, LogFormat: "json", StopTimeout: 2 * time.Second,
		DataDir: "/data", RaftAddr: "0.0.0.0:7100", RaftAdvertise: "cell-0-index-1:7100",
		Peers:             []string{"cell-0-index-0=cell-0-index-0:7100", "cell-0-index-1=cell-0-index-1:7100"},
		SnapshotThreshold: 64, TrailingLogs: 16,
	},
	"placement": {
		ID: "cell-0-placement-0", Role: cell.RolePlacement, Cell: "cell-0", GRPCAddr: "127.0.0.1:20001",
		Repair:  cell.RepairPacing{Interval: 10 * time.Second, Rate: 16 << 20, Ops: 200, Window: 4, ScrubRate: -1},
		GCGrace: 2 * time.Minute,
	},
	"storage": {ID: "cell-0-storage-0", Role: cell.RoleStorage, Cell: "cell-0", DataDir: "/tmp/s"},
	"gateway": {
		ID: "gateway-0", Role: cell.RoleGateway, GossipAddr: "127.0.0.1:20002",
		S3Addr: "127.0.0.1:9000", TopologyFile: "/etc/cellar/topology.yaml",
	},
}

func TestArgs(t *testing.T) {
	want := map[string][]string{
		"index": {
			"--id=cell-0-index-1", "--cell=cell-0",
			"--grpc-addr=0.0.0.0:7000", "--admin-addr=0.0.0.0:7001", "--gossip-addr=0.0.0.0:7946",
			"--advertise-host=cell-0-index-1", "--join=gateway-0:7946,cell-0-index-0:7946", "--fast-gossip",
			"--log-format=json", "--stop-timeout=2s", "--data-dir=/data",
			"--raft-addr=0.0.0.0:7100", "--raft-advertise=cell-0-index-1:7100",
			"--peers=cell-0-index-0=cell-0-index-0:7100,cell-0-index-1=cell-0-index-1:7100",
			"--raft-snapshot-threshold=64", "--raft-trailing-logs=16",
		},
		"placement": {
			"--id=cell-0-placement-0", "--cell=cell-0", "--grpc-addr=127.0.0.1:20001",
			"--repair-interval=10s", "--repair-rate=16777216", "--repair-ops=200", "--repair-workers=4", "--scrub-rate=-1",
			"--gc-grace=2m0s",
		},
		"storage": {"--id=cell-0-storage-0", "--cell=cell-0", "--data-dir=/tmp/s"},
		"gateway": {
			"--id=gateway-0", "--gossip-addr=127.0.0.1:20002",
			"--s3-addr=127.0.0.1:9000", "--topology=/etc/cellar/topology.yaml",
		},
	}
	for name, spec := range specs {
		if got := spec.Args(); !slices.Equal(got, want[name]) {
			t.Errorf("%s: Args() =\n  %q\nwant\n  %q", name, got, want[name])
		}
	}
	if got := (Spec{Role: cell.RoleStorage}).Args(); len(got) != 0 {
		t.Errorf("an empty spec renders %q, want no flags", got)
	}
}

// Every flag Args renders is one the role's daemon takes, and it reads back the value
// the spec has: the command line means what the spec says.
func TestArgsAreWhatTheDaemonReads(t *testing.T) {
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			cmd, ok := Command(spec.Role)
			if !ok {
				t.Fatalf("no command for role %q", spec.Role)
			}
			if err := daemon.CheckArgs(cmd, spec.Args()); err != nil {
				t.Fatalf("the daemon refuses %q: %v", spec.Args(), err)
			}
			fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
			cmd.Flags(fs)
			fs.String("log-format", "text", "") // the bootstrap's own flag
			if err := fs.Parse(spec.Args()); err != nil {
				t.Fatal(err)
			}
			for _, arg := range spec.Args() {
				flagName, value, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
				f := fs.Lookup(flagName)
				got := f.Value.String()
				if sv, ok := f.Value.(pflag.SliceValue); ok {
					got = strings.Join(sv.GetSlice(), ",")
				}
				if f.Value.Type() == "bool" {
					value = "true"
				}
				if got != value {
					t.Errorf("--%s reads back %q, want %q", flagName, got, value)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		wantErr string // "" for valid
	}{
		{"index", specs["index"], ""},
		{"placement", specs["placement"], ""},
		{"storage", specs["storage"], ""},
		{"gateway", specs["gateway"], ""},
		{"no role", Spec{ID: "x"}, `unknown role ""`},
		{"observer", Spec{ID: "x", Role: cell.RoleObserver}, `unknown role "observer"`},
		{"gateway with data", Spec{ID: "g", Role: cell.RoleGateway, DataDir: "/d"}, "a gateway node takes no --data-dir"},
		{"placement with data", Spec{ID: "p", Role: cell.RolePlacement, DataDir: "/d"}, "takes no --data-dir"},
		{"storage with peers", Spec{ID: "s", Role: cell.RoleStorage, Peers: []string{"a=b:1"}}, "takes no --peers"},
		{"storage with raft tuning", Spec{ID: "s", Role: cell.RoleStorage, TrailingLogs: 4}, "takes no --raft-trailing-logs"},
		{"index with an S3 address", Spec{ID: "i", Role: cell.RoleIndex, S3Addr: "127.0.0.1:9000"}, "takes no --s3-addr"},
		{"index with a topology", Spec{ID: "i", Role: cell.RoleIndex, TopologyFile: "t.yaml"}, "takes no --topology"},
		{"storage with repair pacing", Spec{ID: "s", Role: cell.RoleStorage, Repair: cell.RepairPacing{Ops: 10}}, "takes no --repair-interval, --repair-rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}

func TestCommandOfEveryRole(t *testing.T) {
	for _, role := range daemon.Roles {
		if _, ok := Command(role); !ok {
			t.Errorf("no command for role %s", role)
		}
	}
	if _, ok := Command(cell.RoleObserver); ok {
		t.Error("a command for observers, which run no daemon")
	}
}

func TestIndexPeers(t *testing.T) {
	topo := cell.DefaultTopology()
	topo.IndexNodes = 3
	got := IndexPeers(topo, "cell-2", func(id string) string { return id + ".svc:7100" })
	want := []string{
		"cell-2-index-0=cell-2-index-0.svc:7100",
		"cell-2-index-1=cell-2-index-1.svc:7100",
		"cell-2-index-2=cell-2-index-2.svc:7100",
	}
	if !slices.Equal(got, want) {
		t.Errorf("IndexPeers = %q, want %q", got, want)
	}
}

// Run runs the node a spec describes: a storage node here, on its own addresses and
// data directory, until its context ends.
func TestRunStorageNode(t *testing.T) {
	spec := Spec{
		ID: "cell-0-storage-0", Role: cell.RoleStorage, Cell: "cell-0",
		GRPCAddr: testaddr.Free(t), AdminAddr: testaddr.Free(t), GossipAddr: testaddr.Free(t),
		FastGossip: true, StopTimeout: 2 * time.Second, DataDir: t.TempDir(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, spec, RunOptions{}) }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + spec.AdminAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("node stopped before it was ready: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("storage node not ready in time")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after a clean stop: %v", err)
	}
}

func TestRunRefusesInvalidSpec(t *testing.T) {
	err := Run(context.Background(), Spec{ID: "g", Role: cell.RoleGateway, DataDir: "/d"}, RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "takes no --data-dir") {
		t.Errorf("Run of a gateway with a data directory: %v", err)
	}
}
