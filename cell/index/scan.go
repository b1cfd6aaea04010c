package index

import (
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

// ScanObjects reads every object record of the index database in dir, in key
// order, on the calling goroutine, and calls fn with each one's Pebble key and
// value as stored: the key with its prefix and the value with its checksum, as
// ObjectRecord makes them. The records are not decoded or checked. key and
// value are valid only until fn returns; fn returns false to stop the scan. n
// is the number of records fn was called with.
//
// It reads the key range a node's rebuild reads, with the node's Pebble
// options, so it is the raw reference a rebuild is measured against, and a way
// to read a database without starting a node. The database is opened
// read-only; Pebble still locks its directory, so no node may have it open.
func ScanObjects(dir string, fn func(key, value []byte) bool) (n int, err error) {
	opts := PebbleOptions(pebbleLogger{log: slog.Default()})
	opts.ReadOnly = true
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return 0, fmt.Errorf("scan objects: open %s: %w", dir, err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("scan objects: close %s: %w", dir, cerr)
		}
	}()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: objectsLower, UpperBound: objectsUpper})
	if err != nil {
		return 0, fmt.Errorf("scan objects in %s: %w", dir, err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		n++
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	// Close reports any error the iteration met.
	if err := it.Close(); err != nil {
		return n, fmt.Errorf("scan objects in %s: %w", dir, err)
	}
	return n, nil
}
