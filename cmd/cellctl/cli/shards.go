package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/frontrouter"
	"github.com/cellarsim/cellar/localcluster"
)

type shardsOptions struct {
	dataDir   string
	gateways  int
	shardSize int
	sharding  string
	tenants   int
	output    string
}

func newShardsCommand() *cobra.Command {
	var o shardsOptions
	cmd := &cobra.Command{
		Use:   "shards",
		Short: "Show each tenant's gateways and the blast radius of losing one tenant's shard",
		Long: `shards prints the gateways the front router sends each tenant to, and what losing one
tenant's shard does to the others (as when a poison pill from that tenant crashes every
gateway it reaches): the share of tenants fully down, partly affected and untouched,
computed from the assignment itself, beside the formula:

  all      every tenant on every gateway: 100% down
  plain    the gateways in fixed groups of k: k/N of the tenants down
  shuffle  a combination of k of the N gateways per tenant: 1/C(N,k) down

and the overlap distribution: how many other tenants share 0, 1, ..., k gateways
with a given tenant, on average.

It reads the cluster in --data-dir (running or not). --gateways, --shard-size,
--sharding and --tenants change what it computes, with or without a cluster: that is
how to compare the modes before starting one.`,
		Example: `  cellctl shards
  cellctl shards --gateways 8 --shard-size 2 --tenants 100 --sharding plain
  cellctl shards --output json | jq .blast_radius`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runShards(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir, "data directory of the cluster")
	f.IntVar(&o.gateways, "gateways", 0, "number of gateways (default: the cluster's)")
	f.IntVar(&o.shardSize, "shard-size", 0, "gateways per tenant (default: the cluster's)")
	f.StringVar(&o.sharding, "sharding", "", "all, plain or shuffle (default: the cluster's)")
	f.IntVar(&o.tenants, "tenants", 0, "number of tenants, named tenant-000... (default: the cluster's)")
	outputFlag(cmd, &o.output)
	return cmd
}

// ShardsReport is what 'cellctl shards --output json' prints.
type ShardsReport struct {
	BlastRadius frontrouter.BlastRadius `json:"blast_radius"`
	Tenants     []TenantShard           `json:"tenants"`
}

// TenantShard is one tenant's gateways.
type TenantShard struct {
	Tenant   string   `json:"tenant"`
	Gateways []string `json:"gateways"`
}

func runShards(cmd *cobra.Command, o shardsOptions) error {
	if err := checkOutput(&o.output); err != nil {
		return err
	}
	set := cmd.Flags().Changed
	topo := cell.DefaultTopology()
	if f, err := localcluster.ReadClusterFile(o.dataDir); err == nil {
		topo = f.Topology.Topology
	} else if !set("gateways") && !set("tenants") {
		return fmt.Errorf("no cluster in %s (%v): give --gateways and --tenants to compute shards without one", o.dataDir, err)
	}
	if set("gateways") {
		topo.Gateways = o.gateways
	}
	if set("shard-size") {
		topo.ShardSize = o.shardSize
	}
	if set("sharding") {
		topo.Sharding = o.sharding
	}
	var names []string
	if set("tenants") {
		if o.tenants < 0 {
			return usageErrorf("--tenants must be 0 or more, not %d", o.tenants)
		}
		for i := range o.tenants {
			names = append(names, fmt.Sprintf("tenant-%03d", i))
		}
	} else {
		for _, t := range topo.Tenants {
			names = append(names, t.Name)
		}
	}
	topo.Tenants = nil // their keys are not needed here
	switch {
	case topo.Gateways < 1:
		return usageErrorf("--gateways must be at least 1, not %d", topo.Gateways)
	case topo.ShardSize < 0:
		return usageErrorf("--shard-size must be at least 1, not %d", topo.ShardSize)
	}
	if err := topo.ValidateShape(); err != nil {
		return usageErrorf("%s", err)
	}
	mode, k := topo.ShardingMode(), topo.TenantShardSize()
	shards, err := frontrouter.Shards(mode, len(names), topo.Gateways, k)
	if err != nil {
		return err
	}
	rep := ShardsReport{BlastRadius: frontrouter.Blast(mode, shards, topo.Gateways, k)}
	for i, s := range shards {
		ts := TenantShard{Tenant: names[i]}
		for _, g := range s {
			ts.Gateways = append(ts.Gateways, cell.NodeID("", cell.RoleGateway, g))
		}
		rep.Tenants = append(rep.Tenants, ts)
	}
	if o.output == outputJSON {
		return printJSON(cmd.OutOrStdout(), rep)
	}
	printShards(cmd.OutOrStdout(), rep)
	return nil
}

func share(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

func printShards(out io.Writer, rep ShardsReport) {
	b := rep.BlastRadius
	fmt.Fprintf(out, "%s sharding: %d tenant%s on %d gateway%s, %d per tenant",
		b.Mode, b.Tenants, plural(b.Tenants), b.Gateways, plural(b.Gateways), b.ShardSize)
	switch b.Mode {
	case cell.ShardingShuffle:
		fmt.Fprintf(out, ", %s combinations\n", b.Combinations)
	case cell.ShardingPlain:
		fmt.Fprintf(out, ", %s groups\n", b.Combinations)
	default:
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "\nLosing one tenant's shard (every gateway of it down), averaged over the tenants:\n")
	fmt.Fprintf(out, "  fully down       %7s  (formula: %s = %s)\n", share(b.FullyDown), b.FormulaText, share(b.Formula))
	fmt.Fprintf(out, "  partly affected  %7s\n", share(b.PartlyAffected))
	fmt.Fprintf(out, "  untouched        %7s\n", share(b.Untouched))
	fmt.Fprintf(out, "\nOther tenants sharing j gateways with a given tenant, on average:\n ")
	for j, v := range b.Overlap {
		fmt.Fprintf(out, "  %d: %.2f", j, v)
	}
	fmt.Fprintln(out)
	if len(rep.Tenants) == 0 {
		return
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tGATEWAYS")
	for _, t := range rep.Tenants {
		fmt.Fprintf(tw, "%s\t%s\n", t.Tenant, strings.Join(t.Gateways, ","))
	}
	tw.Flush()
}
