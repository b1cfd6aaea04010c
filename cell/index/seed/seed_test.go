package seed

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cellarsim/cellar/cell/index"
)

func TestSeededObjectsAreServed(t *testing.T) {
	dir := t.TempDir()
	const n = 10000
	var progress []int
	if err := Seed(dir, Options{Bucket: Bucket(3), Objects: n, TableObjects: 3000, Progress: func(d int) { progress = append(progress, d) }}); err != nil {
		t.Fatal(err)
	}
	if len(progress) != 4 || progress[3] != n {
		t.Fatalf("progress calls %v", progress)
	}
	s, err := index.OpenAsync(dir, index.Options{Ranges: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	<-s.Ready()
	if err := s.RebuildErr(); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Objects != n || st.Corrupt != 0 || st.Ranges != 4 {
		t.Fatalf("stats %+v", st)
	}
	if st.Estimated < n*9/10 || st.Estimated > n*11/10 {
		t.Errorf("estimated %d objects from the tables, have %d", st.Estimated, n)
	}
	if len(Key(0))+1+len(Bucket(0)) != 46 {
		t.Errorf("map key of %q is %d bytes, want 46", Key(0), len(Key(0))+1+len(Bucket(0)))
	}
	for _, i := range []int{0, 1, 2999, 3000, n - 1} {
		loc, err := s.Lookup(Bucket(3), Key(i))
		if err != nil || loc.Size != Location(Bucket(3), i).Size {
			t.Fatalf("lookup object %d: %v %v", i, loc, err)
		}
	}
	if _, err := s.GetBucket(Bucket(3)); err != nil {
		t.Fatal(err)
	}
	res, err := s.List(Bucket(3), index.ListOptions{Limit: 5})
	if err != nil || len(res.Entries) != 5 || res.Entries[4].Key != Key(4) {
		t.Fatalf("list: %v %v", res, err)
	}
	// Records are about 48 bytes.
	_, v, _ := index.ObjectRecord(Location(Bucket(3), 123456))
	if len(v) < 40 || len(v) > 56 {
		t.Errorf("record of %d bytes", len(v))
	}
}

// TestSeededTablesUseIndexBlockSize: seeded tables are laid out as an index
// node's own (index.PebbleOptions), with data blocks far larger than
// Pebble's default 4 KiB, so that the bench measures the production layout.
func TestSeededTablesUseIndexBlockSize(t *testing.T) {
	dir := t.TempDir()
	if err := Seed(dir, Options{Objects: 20000}); err != nil {
		t.Fatal(err)
	}
	opts := index.PebbleOptions(Quiet)
	opts.ReadOnly = true
	db, err := pebble.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	levels, err := db.SSTables(pebble.WithProperties())
	if err != nil {
		t.Fatal(err)
	}
	var data, blocks uint64
	for _, tables := range levels {
		for _, tb := range tables {
			data += tb.Properties.DataSize
			blocks += tb.Properties.NumDataBlocks
		}
	}
	// DataSize counts compressed bytes; the records compress about 2.5 to 1,
	// so 4 KiB blocks would average well under 4 KiB here.
	if blocks == 0 || data/blocks < 8<<10 {
		t.Fatalf("%d compressed data bytes in %d blocks: blocks average under 8 KiB", data, blocks)
	}
}
