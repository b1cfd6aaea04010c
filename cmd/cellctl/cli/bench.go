package cli

import (
	"context"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/bench"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks of a cellar tier",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newBenchRebuildCommand(), newBenchCatchUpCommand(), newBenchS3Command())
	return cmd
}

func newBenchRebuildCommand() *cobra.Command {
	var o bench.RebuildOptions
	var output string
	cmd := &cobra.Command{
		Use:   "rebuild",
		Short: "Measure index restarts against object count and cell count",
		Long: `rebuild measures how long an index node takes to come back, against the number of
objects it holds, with the raw Pebble scan of the same data as the reference.

For each combination of --objects and --cells it spreads that many synthetic objects
evenly over the cells' index databases in DIR (written as sstables and ingested into
Pebble, not through the API; kept for later runs with the same numbers), then restarts
the cells' index nodes as real processes (cellctl daemon index, standalone), one cell
at a time, and measures for each:

  first serve   from process start to the first answered Lookup of a key in the
                first key range (polled over gRPC)
  rebuilt       from process start to the complete in-memory map (the node's /status)
  rebuild rate  objects / the node's own rebuild time (Pebble open to complete map)
  scan rate     objects / a raw single-threaded scan of the same databases, opened
                read-only by this process in the same run: the reference
  ratio         rebuild rate / scan rate; cpu_ratio is the same per CPU-second
                (the node's CPU time against this process's), steadier on a busy machine
  heap/object   the node's Go heap after the rebuild and a collection, per object

It does all of that --runs times (3 by default) and reports the median of each
measure, and of each run's ratios: on a shared machine a single restart or scan
can be off by 2x.

With several cells it also restarts all of them at once (all_cells_ms). It prints a
table (or JSON rows with --output json) and writes DIR/rebuild.csv and DIR/rebuild.svg
(rebuild time against objects, one line per cell count).`,
		Example: `  cellctl bench rebuild --objects 1000000 --cells 1,4
  cellctl bench rebuild --objects 100000,1000000,10000000 --cells 1,4,16 --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Progress = cmd.ErrOrStderr()
			run := func(ctx context.Context) ([]bench.RebuildRow, error) { return bench.RunRebuild(ctx, o) }
			return runBench(cmd, output, o.Validate, run, bench.WriteRebuildTable)
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&o.Objects, "objects", []int{100_000, 1_000_000}, "object counts, comma-separated")
	f.IntSliceVar(&o.Cells, "cells", []int{1, 4}, "cell counts, comma-separated; the objects are spread over the cells")
	outputFlag(cmd, &output)
	f.StringVar(&o.Dir, "dir", filepath.Join(defaultDataDir, "bench"), "directory for the seeded databases, logs, CSV and SVG")
	f.BoolVar(&o.Reseed, "reseed", false, "seed again even if DIR holds databases with these numbers")
	f.BoolVar(&o.Together, "together", true, "with several cells, also restart all of them at once")
	f.StringVar(&o.Pending, "pending", "pebble", "the nodes' --rebuild-pending: pebble or slowdown")
	f.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "longest one node may take to rebuild")
	f.IntVar(&o.Runs, "runs", 3, "restarts and scans per combination; the median of each measure is reported")
	return cmd
}

// runBench is what every bench command does once its flags are read: it checks
// them, runs the benchmark, and prints the rows as a table or as JSON.
func runBench[Row any](cmd *cobra.Command, output string, validate func() error,
	run func(context.Context) ([]Row, error), table func(io.Writer, []Row) error) error {
	if err := checkOutput(&output); err != nil {
		return err
	}
	if err := validate(); err != nil {
		return usageErrorf("--%v", err) // bench's messages start with the option's name, the flag's
	}
	rows, err := run(cmd.Context())
	if err != nil {
		return err
	}
	if output == outputJSON {
		return printJSON(cmd.OutOrStdout(), rows)
	}
	return table(cmd.OutOrStdout(), rows)
}
