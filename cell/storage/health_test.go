package storage

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/errs"
)

// diskFault is a Faults.DiskWrite whose error a test sets and clears.
type diskFault struct{ err atomic.Pointer[error] }

func (d *diskFault) set(err error) { d.err.Store(&err) }

func (d *diskFault) write() error {
	if p := d.err.Load(); p != nil {
		return *p
	}
	return nil
}

// readyz returns the node's /readyz answer.
func (n *node) readyz(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + n.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestReadOnlyWhileItCannotWrite: a storage node whose disk is full, or whose data
// directory is gone, says so: it gossips read-only and /readyz gives the reason, while
// it keeps serving reads (and deletes, which is how a full disk empties). It is ready
// again once a probe write passes.
func TestReadOnlyWhileItCannotWrite(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(n *node, f *diskFault)
		repair  func(n *node, f *diskFault) // nil: it stays read-only
		putKind errs.Kind
		why     string
	}{
		{"disk full",
			func(_ *node, f *diskFault) { f.set(syscall.ENOSPC) },
			func(_ *node, f *diskFault) { f.set(nil) },
			errs.Unavailable, "no space left on device"},
		{"data directory removed",
			func(n *node, _ *diskFault) { os.RemoveAll(n.dir) },
			nil,
			errs.Internal, "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &diskFault{}
			n := startNode(t, t.TempDir(), func(c *Config) {
				c.ProbeInterval = 20 * time.Millisecond
				c.Faults = &Faults{DiskWrite: f.write}
			})
			ctx := context.Background()
			data := testData(3*MaxMessage, 1)
			if _, err := put(ctx, n.client, testID(1), int64(len(data)), data, MaxMessage); err != nil {
				t.Fatal(err)
			}
			// A read in flight: once it has its first message, it has the file open.
			open, err := n.client.Read(ctx, &cellarv1.ReadRequest{ObjectId: testID(1)})
			if err != nil {
				t.Fatal(err)
			}
			first, err := open.Recv()
			if err != nil {
				t.Fatal(err)
			}
			received := len(first.GetData())

			tc.breakIt(n, f)
			if _, err := put(ctx, n.client, testID(2), 100, testData(100, 2), MaxMessage); errs.KindOf(err) != tc.putKind {
				t.Errorf("write to a node that cannot write: %v (kind %v), want kind %v", err, errs.KindOf(err), tc.putKind)
			}
			waitFor(t, "the node to say it is read-only", func() bool {
				st, _ := n.admin.Status(ctx, &cellarv1.StatusRequest{})
				return st.GetState() == string(cell.StateReadOnly)
			})
			code, body := n.readyz(t)
			lines := strings.SplitN(strings.TrimSpace(body), "\n", 2)
			if code != http.StatusServiceUnavailable || lines[0] != string(cell.StateReadOnly) || len(lines) < 2 || !strings.Contains(lines[1], tc.why) {
				t.Errorf("/readyz: %d %q, want 503, read-only, and a reason about %q", code, body, tc.why)
			}
			// Reads go on: the one in flight, and new ones while the blob is there.
			for {
				m, err := open.Recv()
				if errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("a read in flight failed when the node turned read-only: %v", err)
				}
				received += len(m.GetData())
			}
			if received != len(data) {
				t.Errorf("the read in flight got %d of %d bytes", received, len(data))
			}
			if tc.repair == nil {
				return
			}
			if got, err := get(ctx, n.client, testID(1), 0, 0); err != nil || len(got) != len(data) {
				t.Errorf("read from a read-only node: %d bytes, %v", len(got), err)
			}
			tc.repair(n, f)
			waitFor(t, "the node to be ready again", func() bool { code, _ := n.readyz(t); return code == http.StatusOK })
			if _, err := put(ctx, n.client, testID(3), 100, testData(100, 3), MaxMessage); err != nil {
				t.Errorf("write once the disk has room again: %v", err)
			}
		})
	}
}

// TestIdleWriteStreamIsEnded: a write stream that brings nothing for the idle timeout
// (a writer that froze or vanished without closing) is ended by the node, and its temp
// file removed.
func TestIdleWriteStreamIsEnded(t *testing.T) {
	n := startNode(t, t.TempDir(), func(c *Config) { c.StreamIdleTimeout = 100 * time.Millisecond })
	ws, err := n.client.Write(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	id := testID(1)
	if err := ws.Send(&cellarv1.WriteRequest{Msg: &cellarv1.WriteRequest_Header{Header: &cellarv1.WriteHeader{ObjectId: id, Size: 4 * BlockSize}}}); err != nil {
		t.Fatal(err)
	}
	if err := ws.Send(&cellarv1.WriteRequest{Msg: &cellarv1.WriteRequest_Data{Data: testData(BlockSize, 1)}}); err != nil {
		t.Fatal(err)
	}
	// Then nothing: the node ends the stream.
	if _, err := ws.CloseAndRecv(); err == nil {
		t.Fatal("an idle write was committed")
	}
	waitFor(t, "the temp file to go", func() bool { return len(tmpFiles(t, n.dir)) == 0 })
	if _, err := get(context.Background(), n.client, id, 0, 0); !errs.Is(err, errs.NoSuchKey) {
		t.Errorf("read after an abandoned write: %v, want no such key", err)
	}
}

// TestProbe: what the write probe finds, and that a failed write makes the store
// unwritable until a probe passes.
func TestProbe(t *testing.T) {
	tests := []struct {
		name    string
		minFree int64
		breakIt func(s *Store)
		wantErr string // "" for writable
	}{
		{"writable", 0, func(*Store) {}, ""},
		{"writable with room to spare", 1, func(*Store) {}, ""},
		{"too little free space", math.MaxInt64, func(*Store) {}, "disk nearly full"},
		{"I/O error", 0, func(s *Store) { s.InjectFaults(Faults{DiskWrite: func() error { return syscall.EIO }}) }, "input/output error"},
		{"tmp directory gone", 0, func(s *Store) { os.RemoveAll(filepath.Join(s.Dir(), "tmp")) }, "damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tt.breakIt(s)
			err = s.Probe(tt.minFree)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Probe() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Probe() = %v, want an error about %q", err, tt.wantErr)
			}
			if (s.Writable() == nil) != (tt.wantErr == "") {
				t.Errorf("Writable() = %v after Probe() = %v", s.Writable(), err)
			}
			if entries, err := os.ReadDir(filepath.Join(s.Dir(), "tmp")); err == nil && len(entries) != 0 {
				t.Errorf("the probe left %d files in tmp/", len(entries))
			}
		})
	}

	t.Run("a failed write", func(t *testing.T) {
		s, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var full atomic.Bool
		full.Store(true)
		s.InjectFaults(Faults{DiskWrite: func() error {
			if full.Load() {
				return syscall.ENOSPC
			}
			return nil
		}})
		if _, err := s.Create(ID(testID(1)), 10); !errs.Is(err, errs.Unavailable) {
			t.Fatalf("Create on a full disk: %v, want unavailable", err)
		}
		select {
		case <-s.WriteErrors():
		default:
			t.Error("a failed write was not signalled")
		}
		if err := s.Writable(); err == nil || !strings.Contains(err.Error(), "no space left") {
			t.Errorf("Writable() = %v after a write failed for want of space", err)
		}
		full.Store(false)
		if err := s.Probe(0); err != nil || s.Writable() != nil {
			t.Errorf("Probe() = %v, Writable() = %v once the disk has room", err, s.Writable())
		}
	})
}
