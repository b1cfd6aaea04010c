package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
)

// TestUsageErrorsDoNothing checks that a wrong option is a usage error (exit code 2,
// one line on stderr naming the flag, nothing on stdout) found before the command
// does anything: no object seeded, no request sent, no cluster started, no file
// written, no kill switch set.
func TestUsageErrorsDoNothing(t *testing.T) {
	dir := t.TempDir()
	var requests atomic.Int64
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	defer gateway.Close()
	writeClusterFile(t, dir, cell.DefaultTopology(), gateway.URL)
	upDir, composeDir := filepath.Join(dir, "up"), filepath.Join(dir, "compose")
	topoFile := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(topoFile, []byte("cells: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	load := func(args ...string) []string { return append([]string{"load", "--data-dir", dir}, args...) }
	up := func(args ...string) []string { return append([]string{"up", "--data-dir", upDir}, args...) }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{load("--rate", "-5"), "--rate must be above 0 and at most 5000 requests per second, not -5"},
		{load("--rate", "5001"), "--rate must be above 0"},
		{load("--rate", "lots"), `invalid argument "lots" for "--rate" flag`},
		{load("--duration", "0s"), "--duration must be above 0 and at most 1h0m0s, not 0s"},
		{load("--duration", "2h"), "--duration must be above 0 and at most 1h0m0s, not 2h0m0s"},
		{load("--rate", "0.5", "--duration", "1s"), "--duration must be long enough for one request at 0.5 per second"},
		{load("--keys", "0"), "--keys must be between 1 and 1000000, not 0"},
		{load("--keys", "2000000"), "--keys must be between 1 and 1000000"},
		{load("--max-in-flight", "0"), "--max-in-flight must be between 1 and 1024, not 0"},
		{load("--timeout", "-1s"), "--timeout must be above 0, not -1s"},
		{load("--key-dist", "pareto"), `--key-dist must be "uniform" or "zipf", not "pareto"`},
		{load("--mix", "FETCH=1"), `--mix: mix entry "FETCH=1"`},
		{load("--mix", "GET=0"), "--mix: "},
		{load("--sizes", "2GiB"), `--sizes: size entry "2GiB"`},
		{load("--buckets-per-cell", "0"), "--buckets-per-cell must be between 1 and 100, not 0"},
		{load("--endpoint", "http://10.1.2.3:9000"), `--endpoint "http://10.1.2.3:9000" is not on 127.0.0.1`},
		{load("--result-file", filepath.Join(dir, "no-such-dir", "r.json")), "--result-file"},
		{load("--output", "yaml"), `--output "yaml": want text or json`},
		{up("--output", "yaml"), `--output "yaml": want text or json`},
		{up("--index-nodes", "0"), "--index-nodes must be at least 1, not 0"},
		{up("--topology", topoFile, "--storage-nodes", "0"), "--storage-nodes must be at least 1, not 0"},
		{up("--partition", "tenant"), `--partition must be "bucket" or "key", not "tenant"`},
		{up("--access-key", "ak"), "--access-key and --secret-key go together"},
		{up("--access-key", "ak", "--secret-key", ""), "--access-key and --secret-key go together"},
		{[]string{"credentials", "--data-dir", dir, "-o", "yaml"}, `--output "yaml": want text, json or env`},
		{[]string{"version", "-o", "yaml"}, `--output "yaml"`},
		{[]string{"drill", "list", "-o", "yaml"}, `--output "yaml"`},
		{[]string{"drill", "halt", "--data-dir", dir, "-o", "yaml"}, `--output "yaml"`},
		{[]string{"drill", "resume", "--data-dir", dir, "-o", "yaml"}, `--output "yaml"`},
		{[]string{"drill", "status", "--data-dir", dir, "-o", "yaml"}, `--output "yaml"`},
		{[]string{"audit", "--data-dir", dir, "-o", "yaml"}, `--output "yaml"`},
		{[]string{"compose", "--topology", topoFile, "--out", composeDir, "-o", "yaml"}, `--output "yaml"`},
		{[]string{"completion"}, "want one shell: bash, zsh, fish or powershell"},
		{[]string{"completion", "tcsh"}, "want one shell"},
		{[]string{"completion", "bash", "zsh"}, "want one shell"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
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
		t.Errorf("refused load commands sent %d requests", n)
	}
	for _, p := range []string{upDir, composeDir, filepath.Join(dir, guard.HaltFileName)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a refused command created %s", p)
		}
	}
}

func TestCheckOutput(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"text", "text"}, {"json", "json"}, {"table", "text"}, {"yaml", ""}, {"", ""}, {"JSON", ""},
	} {
		got := tc.in
		err := checkOutput(&got)
		if tc.want == "" {
			if err == nil {
				t.Errorf("checkOutput(%q) accepted it", tc.in)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("checkOutput(%q): %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestTableIsText(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"audit"}, {"drill", "status"}} {
		args = append(args, "--data-dir", dir)
		_, text, _ := run(t, append(args, "-o", "text")...)
		code, table, stderr := run(t, append(args, "--output", "table")...)
		if code != ExitOK || table != text || text == "" {
			t.Errorf("%v: --output table gave exit %d, %q (stderr %q); --output text %q", args, code, table, stderr, text)
		}
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range completionShells {
		code, out, stderr := run(t, "completion", shell)
		if code != ExitOK || stderr != "" || len(out) < 1000 || !strings.Contains(out, "cellctl") {
			t.Errorf("completion %s: exit %d, stderr %q, %d bytes of script", shell, code, stderr, len(out))
		}
	}
	// The scripts call back into cellctl, which completes commands and flag values.
	_, out, _ := run(t, "__complete", "dr")
	if !strings.Contains(out, "drain") || !strings.Contains(out, "drill") {
		t.Errorf("completion of 'dr': %q", out)
	}
	_, out, _ = run(t, "__complete", "load", "--output", "")
	if !strings.HasPrefix(out, "text\njson\n") {
		t.Errorf("completion of load --output: %q", out)
	}
	_, out, _ = run(t, "--help")
	if !strings.Contains(out, "completion") {
		t.Errorf("root help does not list completion:\n%s", out)
	}
}

func TestVersionOf(t *testing.T) {
	platform := fmt.Sprintf("%s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"go install @version", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "cellctl v1.2.3 " + platform},
		{"go build in a checkout", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260102030405-0123456789ab+dirty"}, Settings: vcs("true")},
			"cellctl v0.0.0-20260102030405-0123456789ab+dirty (commit 0123456789ab of 2026-01-02T03:04:05Z, modified) " + platform},
		{"clean checkout, no pseudo-version", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")},
			"cellctl (devel) (commit 0123456789ab of 2026-01-02T03:04:05Z) " + platform},
		{"go run", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "cellctl (devel) " + platform},
		{"no build information", nil, "cellctl (devel) " + platform},
	} {
		if got := versionOf(tc.bi).String(); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestVersionJSON(t *testing.T) {
	code, out, stderr := run(t, "version", "--output", "json")
	if code != ExitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	want := map[string]any{"go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s: %v, want %v", k, v[k], w)
		}
	}
	if s, _ := v["version"].(string); s == "" {
		t.Errorf("no version in %s", out)
	}
	if _, ok := v["modified"].(bool); !ok {
		t.Errorf("no modified in %s", out)
	}
}

func TestDrillListJSON(t *testing.T) {
	code, out, stderr := run(t, "drill", "list", "--output", "json")
	if code != ExitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var list []scenarioEntry
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("not a JSON list of scenarios: %v\n%s", err, out)
	}
	names := map[string]bool{}
	for _, s := range list {
		names[s.Name] = true
		if s.Description == "" {
			t.Errorf("%s has no description", s.Name)
		}
	}
	if !names["smoke"] || !names["s3-2017"] {
		t.Errorf("scenarios %v lack smoke or s3-2017", names)
	}
	_, text, _ := run(t, "drill", "list")
	if !strings.HasPrefix(text, "NAME ") || strings.Count(text, "\n") != len(list)+1 {
		t.Errorf("drill list:\n%s", text)
	}
}

// TestUpHelpShowsTheEmbeddedDefaults checks that up's flags default to the embedded
// topology and that its help says so, numbers included.
func TestUpHelpShowsTheEmbeddedDefaults(t *testing.T) {
	def := cell.DefaultTopology()
	flags := newUpCommand().Flags()
	for flag, want := range map[string]string{
		"cells": strconv.Itoa(def.Cells), "index-nodes": strconv.Itoa(def.IndexNodes),
		"placement-nodes": strconv.Itoa(def.PlacementNodes), "storage-nodes": strconv.Itoa(def.StorageNodes),
		"gateways": strconv.Itoa(def.Gateways), "partition": def.Partition, "s3-addr": def.S3Addr,
		"auth": strconv.FormatBool(def.Auth),
	} {
		f := flags.Lookup(flag)
		if f == nil || f.DefValue != want {
			t.Errorf("--%s: default %v, want %s", flag, f, want)
		}
	}

	code, help, _ := run(t, "up", "--help")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		fmt.Sprintf(`--cells int\s+number of cells \(default %d\)`, def.Cells),
		fmt.Sprintf(`--index-nodes int\s+index nodes per cell.*\(default %d\)`, def.IndexNodes),
		fmt.Sprintf(`--storage-nodes int\s+storage nodes per cell \(default %d\)`, def.StorageNodes),
		fmt.Sprintf(`--s3-addr string\s+.*\(default "%s"\)`, regexp.QuoteMeta(def.S3Addr)),
		regexp.QuoteMeta(fmt.Sprintf("%d cells of %d index, %d placement and %d storage nodes",
			def.Cells, def.IndexNodes, def.PlacementNodes, def.StorageNodes)),
		`-o, --output string\s+output format: text or json`,
	} {
		if !regexp.MustCompile(want).MatchString(help) {
			t.Errorf("up --help does not match %s:\n%s", want, help)
		}
	}
	if strings.Contains(help, "default from the topology") {
		t.Errorf("up --help still says the default is elsewhere:\n%s", help)
	}
}

func TestUpReadyText(t *testing.T) {
	r := upReady{S3Endpoint: "http://127.0.0.1:9000", AccessKey: "ak", SecretKey: "sk", NewCredentials: true,
		CredentialsFile: "/abs/data/credentials.json", Region: "us-east-1", Auth: false,
		DataDir: "/abs/data", ClusterFile: "/abs/data/cluster.json", LogDir: "/abs/data/logs", Nodes: 25, SupervisorPID: 42}
	var b strings.Builder
	printReady(&b, r, "./data")
	for _, want := range []string{"S3 endpoint: http://127.0.0.1:9000\n", "Access key:  ak\n", "Secret key:  sk\n", "shown this once",
		`eval "$(cellctl credentials --data-dir ./data --output env)"`,
		"cellctl status --data-dir ./data\n", "Node logs:      ./data/logs/\n", "Press Ctrl-C", "AUTHENTICATION IS OFF"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("ready text lacks %q:\n%s", want, b.String())
		}
	}
	j, _ := json.Marshal(r)
	for _, key := range []string{"s3_endpoint", "access_key", "secret_key", "new_credentials", "credentials_file", "region", "auth",
		"data_dir", "cluster_file", "log_dir", "nodes", "supervisor_pid"} {
		if !strings.Contains(string(j), `"`+key+`":`) {
			t.Errorf("ready JSON lacks %s: %s", key, j)
		}
	}

	// Credentials the cluster had already: the secret is not printed again.
	r.SecretKey, r.NewCredentials = "", false
	b.Reset()
	printReady(&b, r, "./data")
	if !strings.Contains(b.String(), "Secret key:  in /abs/data/credentials.json ('cellctl credentials' shows it)") {
		t.Errorf("ready text of a cluster with credentials:\n%s", b.String())
	}
	if j, _ := json.Marshal(r); strings.Contains(string(j), "secret_key") {
		t.Errorf("ready JSON shows a secret key it did not make: %s", j)
	}
}

func TestComposeJSON(t *testing.T) {
	dir := t.TempDir()
	topoFile := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(topoFile, []byte("cells: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, "compose", "--topology", topoFile, "--out", dir, "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res struct{ Files []string }
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Files) < 3 {
		t.Fatalf("compose JSON %q: %v", out, err)
	}
	for _, f := range res.Files {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("listed %s, not written: %v", f, err)
		}
	}
}
