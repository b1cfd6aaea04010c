package localcluster_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cmd/cellctl/cli"
	"github.com/cellarsim/cellar/localcluster"
)

// The supervisor's children are this test binary, re-executed as cellctl: the same
// re-exec 'cellctl up' does, with no build step.
const childEnv = "CELLAR_LOCALCLUSTER_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is a progress writer the test can read while the supervisor writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testOptions(t *testing.T, progress *syncBuffer, onExit func(localcluster.Node, error)) localcluster.Options {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return localcluster.Options{
		FastGossip:   true,
		ReadyTimeout: 30 * time.Second,
		StopTimeout:  5 * time.Second,
		Command: func(role cell.Role) (string, []string) {
			return exe, []string{"daemon", string(role)}
		},
		Env:      []string{childEnv + "=1"},
		Progress: progress,
		OnExit:   onExit,
	}
}

func smallTopology(t *testing.T) cell.Topology {
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.StorageNodes = 1, 1, 2
	topo.S3Addr = freeAddr(t)
	return topo
}

func isReady(adminAddr string) bool {
	resp, err := http.Get("http://" + adminAddr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func TestSupervisor(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of child processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	progress := &syncBuffer{}
	exits := make(chan localcluster.Node, 4)
	defer func() {
		if t.Failed() {
			t.Logf("supervisor output:\n%s", progress)
		}
	}()
	topo := smallTopology(t)
	sup, err := localcluster.Start(ctx, topo, dir, testOptions(t, progress, func(n localcluster.Node, err error) { exits <- n }))
	if err != nil {
		t.Fatalf("Start: %v\nprogress:\n%s", err, progress)
	}
	stopped := false
	defer func() {
		if !stopped {
			sup.Stop(context.Background())
		}
	}()

	nodes := sup.Nodes()
	if len(nodes) != len(topo.Nodes()) {
		t.Fatalf("%d nodes, want %d", len(nodes), len(topo.Nodes()))
	}
	for _, n := range nodes {
		if n.Process != localcluster.ProcRunning || !localcluster.ProcessAlive(n.PID) {
			t.Errorf("%s: process %s, pid %d alive=%v; want running", n.ID, n.Process, n.PID, localcluster.ProcessAlive(n.PID))
		}
		if !isReady(n.AdminAddr) {
			t.Errorf("%s: /readyz on %s is not ready", n.ID, n.AdminAddr)
		}
		if (n.Role == cell.RoleIndex || n.Role == cell.RoleStorage) != (n.DataDir != "") {
			t.Errorf("%s: data dir %q", n.ID, n.DataDir)
		}
	}
	if gw := sup.CellNodes("", cell.RoleGateway); len(gw) != 1 || gw[0].S3Addr != topo.S3Addr {
		t.Errorf("gateways %+v, want one on %s", gw, topo.S3Addr)
	}
	if got, want := sup.S3Endpoint(), "http://"+topo.S3Addr; got != want {
		t.Errorf("S3Endpoint = %s, want %s", got, want)
	}
	for _, want := range []string{"starting 1 index node", "cell-0-index-0", "ready in", "gateway-0"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress)
		}
	}

	f, err := localcluster.ReadClusterFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Running || f.SupervisorPID != os.Getpid() || len(f.Nodes) != len(nodes) || f.Topology.Cells != 1 {
		t.Errorf("cluster.json: %+v", f)
	}

	// A new cluster has credentials of its own, and its secrets are its owner's only.
	creds, err := localcluster.ReadCredentials(dir)
	if err != nil || !sup.MadeCredentials() || creds.AccessKey != f.AccessKey || creds.SecretKey != f.SecretKey || creds.SecretKey == "" {
		t.Errorf("credentials %+v (made %v, %v); cluster.json has %q", creds, sup.MadeCredentials(), err, f.AccessKey)
	}
	for name, want := range map[string]os.FileMode{".": 0o700, "logs": 0o700, localcluster.CredentialsFileName: 0o600,
		localcluster.ClusterFileName: 0o600, "topology.yaml": 0o600, filepath.Join("logs", "gateway-0.log"): 0o600} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", name, fi.Mode().Perm(), err, want)
		}
	}

	// A second supervisor on the same directory is refused.
	if _, err := localcluster.Start(ctx, smallTopology(t), dir, testOptions(t, &syncBuffer{}, nil)); !errors.Is(err, localcluster.ErrDirInUse) {
		t.Errorf("second Start on the same dir: %v, want ErrDirInUse", err)
	}

	// A node that dies on its own is reported; the others keep running.
	victim, _ := sup.Node("cell-0-storage-1")
	p, _ := os.FindProcess(victim.PID)
	p.Kill()
	select {
	case n := <-exits:
		if n.ID != victim.ID || n.Process != localcluster.ProcExited {
			t.Errorf("OnExit got %+v", n)
		}
	case <-ctx.Done():
		t.Fatal("no OnExit for a killed child")
	}
	if n, _ := sup.Node(victim.ID); n.Process != localcluster.ProcExited || n.PID != 0 || n.LastExit == "" {
		t.Errorf("after its death: %+v", n)
	}
	for _, n := range sup.Nodes() {
		if n.ID != victim.ID && !localcluster.ProcessAlive(n.PID) {
			t.Errorf("%s died with %s", n.ID, victim.ID)
		}
	}

	// It comes back on the same addresses.
	if err := sup.StartNode(ctx, victim.ID); err != nil {
		t.Fatalf("StartNode: %v", err)
	}
	back, _ := sup.Node(victim.ID)
	if back.Process != localcluster.ProcRunning || back.PID == victim.PID || back.GRPCAddr != victim.GRPCAddr || !isReady(back.AdminAddr) {
		t.Errorf("restarted: %+v (was %+v)", back, victim)
	}
	if err := sup.StartNode(ctx, victim.ID); err == nil {
		t.Error("StartNode of a running node succeeded")
	}

	// Stopping and killing on purpose are not reported as deaths.
	if err := sup.StopNode(ctx, "cell-0-placement-0"); err != nil {
		t.Fatal(err)
	}
	if err := sup.KillNode("cell-0-storage-0"); err != nil {
		t.Fatal(err)
	}
	if n, _ := sup.Node("cell-0-placement-0"); n.Process != localcluster.ProcStopped {
		t.Errorf("after StopNode: %+v", n)
	}
	if n, _ := sup.Node("cell-0-storage-0"); n.Process != localcluster.ProcKilled {
		t.Errorf("after KillNode: %+v", n)
	}
	if err := sup.StopNode(ctx, "no-such-node"); !errors.Is(err, localcluster.ErrUnknownNode) {
		t.Errorf("StopNode of an unknown node: %v", err)
	}

	var pids []int
	for _, n := range sup.Nodes() {
		if n.PID > 0 {
			pids = append(pids, n.PID)
		}
	}
	if err := sup.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	select {
	case n := <-exits:
		t.Errorf("unexpected exit reported: %+v", n)
	default:
	}
	for _, pid := range pids {
		if localcluster.ProcessAlive(pid) {
			t.Errorf("pid %d still alive after Stop", pid)
		}
	}
	f, err = localcluster.ReadClusterFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if f.Running || f.SupervisorPID != 0 {
		t.Errorf("cluster.json after Stop: running=%v supervisor_pid=%d", f.Running, f.SupervisorPID)
	}
	for _, n := range f.Nodes {
		if n.PID != 0 {
			t.Errorf("cluster.json after Stop still has pid %d for %s", n.PID, n.ID)
		}
	}
	if err := sup.StartNode(ctx, victim.ID); !errors.Is(err, localcluster.ErrStopped) {
		t.Errorf("StartNode after Stop: %v, want ErrStopped", err)
	}

	// The same directory starts again, with the same addresses.
	sup2, err := localcluster.Start(ctx, topo, dir, testOptions(t, &syncBuffer{}, nil))
	if err != nil {
		t.Fatalf("second Start: %v", err)
	}
	defer sup2.Stop(context.Background())
	if again, _ := localcluster.ReadCredentials(dir); sup2.MadeCredentials() || again != creds {
		t.Errorf("the second start changed the credentials: %+v, was %+v", again, creds)
	}
	for _, n := range nodes {
		m, _ := sup2.Node(n.ID)
		if m.GRPCAddr != n.GRPCAddr || m.GossipAddr != n.GossipAddr || m.DataDir != n.DataDir {
			t.Errorf("%s came back on %s/%s/%s, was on %s/%s/%s", n.ID, m.GRPCAddr, m.GossipAddr, m.DataDir, n.GRPCAddr, n.GossipAddr, n.DataDir)
		}
	}
}

func TestStartFailsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	topo := smallTopology(t)
	// The S3 address is taken: refused before anything starts.
	l, err := net.Listen("tcp", topo.S3Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	_, err = localcluster.Start(context.Background(), topo, dir, testOptions(t, &syncBuffer{}, nil))
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Start with a busy S3 address: %v", err)
	}

	// A node that cannot start: Start reports it and leaves nothing running.
	topo = smallTopology(t)
	opts := testOptions(t, &syncBuffer{}, nil)
	inner := opts.Command
	opts.Command = func(role cell.Role) (string, []string) {
		path, args := inner(role)
		if role == cell.RolePlacement {
			args = append(args, "--no-such-flag")
		}
		return path, args
	}
	_, err = localcluster.Start(context.Background(), topo, dir, opts)
	if err == nil || !strings.Contains(err.Error(), "placement") || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("Start with a failing node: %v", err)
	}
	f, err := localcluster.ReadClusterFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if f.Running {
		t.Error("cluster.json says running after a failed start")
	}
	for _, n := range f.Nodes {
		if n.PID != 0 {
			t.Errorf("%s left with pid %d", n.ID, n.PID)
		}
	}
	// The directory is free again.
	sup, err := localcluster.Start(context.Background(), smallTopology(t), dir, testOptions(t, &syncBuffer{}, nil))
	if err != nil {
		t.Fatalf("Start after a failed start: %v", err)
	}
	sup.Stop(context.Background())
}
