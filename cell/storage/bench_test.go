package storage

import (
	"bytes"
	"context"
	"testing"
)

// BenchmarkWriteRead16MiB writes a 16 MiB blob through gRPC and reads it back; MB/s
// counts the object's bytes once per write+read.
func BenchmarkWriteRead16MiB(b *testing.B) {
	n := startNode(b, b.TempDir())
	ctx := context.Background()
	const size = 16 << 20
	data := testData(size, 1)
	id := testID(1)
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		if _, err := put(ctx, n.client, id, size, data, MaxMessage); err != nil {
			b.Fatal(err)
		}
		got, err := get(ctx, n.client, id, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != size {
			b.Fatalf("read %d bytes", len(got))
		}
	}
	b.StopTimer()
	if got, _ := get(ctx, n.client, id, 0, 0); !bytes.Equal(got, data) {
		b.Fatal("blob differs")
	}
}

// BenchmarkStoreWriteRead16MiB is the same without gRPC: the disk, fsync and checksum
// cost alone, to compare with the benchmark above.
func BenchmarkStoreWriteRead16MiB(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const size = 16 << 20
	data := testData(size, 1)
	id := ID(testID(1))
	b.SetBytes(size)
	for b.Loop() {
		writeBlob(b, s, id, data)
		var n int
		if _, err := s.Read(context.Background(), id, 0, 0, func(p []byte) error { n += len(p); return nil }); err != nil {
			b.Fatal(err)
		}
		if n != size {
			b.Fatalf("read %d bytes", n)
		}
	}
}
