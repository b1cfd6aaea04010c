package cli

import (
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/localcluster"
)

// tenantFlags are up's flags for tenants, the front router and its sharding, and faults.
type tenantFlags struct {
	tenants   int
	routers   int
	sharding  string
	shardSize int
	faults    bool
}

func addTenantFlags(f *pflag.FlagSet, o *tenantFlags) {
	f.IntVar(&o.tenants, "tenants", 0, "make the cluster this many tenants, each with its own keys (kept in DATA_DIR/tenants.json, 0600; 'cellctl load' drives them)")
	f.IntVar(&o.routers, "routers", 0, "front routers before the gateways (the first is the S3 endpoint); default 1 with --sharding, --shard-size or --tenants, else 0")
	f.StringVar(&o.sharding, "sharding", "", fmt.Sprintf("how the router spreads tenants over the gateways: %q, %q or %q (default %q with --shard-size, else %q)",
		cell.ShardingAll, cell.ShardingPlain, cell.ShardingShuffle, cell.ShardingShuffle, cell.ShardingAll))
	f.IntVar(&o.shardSize, "shard-size", 0, fmt.Sprintf("gateways per tenant under plain and shuffle sharding (default %d)", cell.DefaultShardSize))
	f.BoolVar(&o.faults, "faults", false, "let drills arm injected faults (the poison pill) through the supervisor; off, no fault can be armed")
}

// applyTenantFlags sets the flags that were given over topo.
func applyTenantFlags(set func(string) bool, o tenantFlags, topo *cell.Topology) error {
	if set("tenants") && o.tenants < 0 {
		return usageErrorf("--tenants must be 0 or more, not %d", o.tenants)
	}
	if set("sharding") {
		topo.Sharding = o.sharding
	}
	if set("shard-size") {
		if o.shardSize < 1 {
			return usageErrorf("--shard-size must be at least 1, not %d", o.shardSize)
		}
		topo.ShardSize = o.shardSize
	}
	if set("faults") {
		topo.Faults = o.faults
	}
	switch {
	case set("routers"):
		topo.Routers = o.routers
	case topo.Routers == 0 && (set("sharding") || set("shard-size") || (set("tenants") && o.tenants > 0)):
		topo.Routers = 1
	}
	return nil
}

// printTenancy tells, once the cluster is ready, who its S3 endpoint is and what its
// tenants and faults are.
func printTenancy(out io.Writer, t cell.Topology, sup *localcluster.Supervisor, dataDir string) {
	if t.Routers > 0 {
		fmt.Fprintf(out, "Front router%s: %v before %d gateways, %s sharding, %d gateway%s per tenant\n",
			plural(t.Routers), sup.Routers(), t.Gateways, t.ShardingMode(), t.TenantShardSize(), plural(t.TenantShardSize()))
	}
	if len(t.Tenants) > 0 {
		fmt.Fprintf(out, "Tenants:     %d, keys in %s/%s; 'cellctl shards --data-dir %s' shows their gateways\n",
			len(t.Tenants), dataDir, localcluster.TenantsFileName, dataDir)
	}
	if t.Faults {
		fmt.Fprintf(out, "Faults:      drills may arm the poison pill in this cluster (--faults)\n")
	}
}
