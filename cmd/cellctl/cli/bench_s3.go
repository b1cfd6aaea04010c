package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/bench/s3bench"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/localcluster"
)

// bench s3: the S3 data path's throughput and latency against the box's floor for one
// durable copy, measured in the same run.

type benchS3Options struct {
	dataDir  string
	endpoint string
	start    bool
	sizes    string
	refDir   string
	output   string
	o        s3bench.Options
}

func newBenchS3Command() *cobra.Command {
	var b benchS3Options
	cmd := &cobra.Command{
		Use:   "s3",
		Short: "Measure S3 PUT and GET against a reference that keeps one fsynced copy",
		Long: `s3 measures the S3 data path of a cluster: PUTs, then GETs, of objects of each
--sizes, from --concurrency clients (minio-go, signed with the cluster's
credentials) for --duration each, and reports per operation and size the
operations and MiB per second, latency (p50, p99, max) and errors.

In the same run it measures a reference the same way: an S3 server inside this
process that writes each object once, as a file fsynced with its directory, on the
same disk as the cluster's data (--ref-dir, DATA_DIR by default), and reads it back.
It answers through the same S3 protocol code as cellar's gateway, so the difference is
what cellar does behind the protocol: placement, two copies on storage nodes, the
index's replicated commit. The reference is a floor for one durable copy on this
machine, not a product. Every cellar figure is also printed as a ratio to it.

The targets are measured in --passes interleaved passes (reference, cellar,
reference, cellar) and each figure is the median over the passes, so that a change
of load on a shared machine moves both. The objects written are deleted at the end.

The cluster is the one running in --data-dir (its cluster.json gives the endpoint
and the credentials, as for 'cellctl load'); --start starts one of the default
shape for the run instead, in a new directory under DATA_DIR, and removes it after.
A progress line a second goes to stderr; the result to stdout, as a table or, with
--output json, as JSON with every pass.`,
		Example: `  cellctl bench s3
  cellctl bench s3 --sizes 4KiB,1MiB --concurrency 16 --duration 20s
  cellctl bench s3 --start --duration 10s --output json > s3.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runBenchS3(cmd, b) },
	}
	f := cmd.Flags()
	f.StringVar(&b.dataDir, "data-dir", defaultDataDir, "data directory of a cluster started by 'cellctl up' (its cluster.json)")
	f.StringVar(&b.endpoint, "endpoint", "", "S3 endpoint to use instead of the one in cluster.json (must be on 127.0.0.1)")
	f.BoolVar(&b.start, "start", false, "start a cluster of the default shape for the run, instead of using a running one")
	f.StringVar(&b.sizes, "sizes", "4KiB,1MiB", "object sizes, comma-separated (B, KiB, MiB, GiB)")
	f.IntVar(&b.o.Concurrency, "concurrency", 16, fmt.Sprintf("clients sending requests at once (at most %d)", s3bench.MaxConcurrency))
	f.DurationVar(&b.o.Duration, "duration", 20*time.Second, "how long each operation of each size is measured, per pass and target")
	f.IntVar(&b.o.Passes, "passes", 2, fmt.Sprintf("interleaved passes per target; figures are their medians (at most %d)", s3bench.MaxPasses))
	f.StringVar(&b.o.Bucket, "bucket", "bench-s3", "bucket the objects are written to (made if missing)")
	f.StringVar(&b.refDir, "ref-dir", "", "directory for the reference's objects; put it on the cluster's disk (default DATA_DIR)")
	outputFlag(cmd, &b.output)
	return cmd
}

// checkBenchS3Options checks every option before anything is started or sent.
func checkBenchS3Options(b *benchS3Options) error {
	if err := checkOutput(&b.output); err != nil {
		return err
	}
	sizes, err := s3bench.ParseSizes(b.sizes)
	if err != nil {
		return usageErrorf("--sizes: %v", err)
	}
	b.o.Sizes = sizes
	if err := b.o.Validate(); err != nil {
		return usageErrorf("--%v", err) // its messages start with the option's name, the flag's
	}
	if b.endpoint != "" {
		if b.start {
			return usageErrorf("--endpoint and --start do not go together: --start measures the cluster it starts")
		}
		if err := loopbackOnly(b.endpoint); err != nil {
			return usageErrorf("--%v", err)
		}
	}
	return nil
}

func runBenchS3(cmd *cobra.Command, b benchS3Options) error {
	if err := checkBenchS3Options(&b); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := cmd.ErrOrStderr()
	o := b.o
	o.Progress = progress
	if b.start {
		sup, dir, err := startBenchCluster(ctx, b.dataDir, progress)
		if err != nil {
			return err
		}
		defer func() {
			fmt.Fprintln(progress, "stopping the cluster the bench started")
			_ = sup.Stop(context.Background())
			os.RemoveAll(dir)
		}()
		t := sup.Topology()
		o.Endpoint, o.AccessKey, o.SecretKey, o.Region = sup.S3Endpoint(), t.AccessKey, t.SecretKey, t.Region
	} else {
		file, err := localcluster.ReadClusterFile(b.dataDir)
		if errors.Is(err, localcluster.ErrNoClusterFile) {
			return fmt.Errorf("no cluster in %s: start one with 'cellctl up --data-dir %s', or pass --start", b.dataDir, b.dataDir)
		}
		if err != nil {
			return err
		}
		if !file.Running {
			return fmt.Errorf("the cluster in %s is not running: start it with 'cellctl up --data-dir %s', or pass --start", b.dataDir, b.dataDir)
		}
		o.Endpoint, o.AccessKey, o.SecretKey, o.Region = file.S3Endpoint, file.AccessKey, file.SecretKey, file.Region
		if b.endpoint != "" {
			o.Endpoint = b.endpoint
		}
		if err := loopbackOnly(o.Endpoint); err != nil {
			return usageErrorf("%v", err)
		}
	}
	refDir := b.refDir
	if refDir == "" {
		refDir = b.dataDir
	}
	ref, err := s3bench.StartReference(refDir, o.AccessKey, o.SecretKey, o.Region)
	if err != nil {
		return err
	}
	defer ref.Close()
	o.Reference = ref
	fmt.Fprintf(progress, "measuring %s against the reference at %s (objects in %s)\n", o.Endpoint, ref.Endpoint(), ref.Dir())
	rep, err := s3bench.Run(ctx, o)
	if err != nil {
		if rep != nil && ctx.Err() != nil {
			fmt.Fprintln(progress, "interrupted: what was measured so far follows")
			_ = printBenchS3(cmd.OutOrStdout(), b.output, rep)
		}
		return err
	}
	return printBenchS3(cmd.OutOrStdout(), b.output, rep)
}

func printBenchS3(out io.Writer, output string, rep *s3bench.Report) error {
	if output == outputJSON {
		return printJSON(out, rep)
	}
	return s3bench.WriteTable(out, rep)
}

// startBenchCluster starts a cluster of the default shape in a new directory under
// dataDir, with its S3 endpoint on a free loopback port.
func startBenchCluster(ctx context.Context, dataDir string, progress io.Writer) (*localcluster.Supervisor, string, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, "", err
	}
	dir, err := os.MkdirTemp(dataDir, "bench-s3-cluster-*")
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	topo := cell.DefaultTopology()
	topo.S3Addr = addr
	fmt.Fprintf(progress, "starting a cluster for the bench: %s; data in %s\n", topologySummary(topo), dir)
	sup, err := localcluster.Start(ctx, topo, dir, localcluster.Options{Progress: progress})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("start the cluster: %w", err)
	}
	return sup, filepath.Clean(dir), nil
}
