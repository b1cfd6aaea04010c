package localcluster

import (
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

// A cell is settled when what the supervisor says of each process and what the gossip
// says of each node agree, and its index holds quorum.
func TestMergeStatusAndSettled(t *testing.T) {
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.PlacementNodes, topo.StorageNodes = 1, 3, 1, 1
	procs := []Node{
		{ID: "i0", Role: cell.RoleIndex, Cell: "cell-0", Process: ProcRunning},
		{ID: "i1", Role: cell.RoleIndex, Cell: "cell-0", Process: ProcRunning},
		{ID: "i2", Role: cell.RoleIndex, Cell: "cell-0", Process: ProcStopped},
		{ID: "p0", Role: cell.RolePlacement, Cell: "cell-0", Process: ProcRunning},
		{ID: "s0", Role: cell.RoleStorage, Cell: "cell-0", Process: ProcRunning},
		{ID: "gateway-0", Role: cell.RoleGateway, Process: ProcRunning},
	}
	ready := func(id string, leader bool) cell.Node {
		return cell.Node{ID: id, State: cell.StateReady, Leader: leader}
	}
	for _, tc := range []struct {
		seen []cell.Node
		want string
	}{
		{[]cell.Node{ready("i0", true), ready("i1", false), ready("p0", false), ready("s0", false)}, ""},
		{[]cell.Node{ready("i0", false), ready("i1", false), ready("p0", false), ready("s0", false)}, "no leader"},
		{[]cell.Node{ready("i0", true), ready("p0", false), ready("s0", false)}, "no quorum (1 of 3 ready, 2 needed)"},
		{[]cell.Node{ready("i0", true), ready("i1", false), ready("i2", false), ready("p0", false), ready("s0", false)}, "i2 is stopped but still shown ready"},
		{[]cell.Node{ready("i0", true), ready("i1", false), {ID: "p0", State: cell.StateStarting}, ready("s0", false)}, "p0 is starting"},
		{[]cell.Node{ready("i0", true), ready("i1", false), ready("p0", false)}, "s0 is not seen"},
	} {
		err := cell.JudgeCell(topo, "cell-0", MergeStatus(procs, tc.seen)).Settled()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: %v, want %q", tc.seen, err, tc.want)
		}
	}
	st := MergeStatus(procs, []cell.Node{ready("i0", true), ready("i2", false)})
	if len(st) != 5 {
		t.Fatalf("%d nodes, want the 5 of the cell (no gateway)", len(st))
	}
	if !st[0].Ready() || !st[0].Leader || st[1].Ready() || st[2].Ready() {
		t.Errorf("merged %+v", st)
	}
}
