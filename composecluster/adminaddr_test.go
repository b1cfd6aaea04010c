package composecluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill"
)

// inspectDocker writes a docker command for the compose project "cellartest" whose
// every node of deploy/topology.yaml runs, but cell-2-placement-0, which is stopped;
// docker inspect gives each running container the address 127.0.0.1 on the
// project's front network.
func inspectDocker(t *testing.T, topo cell.Topology) string {
	t.Helper()
	dir := t.TempDir()
	var ps strings.Builder
	var list []map[string]any
	for _, n := range topo.Nodes() {
		state := "running"
		if n.ID == "cell-2-placement-0" {
			state = "exited"
		}
		fmt.Fprintf(&ps, "id-%s %s %s\n", n.ID, n.ID, state)
		k := map[string]any{"Id": "id-" + n.ID,
			"State":  map[string]any{"Status": state, "Running": state == "running"},
			"Config": map[string]any{"Labels": map[string]string{"com.docker.compose.service": n.ID}},
			"NetworkSettings": map[string]any{"Networks": map[string]any{
				"cellartest_cellar": map[string]string{"IPAddress": "127.0.0.1"}}}}
		if state != "running" {
			k["NetworkSettings"] = map[string]any{"Networks": map[string]any{}}
		}
		list = append(list, k)
	}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"ps.txt": []byte(ps.String()), "inspect.json": b} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := `#!/bin/sh
case "$1" in
version) echo 20.10.24 ;;
ps)
	case "$*" in *working_dir*) exit 0 ;; esac
	cat ` + filepath.Join(dir, "ps.txt") + ` ;;
inspect) cat ` + filepath.Join(dir, "inspect.json") + ` ;;
*)
	echo "fake docker: $1 not expected here" >&2
	exit 1 ;;
esac
`
	docker := filepath.Join(dir, "docker")
	if err := os.WriteFile(docker, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return docker
}

// A compose cluster tells a drill where each node's admin server is (its address on
// the front network, at the admin port), so that a drill on it reads the repair
// figures of every cell's placement nodes and its report has the repair section, as
// on a cluster of 'cellctl up'.
func TestDrillReadsRepairFiguresOfAComposeCluster(t *testing.T) {
	topo, err := cell.LoadTopology("../deploy/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Every node's admin server, as the host reaches it: the gossip view at /members
	// (every node ready, the first index node of each cell leading) and cell-0's
	// placement nodes' repair figures at /status.
	var reads atomic.Int64
	started := time.Now().Add(-time.Hour)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/members":
			var nodes []cell.Node
			for _, n := range topo.Nodes() {
				if n.ID == "cell-2-placement-0" {
					continue
				}
				nodes = append(nodes, cell.Node{ID: n.ID, Role: n.Role, Cell: n.Cell, State: cell.StateReady, Started: started,
					Leader: n.Role == cell.RoleIndex && strings.HasSuffix(n.ID, "-0"), GroupSize: topo.IndexNodes})
			}
			_ = json.NewEncoder(w).Encode(nodes)
		case "/status":
			// The first round of readings (cell-0's and cell-1's placement nodes;
			// cell-2's is stopped) before the refill, every later one after it.
			g := map[string]float64{"repair_leading": 1, "repair_passes": 7, "repair_objects_repaired": 5, "repair_bytes": 5120}
			if reads.Add(1) > 2 {
				g = map[string]float64{"repair_leading": 1, "repair_passes": 8, "repair_objects_repaired": 45, "repair_bytes": 46080,
					"repair_last_pass_seconds": 0.5}
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"started_unix_nano": started.UnixNano(), "gauges": g})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	_, portText, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	port, _ := strconv.Atoi(portText)

	c, err := Open(context.Background(), composeFile, Options{Docker: inspectDocker(t, topo), Project: "cellartest"})
	if err != nil {
		t.Fatal(err)
	}
	c.adminPort = port
	ctx := context.Background()

	var _ drill.AdminAddresser = c
	if addr, err := c.AdminAddr(ctx, "cell-0-placement-0"); err != nil || addr != net.JoinHostPort("127.0.0.1", portText) {
		t.Errorf("AdminAddr of a running node: %q, %v; want its front network address at the admin port", addr, err)
	}
	if _, err := c.AdminAddr(ctx, "cell-2-placement-0"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("AdminAddr of a stopped node: %v", err)
	}
	if _, err := c.AdminAddr(ctx, "cell-9-placement-0"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("AdminAddr of an unknown node: %v, want ErrUnknownNode", err)
	}

	sc, err := drill.ParseScenario([]byte("name: repair\ntarget: cell-0\nsteps:\n  - wait: 10ms\n"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := drill.RunScenario(ctx, drill.Env{Topology: topo, Dir: t.TempDir(), Cluster: c, SampleEvery: 10 * time.Millisecond}, sc)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rep.Repair {
		got = append(got, fmt.Sprintf("%s: %d objects", r.Cell, r.ObjectsRepaired))
	}
	if strings.Join(got, ", ") != "cell-0: 40 objects, cell-1: 40 objects" {
		t.Errorf("repair section of a drill on a compose cluster: %v; want cell-0 and cell-1 with the refill of 40 objects", got)
	}
}
