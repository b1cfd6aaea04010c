// Package seed fills an index node's Pebble database with synthetic objects, fast,
// for benchmarks of the index rebuild: it writes the records into sstables with Pebble's
// sstable writer, in key order, and ingests them, so that millions of objects take
// seconds rather than the hours that synced writes through the API would.
//
// The objects of a database live in one bucket and have keys of the shape
// "user000123/photos/img0000123456.jpg" (46-byte map keys with the bucket
// "bench-0000") and records of about 48 bytes, the sizes the design's yardsticks use.
//
//	err := seed.Seed(dir, seed.Options{Bucket: seed.Bucket(0), Objects: 1_000_000})
//	loc, err := store.Lookup(seed.Bucket(0), seed.Key(0))
package seed

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell/index"
)

// Bucket is the name of the synthetic bucket of cell number i.
func Bucket(i int) string { return fmt.Sprintf("bench-%04d", i) }

// Format numbers the way Seed lays out a database (records, table sizes, Pebble
// options); a change to any of them gives a new number, so that tools that keep
// seeded databases for later runs know to seed again.
const Format = 2

// Key is the key of synthetic object i. Keys sort in the order of i.
func Key(i int) string { return fmt.Sprintf("user%06d/photos/img%010d.jpg", i/1000, i) }

// Location is the location record of synthetic object i of bucket.
func Location(bucket string, i int) *cellarv1.Location {
	loc := location(i)
	loc.Bucket, loc.Key = bucket, Key(i)
	return loc
}

// location is Location without bucket and key.
func location(i int) *cellarv1.Location {
	id := make([]byte, 16)
	binary.BigEndian.PutUint64(id, uint64(i))
	binary.BigEndian.PutUint64(id[8:], uint64(i)*0x9E3779B97F4A7C15)
	return &cellarv1.Location{
		ObjectId: id, Size: int64(1000 + i%100000),
		ModifiedUnixNano: 1_763_000_000_000_000_000 + int64(i), Replicas: []string{"sto-0", "sto-1"},
	}
}

// Options say what to seed.
type Options struct {
	// Bucket holds the objects (created if missing); default Bucket(0).
	Bucket string
	// Objects is how many objects to add, numbered from First.
	Objects int
	First   int
	// TableObjects is the number of objects per sstable (default 64 Ki).
	TableObjects int
	// Versions gives every object this many older versions besides its current
	// one, as S3 versioning keeps them (each with its own blob and version id, in
	// the object's record); 0 seeds the objects of a bucket never versioned.
	Versions int
	// Progress, if set, is called after each sstable with the objects written so far.
	Progress func(done int)
}

// versioned is location(i) with a version id and older versions.
func versioned(i, versions int) *cellarv1.Location {
	loc := location(i)
	if versions == 0 {
		return loc
	}
	loc.VersionId = versionID(i, versions)
	for v := versions - 1; v >= 0; v-- {
		old := location(i)
		binary.BigEndian.PutUint32(old.ObjectId[12:], uint32(v+1)) // a blob of its own
		old.VersionId = versionID(i, v)
		old.ModifiedUnixNano -= int64(versions-v) * int64(time.Hour)
		loc.Versions = append(loc.Versions, old)
	}
	return loc
}

// versionID is the id of version v of object i: 32 hex digits, as the gateway makes.
func versionID(i, v int) string {
	return fmt.Sprintf("%016x%016x", uint64(1_763_000_000_000_000_000+v), uint64(i)*0x9E3779B97F4A7C15)
}

// Seed adds o.Objects synthetic objects to the index database in dir (created if
// missing). The keys must be new to the database and above any it holds.
func Seed(dir string, o Options) error {
	if o.Bucket == "" {
		o.Bucket = Bucket(0)
	}
	if o.TableObjects <= 0 {
		o.TableObjects = 64 << 10
	}
	popts := index.PebbleOptions(Quiet)
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return fmt.Errorf("seed: open %s: %w", dir, err)
	}
	defer db.Close()
	bk, bv, err := index.BucketRecord(&cellarv1.Bucket{Name: o.Bucket, CreatedUnixNano: time.Now().UnixNano()})
	if err != nil {
		return err
	}
	if err := db.Set(bk, bv, pebble.Sync); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "seed-")
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer os.RemoveAll(tmp)

	wopts := popts.MakeWriterOptions(6, db.TableFormat())
	// Ingested tables go to the bottom level, since they overlap nothing.
	for n := 0; n < o.Objects; n += o.TableObjects {
		count := min(o.TableObjects, o.Objects-n)
		path := filepath.Join(tmp, fmt.Sprintf("%09d.sst", n/o.TableObjects))
		if err := writeTable(path, wopts, o.Bucket, o.First+n, count, o.Versions); err != nil {
			return err
		}
		if err := db.Ingest(context.Background(), []string{path}); err != nil {
			return fmt.Errorf("seed: ingest: %w", err)
		}
		if o.Progress != nil {
			o.Progress(n + count)
		}
	}
	return db.Flush()
}

func writeTable(path string, wopts sstable.WriterOptions, bucket string, first, count, versions int) error {
	f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), wopts)
	for i := first; i < first+count; i++ {
		k, v, err := index.ObjectRecordFor(bucket, Key(i), versioned(i, versions))
		if err == nil {
			err = w.Set(k, v)
		}
		if err != nil {
			w.Close()
			return fmt.Errorf("seed: write table: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("seed: write table: %w", err)
	}
	return nil
}

// Quiet is a Pebble logger that drops informational lines (Pebble logs every WAL it
// replays) and keeps errors, on stderr.
var Quiet pebble.Logger = quiet{}

type quiet struct{}

func (quiet) Infof(string, ...any) {}
func (quiet) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
}
func (quiet) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
	os.Exit(1)
}
