package storage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

func TestWriteRead(t *testing.T) {
	n := startNode(t, t.TempDir())
	ctx := context.Background()
	const unknown = -1
	tests := []struct {
		size     int
		announce bool // the header says the size, or -1
		chunk    int  // bytes per data message
	}{
		{0, true, MaxMessage},
		{0, false, MaxMessage},
		{1, true, MaxMessage},
		{1, false, MaxMessage},
		{BlockSize - 1, true, 100_003},
		{BlockSize, true, MaxMessage},
		{BlockSize, false, 100_003},
		{BlockSize + 1, true, 100_003},
		{BlockSize + 1, false, MaxMessage},
		{MaxMessage + 1, true, 100_003},
		{3*BlockSize + 5, false, 7_777},
		{20 << 20, true, MaxMessage},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("size=%d/announced=%v/chunk=%d", tt.size, tt.announce, tt.chunk), func(t *testing.T) {
			id, data := testID(i), testData(tt.size, uint64(i))
			announce := int64(unknown)
			if tt.announce {
				announce = int64(tt.size)
			}
			got, err := put(ctx, n.client, id, announce, data, tt.chunk)
			if err != nil {
				t.Fatalf("write: %v", err)
			}
			if got != int64(tt.size) {
				t.Errorf("write says %d bytes, want %d", got, tt.size)
			}
			info, err := os.Stat(blobPath(n.dir, id))
			if err != nil {
				t.Fatal(err)
			}
			if want := blobFileSize(int64(tt.size)); info.Size() != want {
				t.Errorf("file is %d bytes, want %d", info.Size(), want)
			}
			back, err := get(ctx, n.client, id, 0, 0)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(back, data) {
				t.Fatalf("read %d bytes that differ from the %d written", len(back), len(data))
			}
		})
	}
	if got := tmpFiles(t, n.dir); len(got) != 0 {
		t.Errorf("temp files left: %v", got)
	}
}

func TestRangedRead(t *testing.T) {
	n := startNode(t, t.TempDir())
	ctx := context.Background()
	const size = 3*MaxMessage + 1234 // four disk chunks, thirteen blocks
	id, data := testID(1), testData(size, 1)
	if _, err := put(ctx, n.client, id, size, data, MaxMessage); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		off, length int64
		want        []byte // nil: data[off:off+length]
	}{
		{"whole", 0, 0, data},
		{"first byte", 0, 1, nil},
		{"across a block boundary", BlockSize - 1, 2, nil},
		{"exactly one block", BlockSize, BlockSize, nil},
		{"inside one block", BlockSize + 10, 100, nil},
		{"across a chunk boundary", MaxMessage - 5, 10, nil},
		{"across several chunks", 7, 2*MaxMessage + 3, nil},
		{"from an offset to the end", MaxMessage + 1, 0, data[MaxMessage+1:]},
		{"last byte", size - 1, 0, data[size-1:]},
		{"length past the end is cut", size - 10, 100, data[size-10:]},
		{"offset at the end", size, 0, []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == nil {
				want = data[tt.off : tt.off+tt.length]
			}
			got, err := get(ctx, n.client, id, tt.off, tt.length)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got %d bytes, want %d (equal: %v)", len(got), len(want), bytes.Equal(got, want))
			}
		})
	}
	for _, bad := range []struct {
		name        string
		off, length int64
	}{{"offset past the end", size + 1, 0}, {"negative offset", -1, 0}, {"negative length", 0, -1}} {
		t.Run(bad.name, func(t *testing.T) {
			_, err := get(ctx, n.client, id, bad.off, bad.length)
			if k := errs.KindOf(err); k != errs.InvalidArgument {
				t.Errorf("got %v (kind %v), want invalid argument", err, k)
			}
		})
	}
}

func TestCancelledWriteLeavesNothing(t *testing.T) {
	n := startNode(t, t.TempDir())
	id := testID(1)
	ctx, cancel := context.WithCancel(context.Background())
	ws, err := n.client.Write(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Send(&cellarv1.WriteRequest{Msg: &cellarv1.WriteRequest_Header{Header: &cellarv1.WriteHeader{ObjectId: id, Size: 4 * BlockSize}}}); err != nil {
		t.Fatal(err)
	}
	if err := ws.Send(&cellarv1.WriteRequest{Msg: &cellarv1.WriteRequest_Data{Data: testData(BlockSize, 1)}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the write to start", func() bool { return len(tmpFiles(t, n.dir)) == 1 })
	cancel()
	if _, err := ws.CloseAndRecv(); err == nil {
		t.Fatal("cancelled write succeeded")
	}
	waitFor(t, "the temp file to go", func() bool { return len(tmpFiles(t, n.dir)) == 0 })
	if _, err := get(context.Background(), n.client, id, 0, 0); !errs.Is(err, errs.NoSuchKey) {
		t.Errorf("read after cancelled write: %v, want no such key", err)
	}
	if g := n.gauges(t); g["blobs"] != 0 || g["used_bytes"] != 0 {
		t.Errorf("gauges after a cancelled write: %v", g)
	}
}

func TestSizeMismatch(t *testing.T) {
	n := startNode(t, t.TempDir())
	ctx := context.Background()
	old := testData(1000, 9)
	tests := []struct {
		name     string
		announce int64
		send     int
		kind     errs.Kind
	}{
		{"short", 2 * BlockSize, BlockSize + 7, errs.IncompleteBody},
		{"short by one", 1000, 999, errs.IncompleteBody},
		{"nothing sent", 10, 0, errs.IncompleteBody},
		{"long", 10, 20, errs.InvalidArgument},
		{"long by one", BlockSize, BlockSize + 1, errs.InvalidArgument},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fresh, existing := testID(2*i+1), testID(2*i+2)
			if _, err := put(ctx, n.client, existing, int64(len(old)), old, MaxMessage); err != nil {
				t.Fatal(err)
			}
			for _, id := range [][]byte{fresh, existing} {
				_, err := put(ctx, n.client, id, tt.announce, testData(tt.send, 1), 64<<10)
				if k := errs.KindOf(err); k != tt.kind {
					t.Errorf("write: %v (kind %v), want %v", err, k, tt.kind)
				}
			}
			if got := tmpFiles(t, n.dir); len(got) != 0 {
				t.Errorf("temp files left: %v", got)
			}
			if _, err := get(ctx, n.client, fresh, 0, 0); !errs.Is(err, errs.NoSuchKey) {
				t.Errorf("read of a failed new write: %v, want no such key", err)
			}
			if got, err := get(ctx, n.client, existing, 0, 0); err != nil || !bytes.Equal(got, old) {
				t.Errorf("a failed overwrite changed the blob: %d bytes, %v", len(got), err)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	n := startNode(t, t.TempDir())
	ctx := context.Background()
	header := func(id []byte, size int64) *cellarv1.WriteRequest {
		return &cellarv1.WriteRequest{Msg: &cellarv1.WriteRequest_Header{Header: &cellarv1.WriteHeader{ObjectId: id, Size: size}}}
	}
	data := &cellarv1.WriteRequest{Msg: &cellarv1.WriteRequest_Data{Data: []byte("x")}}
	writes := []struct {
		name string
		msgs []*cellarv1.WriteRequest
	}{
		{"empty stream", nil},
		{"data first", []*cellarv1.WriteRequest{data, header(testID(1), 1)}},
		{"two headers", []*cellarv1.WriteRequest{header(testID(1), 1), header(testID(1), 1)}},
		{"empty message", []*cellarv1.WriteRequest{header(testID(1), 1), {}}},
		{"short id", []*cellarv1.WriteRequest{header(make([]byte, 15), 1), data}},
		{"long id", []*cellarv1.WriteRequest{header(make([]byte, 17), 1), data}},
		{"no id", []*cellarv1.WriteRequest{header(nil, 1), data}},
		{"path as id", []*cellarv1.WriteRequest{header([]byte("../../etc/passwd"), 1), data}},
		{"size below -1", []*cellarv1.WriteRequest{header(testID(1), -2), data}},
	}
	for _, tt := range writes {
		t.Run("write/"+tt.name, func(t *testing.T) {
			ws, err := n.client.Write(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = sendWrite(ws, tt.msgs)
			want := errs.InvalidArgument
			if tt.name == "path as id" {
				// 16 bytes are an id, whatever they spell: it is stored by its hex name.
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(n.dir, "blobs", "2e", "2e2e2f2e2e2f6574632f706173737764")); err != nil {
					t.Error(err)
				}
				return
			}
			if k := errs.KindOf(err); k != want {
				t.Errorf("got %v (kind %v), want %v", err, k, want)
			}
		})
	}
	for _, id := range [][]byte{nil, make([]byte, 15), make([]byte, 17), []byte("../../../../../../etc/passwd")} {
		t.Run(fmt.Sprintf("read and delete/%d-byte id", len(id)), func(t *testing.T) {
			if _, err := get(ctx, n.client, id, 0, 0); !errs.Is(err, errs.InvalidArgument) {
				t.Errorf("read: %v, want invalid argument", err)
			}
			if _, err := n.client.Delete(ctx, &cellarv1.DeleteBlobRequest{ObjectId: id}); !errs.Is(err, errs.InvalidArgument) {
				t.Errorf("delete: %v, want invalid argument", err)
			}
		})
	}
	if _, err := get(ctx, n.client, testID(99), 0, 0); !errs.Is(err, errs.NoSuchKey) {
		t.Errorf("read of a missing blob: %v, want no such key", err)
	}
}

func TestCorruption(t *testing.T) {
	n := startNode(t, t.TempDir())
	ctx := context.Background()
	const size = 2*MaxMessage + 100
	id, data := testID(1), testData(size, 1)
	if _, err := put(ctx, n.client, id, size, data, MaxMessage); err != nil {
		t.Fatal(err)
	}
	const badBlock = MaxMessage/BlockSize + 1 // the second block of the second disk chunk
	flipByte(t, blobPath(n.dir, id), badBlock*BlockSize+10)

	got, err := get(ctx, n.client, id, 0, 0)
	if k := errs.KindOf(err); k != errs.Corrupt {
		t.Fatalf("read of a damaged blob: %v (kind %v), want corrupt", err, k)
	}
	// The first chunk was checked and sent; nothing of the chunk with the bad block was.
	if len(got) != MaxMessage || !bytes.Equal(got, data[:MaxMessage]) {
		t.Errorf("before the error the client got %d bytes, want the first %d", len(got), MaxMessage)
	}
	if !strings.Contains(n.logs.String(), ID(id).String()) {
		t.Errorf("corruption not logged with the object id; log:\n%s", n.logs)
	}

	// Ranges that do not touch the bad block still read; one that does fails.
	for _, r := range [][2]int64{{0, MaxMessage}, {(badBlock + 1) * BlockSize, 0}, {badBlock*BlockSize - 5, 5}} {
		if got, err := get(ctx, n.client, id, r[0], r[1]); err != nil {
			t.Errorf("range %v avoiding the bad block: %v", r, err)
		} else if end := r[0] + r[1]; r[1] == 0 && !bytes.Equal(got, data[r[0]:]) || r[1] != 0 && !bytes.Equal(got, data[r[0]:end]) {
			t.Errorf("range %v: wrong bytes", r)
		}
	}
	if _, err := get(ctx, n.client, id, badBlock*BlockSize+BlockSize-1, 1); !errs.Is(err, errs.Corrupt) {
		t.Errorf("range in the bad block: %v, want corrupt", err)
	}

	// A damaged footer and a truncated file are corrupt too.
	id2, id3 := testID(2), testID(3)
	for _, id := range [][]byte{id2, id3} {
		if _, err := put(ctx, n.client, id, 100, data[:100], MaxMessage); err != nil {
			t.Fatal(err)
		}
	}
	flipByte(t, blobPath(n.dir, id2), -20)
	if err := os.Truncate(blobPath(n.dir, id3), 50); err != nil {
		t.Fatal(err)
	}
	for _, id := range [][]byte{id2, id3} {
		if _, err := get(ctx, n.client, id, 0, 0); !errs.Is(err, errs.Corrupt) {
			t.Errorf("read: %v, want corrupt", err)
		}
	}
	if got := n.metric(t, "cellar_storage_corrupt_blocks_total"); got != 4 {
		t.Errorf("cellar_storage_corrupt_blocks_total = %v, want 4", got)
	}
}

func TestOverwriteDeleteAndMetrics(t *testing.T) {
	n := startNode(t, t.TempDir())
	ctx := context.Background()
	id := testID(1)
	v1, v2 := testData(3*BlockSize, 1), testData(BlockSize/2, 2)
	for _, v := range [][]byte{v1, v2} {
		if _, err := put(ctx, n.client, id, int64(len(v)), v, MaxMessage); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := get(ctx, n.client, id, 0, 0); err != nil || !bytes.Equal(got, v2) {
		t.Fatalf("read after overwrite: %d bytes, %v", len(got), err)
	}
	check := func(blobs, used float64) {
		t.Helper()
		if g := n.gauges(t); g["blobs"] != blobs || g["used_bytes"] != used {
			t.Errorf("status gauges %v, want blobs %v used_bytes %v", g, blobs, used)
		}
		if got := n.metric(t, "cellar_storage_blobs"); got != blobs {
			t.Errorf("cellar_storage_blobs = %v, want %v", got, blobs)
		}
		if got := n.metric(t, "cellar_storage_used_bytes"); got != used {
			t.Errorf("cellar_storage_used_bytes = %v, want %v", got, used)
		}
	}
	check(1, float64(blobFileSize(int64(len(v2)))))
	if got, want := n.metric(t, "cellar_storage_written_bytes_total"), float64(len(v1)+len(v2)); got != want {
		t.Errorf("cellar_storage_written_bytes_total = %v, want %v", got, want)
	}
	if got, want := n.metric(t, "cellar_storage_read_bytes_total"), float64(len(v2)); got != want {
		t.Errorf("cellar_storage_read_bytes_total = %v, want %v", got, want)
	}

	for range 2 { // idempotent
		if _, err := n.client.Delete(ctx, &cellarv1.DeleteBlobRequest{ObjectId: id}); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	if _, err := n.client.Delete(ctx, &cellarv1.DeleteBlobRequest{ObjectId: testID(77)}); err != nil {
		t.Errorf("delete of a blob never written: %v", err)
	}
	if _, err := get(ctx, n.client, id, 0, 0); !errs.Is(err, errs.NoSuchKey) {
		t.Errorf("read after delete: %v, want no such key", err)
	}
	check(0, 0)
}

func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	n := startNode(t, dir)
	blobs := map[int][]byte{}
	var used int64
	for i, size := range []int{0, 1, BlockSize + 1, 5 << 20} {
		blobs[i] = testData(size, uint64(i))
		if _, err := put(ctx, n.client, testID(i), int64(size), blobs[i], MaxMessage); err != nil {
			t.Fatal(err)
		}
		used += blobFileSize(int64(size))
	}
	n.stop()

	// A crash in the middle of a write leaves a temp file behind.
	if err := os.WriteFile(filepath.Join(dir, "tmp", "leftover.tmp"), []byte("half a blob"), 0o644); err != nil {
		t.Fatal(err)
	}
	n = startNode(t, dir)
	if got := tmpFiles(t, dir); len(got) != 0 {
		t.Errorf("temp files after restart: %v", got)
	}
	for i, want := range blobs {
		if got, err := get(ctx, n.client, testID(i), 0, 0); err != nil || !bytes.Equal(got, want) {
			t.Errorf("blob %d after restart: %d bytes, %v", i, len(got), err)
		}
	}
	if g := n.gauges(t); g["blobs"] != float64(len(blobs)) || g["used_bytes"] != float64(used) {
		t.Errorf("gauges after restart %v, want blobs %d used_bytes %d", g, len(blobs), used)
	}
}

// TestConcurrent races writes, overwrites, reads and deletes of a few ids, then checks
// that every blob reads back whole and that the gauges match the disk.
func TestConcurrent(t *testing.T) {
	n := startNode(t, t.TempDir())
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for j := range 20 {
				id := testID(j % 5)
				data := testData(1000*(w+1)+j, uint64(w*100+j))
				switch j % 4 {
				case 0, 1:
					if _, err := put(ctx, n.client, id, int64(len(data)), data, 700); err != nil {
						t.Errorf("write: %v", err)
					}
				case 2:
					if _, err := get(ctx, n.client, id, 0, 0); err != nil && !errs.Is(err, errs.NoSuchKey) {
						t.Errorf("read: %v", err)
					}
				case 3:
					if _, err := n.client.Delete(ctx, &cellarv1.DeleteBlobRequest{ObjectId: id}); err != nil {
						t.Errorf("delete: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()

	var blobs, used int64
	for j := range 5 {
		info, err := os.Stat(blobPath(n.dir, testID(j)))
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		blobs++
		used += info.Size()
		if _, err := get(ctx, n.client, testID(j), 0, 0); err != nil {
			t.Errorf("blob %d: %v", j, err)
		}
	}
	if g := n.gauges(t); g["blobs"] != float64(blobs) || g["used_bytes"] != float64(used) {
		t.Errorf("gauges %v, disk has %d blobs in %d bytes", g, blobs, used)
	}
}
