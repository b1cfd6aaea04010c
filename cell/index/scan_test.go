package index

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
)

type record struct{ key, value []byte }

// writeScanFixture writes a database with the given object records and, around
// them in the key space, records of every other kind an index node keeps.
func writeScanFixture(t *testing.T, dir string, objects []record) {
	t.Helper()
	db, err := pebble.Open(dir, PebbleOptions(pebbleLogger{log: slog.New(slog.DiscardHandler)}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bk, bv, err := BucketRecord(&cellarv1.Bucket{Name: "photos"})
	if err != nil {
		t.Fatal(err)
	}
	others := []record{
		{bk, bv},
		{[]byte{prefixLog, 0, 0, 0, 0, 0, 0, 0, 1}, []byte("raft entry")},
		{appliedKey, []byte{0, 0, 0, 0, 0, 0, 0, 1}},
		{[]byte{prefixPart, 'x'}, []byte("part")}, // the prefix right after objects'
		{[]byte{prefixStable, 'x'}, []byte("stable")},
		{[]byte{prefixUpload, 'x'}, []byte("upload")},
	}
	for _, r := range append(others, objects...) {
		if err := db.Set(r.key, r.value, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
}

// objectRecords returns the records of n objects of bucket "photos", in key order.
func objectRecords(t *testing.T, n int) []record {
	t.Helper()
	var out []record
	for i := range n {
		k, v, err := ObjectRecord(loc("photos", fmt.Sprintf("img%03d.jpg", i), int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, record{k, v})
	}
	return out
}

func TestScanObjectsReadsExactlyTheObjectRecords(t *testing.T) {
	want := objectRecords(t, 5)
	// A record whose checksum does not match is still an object record: the
	// scan hands it over unchecked.
	corrupt := bytes.Clone(want[2].value)
	corrupt[0] ^= 0xff
	want[2].value = corrupt

	dir := t.TempDir()
	writeScanFixture(t, dir, want)
	var got []record
	n, err := ScanObjects(dir, func(k, v []byte) bool {
		got = append(got, record{bytes.Clone(k), bytes.Clone(v)})
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) || len(got) != len(want) {
		t.Fatalf("scanned %d records (%d calls), want the %d object records", n, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].key, want[i].key) || !bytes.Equal(got[i].value, want[i].value) {
			t.Errorf("record %d: %q=%x, want %q=%x", i, got[i].key, got[i].value, want[i].key, want[i].value)
		}
	}
}

func TestScanObjectsStopsWhenAsked(t *testing.T) {
	dir := t.TempDir()
	writeScanFixture(t, dir, objectRecords(t, 10))
	calls := 0
	n, err := ScanObjects(dir, func(k, v []byte) bool {
		calls++
		return calls < 3
	})
	if err != nil || n != 3 || calls != 3 {
		t.Fatalf("n = %d, calls = %d, err = %v; want 3, 3, nil", n, calls, err)
	}
}

// TestScanObjectsOfNoDatabase: a scan reads, it never creates a database.
func TestScanObjectsOfNoDatabase(t *testing.T) {
	for name, dir := range map[string]string{
		"missing directory": filepath.Join(t.TempDir(), "missing"),
		"empty directory":   t.TempDir(),
	} {
		t.Run(name, func(t *testing.T) {
			n, err := ScanObjects(dir, func(k, v []byte) bool { return true })
			if err == nil || n != 0 {
				t.Fatalf("n = %d, err = %v; want 0 and an error", n, err)
			}
			_, err = pebble.Open(dir, &pebble.Options{ErrorIfNotExists: true, Logger: pebbleLogger{log: slog.New(slog.DiscardHandler)}})
			if !errors.Is(err, pebble.ErrDBDoesNotExist) {
				t.Fatalf("after the scan, opening %s: %v; want no database there", dir, err)
			}
		})
	}
}
