// Package bench measures how fast the index tier comes back, for `cellctl bench`.
//
// RunRebuild measures the product's headline number, the index rebuild: it seeds
// synthetic objects straight into the Pebble databases of one or more cells' index
// nodes (package seed), restarts those nodes as real processes (`cellctl daemon
// index`), and times each from process start to its first answered Lookup and to
// its complete in-memory map, along with its CPU time and heap. Every run also
// scans the same databases raw (index.ScanObjects) in this process, and each
// rebuild rate is reported as a ratio to that scan: a reference measured in the
// same run, on the same machine, under the same load. Each measure is taken
// several times and the median kept. The results go to a CSV file and an SVG
// plot next to the databases.
//
// RunCatchUp measures how long an index node that was down takes to catch up with
// its replication group, against the number of writes it missed, on a one-cell
// cluster of child processes (package localcluster).
//
// Each benchmark takes an Options struct (zero values are defaults; Validate
// names the first option out of range) and returns one row per measurement,
// which WriteRebuildTable and WriteCatchUpTable print for a terminal:
//
//	rows, err := bench.RunRebuild(ctx, bench.RebuildOptions{
//		Objects: []int{1_000_000}, Cells: []int{1, 4}, Dir: "bench-data", Progress: os.Stderr,
//	})
//	if err == nil {
//		err = bench.WriteRebuildTable(os.Stdout, rows)
//	}
package bench
