package cli

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/localcluster"
)

// run runs cellctl in this process and returns its exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// checkOneLine checks that stderr is exactly one line mentioning want.
func checkOneLine(t *testing.T, stderr, want string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr is not one line: %q", stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q does not mention %q", stderr, want)
	}
	for _, bad := range []string{"goroutine", "panic", "Usage:"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr %q contains %q", stderr, bad)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"up", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"status", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"no-such-command"}, `unknown command "no-such-command"`},
		{[]string{"status", "extra"}, `unexpected argument "extra"`},
		{[]string{"status", "--output", "yaml"}, `--output "yaml"`},
		{[]string{"up", "--cells", "many"}, "invalid argument"},
		{[]string{"up", "--cells", "0", "--data-dir", "unused"}, "cells must be between 1 and 256"},
		{[]string{"up", "--log-format", "xml", "--data-dir", "unused"}, `--log-format "xml"`},
		{[]string{"daemon"}, "missing role"},
		{[]string{"daemon", "observer"}, `unknown role "observer"`},
		{[]string{"daemon", "janitor"}, `unknown role "janitor"`},
		{[]string{"daemon", "index", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"daemon", "index", "extra"}, `unexpected argument "extra"`},
		{[]string{"daemon", "index", "--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := run(t, tc.args...)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d (stderr %q)", code, ExitUsage, stderr)
			}
			checkOneLine(t, stderr, tc.want)
			if !strings.HasPrefix(stderr, "cellctl") {
				t.Errorf("stderr %q does not start with the command", stderr)
			}
		})
	}
	if _, err := os.Stat("unused"); err == nil {
		t.Error("a refused up created its data directory")
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	root := newRootCommand(nil, nil)
	cmds := [][]string{{"--help"}, {}}
	for _, c := range root.Commands() {
		cmds = append(cmds, []string{c.Name(), "--help"})
	}
	for _, role := range []string{"index", "placement", "storage", "gateway"} {
		cmds = append(cmds, []string{"daemon", role, "--help"})
	}
	for _, args := range cmds {
		code, out, stderr := run(t, args...)
		if code != ExitOK || stderr != "" || len(out) < 100 {
			t.Errorf("cellctl %v: exit %d, stderr %q, stdout %q", args, code, stderr, out)
		}
	}
	_, out, _ := run(t, "--help")
	for _, want := range []string{"Exit codes:", "0  success", "1  ", "2  usage error", "up", "status"} {
		if !strings.Contains(out, want) {
			t.Errorf("root help lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\n  daemon ") {
		t.Errorf("root help lists the hidden daemon command:\n%s", out)
	}
	_, out, _ = run(t, "daemon", "gateway", "--help")
	for _, want := range []string{"--topology", "--s3-addr", "--join", "--log-format"} {
		if !strings.Contains(out, want) {
			t.Errorf("gateway help lacks %s:\n%s", want, out)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != ExitOK || !strings.HasPrefix(out, "cellctl ") || !strings.Contains(out, "go1") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

func TestStatusWithoutCluster(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := run(t, "status", "--data-dir", dir)
	if code != ExitError || out != "" {
		t.Errorf("status on an empty dir: exit %d, stdout %q", code, out)
	}
	checkOneLine(t, stderr, "no cluster found")

	// A gossip address nobody answers on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	start := time.Now()
	code, _, stderr = run(t, "status", "--join", dead)
	if code != ExitError {
		t.Errorf("status --join %s: exit %d", dead, code)
	}
	checkOneLine(t, stderr, "no cluster is reachable")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("status took %s to give up", d)
	}

	// A cluster.json of a stopped cluster.
	f := localcluster.ClusterFile{Version: 1, Running: false, Topology: localcluster.Topology{Topology: cell.DefaultTopology()},
		Nodes: []localcluster.Node{{ID: "cell-0-index-0", Role: cell.RoleIndex, GossipAddr: dead}}}
	writeJSON(t, filepath.Join(dir, localcluster.ClusterFileName), f)
	code, _, stderr = run(t, "status", "--data-dir", dir)
	if code != ExitError {
		t.Errorf("status of a stopped cluster: exit %d", code)
	}
	checkOneLine(t, stderr, "is stopped")

	// One that says it runs, but nothing answers (its supervisor was killed).
	f.Running = true
	f.Nodes[0].Process = localcluster.ProcRunning
	writeJSON(t, filepath.Join(dir, localcluster.ClusterFileName), f)
	code, _, stderr = run(t, "status", "--data-dir", dir, "-o", "json")
	if code != ExitError {
		t.Errorf("status of a dead cluster: exit %d", code)
	}
	checkOneLine(t, stderr, "no cluster is reachable")
}

func TestStatusOrderAndTable(t *testing.T) {
	now := time.Now()
	seen := []cell.Node{
		{ID: "gateway-0", Role: cell.RoleGateway, State: cell.StateReady, PID: 9, Started: now},
		{ID: "cell-10-index-0", Role: cell.RoleIndex, Cell: "cell-10", State: cell.StateReady, PID: 3, Started: now},
		{ID: "cell-2-storage-1", Role: cell.RoleStorage, Cell: "cell-2", State: cell.StateReady, PID: 5, Started: now},
		{ID: "cell-2-index-0", Role: cell.RoleIndex, Cell: "cell-2", State: cell.StateRebuilding, Progress: 0.42, PID: 4, Started: now},
	}
	file := &localcluster.ClusterFile{Running: true, Nodes: []localcluster.Node{
		{ID: "cell-2-placement-0", Role: cell.RolePlacement, Cell: "cell-2", Process: localcluster.ProcKilled},
		{ID: "cell-2-index-0", Role: cell.RoleIndex, Cell: "cell-2", Process: localcluster.ProcRunning},
	}}
	rep := buildReport(seen, file, nil)
	var ids []string
	for _, n := range rep.Nodes {
		ids = append(ids, n.ID)
	}
	want := "cell-2-index-0 cell-2-placement-0 cell-2-storage-1 cell-10-index-0 gateway-0"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("order %s, want %s", got, want)
	}
	if rep.Total != 5 || rep.Ready != 3 || rep.Down != 1 {
		t.Errorf("counts: %+v", rep)
	}
	var buf bytes.Buffer
	printStatusTable(&buf, rep)
	out := buf.String()
	for _, want := range []string{"CELL", "rebuilding 42%", "down (killed)", "3 of 5 nodes ready, 1 down"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Columns line up: every row has NODE where the header has it.
	lines := strings.Split(out, "\n")
	col := strings.Index(lines[0], "NODE")
	for _, l := range lines[1:6] {
		if !strings.HasPrefix(l[col:], "cell-") && !strings.HasPrefix(l[col:], "gateway-") {
			t.Errorf("misaligned row %q", l)
		}
	}
}
