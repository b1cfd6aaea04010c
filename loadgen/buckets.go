package loadgen

import (
	"fmt"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/router"
)

// Buckets picks perCell bucket names (prefix-NNN) for every cell of topo, so that the
// load spreads evenly over the cells, and returns them with the cell each one lives
// in. With buckets partitioned by key every bucket spans all cells: the names are then
// simply the first perCell × cells, with no cell of their own.
func Buckets(topo cell.Topology, prefix string, perCell int) ([]string, map[string]string) {
	n := perCell * topo.Cells
	var names []string
	if topo.Partition == cell.PartitionByKey {
		for i := range n {
			names = append(names, fmt.Sprintf("%s-%03d", prefix, i))
		}
		return names, nil
	}
	table := router.NewSlotTable(topo.Slots, topo.CellIDs())
	home := map[string]string{}
	count := map[string]int{}
	for i := 0; len(names) < n && i < 1000*n; i++ {
		name := fmt.Sprintf("%s-%03d", prefix, i)
		c := table.Cell(name)
		if count[c] < perCell {
			count[c]++
			names = append(names, name)
			home[name] = c
		}
	}
	return names, home
}
