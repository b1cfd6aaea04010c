// Package locmap is the index's in-memory, ordered location map: it maps an
// object key (bucket + "\x00" + object key) to an opaque value (an encoded
// location record), serving point lookups and ordered range scans.
//
// The map is rebuilt at daemon start from a Pebble scan, which yields keys in
// sorted order, and is then kept up to date with writes. A typical start-up
// splits the key space into one range per core, builds each range with a
// Builder and joins the results with Concat:
//
//	parts := make([]*locmap.Map, len(ranges))
//	// on goroutine i, scanning ranges[i] in order:
//	b := locmap.NewBuilder(expectedEntries, expectedKeyAndValueBytes)
//	for iter.First(); iter.Valid(); iter.Next() {
//		if err := b.Append(iter.Key(), iter.Value()); err != nil { ... }
//	}
//	parts[i] = b.Finish()
//	// once all are done:
//	m, err := locmap.Concat(parts...)
//
// After that, m serves Get, Put, Delete and Ascend from any number of
// goroutines.
//
// # Design
//
// The rebuild rate and the heap per entry are what matter most, so the bulk
// of the map is stored without a Go pointer or allocation per entry.
//
// The base is a list of immutable runs. A run is one []byte arena holding
// its entries back to back, a []uint32 of entry offsets, and a sparse index
// with 8 bytes of key for every 16th entry. Keys are prefix-compressed, as in
// an sstable block: an entry holds how many bytes of the previous key it
// shares, the rest of its key, and its value; every 16th entry (a restart,
// the one the sparse index samples) holds its whole key. Sorted object keys
// share most of their bytes with their neighbours (the bucket, then the
// "directories"), so a 46-byte key costs about 10 bytes. A run holds up to
// 16 MiB. The Builder appends into arenas sized from its hints (scaled by the
// compression it sees in a small first arena) and never reallocates one, so
// a build costs a comparison and two copies per entry; Concat just joins the
// run lists. At 46-byte keys and 48-byte values that is about 75 bytes of
// heap per entry against 94 raw bytes, and the GC never scans the arenas
// because they hold no pointers. On Linux a Builder asks for transparent huge
// pages for its arenas (madvise), since faulting in fresh memory 4 KiB at a
// time is otherwise a large part of a rebuild.
//
// A lookup is a binary search over the runs' first keys, then over the run's
// sparse index and restart keys, then a walk of at most 16 entries from the
// restart, rebuilding each key from the previous one. A scan walks the same
// way, so Ascend copies the keys it hands out (one allocation per batch);
// values are handed out in place.
//
// Writes go to an overlay on top of the base: a B-tree (github.com/google/btree)
// of items that point into an append-only arena of their own, with
// tombstones for deletes. Reads consult the overlay first. When the overlay
// reaches 1/16 of the base (entries or bytes), a background goroutine
// merges it in the way an LSM tree flushes a memtable: it freezes the
// overlay and starts a new one for further writes, rewrites the runs that
// the frozen writes touch (leaving the others alone) outside the lock,
// and swaps each rewritten group of runs in under a short write lock. Until
// it finishes, readers still see the frozen overlay between the live overlay
// and the base; for runs already swapped that answer is redundant but
// identical, so no write needs to be re-applied. The overlay thus holds
// about 1/16 of the base's entries at most (more only while writes outpace
// a running merge), and after heavy writes the map stays near its built
// size: about 75-80 bytes per entry in BenchmarkPutAfterBuild. Small
// neighbouring runs are coalesced when rewritten, so deletes do not leave
// many tiny runs.
//
// # Concurrency and returned slices
//
// A sync.RWMutex guards the layers: Get takes the read lock, Put and Delete
// the write lock. Ascend gathers a batch of entries under the read lock and
// calls its callback with the lock released, so a slow consumer never
// blocks writers. Keys and values handed out point into memory that is
// never written after the fact (the arenas, or the copies Ascend made of
// keys), so they stay valid and unchanged; their capacity is clipped so
// appending to them cannot clobber a neighbour. (The flip side: a retained value keeps its whole run arena, up
// to 16 MiB, alive.)
//
// # Costs
//
// Get is a binary search, several times slower than a Go map lookup. A
// write costs a B-tree insert plus, amortised, a share of the merge that
// rewrites about 16 entries per write under random writes. A merge only
// holds one rewritten group of runs (up to 16 MiB) on top of the live data at
// a time, but every run it replaces becomes garbage, so between collections
// the process heap grows as any Go heap does under GOGC (set GOMEMLIMIT to
// bound it).
package locmap
