package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/bench"
)

// bench catchup: how long an index node that was down takes to catch up with its
// group, against the number of writes it missed.

func newBenchCatchUpCommand() *cobra.Command {
	var o bench.CatchUpOptions
	var output string
	cmd := &cobra.Command{
		Use:   "catchup",
		Short: "Measure how long an index node that was down takes to catch up with its group",
		Long: `catchup starts a one-cell cluster whose index is a group of 3 (as real processes), and
for each --writes count: stops a follower, commits that many writes through the
leader, starts the follower again and measures how long it takes to be ready and then
to have applied everything the leader committed. A node further behind than raft's
trailing log (10240 entries) catches up from a snapshot rather than the log.`,
		Example: `  cellctl bench catchup --writes 1000,10000,50000
  cellctl bench catchup --writes 20000 --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Progress = cmd.ErrOrStderr()
			run := func(ctx context.Context) ([]bench.CatchUpRow, error) { return bench.RunCatchUp(ctx, o) }
			return runBench(cmd, output, o.Validate, run, bench.WriteCatchUpTable)
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&o.Writes, "writes", []int{1000, 10000}, "writes the stopped node misses, one measurement per count")
	outputFlag(cmd, &output)
	f.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long one catch-up may take")
	return cmd
}
