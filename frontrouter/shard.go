package frontrouter

import (
	"fmt"
	"math/big"
	"slices"

	"github.com/cellarsim/cellar/cell"
)

// Shards assigns every tenant of the list its shard: the indexes (0 to gateways-1,
// ascending) of the gateways that serve it, under the sharding mode with shard size k.
//
//   - all: every tenant on every gateway.
//   - plain: the gateways split into gateways/k fixed groups of k consecutive gateways;
//     tenant i is on group i mod groups.
//   - shuffle: every tenant on a combination of k gateways of its own while there are
//     combinations left, so that two tenants share as few gateways as can be: tenant i
//     is on the i-th combination of a fixed order of all C(gateways, k) combinations,
//     taken round again once they are used up. The order is built greedily so that any
//     run of tenants spreads evenly over the gateways: each next combination is the
//     unused one (in lexicographic order on a tie) whose gateways carry the fewest
//     tenants so far.
//
// The assignment depends only on a tenant's place in the list and on (mode, gateways,
// k): the same topology gives every router the same shards, and a tenant added at the
// end moves no other.
func Shards(mode string, tenants, gateways, k int) ([][]int, error) {
	switch {
	case gateways < 1:
		return nil, fmt.Errorf("no gateways to shard over")
	case mode != cell.ShardingAll && (k < 1 || k > gateways):
		return nil, fmt.Errorf("shard size %d does not fit a fleet of %d gateways", k, gateways)
	}
	out := make([][]int, tenants)
	switch mode {
	case cell.ShardingAll:
		all := make([]int, gateways)
		for i := range all {
			all[i] = i
		}
		for i := range out {
			out[i] = all
		}
	case cell.ShardingPlain:
		if gateways%k != 0 {
			return nil, fmt.Errorf("%d gateways do not split into groups of %d", gateways, k)
		}
		groups := gateways / k
		for i := range out {
			g := i % groups
			s := make([]int, k)
			for j := range s {
				s[j] = g*k + j
			}
			out[i] = s
		}
	case cell.ShardingShuffle:
		order := shuffleOrder(gateways, k, tenants)
		for i := range out {
			out[i] = order[i%len(order)]
		}
	default:
		return nil, fmt.Errorf("unknown sharding mode %q", mode)
	}
	return out, nil
}

// maxCombinations bounds how many combinations shuffleOrder enumerates: beyond it the
// tenants run out long before the combinations do.
const maxCombinations = 1 << 16

// shuffleOrder is the order in which shuffle sharding hands out combinations of k of n
// gateways: at most max(tenants, 1) of them, each picked greedily (see Shards).
func shuffleOrder(n, k, tenants int) [][]int {
	var combos [][]int
	c := make([]int, k)
	for i := range c {
		c[i] = i
	}
	for len(combos) < maxCombinations {
		combos = append(combos, slices.Clone(c))
		// Next combination in lexicographic order.
		i := k - 1
		for i >= 0 && c[i] == n-k+i {
			i--
		}
		if i < 0 {
			break
		}
		c[i]++
		for j := i + 1; j < k; j++ {
			c[j] = c[j-1] + 1
		}
	}
	want := min(len(combos), max(tenants, 1))
	load := make([]int, n)
	used := make([]bool, len(combos))
	order := make([][]int, 0, want)
	for len(order) < want {
		best, bestLoad, bestMax := -1, 0, 0
		for ci, cb := range combos {
			if used[ci] {
				continue
			}
			sum, mx := 0, 0
			for _, g := range cb {
				sum += load[g]
				mx = max(mx, load[g])
			}
			if best < 0 || mx < bestMax || (mx == bestMax && sum < bestLoad) {
				best, bestLoad, bestMax = ci, sum, mx
			}
		}
		used[best] = true
		for _, g := range combos[best] {
			load[g]++
		}
		order = append(order, combos[best])
	}
	return order
}

// Binomial is C(n, k), the number of combinations of k of n.
func Binomial(n, k int) *big.Int {
	if k < 0 || k > n {
		return big.NewInt(0)
	}
	return new(big.Int).Binomial(int64(n), int64(k))
}

// BlastRadius is what losing one tenant's shard does to the other tenants, computed
// from the assignment and from the formula.
type BlastRadius struct {
	Mode      string `json:"mode"`
	Gateways  int    `json:"gateways"`
	ShardSize int    `json:"shard_size"`
	Tenants   int    `json:"tenants"`
	// Combinations is C(gateways, shard size) under shuffle sharding, the number of
	// groups under plain sharding, 1 under all.
	Combinations string `json:"combinations"`
	// Formula is the expected share of tenants fully down when one tenant's shard is
	// lost: 1/C(N,k) for shuffle, k/N for plain, 1 for all.
	Formula     float64 `json:"formula"`
	FormulaText string  `json:"formula_text"`
	// FullyDown, PartlyAffected and Untouched are shares of all tenants, averaged over
	// every tenant's shard being the one lost (the tenant itself counted).
	FullyDown      float64 `json:"fully_down"`
	PartlyAffected float64 `json:"partly_affected"`
	Untouched      float64 `json:"untouched"`
	// Overlap[j] is how many other tenants share exactly j gateways with a tenant, on
	// average over the tenants (j from 0 to the shard size).
	Overlap []float64 `json:"overlap"`
}

// Blast computes the blast radius of the assignment shards over n gateways.
func Blast(mode string, shards [][]int, n, k int) BlastRadius {
	b := BlastRadius{Mode: mode, Gateways: n, ShardSize: k, Tenants: len(shards)}
	switch mode {
	case cell.ShardingAll:
		b.Combinations, b.Formula, b.FormulaText = "1", 1, "1 (every tenant on every gateway)"
		b.ShardSize = n
		k = n
	case cell.ShardingPlain:
		b.Combinations = fmt.Sprint(n / k)
		b.Formula, b.FormulaText = float64(k)/float64(n), fmt.Sprintf("k/N = %d/%d", k, n)
	default:
		c := Binomial(n, k)
		b.Combinations = c.String()
		f, _ := new(big.Rat).SetFrac(big.NewInt(1), c).Float64()
		b.Formula, b.FormulaText = f, fmt.Sprintf("1/C(%d,%d) = 1/%s", n, k, c)
	}
	b.Overlap = make([]float64, k+1)
	if len(shards) == 0 {
		return b
	}
	var down, partly, untouched float64
	for i, s := range shards {
		on := make([]bool, n)
		for _, g := range s {
			on[g] = true
		}
		for j, o := range shards {
			shared := 0
			for _, g := range o {
				if on[g] {
					shared++
				}
			}
			switch {
			case shared == len(o):
				down++
			case shared > 0:
				partly++
			default:
				untouched++
			}
			if i != j {
				b.Overlap[min(shared, k)]++
			}
		}
	}
	t := float64(len(shards))
	b.FullyDown, b.PartlyAffected, b.Untouched = down/(t*t), partly/(t*t), untouched/(t*t)
	for j := range b.Overlap {
		b.Overlap[j] /= t
	}
	return b
}
