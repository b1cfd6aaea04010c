package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// writeBlob stores data as blob id through the Store API.
func writeBlob(t testing.TB, s *Store, id ID, data []byte) {
	t.Helper()
	w, err := s.Create(id, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// readBlob reads all of blob id through the Store API.
func readBlob(s *Store, id ID) ([]byte, error) {
	var out []byte
	_, err := s.Read(context.Background(), id, 0, 0, func(p []byte) error {
		out = append(out, p...)
		return nil
	})
	return out, err
}

func TestStoreReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids := []ID{ID(testID(1)), ID(testID(2))}
	datas := [][]byte{testData(BlockSize*2+3, 1), testData(10, 2)}
	for i := range ids {
		writeBlob(t, s, ids[i], datas[i])
	}
	// A write in flight when the process stops.
	w, err := s.Create(ID(testID(3)), -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	// A file that is not a blob.
	// Files that are not blobs.
	for _, name := range []string{"00/notes.txt", "zz/x", "README"} {
		p := filepath.Join(dir, "blobs", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("hi"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := s.Recovery()
	if rec.TempRemoved != 1 || rec.Stray != 3 || rec.Blobs != 2 || rec.UsedBytes != before.UsedBytes {
		t.Errorf("recovery %+v; before close: %+v", rec, before)
	}
	if st := s.Stats(); st.Blobs != before.Blobs || st.UsedBytes != before.UsedBytes {
		t.Errorf("stats after reopen %+v, before %+v", st, before)
	}
	for i := range ids {
		got, err := readBlob(s, ids[i])
		if err != nil || !bytes.Equal(got, datas[i]) {
			t.Errorf("blob %d after reopen: %d bytes, %v", i, len(got), err)
		}
		if size, err := s.Size(ids[i]); err != nil || size != int64(len(datas[i])) {
			t.Errorf("Size = %d, %v; want %d", size, err, len(datas[i]))
		}
	}
	if _, err := readBlob(s, ID(testID(3))); !errs.Is(err, errs.NoSuchKey) {
		t.Errorf("unfinished write after reopen: %v, want no such key", err)
	}
}

func TestStoreLocked(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no flock")
	}
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s2, err := Open(dir); err == nil {
		s2.Close()
		t.Fatal("a second store opened the same directory")
	}
	s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	s.Close()
}

// TestFooterDamage damages each part of a blob file in turn; every read must fail with
// Corrupt and be counted.
func TestFooterDamage(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := testData(2*BlockSize+5, 1)
	fileSize := blobFileSize(int64(len(data)))
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"data byte", func(t *testing.T, p string) { flipByte(t, p, int64(len(data))-1) }},
		{"block checksum", func(t *testing.T, p string) { flipByte(t, p, int64(len(data))+5) }},
		{"magic", func(t *testing.T, p string) { flipByte(t, p, -footerSize) }},
		{"block size", func(t *testing.T, p string) { flipByte(t, p, -footerSize+5) }},
		{"data size", func(t *testing.T, p string) { flipByte(t, p, -footerSize+8) }},
		{"id", func(t *testing.T, p string) { flipByte(t, p, -footerSize+20) }},
		{"footer checksum", func(t *testing.T, p string) { flipByte(t, p, -1) }},
		{"truncated", func(t *testing.T, p string) { mustDo(t, os.Truncate(p, fileSize-1)) }},
		{"extended", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			mustDo(t, err)
			_, err = f.Write([]byte{0})
			mustDo(t, err)
			mustDo(t, f.Close())
		}},
		{"empty", func(t *testing.T, p string) { mustDo(t, os.Truncate(p, 0)) }},
		{"blob of another id", func(t *testing.T, p string) {
			// A whole, valid blob file, but written for another id.
			other := ID(testID(1000))
			writeBlob(t, s, other, data)
			mustDo(t, os.Rename(s.Path(other), p))
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := ID(testID(i))
			writeBlob(t, s, id, data)
			before := s.Stats().CorruptBlocks
			tt.damage(t, s.Path(id))
			if _, err := readBlob(s, id); !errs.Is(err, errs.Corrupt) {
				t.Errorf("read: %v, want corrupt", err)
			}
			if got := s.Stats().CorruptBlocks - before; got != 1 {
				t.Errorf("corrupt blocks counted %d, want 1", got)
			}
		})
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestStoreReadCallbackError(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := ID(testID(1))
	writeBlob(t, s, id, testData(3*MaxMessage, 1))
	stop := errs.New(errs.Unavailable, "client went away")
	calls := 0
	n, err := s.Read(context.Background(), id, 0, 0, func(p []byte) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != MaxMessage {
		t.Errorf("Read = %d, %v; want %d, the callback's error", n, err, MaxMessage)
	}
}

func TestServerBeforeStoreIsUnavailable(t *testing.T) {
	srv := newServer(nil, nil)
	_, err := srv.Delete(context.Background(), &cellarv1.DeleteBlobRequest{ObjectId: testID(1)})
	if !errs.Is(err, errs.Unavailable) {
		t.Errorf("delete before the store is open: %v, want unavailable", err)
	}
}
