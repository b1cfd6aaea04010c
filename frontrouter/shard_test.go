package frontrouter

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

// TestShardsDeterministicAndBalanced checks, over many fleet sizes, shard sizes and
// tenant counts, that every mode gives the same assignment every time, that every
// shard is k distinct gateways of the fleet, and that tenants spread evenly: over
// groups (plain), over combinations and over gateways (shuffle).
func TestShardsDeterministicAndBalanced(t *testing.T) {
	for n := 1; n <= 12; n++ {
		for k := 1; k <= n; k++ {
			combos := int(Binomial(n, k).Int64())
			for _, tenants := range []int{1, 7, 100, combos, 3*combos + 1} {
				for _, mode := range []string{cell.ShardingAll, cell.ShardingPlain, cell.ShardingShuffle} {
					if mode == cell.ShardingPlain && n%k != 0 {
						if _, err := Shards(mode, tenants, n, k); err == nil {
							t.Errorf("plain %d of %d: no error", k, n)
						}
						continue
					}
					name := fmt.Sprintf("%s/N=%d/k=%d/T=%d", mode, n, k, tenants)
					a, err := Shards(mode, tenants, n, k)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					b, _ := Shards(mode, tenants, n, k)
					if !reflect.DeepEqual(a, b) {
						t.Fatalf("%s: two assignments differ", name)
					}
					checkShards(t, name, mode, a, n, k, tenants)
				}
			}
		}
	}
}

func checkShards(t *testing.T, name, mode string, shards [][]int, n, k, tenants int) {
	t.Helper()
	if len(shards) != tenants {
		t.Fatalf("%s: %d shards for %d tenants", name, len(shards), tenants)
	}
	want := k
	if mode == cell.ShardingAll {
		want = n
	}
	load := make([]int, n)
	use := map[string]int{}
	for i, s := range shards {
		if len(s) != want || !slices.IsSorted(s) || len(slices.Compact(slices.Clone(s))) != want || s[0] < 0 || s[len(s)-1] >= n {
			t.Fatalf("%s: tenant %d has shard %v", name, i, s)
		}
		for _, g := range s {
			load[g]++
		}
		use[fmt.Sprint(s)]++
	}
	lo, hi := slices.Min(load), slices.Max(load)
	var groups int
	switch mode {
	case cell.ShardingPlain:
		groups = min(n/k, tenants)
	case cell.ShardingShuffle:
		groups = min(int(Binomial(n, k).Int64()), tenants)
	default:
		groups = 1
	}
	if len(use) != groups {
		t.Errorf("%s: %d distinct shards, want %d", name, len(use), groups)
	}
	ulo, uhi := math.MaxInt, 0
	for _, c := range use {
		ulo, uhi = min(ulo, c), max(uhi, c)
	}
	if uhi-ulo > 1 {
		t.Errorf("%s: shards used from %d to %d times", name, ulo, uhi)
	}
	// Every gateway carries about its share: within k tenants of every other one.
	if hi-lo > k {
		t.Errorf("%s: gateways carry from %d to %d tenants", name, lo, hi)
	}
}

// TestBlastRadiusMatchesFormula: with the tenants a multiple of the combinations
// (or groups), the share fully down computed from the assignment is the formula.
func TestBlastRadiusMatchesFormula(t *testing.T) {
	for _, c := range []struct {
		mode          string
		n, k, tenants int
		want          float64
	}{
		{cell.ShardingAll, 8, 8, 100, 1},
		{cell.ShardingPlain, 8, 2, 100, 0.25},
		{cell.ShardingShuffle, 8, 2, 28 * 4, 1.0 / 28},
		{cell.ShardingShuffle, 4, 2, 6, 1.0 / 6},
		{cell.ShardingShuffle, 10, 3, 120, 1.0 / 120},
	} {
		s, err := Shards(c.mode, c.tenants, c.n, c.k)
		if err != nil {
			t.Fatal(err)
		}
		b := Blast(c.mode, s, c.n, c.k)
		if math.Abs(b.FullyDown-c.want) > 1e-9 || math.Abs(b.Formula-c.want) > 1e-9 {
			t.Errorf("%s N=%d k=%d T=%d: fully down %v, formula %v; want %v", c.mode, c.n, c.k, c.tenants, b.FullyDown, b.Formula, c.want)
		}
		if sum := b.FullyDown + b.PartlyAffected + b.Untouched; math.Abs(sum-1) > 1e-9 {
			t.Errorf("%s: shares sum to %v", c.mode, sum)
		}
		other := 0.0
		for _, v := range b.Overlap {
			other += v
		}
		if math.Abs(other-float64(c.tenants-1)) > 1e-9 {
			t.Errorf("%s: overlap counts %v other tenants, want %d", c.mode, other, c.tenants-1)
		}
	}
	// 100 tenants on 8 gateways, k=2: 1/28 is 3.6%; with 100 = 3×28+16 some
	// combinations carry 4 tenants, so the measured share is a little above.
	s, _ := Shards(cell.ShardingShuffle, 100, 8, 2)
	if b := Blast(cell.ShardingShuffle, s, 8, 2); b.FullyDown < 1.0/28 || b.FullyDown > 1.1/28 {
		t.Errorf("shuffle 100 tenants on 8 gateways: fully down %v, want about 1/28", b.FullyDown)
	}
}
