package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/loadgen"
	"github.com/cellarsim/cellar/localcluster"
)

// writeClusterFile writes a cluster.json for a running cluster of topo whose gateway is
// at endpoint.
func writeClusterFile(t *testing.T, dir string, topo cell.Topology, endpoint string, mut ...func(*localcluster.ClusterFile)) {
	t.Helper()
	f := localcluster.ClusterFile{Version: 1, Running: true, DataDir: dir, S3Endpoint: endpoint,
		AccessKey: "ak", SecretKey: "sk", Region: "us-east-1", Topology: localcluster.Topology{Topology: topo}}
	for _, spec := range topo.Nodes() {
		f.Nodes = append(f.Nodes, localcluster.Node{ID: spec.ID, Role: spec.Role, Cell: spec.Cell, Process: localcluster.ProcRunning})
	}
	for _, m := range mut {
		m(&f)
	}
	b, _ := json.Marshal(f)
	if err := os.WriteFile(filepath.Join(dir, localcluster.ClusterFileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// cellGateway answers every S3 request successfully as the cell the slot table gives
// its bucket, except that cells in down answer 503 ServiceUnavailable.
func cellGateway(t *testing.T, topo cell.Topology, down string) *httptest.Server {
	_, home := loadgen.Buckets(topo, "load", 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bucket := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]
		w.Header().Set(loadgen.HeaderCell, home[bucket])
		if home[bucket] == down {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<Error><Code>ServiceUnavailable</Code><Message>no quorum</Message></Error>`)
			return
		}
		if r.URL.Query().Has("list-type") {
			fmt.Fprint(w, `<ListBucketResult><Name>b</Name></ListBucketResult>`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLoadCommand(t *testing.T) {
	topo := cell.DefaultTopology()
	topo.Cells = 2
	dir := t.TempDir()
	srv := cellGateway(t, topo, cell.ID(1))
	writeClusterFile(t, dir, topo, srv.URL)

	code, out, stderr := run(t, "load", "--data-dir", dir, "--rate", "100", "--duration", "500ms", "--no-seed",
		"--sizes", "1KiB", "--output", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res loadgen.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not a JSON result: %v\n%s", err, out)
	}
	c0, c1 := res.Cells[cell.ID(0)], res.Cells[cell.ID(1)]
	if res.Overall.Requests != 50 || c0.Errors != 0 || c0.OK == 0 || c1.ErrorCodes["ServiceUnavailable"] != c1.Requests {
		t.Errorf("result: overall %+v, cell-0 %+v, cell-1 %+v", res.Overall, c0.Summary, c1.Summary)
	}
	if !strings.Contains(stderr, "sent 50/50") && !strings.Contains(stderr, "sending 50 requests") {
		t.Errorf("no progress on stderr: %q", stderr)
	}

	code, out, _ = run(t, "load", "--data-dir", dir, "--rate", "40", "--duration", "250ms", "--sizes", "1KiB", "--no-seed")
	if code != ExitOK {
		t.Fatalf("table: exit %d", code)
	}
	for _, want := range []string{"CELL", cell.ID(0), cell.ID(1), "ServiceUnavailable=", "OPERATION", "GET"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestLoadCommandErrors(t *testing.T) {
	topo := cell.DefaultTopology()
	dir := t.TempDir()
	code, _, stderr := run(t, "load", "--data-dir", dir)
	if code != ExitError {
		t.Errorf("no cluster: exit %d", code)
	}
	checkOneLine(t, stderr, "cellctl up")

	writeClusterFile(t, dir, topo, "http://10.1.2.3:9000")
	code, _, stderr = run(t, "load", "--data-dir", dir, "--duration", "1s")
	if code != ExitUsage {
		t.Errorf("remote endpoint: exit %d", code)
	}
	checkOneLine(t, stderr, "not on 127.0.0.1")

	for _, args := range [][]string{
		{"--rate", "0"}, {"--rate", "100000"}, {"--duration", "3h"}, {"--mix", "FETCH=1"}, {"--sizes", "2GiB"},
		{"--key-dist", "pareto"}, {"--output", "yaml"}, {"--buckets-per-cell", "0"},
	} {
		writeClusterFile(t, dir, topo, "http://127.0.0.1:1")
		code, _, stderr := run(t, append([]string{"load", "--data-dir", dir, "--no-seed"}, args...)...)
		if code != ExitUsage {
			t.Errorf("%v: exit %d (%s)", args, code, stderr)
		}
	}

	writeClusterFile(t, dir, topo, "http://127.0.0.1:1", func(f *localcluster.ClusterFile) { f.Running = false })
	code, _, stderr = run(t, "load", "--data-dir", dir)
	if code != ExitError {
		t.Errorf("stopped cluster: exit %d", code)
	}
	checkOneLine(t, stderr, "not running")
}

func TestLoadSeedsFirstAndStopsWhenSeedingFails(t *testing.T) {
	topo := cell.DefaultTopology()
	topo.Cells = 2
	dir := t.TempDir()
	writeClusterFile(t, dir, topo, cellGateway(t, topo, cell.ID(1)).URL)
	code, out, stderr := run(t, "load", "--data-dir", dir, "--rate", "10", "--duration", "1s", "--keys", "2")
	if code != ExitError || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	if !strings.Contains(stderr, "seeding failed, so no load was sent") || !strings.Contains(stderr, "ServiceUnavailable") {
		t.Errorf("stderr %q", stderr)
	}
}
