package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/localcluster"
)

// defaultDataDir is where up keeps a cluster and where status looks for one.
const defaultDataDir = "./cellar-data"

type upOptions struct {
	dataDir      string
	topology     string
	cells        int
	index        int
	placement    int
	storage      int
	gateways     int
	partition    string
	s3Addr       string
	auth         bool
	fastGossip   bool
	logFormat    string
	readyTimeout time.Duration
	stopTimeout  time.Duration
}

func newUpCommand() *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a local cluster as child processes; Ctrl-C stops it",
		Long: `up starts a whole cellar cluster on this machine, one child process per node, and
keeps it running until Ctrl-C (SIGINT) or SIGTERM.

The cluster is the embedded default topology (4 cells of 1 index, 1 placement and
2 storage nodes, 1 gateway on 127.0.0.1:9000), or --topology FILE over it; the flags
below override both. Index nodes start first, then storage, placement and the gateways,
each tier once the one before it is ready. Every node keeps its data in DATA_DIR/<node-id>
and writes its log to DATA_DIR/logs/<node-id>.log; DATA_DIR/cluster.json says what runs
where, for 'cellctl status' and drills. Running up again on the same data directory
brings the same nodes and their data back.

A node that dies is reported and the others keep running. On Ctrl-C, up stops the
gateways, then storage, placement and index nodes; a second Ctrl-C kills what is left.`,
		Example: `  cellctl up
  cellctl up --cells 2 --data-dir /tmp/cellar --s3-addr 127.0.0.1:9100 --fast-gossip`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUp(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir, "directory for the nodes' data, logs and cluster.json")
	f.StringVar(&o.topology, "topology", "", "YAML topology file over the embedded defaults")
	f.IntVar(&o.cells, "cells", 0, "number of cells (default from the topology: 4)")
	f.IntVar(&o.index, "index-nodes", 0, "index nodes per cell (default from the topology)")
	f.IntVar(&o.placement, "placement-nodes", 0, "placement nodes per cell (default from the topology)")
	f.IntVar(&o.storage, "storage-nodes", 0, "storage nodes per cell (default from the topology)")
	f.IntVar(&o.gateways, "gateways", 0, "number of gateways (default from the topology)")
	f.StringVar(&o.partition, "partition", "", `what picks a key's cell: "bucket" or "key" (default from the topology)`)
	f.StringVar(&o.s3Addr, "s3-addr", "", "address of the first gateway's S3 API (default from the topology: 127.0.0.1:9000)")
	f.BoolVar(&o.auth, "auth", true, "require AWS Signature V4 with the topology's credentials (--auth=false: anyone may read and write; workshops only)")
	f.BoolVar(&o.fastGossip, "fast-gossip", false, "short gossip timers: failures are noticed in about a second")
	f.StringVar(&o.logFormat, "log-format", "text", "format of the nodes' logs: text or json")
	f.DurationVar(&o.readyTimeout, "ready-timeout", 2*time.Minute, "how long one node may take to become ready")
	f.DurationVar(&o.stopTimeout, "stop-timeout", 10*time.Second, "how long a node may take to stop before it is killed")
	return cmd
}

// upTopology is the topology file (or the defaults) with the flags that were set over it.
func upTopology(cmd *cobra.Command, o upOptions) (cell.Topology, error) {
	topo := cell.DefaultTopology()
	if o.topology != "" {
		t, err := cell.LoadTopology(o.topology)
		if err != nil {
			return t, err
		}
		topo = t
	}
	set := cmd.Flags().Changed
	if set("cells") {
		topo.Cells = o.cells
	}
	if set("index-nodes") {
		topo.IndexNodes = o.index
	}
	if set("placement-nodes") {
		topo.PlacementNodes = o.placement
	}
	if set("storage-nodes") {
		topo.StorageNodes = o.storage
	}
	if set("gateways") {
		topo.Gateways = o.gateways
	}
	if set("partition") {
		topo.Partition = o.partition
	}
	if set("s3-addr") {
		topo.S3Addr = o.s3Addr
	}
	if set("auth") {
		topo.Auth = o.auth
	}
	if err := topo.Validate(); err != nil {
		return topo, usageErrorf("%v", err)
	}
	return topo, nil
}

func runUp(cmd *cobra.Command, o upOptions) error {
	if o.logFormat != "text" && o.logFormat != "json" {
		return usageErrorf("--log-format %q: want text or json", o.logFormat)
	}
	topo, err := upTopology(cmd, o)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()

	// The first SIGINT or SIGTERM ends the run (or the start); a second one kills
	// whatever is still stopping.
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc)
	runCtx, endRun := context.WithCancel(cmd.Context())
	defer endRun()
	stopCtx, forceStop := context.WithCancel(context.Background())
	defer forceStop()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		var first time.Time
		for {
			select {
			case <-sigc:
				switch {
				case first.IsZero():
					first = time.Now()
					endRun()
				case time.Since(first) > 500*time.Millisecond:
					// Not the same signal delivered twice (as by timeout(1) or a
					// process-group kill), but a person asking again.
					forceStop()
				}
			case <-finished:
				return
			}
		}
	}()

	fmt.Fprintf(out, "cellar: %d cell%s of %d index, %d placement and %d storage node%s, %d gateway%s; data in %s\n",
		topo.Cells, plural(topo.Cells), topo.IndexNodes, topo.PlacementNodes, topo.StorageNodes, plural(topo.StorageNodes),
		topo.Gateways, plural(topo.Gateways), o.dataDir)
	sup, err := localcluster.Start(runCtx, topo, o.dataDir, localcluster.Options{
		FastGossip:   o.fastGossip,
		LogFormat:    o.logFormat,
		ReadyTimeout: o.readyTimeout,
		StopTimeout:  o.stopTimeout,
		Progress:     out,
	})
	if err != nil {
		if runCtx.Err() != nil {
			return errors.New("interrupted while starting; every node was stopped")
		}
		return err
	}
	// Other cellctl commands (drain, undrain, restart) act on the nodes through this.
	_, stopControl, err := sup.ServeControl()
	if err != nil {
		fmt.Fprintf(out, "warning: %v; drills cannot act on this cluster\n", err)
		stopControl = func() {}
	}
	printEndpoint(out, sup, o.dataDir)

	<-runCtx.Done()
	stopControl()
	fmt.Fprintln(out, "\nstopping the cluster (Ctrl-C again to kill what is left)")
	start := time.Now()
	if err := sup.Stop(stopCtx); err != nil {
		return err
	}
	fmt.Fprintf(out, "cluster stopped in %s; data kept in %s\n", time.Since(start).Round(time.Millisecond), o.dataDir)
	return nil
}

func printEndpoint(out io.Writer, sup *localcluster.Supervisor, dataDir string) {
	t := sup.Topology()
	ep := sup.S3Endpoint()
	fmt.Fprintf(out, `
S3 endpoint: %s
Access key:  %s
Secret key:  %s
Region:      %s

Try it from another terminal:
  export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s
  aws --endpoint-url %s s3 mb s3://demo
  aws --endpoint-url %s s3 ls

Cluster status: cellctl status --data-dir %s
Node logs:      %s/logs/
Press Ctrl-C to stop the cluster.
`, ep, t.AccessKey, t.SecretKey, t.Region, t.AccessKey, t.SecretKey, t.Region, ep, ep, dataDir, dataDir)
	if !t.Auth {
		fmt.Fprintf(out, `
WARNING: AUTHENTICATION IS OFF. The gateway does not check signatures: anyone who can
reach %s can read, write and delete every object. Use this for workshops only.
`, ep)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
