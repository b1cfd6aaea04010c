package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/localcluster"
)

var (
	buildOnce sync.Once
	buildDir  string
	builtBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// cellctlBinary builds the real cellctl once per test run.
func cellctlBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "cellctl-test-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "cellctl")
		out, err := exec.Command("go", "build", "-o", builtBin, "github.com/cellarsim/cellar/cmd/cellctl").CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build ./cmd/cellctl: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
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

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// upProcess is a running 'cellctl up'.
type upProcess struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{}
	err    error
}

// startUp runs 'cellctl up' with one cell and waits for it to print the S3 endpoint
// and the lines after it (with --output json, the line of JSON).
func startUp(t *testing.T, bin, dir, s3addr string, extra ...string) *upProcess {
	t.Helper()
	args := []string{"up", "--cells", "1", "--data-dir", dir, "--s3-addr", s3addr, "--fast-gossip", "--ready-timeout", "40s"}
	cmd := exec.Command(bin, append(args, extra...)...)
	pr, pw := io.Pipe()
	up := &upProcess{cmd: cmd, out: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = pw, up.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-up.exited:
		default:
			cmd.Process.Kill()
			<-up.exited
		}
	})
	go func() {
		up.err = cmd.Wait()
		pw.Close()
		close(up.exited)
	}()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			up.out.Write(append(sc.Bytes(), '\n'))
			if strings.HasPrefix(sc.Text(), "Press Ctrl-C") || strings.HasPrefix(sc.Text(), "{") {
				once.Do(func() { close(ready) })
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case <-ready:
		return up
	case <-up.exited:
		t.Fatalf("cellctl up exited before the cluster was ready (%v):\n%s%s", up.err, up.out, nodeLogs(dir))
	case <-time.After(60 * time.Second):
		t.Fatalf("cellctl up did not print the S3 endpoint within 60s:\n%s%s", up.out, nodeLogs(dir))
	}
	return nil
}

// interrupt sends SIGINT and waits for up to exit; it must exit 0.
func (up *upProcess) interrupt(t *testing.T) {
	t.Helper()
	if err := up.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-up.exited:
	case <-time.After(40 * time.Second):
		t.Fatalf("cellctl up did not exit within 40s of SIGINT:\n%s", up.out)
	}
	if up.err != nil {
		t.Errorf("cellctl up exited with %v after SIGINT:\n%s", up.err, up.out)
	}
	if !strings.Contains(up.out.String(), "cluster stopped") {
		t.Errorf("cellctl up did not say the cluster stopped:\n%s", up.out)
	}
}

// nodeLogs returns the tail of every node's log, for failure messages.
func nodeLogs(dir string) string {
	var b strings.Builder
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		b.WriteString("\n--- " + filepath.Base(l) + "\n" + strings.Join(lines, "\n") + "\n")
	}
	return b.String()
}

func s3Client(endpoint string, topo cell.Topology) *s3.Client {
	return s3.New(s3.Options{
		Region:       topo.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(topo.AccessKey, topo.SecretKey, ""),
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
	})
}

// statusJSON runs 'cellctl status --output json' until every node of the cluster is
// listed ready (the gossip may take a moment to carry the last state changes).
func statusJSON(t *testing.T, bin, dir string, want int) statusReport {
	t.Helper()
	var (
		rep  statusReport
		last string
	)
	deadline := time.Now().Add(15 * time.Second)
	for {
		cmd := exec.Command(bin, "status", "--output", "json", "--data-dir", dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		last = string(out) + stderr.String()
		if err == nil {
			rep = statusReport{}
			if err := json.Unmarshal(out, &rep); err != nil {
				t.Fatalf("status output is not JSON: %v\n%s", err, out)
			}
			if rep.Total == want && rep.Ready == want {
				return rep
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never listed %d ready nodes; last answer (%v):\n%s", want, err, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestUpStatusStop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cellctl and runs a cluster of child processes")
	}
	bin := cellctlBinary(t)
	dir := t.TempDir()
	s3addr := freeAddr(t)
	endpoint := "http://" + s3addr

	up := startUp(t, bin, dir, s3addr)
	out := up.out.String()
	for _, want := range []string{"S3 endpoint: " + endpoint, "shown this once", "cellctl credentials --data-dir " + dir + " --output env",
		"aws --endpoint-url " + endpoint + " s3 ls", "ready in"} {
		if !strings.Contains(out, want) {
			t.Errorf("up output lacks %q:\n%s", want, out)
		}
	}
	f, err := localcluster.ReadClusterFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	topo := f.Topology.Topology
	wantNodes := len(topo.Nodes())
	// The cluster's own credentials: printed once by up, shown again by credentials.
	if topo.SecretKey == "" || !strings.Contains(out, "Secret key:  "+topo.SecretKey+"\n") {
		t.Errorf("up did not show the cluster's new secret key once:\n%s", out)
	}
	_, env, _ := run(t, "credentials", "--data-dir", dir, "--output", "env")
	if vars := envLines(t, env); vars["AWS_ACCESS_KEY_ID"] != topo.AccessKey || vars["AWS_SECRET_ACCESS_KEY"] != topo.SecretKey {
		t.Errorf("credentials --output env: %v", vars)
	}
	if !f.Running || f.S3Endpoint != endpoint || len(f.Nodes) != wantNodes || topo.Cells != 1 {
		t.Fatalf("cluster.json: %+v", f)
	}

	// The endpoint speaks S3: any request gets S3 XML back.
	resp, err := http.Get(endpoint + "/")
	if err != nil {
		t.Fatalf("GET %s/: %v", endpoint, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var anyXML struct{ XMLName xml.Name }
	if err := xml.Unmarshal(body, &anyXML); err != nil {
		t.Errorf("GET / answered %s with non-XML %q", resp.Status, body)
	}

	// And an S3 SDK can use it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := s3Client(endpoint, topo)
	payload := []byte("hello from the cellctl end-to-end test\n")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("e2e")}); err != nil {
		t.Errorf("CreateBucket: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("e2e"), Key: aws.String("dir/hello.txt"), Body: bytes.NewReader(payload)}); err != nil {
		t.Errorf("PutObject: %v", err)
	}
	checkGet(ctx, t, c, payload)
	if lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Errorf("ListBuckets: %v", err)
	} else if len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != "e2e" {
		t.Errorf("ListBuckets: %+v", lb.Buckets)
	}

	// status sees every node ready, through the gossip.
	rep := statusJSON(t, bin, dir, wantNodes)
	for _, n := range rep.Nodes {
		if n.PID <= 0 || n.GRPCAddr == "" || n.Process != localcluster.ProcRunning {
			t.Errorf("status row %+v", n)
		}
	}
	code, table, stderr := run(t, "status", "--data-dir", dir)
	if code != ExitOK || !strings.Contains(table, "cell-0-index-0") || !strings.Contains(table, "ready") {
		t.Errorf("status table: exit %d, %s%s", code, table, stderr)
	}

	var pids []int
	if f, err = localcluster.ReadClusterFile(dir); err != nil {
		t.Fatal(err)
	}
	for _, n := range f.Nodes {
		pids = append(pids, n.PID)
	}
	up.interrupt(t)
	for i, pid := range pids {
		if localcluster.ProcessAlive(pid) {
			t.Errorf("%s (pid %d) is still alive after cellctl up exited", f.Nodes[i].ID, pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if f, err = localcluster.ReadClusterFile(dir); err != nil || f.Running {
		t.Fatalf("cluster.json after the stop: %+v, %v", f, err)
	}
	for _, n := range f.Nodes {
		if n.PID != 0 || n.Process != localcluster.ProcStopped || n.LastExit != "exit status 0" {
			t.Errorf("%s after the stop: pid %d, process %s, last exit %q; want a clean stop", n.ID, n.PID, n.Process, n.LastExit)
		}
	}
	code, _, stderr = run(t, "status", "--data-dir", dir)
	if code != ExitError || !strings.Contains(stderr, "stopped") {
		t.Errorf("status of the stopped cluster: exit %d, %q", code, stderr)
	}

	// up again on the same directory brings the data back; with --output json it
	// prints one line of JSON on stdout and the rest on stderr.
	up = startUp(t, bin, dir, s3addr, "--output", "json")
	checkGet(ctx, t, c, payload)
	out = up.out.String()
	var ready upReady
	if i := strings.Index(out, "\n{"); i < 0 || json.Unmarshal([]byte(strings.SplitN(out[i+1:], "\n", 2)[0]), &ready) != nil {
		t.Errorf("up --output json printed no line of JSON:\n%s", out)
	}
	abs, _ := filepath.Abs(dir)
	if ready.S3Endpoint != endpoint || ready.AccessKey != topo.AccessKey || ready.SecretKey != "" || ready.NewCredentials || ready.DataDir != abs ||
		ready.ClusterFile != filepath.Join(abs, "cluster.json") || ready.Nodes != wantNodes || ready.SupervisorPID != up.cmd.Process.Pid {
		t.Errorf("up --output json: %+v", ready)
	}
	if strings.Contains(out, "S3 endpoint:") {
		t.Errorf("up --output json also printed the text:\n%s", out)
	}
	up.interrupt(t)
}

func checkGet(ctx context.Context, t *testing.T, c *s3.Client, want []byte) {
	t.Helper()
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("e2e"), Key: aws.String("dir/hello.txt")})
	if err != nil {
		t.Errorf("GetObject: %v", err)
		return
	}
	defer got.Body.Close()
	b, err := io.ReadAll(got.Body)
	if err != nil || !bytes.Equal(b, want) {
		t.Errorf("GetObject: %q, %v; want %q", b, err, want)
	}
}
