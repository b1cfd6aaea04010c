package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/localcluster"
)

type gcOptions struct {
	output  string
	dataDir string
	join    []string
	bind    string
	wait    time.Duration
	cells   []string
	apply   bool
	timeout time.Duration
}

func newGCCommand() *cobra.Command {
	var o gcOptions
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Show, or delete, the orphan blobs of every storage node",
		Long: `gc asks each cell's repair loop (it runs in the cell's placement node) to compare the
blobs of the cell's storage nodes with the cell's index, and prints, per node, the
orphan blobs: blobs that no object, part or upload in progress uses (writes whose
commit failed or whose answer was lost, reclaims a gateway dropped when it stopped,
deletes that missed a node that was down).

An orphan may be deleted only when it is older than the grace (placementd --gc-grace,
1 minute by default) and was first seen orphaned at least a grace ago: a write may be
about to commit it, or a GET that looked its key up just before an overwrite may still
open it. Those are counted as "waiting"; the others as "deletable".

By default nothing is deleted (a dry run). --apply deletes the deletable ones now;
the repair loop also deletes them on every pass unless placementd runs with
--no-auto-gc. Each cell is asked on its own: a cell that cannot be asked (no ready
placement node, no index) is reported, and the others are still collected.`,
		Example: `  cellctl gc
  cellctl gc --apply
  cellctl gc --cell cell-2 --output json
  cellctl gc --join 10.0.0.5:7946 --apply`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(&o.output); err != nil {
				return err
			}
			return runGC(cmd, o)
		},
	}
	f := cmd.Flags()
	outputFlag(cmd, &o.output)
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir, "data directory of a cluster started by 'cellctl up' (its cluster.json)")
	f.StringSliceVar(&o.join, "join", nil, "gossip addresses to join instead of reading cluster.json (comma-separated)")
	f.StringVar(&o.bind, "bind", "127.0.0.1:0", "gossip address the observer listens on while it looks")
	f.DurationVar(&o.wait, "wait", 3*time.Second, "longest wait for the member list to settle")
	f.StringSliceVar(&o.cells, "cell", nil, "only these cells (comma-separated; default every cell)")
	f.BoolVar(&o.apply, "apply", false, "delete the orphans past their grace (default: only show them)")
	f.DurationVar(&o.timeout, "timeout", 2*time.Minute, "longest wait for one cell's answer")
	return cmd
}

// gcCell is one cell's answer in 'cellctl gc'.
type gcCell struct {
	Cell    string        `json:"cell"`
	Host    string        `json:"repair_node,omitempty"`
	Grace   time.Duration `json:"grace_ns,omitempty"`
	Applied bool          `json:"applied"`
	Nodes   []gcNode      `json:"nodes,omitempty"`
	Error   string        `json:"error,omitempty"`
}

type gcNode struct {
	Node          string `json:"node"`
	EligibleBlobs int64  `json:"deletable_blobs"`
	EligibleBytes int64  `json:"deletable_bytes"`
	PendingBlobs  int64  `json:"waiting_blobs"`
	PendingBytes  int64  `json:"waiting_bytes"`
	DeletedBlobs  int64  `json:"deleted_blobs"`
	DeletedBytes  int64  `json:"deleted_bytes"`
	Error         string `json:"error,omitempty"`
}

func runGC(cmd *cobra.Command, o gcOptions) error {
	seeds := o.join
	var key []byte // the gossip keyring's key: the cluster's, unless --join alone
	if !cmd.Flags().Changed("join") {
		f, err := runningClusterFile(o.dataDir)
		if err != nil {
			return err
		}
		seeds = f.GossipAddrs()
		if key, err = localcluster.GossipKey(o.dataDir); err != nil {
			return err
		}
	}
	if len(seeds) == 0 {
		return usageErrorf("--join needs at least one gossip address")
	}
	seen, err := observe(cmd.Context(), o.bind, seeds, 0, o.wait, key)
	if err != nil {
		return err
	}
	conns := daemon.NewConns()
	if o.dataDir != "" && len(o.join) == 0 {
		// A cluster of 'cellctl up' speaks mutual TLS: call it as the operator.
		if conns, err = localcluster.OperatorConns(o.dataDir); err != nil {
			return err
		}
	}
	defer conns.Close()
	var out []gcCell
	for _, c := range gcCells(seen, o.cells) {
		out = append(out, collectCell(cmd.Context(), conns, seen, c, o))
	}
	if len(out) == 0 {
		return fmt.Errorf("no cell found in the gossip")
	}
	w := cmd.OutOrStdout()
	if o.output == outputJSON {
		if err := printJSON(w, out); err != nil {
			return err
		}
	} else {
		printGC(w, out, o.apply)
	}
	failed := 0
	for _, c := range out {
		if c.Error != "" {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d cells could not be asked", failed, len(out))
	}
	return nil
}

// gcCells is the cells to ask: want, or every cell the gossip shows.
func gcCells(seen []cell.Node, want []string) []string {
	if len(want) > 0 {
		return want
	}
	set := map[string]bool{}
	for _, n := range seen {
		if n.Cell != "" {
			set[n.Cell] = true
		}
	}
	var out []string
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// collectCell asks the repair loop of one cell, in the ready placement node with the
// smallest id (the one that runs it).
func collectCell(ctx context.Context, conns *daemon.Conns, seen []cell.Node, cellID string, o gcOptions) gcCell {
	res := gcCell{Cell: cellID}
	var host *cell.Node
	for i, n := range seen {
		if n.Cell == cellID && n.Role == cell.RolePlacement && n.State == cell.StateReady && (host == nil || n.ID < host.ID) {
			host = &seen[i]
		}
	}
	if host == nil {
		res.Error = "no ready placement node runs this cell's repair loop"
		return res
	}
	res.Host = host.ID
	cc, err := conns.Get(host.GRPCAddr)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	resp, err := cellarv1.NewRepairClient(cc).CollectGarbage(ctx, &cellarv1.CollectGarbageRequest{Apply: o.apply})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Grace, res.Applied = time.Duration(resp.GraceNanos), resp.Applied
	for _, n := range resp.Nodes {
		res.Nodes = append(res.Nodes, gcNode{
			Node: n.NodeId, EligibleBlobs: n.EligibleBlobs, EligibleBytes: n.EligibleBytes,
			PendingBlobs: n.PendingBlobs, PendingBytes: n.PendingBytes,
			DeletedBlobs: n.DeletedBlobs, DeletedBytes: n.DeletedBytes, Error: n.Error,
		})
	}
	return res
}

func printGC(w io.Writer, cells []gcCell, apply bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CELL\tNODE\tDELETABLE\tWAITING\tDELETED")
	var blobs, bytes, deleted, deletedBytes int64
	for _, c := range cells {
		if c.Error != "" {
			fmt.Fprintf(tw, "%s\t-\tnot asked: %s\t\t\n", c.Cell, c.Error)
			continue
		}
		for _, n := range c.Nodes {
			if n.Error != "" {
				fmt.Fprintf(tw, "%s\t%s\tnot listed: %s\t\t\n", c.Cell, n.Node, n.Error)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d (%s)\t%d (%s)\t%d (%s)\n", c.Cell, n.Node,
				n.EligibleBlobs, humanBytes(n.EligibleBytes), n.PendingBlobs, humanBytes(n.PendingBytes),
				n.DeletedBlobs, humanBytes(n.DeletedBytes))
			blobs += n.EligibleBlobs
			bytes += n.EligibleBytes
			deleted += n.DeletedBlobs
			deletedBytes += n.DeletedBytes
		}
	}
	tw.Flush()
	grace := time.Duration(0)
	for _, c := range cells {
		grace = max(grace, c.Grace)
	}
	switch {
	case apply:
		fmt.Fprintf(w, "\nDeleted %d orphan blobs (%s). Orphans still waiting are deleted once a grace of %s has passed.\n",
			deleted, humanBytes(deletedBytes), grace)
	case blobs > 0:
		fmt.Fprintf(w, "\nDry run: %d orphan blobs (%s) can be deleted; 'cellctl gc --apply' deletes them.\n", blobs, humanBytes(bytes))
	default:
		fmt.Fprintf(w, "\nNo orphan blob can be deleted now.\n")
	}
}

// humanBytes writes n in B, KiB, MiB or GiB.
var humanBytes = drill.HumanBytes
