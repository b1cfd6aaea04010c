package clustertest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill"
	"github.com/cellarsim/cellar/frontrouter"
	"github.com/cellarsim/cellar/loadgen"
)

// TestPoisonPillBlastRadiusPerSharding fires the poison pill from one tenant through a
// front router on a real cluster of 6 gateways and 20 tenants, once per sharding mode
// (shard size 2), with the drill's poison step, and checks what it measured against
// what the assignment of tenants to gateways predicts, exactly: the gateways crashed
// are the sender's shard, and the tenants that lost every gateway are those whose
// shard lies inside it — every tenant under "all", the sender's group under "plain",
// the tenants on the sender's very combination under "shuffle".
func TestPoisonPillBlastRadiusPerSharding(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	const gateways, k, nTenants = 6, 2, 20
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.PlacementNodes, topo.StorageNodes = 1, 1, 1, 1
	topo.Gateways, topo.ShardSize, topo.Faults = gateways, k, true
	tenants, err := cell.NewTenants(nTenants)
	if err != nil {
		t.Fatal(err)
	}
	topo.Tenants = tenants
	c := Start(t, topo)

	sc, err := drill.ParseScenario([]byte(`
name: poison-pill
steps:
  - poison: {tenant: tenant-001, attempts: 3, hold: 2s}
`))
	if err != nil {
		t.Fatal(err)
	}
	const sender = 1
	// One cluster, one router per mode: the gateways know nothing of the sharding.
	for _, mode := range []string{cell.ShardingAll, cell.ShardingPlain, cell.ShardingShuffle} {
		t.Run(mode, func(t *testing.T) {
			mt := c.Topology
			mt.Sharding = mode
			shards, err := frontrouter.Shards(mode, nTenants, gateways, mt.TenantShardSize())
			if err != nil {
				t.Fatal(err)
			}
			var wantCrashed, wantDown []string
			for _, g := range shards[sender] {
				wantCrashed = append(wantCrashed, cell.NodeID("", cell.RoleGateway, g))
			}
			for i, s := range shards {
				if inside(s, shards[sender]) {
					wantDown = append(wantDown, tenants[i].Name)
				}
			}
			// The assignment agrees with what each mode is meant to do.
			switch mode {
			case cell.ShardingAll:
				if len(wantDown) != nTenants {
					t.Fatalf("all-on-all: %d tenants predicted down, want all %d", len(wantDown), nTenants)
				}
			case cell.ShardingPlain:
				if want := nTenants / (gateways / k); len(wantDown) < want || len(wantDown) > want+1 {
					t.Fatalf("plain: %d tenants predicted down, want the %d or %d of one of %d groups", len(wantDown), want, want+1, gateways/k)
				}
			case cell.ShardingShuffle:
				// C(6,2) = 15 combinations for 20 tenants: the sender's is shared by one
				// other tenant at most.
				if len(wantDown) < 1 || len(wantDown) > 2 {
					t.Fatalf("shuffle: %d tenants predicted down, want 1 or 2", len(wantDown))
				}
			}

			ep, stop := c.StartRouter("127.0.0.1:0", mt)
			defer stop()
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			env := drill.Env{Topology: mt, Dir: c.Dir, Cluster: c.Control(), HealthTimeout: patience,
				Load: loadgen.Config{Endpoint: ep, Region: mt.Region}}
			rep, err := drill.RunScenario(ctx, env, sc)
			if err != nil {
				t.Fatalf("drill: %v\n%s", err, timeline(rep))
			}
			if len(rep.Poison) != 1 {
				t.Fatalf("%d poison reports, want 1", len(rep.Poison))
			}
			p := rep.Poison[0]
			if !slices.Equal(p.Crashed, wantCrashed) {
				t.Errorf("gateways crashed %v, want the sender's shard %v", p.Crashed, wantCrashed)
			}
			if !slices.Equal(p.DownTenants, wantDown) {
				t.Errorf("tenants fully down %v, want %v (the tenants whose shard is inside the sender's)", p.DownTenants, wantDown)
			}
			if got, want := p.FullyDown, float64(len(wantDown))/nTenants; got != want {
				t.Errorf("share fully down %.3f, want %.3f", got, want)
			}
			if p.Computed != float64(len(wantDown))/nTenants {
				t.Errorf("the report computes %.3f of tenants down for this shard, the assignment %d of %d", p.Computed, len(wantDown), nTenants)
			}
			// The drill started the crashed gateways again: every one runs.
			if _, down, _ := c.Control().Gateways(ctx); len(down) > 0 {
				t.Errorf("gateways %v still down after the drill", down)
			}
			t.Logf("%s: crashed %v; fully down %d of %d tenants (formula %s); recovered in %dms",
				mode, p.Crashed, len(p.DownTenants), nTenants, p.FormulaText, p.RecoverMS)
		})
	}
}

// inside reports whether every gateway of shard s is in shard of.
func inside(s, of []int) bool {
	for _, g := range s {
		if !slices.Contains(of, g) {
			return false
		}
	}
	return true
}

func timeline(rep *drill.Report) string {
	if rep == nil {
		return ""
	}
	var out string
	for _, e := range rep.Timeline {
		out += fmt.Sprintln(e.String())
	}
	return out
}
