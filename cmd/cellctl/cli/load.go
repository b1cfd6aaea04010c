package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/loadgen"
	"github.com/cellarsim/cellar/localcluster"
)

type loadOptions struct {
	dataDir     string
	endpoint    string
	rate        float64
	duration    time.Duration
	mix         string
	sizes       string
	perCell     int
	keys        int
	keyDist     string
	seed        uint64
	maxInFlight int
	timeout     time.Duration
	noSeed      bool
	output      string
	resultFile  string
	tenants     int
}

func newLoadCommand() *cobra.Command {
	var o loadOptions
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Send S3 load at a fixed rate and report it per cell and per operation",
		Long: `load sends S3 requests to a running cluster at a fixed arrival rate for a fixed time and
reports what happened, per cell (from the x-cellar-cell header of each response) and
per operation: requests, successes, errors by S3 error code, and latency percentiles.

The load is open-loop: request i is due at i/rate seconds whatever the requests before
it did, and its latency counts from when it was due. A slow or stalled cell shows as
high latency and errors, not as fewer requests. Requests are never retried.

Before the run, load creates its buckets (--buckets-per-cell in every cell, named
load-NNN) and writes the objects GET and HEAD read; PUT and DELETE use keys of their
own. The endpoint and credentials come from DATA_DIR/cluster.json. It checks every
option first: a wrong one is a usage error (exit code 2), and nothing is created or
sent.

While it runs, load prints a progress line a second on stderr. At the end it prints a
summary, or with --output json the whole result: totals, per cell and per operation,
and per cell a series of one point a second (requests, errors, p99) for reports.`,
		Example: `  cellctl load --rate 200 --duration 30s
  cellctl load --rate 50 --duration 2m --mix GET=80,PUT=20 --key-dist zipf
  cellctl load --duration 10s --output json > load.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runLoad(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir, "data directory of a cluster started by 'cellctl up' (its cluster.json)")
	f.StringVar(&o.endpoint, "endpoint", "", "S3 endpoint to use instead of the one in cluster.json (must be on 127.0.0.1)")
	f.Float64Var(&o.rate, "rate", 100, fmt.Sprintf("requests per second (at most %d)", loadgen.MaxRate))
	f.DurationVar(&o.duration, "duration", 30*time.Second, fmt.Sprintf("how long requests keep arriving (at most %v)", loadgen.MaxDuration))
	f.StringVar(&o.mix, "mix", loadgen.DefaultMix().String(), "operations and their weights")
	f.StringVar(&o.sizes, "sizes", "1KiB=70,16KiB=25,256KiB=5", "object sizes and their weights")
	f.IntVar(&o.perCell, "buckets-per-cell", 4, "buckets in every cell")
	f.IntVar(&o.keys, "keys", 20, fmt.Sprintf("objects seeded per bucket: the key space of GET and HEAD (at most %d)", loadgen.MaxKeys))
	f.StringVar(&o.keyDist, "key-dist", loadgen.KeysUniform, "key popularity: uniform or zipf")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the sequence of requests (the same seed sends the same requests)")
	f.IntVar(&o.maxInFlight, "max-in-flight", 256, fmt.Sprintf("most requests outstanding at once (at most %d)", loadgen.MaxInFlight))
	f.DurationVar(&o.timeout, "timeout", 5*time.Second, "longest a single request may take")
	f.BoolVar(&o.noSeed, "no-seed", false, "skip creating buckets and objects (a previous run did)")
	outputFlag(cmd, &o.output)
	f.StringVar(&o.resultFile, "result-file", "", "also write the JSON result to this file")
	f.IntVar(&o.tenants, "tenants", -1, "send as the first N of the cluster's tenants, each request as one picked at random, with results per tenant (default: all of them; 0: the cluster's own key)")
	return cmd
}

// loadFlags names the flag behind each setting of loadgen.Config that load sets, by
// the setting's name in a loadgen.OptionError.
var loadFlags = map[string]string{
	"rate": "--rate", "duration": "--duration", "max_in_flight": "--max-in-flight",
	"timeout": "--timeout", "keys": "--keys", "key_dist": "--key-dist",
}

// checkLoadOptions checks every option of load, before anything is read or sent, and
// returns the workload they describe: a usage error names the first flag that is
// wrong and what it wants.
func checkLoadOptions(o *loadOptions) (loadgen.Config, error) {
	var cfg loadgen.Config
	if err := checkOutput(&o.output); err != nil {
		return cfg, err
	}
	if o.perCell < 1 || o.perCell > 100 {
		return cfg, usageErrorf("--buckets-per-cell must be between 1 and 100, not %d", o.perCell)
	}
	mix, err := loadgen.ParseMix(o.mix)
	if err != nil {
		return cfg, usageErrorf("--mix: %v", err)
	}
	sizes, err := loadgen.ParseSizes(o.sizes)
	if err != nil {
		return cfg, usageErrorf("--sizes: %v", err)
	}
	cfg = loadgen.Config{
		Rate: o.rate, Duration: o.duration, MaxInFlight: o.maxInFlight, Timeout: o.timeout,
		Mix: mix, Sizes: sizes, Keys: o.keys, KeyDist: o.keyDist, Seed: o.seed,
	}
	if err := cfg.Validate(); err != nil {
		var oe *loadgen.OptionError
		if errors.As(err, &oe) && loadFlags[oe.Option] != "" {
			return cfg, usageErrorf("%s must be %s, not %s", loadFlags[oe.Option], oe.Want, oe.Value)
		}
		return cfg, usageErrorf("%v", err)
	}
	if o.endpoint != "" {
		if err := loopbackOnly(o.endpoint); err != nil {
			return cfg, usageErrorf("--%v", err) // its messages start with "endpoint"
		}
	}
	if o.resultFile != "" {
		dir := filepath.Dir(o.resultFile)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return cfg, usageErrorf("--result-file %s: there is no directory %s", o.resultFile, dir)
		}
	}
	return cfg, nil
}

func runLoad(cmd *cobra.Command, o loadOptions) error {
	cfg, err := checkLoadOptions(&o)
	if err != nil {
		return err
	}
	file, err := localcluster.ReadClusterFile(o.dataDir)
	if errors.Is(err, localcluster.ErrNoClusterFile) {
		return fmt.Errorf("no cluster in %s: start one with 'cellctl up --data-dir %s'", o.dataDir, o.dataDir)
	}
	if err != nil {
		return err
	}
	if !file.Running {
		return fmt.Errorf("the cluster in %s is not running: start it with 'cellctl up --data-dir %s'", o.dataDir, o.dataDir)
	}
	endpoint := file.S3Endpoint
	if o.endpoint != "" {
		endpoint = o.endpoint
	}
	if err := loopbackOnly(endpoint); err != nil {
		return usageErrorf("%v", err)
	}
	buckets, home := loadgen.Buckets(file.Topology.Topology, "load", o.perCell)
	cfg.Endpoint, cfg.AccessKey, cfg.SecretKey, cfg.Region = endpoint, file.AccessKey, file.SecretKey, file.Region
	cfg.Buckets, cfg.BucketCell = buckets, home
	if cfg.Tenants, err = loadTenants(file.Topology.Tenants, o.tenants); err != nil {
		return err
	}
	cfg.Progress = cmd.ErrOrStderr()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !o.noSeed {
		fmt.Fprintf(cmd.ErrOrStderr(), "seeding %d buckets with %d objects each\n", len(buckets), o.keys)
		if err := loadgen.Seed(ctx, cfg); err != nil {
			if ctx.Err() != nil {
				return errors.New("interrupted while seeding")
			}
			return fmt.Errorf("seeding failed, so no load was sent: %w", err)
		}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "sending %d requests at %g/s for %v to %s\n", cfg.Total(), o.rate, o.duration, endpoint)
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return usageErrorf("%v", err)
	}
	if o.resultFile != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.resultFile, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write the result: %w", err)
		}
	}
	out := cmd.OutOrStdout()
	if o.output == outputJSON {
		return printJSON(out, res)
	}
	printLoadSummary(out, res)
	printTenantSummary(out, res)
	return nil
}

// loopbackOnly refuses an endpoint that is not on this machine's loopback address.
func loopbackOnly(endpoint string) error {
	rest, ok := strings.CutPrefix(endpoint, "http://")
	if !ok {
		return fmt.Errorf("endpoint %q: want http://127.0.0.1:PORT", endpoint)
	}
	host := rest
	if i := strings.IndexAny(rest, ":/"); i >= 0 {
		host = rest[:i]
	}
	if host != "127.0.0.1" && host != "localhost" {
		return fmt.Errorf("endpoint %q is not on 127.0.0.1: load is only sent to this machine", endpoint)
	}
	return nil
}

func printLoadSummary(out io.Writer, res *loadgen.Result) {
	fmt.Fprintf(out, "%d requests in %s (%d due, %g/s), %d failed (%.2f%%); worst send lag %.1fms\n\n",
		res.Overall.Requests, res.Elapsed.Round(time.Millisecond), res.Scheduled, res.Config.Rate,
		res.Overall.Errors, 100*res.Overall.ErrorRate(), res.MaxLagMS)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CELL\tREQUESTS\tOK\tERRORS\tERROR %\tP50 MS\tP99 MS\tMAX MS\tERROR CODES")
	row := func(name string, s loadgen.Summary) {
		var p50, p99, mx float64
		if s.Latency != nil {
			p50, p99, mx = s.Latency.P50MS, s.Latency.P99MS, s.Latency.MaxMS
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%.1f\t%.1f\t%.1f\t%s\n", name, s.Requests, s.OK, s.Errors,
			100*s.ErrorRate(), p50, p99, mx, codes(s.ErrorCodes))
	}
	for _, c := range res.CellNames() {
		row(c, res.Cells[c].Summary)
	}
	row("all", res.Overall)
	tw.Flush()
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OPERATION\tREQUESTS\tOK\tERRORS\tERROR %\tP50 MS\tP99 MS\tMAX MS\tERROR CODES")
	for _, op := range loadgen.Ops {
		if s, ok := res.Ops[op]; ok {
			row(op, s)
		}
	}
	tw.Flush()
}

// codes lists error codes by count, most frequent first: "ServiceUnavailable=40 Timeout=2".
func codes(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := slices.Collect(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
