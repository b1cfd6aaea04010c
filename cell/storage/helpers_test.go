package storage

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

// node is a storaged started with Run in this process, reached through daemon.Conns
// like any other cellar client would.
type node struct {
	dir    string
	client cellarv1.StorageClient
	admin  cellarv1.NodeAdminClient
	addr   string // admin HTTP
	logs   *syncBuffer
	stop   func()
}

// startNode runs a storage node on dir and waits until it is ready. It stops when the
// test ends, or earlier with n.stop. change, if given, adjusts its configuration.
func startNode(t testing.TB, dir string, change ...func(*Config)) *node {
	t.Helper()
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := Config{
		Options: daemon.Options{
			NodeID: "t-storage-0", Role: cell.RoleStorage, Cell: "cell-0", FastGossip: true,
			GRPCListener: grpcLn, AdminListener: adminLn,
			Logger: slog.New(slog.NewTextHandler(logs, nil)),
		},
		DataDir: dir,
	}
	for _, f := range change {
		f(&cfg)
	}
	go func() { done <- Run(ctx, cfg) }()

	conns := daemon.NewConns()
	cc, err := conns.Get(grpcLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n := &node{
		dir: dir, client: cellarv1.NewStorageClient(cc), admin: cellarv1.NewNodeAdminClient(cc),
		addr: adminLn.Addr().String(), logs: logs,
	}
	n.stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		conns.Close()
	})
	t.Cleanup(n.stop)

	// Wait for ready: the health service says SERVING once Run has set StateReady.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	watch, err := healthpb.NewHealthClient(cc).Watch(wctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := watch.Recv()
		if err != nil {
			select {
			case runErr := <-done:
				t.Fatalf("node did not start: %v", runErr)
			default:
			}
			t.Fatalf("waiting for ready: %v", err)
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return n
		}
	}
}

// metric scrapes /metrics and returns the value of the sample named name (the node has
// one sample per storage metric).
func (n *node) metric(t testing.TB, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		if !strings.Contains(line, `cell="cell-0"`) || !strings.Contains(line, `tier="storage"`) {
			t.Errorf("metric without cell and tier labels: %s", line)
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}

// gauges returns what NodeAdmin.Status reports.
func (n *node) gauges(t testing.TB) map[string]float64 {
	t.Helper()
	st, err := n.admin.Status(context.Background(), &cellarv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st.GetGauges()
}

// put writes data as blob id in messages of chunk bytes, announcing size.
func put(ctx context.Context, c cellarv1.StorageClient, id []byte, size int64, data []byte, chunk int) (int64, error) {
	ws, err := c.Write(ctx)
	if err != nil {
		return 0, err
	}
	msgs := []*cellarv1.WriteRequest{{Msg: &cellarv1.WriteRequest_Header{Header: &cellarv1.WriteHeader{ObjectId: id, Size: size}}}}
	for len(data) > 0 {
		k := min(chunk, len(data))
		msgs = append(msgs, &cellarv1.WriteRequest{Msg: &cellarv1.WriteRequest_Data{Data: data[:k]}})
		data = data[k:]
	}
	return sendWrite(ws, msgs)
}

// sendWrite sends msgs on a write stream and closes it. A server that has already
// failed the stream makes Send return io.EOF; the error comes with CloseAndRecv.
func sendWrite(ws cellarv1.Storage_WriteClient, msgs []*cellarv1.WriteRequest) (int64, error) {
	for _, m := range msgs {
		if err := ws.Send(m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return 0, err
		}
	}
	resp, err := ws.CloseAndRecv()
	if err != nil {
		return 0, err
	}
	return resp.GetSize(), nil
}

// get reads a range of blob id; it fails if a message carries more than MaxMessage bytes.
// On error it returns what it received before the error.
func get(ctx context.Context, c cellarv1.StorageClient, id []byte, off, length int64) ([]byte, error) {
	rs, err := c.Read(ctx, &cellarv1.ReadRequest{ObjectId: id, Offset: off, Length: length})
	if err != nil {
		return nil, err
	}
	var out []byte
	for {
		m, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return out, err
		}
		if len(m.GetData()) > MaxMessage {
			return out, fmt.Errorf("message of %d bytes, more than %d", len(m.GetData()), MaxMessage)
		}
		out = append(out, m.GetData()...)
	}
}

// testData returns n reproducible pseudo-random bytes.
func testData(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 42}).Read(b)
	return b
}

// testID returns a distinct object id for each i, spread over the fan-out directories.
func testID(i int) []byte {
	id := make([]byte, 16)
	id[0] = byte(i * 37)
	binary.BigEndian.PutUint64(id[8:], uint64(i))
	return id
}

// blobFileSize is the size on disk of a blob of size bytes.
func blobFileSize(size int64) int64 {
	return footer{blockSize: BlockSize, size: size}.fileSize()
}

// tmpFiles lists the temp files of writes in flight in a data dir.
func tmpFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir + "/tmp")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != probeName {
			names = append(names, e.Name())
		}
	}
	return names
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// flipByte inverts one byte of a file.
func flipByte(t testing.TB, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if off < 0 {
		info, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		off += info.Size()
	}
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// blobPath is where blob id lives in a data dir.
func blobPath(dir string, id []byte) string {
	s := &Store{blobsDir: dir + "/blobs"}
	return s.Path(ID(id))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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
