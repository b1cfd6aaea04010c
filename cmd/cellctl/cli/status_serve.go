package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/localcluster"
	"github.com/cellarsim/cellar/status"
)

// runStatusServer serves the live status page until interrupted. Unlike the one-shot
// status it does not need the cluster to be up: a page that shows every node down is
// what it is for.
func runStatusServer(cmd *cobra.Command, o statusOptions) error {
	if o.output != outputText {
		return usageErrorf("--output and --serve do not go together: the page's data is at /api/status")
	}
	if o.staleAfter <= 0 || o.interval <= 0 {
		return usageErrorf("--stale-after and --interval must be positive")
	}
	var seeds []string
	dataDir := o.dataDir
	if cmd.Flags().Changed("join") {
		if !cmd.Flags().Changed("data-dir") {
			dataDir = "" // another cluster's files must not mix into this one's view
		}
		if seeds = o.join; len(seeds) == 0 {
			return usageErrorf("--join needs at least one gossip address")
		}
	} else {
		f, err := localcluster.ReadClusterFile(o.dataDir)
		switch {
		case errors.Is(err, localcluster.ErrNoClusterFile):
			return fmt.Errorf("no cluster found: %s has no %s (start one with 'cellctl up', or pass --join with gossip addresses)",
				o.dataDir, localcluster.ClusterFileName)
		case err != nil:
			return err
		}
		seeds = f.GossipAddrs()
	}
	// A topology named on the command line wins; without one the collector reads
	// cluster.json's on every pass, or goes by the group sizes the index nodes gossip.
	topo, err := declaredTopology(o, nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.serve)
	if err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	defer ln.Close()

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	key, err := o.key(cmd)
	if err != nil {
		return err
	}
	c, err := status.NewCollector(status.Config{
		Seeds: seeds, DataDir: dataDir, BindAddr: o.bind, Topology: topo, GossipKey: key,
		Interval: o.interval, StaleAfter: o.staleAfter, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	go c.Run(ctx)

	srv := &http.Server{Handler: status.Handler(c.Snapshot), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(cmd.OutOrStdout(), "status page: http://%s/  (JSON: http://%s/api/status)\nwatching the cluster of %s; Ctrl-C stops\n",
		ln.Addr(), ln.Addr(), describeSource(cmd, o, seeds))
	select {
	case err := <-served:
		return fmt.Errorf("status page: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

func describeSource(cmd *cobra.Command, o statusOptions, seeds []string) string {
	if cmd.Flags().Changed("join") {
		return "gossip seeds " + describeAddrs(seeds)
	}
	return o.dataDir
}
