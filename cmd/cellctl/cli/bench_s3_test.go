package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cellarsim/cellar/bench/s3bench"
	"github.com/cellarsim/cellar/cell"
)

// TestBenchS3UsageErrors: a wrong option of bench s3 is a usage error, found before a
// request is sent or a cluster started.
func TestBenchS3UsageErrors(t *testing.T) {
	dir := t.TempDir()
	var requests atomic.Int64
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	defer gateway.Close()
	writeClusterFile(t, dir, cell.DefaultTopology(), gateway.URL)
	bench := func(args ...string) []string { return append([]string{"bench", "s3", "--data-dir", dir}, args...) }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{bench("--sizes", "4KB"), `--sizes: size "4KB": want a number of bytes`},
		{bench("--sizes", ""), "--sizes: empty size in the list"},
		{bench("--sizes", "0"), "--sizes: each size must be between 1B and 256MiB, not 0B"},
		{bench("--sizes", "4KiB,4096"), "--sizes: 4KiB is given twice"},
		{bench("--concurrency", "0"), "--concurrency must be between 1 and 1024, not 0"},
		{bench("--duration", "10ms"), "--duration must be between 100ms and 10m0s, not 10ms"},
		{bench("--passes", "0"), "--passes must be between 1 and 9, not 0"},
		{bench("--endpoint", "http://10.1.2.3:9000"), `--endpoint "http://10.1.2.3:9000" is not on 127.0.0.1`},
		{bench("--endpoint", "http://127.0.0.1:9000", "--start"), "--endpoint and --start do not go together"},
		{bench("--output", "yaml"), `--output "yaml": want text or json`},
	} {
		t.Run(strings.Join(tc.args[2:], " "), func(t *testing.T) {
			code, stdout, stderr := run(t, tc.args...)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d (stderr %q)", code, ExitUsage, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			checkOneLine(t, stderr, tc.want)
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("refused bench commands sent %d requests", n)
	}
	code, _, stderr := run(t, "bench", "s3", "--data-dir", filepath.Join(dir, "none"))
	if code == ExitOK || !strings.Contains(stderr, "no cluster in") || !strings.Contains(stderr, "--start") {
		t.Errorf("bench s3 without a cluster: exit %d, %q", code, stderr)
	}
}

// TestBenchS3JSON runs the bench, briefly, against an S3 server in place of a cluster
// (a second reference, with the cluster file's credentials) and checks what
// --output json prints.
func TestBenchS3JSON(t *testing.T) {
	dir := t.TempDir()
	target, err := s3bench.StartReference(filepath.Join(dir, "target"), "ak", "sk", "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	writeClusterFile(t, dir, cell.DefaultTopology(), target.Endpoint())
	code, stdout, stderr := run(t, "bench", "s3", "--data-dir", dir, "--sizes", "1KiB", "--concurrency", "2",
		"--duration", "200ms", "--passes", "1", "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep s3bench.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
	}
	if len(rep.Rows) != 2 || rep.Rows[0].Op != s3bench.OpPut || rep.Rows[1].Op != s3bench.OpGet || rep.Rows[0].SizeText != "1KiB" {
		t.Fatalf("rows %+v", rep.Rows)
	}
	for _, row := range rep.Rows {
		if row.Cellar.Ops == 0 || row.Reference.Ops == 0 || row.Cellar.Errors != 0 || row.Ratio.OpsPerSec == 0 {
			t.Errorf("%s: %+v", row.Op, row)
		}
	}
	if !strings.Contains(stderr, "pass 1 cellar PUT 1KiB") {
		t.Errorf("no progress on stderr: %q", stderr)
	}
}
