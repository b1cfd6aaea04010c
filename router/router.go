// Package router maps keys to cells and gives the gateway connections to the ready
// nodes of a cell. It is the only part of cellar that spans cells.
//
// A slot table maps hash(partition key) → slot → cell. The partition key is the bucket
// (a bucket lives in one cell) or, when the topology says so, bucket and object key (a
// bucket spans cells and a LIST fans out to all of them). The router picks nodes from
// the gossip view and sends work only to nodes that are ready (and reads and deletes to
// storage nodes that are read-only too); when a cell has none, the caller gets an
// Unavailable error at once, naming the cell and tier.
//
// The partition policy (policy.go) says which cells an operation on a bucket touches
// and what a cell checks by itself; the fan-out (fanout.go) runs a call on several
// cells at once and merges their answers: the list of buckets, and the pages of a
// bucket that spans cells. CallDeadline bounds every unary call to a cell, and
// ProgressDeadline every step of a stream to one (object bytes). The gateway uses it so:
//
//	conns := daemon.NewConns(router.CallDeadline(2 * time.Second))
//	r := router.New(topology, members, conns)
//	ix, err := r.Index(r.ObjectCell(bucket, key)) // one cell
//	cells, page, err := r.List(ctx, req)          // every cell that holds the bucket
package router

import (
	"fmt"
	"sync/atomic"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/cellmap"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/errs"
)

// SlotTable maps slots to cells. It is versioned so that a newer map can replace an
// older one; a gateway keeps serving with the last map it had.
type SlotTable struct {
	Version int
	Cells   []string // cell of each slot
}

// NewSlotTable spreads slots over cells in contiguous runs of equal size.
func NewSlotTable(slots int, cells []string) SlotTable {
	return SlotTable{Version: 1, Cells: cellmap.Slots(slots, cells)}
}

// Slot returns the slot of a partition key.
func (t SlotTable) Slot(partitionKey string) int { return cellmap.Slot(partitionKey, len(t.Cells)) }

// Cell returns the cell of a partition key.
func (t SlotTable) Cell(partitionKey string) string { return t.Cells[t.Slot(partitionKey)] }

// Membership is the part of the gossip view the router reads.
type Membership interface {
	Nodes() []cell.Node
	Ready(cellID string, role cell.Role) []cell.Node
	Find(id string) (cell.Node, bool)
}

// Router routes requests to cells.
type Router struct {
	table     SlotTable
	partition string
	cells     []string
	members   Membership
	conns     *daemon.Conns
	// indexNodes is the size of each cell's index group; with 1 there is no leader.
	indexNodes int
	// cellMap, when set (UseMap), gives the cell map the router routes by instead of
	// the slot table computed from the topology.
	cellMap atomic.Pointer[func() *cellarv1.Map]
}

// New returns a router for a topology, reading node readiness from members.
func New(topo cell.Topology, members Membership, conns *daemon.Conns) *Router {
	cells := topo.CellIDs()
	return &Router{
		table: NewSlotTable(topo.Slots, cells), partition: topo.Partition, cells: cells,
		members: members, conns: conns, indexNodes: topo.IndexNodes,
	}
}

// Cells lists every cell.
func (r *Router) Cells() []string { return r.cells }

// SpansCells reports whether a bucket's objects are spread over all cells.
func (r *Router) SpansCells() bool { return r.partition == cell.PartitionByKey }

// UseMap makes the router route by the cell map current returns (the newest one a
// gateway holds) instead of the slot table computed from the topology: a bucket's entry
// in the map overrides the cell of its slot.
func (r *Router) UseMap(current func() *cellarv1.Map) { r.cellMap.Store(&current) }

// Map is the cell map the router routes by, if it follows one (see UseMap), else nil.
func (r *Router) Map() *cellarv1.Map {
	if f := r.cellMap.Load(); f != nil {
		return (*f)()
	}
	return nil
}

// slotCell is the cell of a partition key by the slot table: the cell map's when the
// router follows one, else the topology's.
func (r *Router) slotCell(m *cellarv1.Map, partitionKey string) string {
	if len(m.GetSlots()) > 0 {
		return cellmap.SlotCell(m, partitionKey)
	}
	return r.table.Cell(partitionKey)
}

// BucketCell is the cell that holds a bucket's record (its home cell): the bucket's
// entry in the cell map, else the cell of its slot.
func (r *Router) BucketCell(bucket string) string {
	m := r.Map()
	if e, ok := m.GetBuckets()[bucket]; ok && e.GetCell() != "" {
		return e.Cell
	}
	return r.slotCell(m, bucket)
}

// ObjectCell is the cell that holds an object.
func (r *Router) ObjectCell(bucket, key string) string {
	if r.partition == cell.PartitionByKey {
		return r.slotCell(r.Map(), bucket+"/"+key)
	}
	return r.BucketCell(bucket)
}

// Index returns a client for the index of the cell: the leader of its replication
// group, or its one node when the cell's index is not replicated.
func (r *Router) Index(cellID string) (cellarv1.IndexClient, error) {
	addr, err := r.indexAddr(cellID)
	if err != nil {
		return nil, err
	}
	cc, err := r.conns.Get(addr)
	if err != nil {
		return nil, err
	}
	return cellarv1.NewIndexClient(cc), nil
}

// leaderAddr is the gRPC address of the node of nodes that leads their replication
// group, or "" when none says it does.
func leaderAddr(nodes []cell.Node) string {
	addr := ""
	// Two nodes can both claim to lead for a moment: a leader that died or was cut
	// off is still in the gossip until its peers give up on it. The newer leader
	// has applied more (its first act is to commit an entry after everything the
	// old one could have applied), so the highest applied index wins.
	var applied uint64
	for _, n := range nodes {
		if n.Leader && (addr == "" || n.AppliedIndex > applied) {
			addr, applied = n.GRPCAddr, n.AppliedIndex
		}
	}
	return addr
}

// indexAddr is the gRPC address of the index node that serves the cell.
func (r *Router) indexAddr(cellID string) (string, error) {
	nodes := r.members.Ready(cellID, cell.RoleIndex)
	addr := leaderAddr(nodes)
	if addr == "" && len(nodes) > 0 && r.indexNodes == 1 {
		addr = nodes[0].GRPCAddr
	}
	if addr == "" && r.indexNodes == 1 {
		// A standalone index node serves reads while it rebuilds, by key range as
		// its --rebuild-pending says, and refuses writes with SlowDown until done.
		for _, n := range r.members.Nodes() {
			if n.Cell == cellID && n.Role == cell.RoleIndex && n.State == cell.StateRebuilding {
				addr = n.GRPCAddr
			}
		}
	}
	if addr == "" {
		if len(nodes) == 0 {
			return "", errs.New(errs.Unavailable, "no ready index node in %s", cellID)
		}
		return "", errs.New(errs.Unavailable, "the index of %s has no leader (%d of %d nodes up)", cellID, len(nodes), r.indexNodes)
	}
	return addr, nil
}

// Placement returns a client for a ready placement node of the cell.
func (r *Router) Placement(cellID string) (cellarv1.PlacementClient, error) {
	addr, err := r.readyAddr(cellID, cell.RolePlacement)
	if err != nil {
		return nil, err
	}
	cc, err := r.conns.Get(addr)
	if err != nil {
		return nil, err
	}
	return cellarv1.NewPlacementClient(cc), nil
}

// Storage returns a client for a storage node by id, if it is ready or read-only (a
// node that cannot write still serves reads and deletes; placement, which picks the
// nodes that take writes, leaves it out).
func (r *Router) Storage(cellID, nodeID string) (cellarv1.StorageClient, error) {
	if n, ok := r.members.Find(nodeID); ok && n.Cell == cellID && n.Role == cell.RoleStorage &&
		(n.State == cell.StateReady || n.State == cell.StateReadOnly) {
		cc, err := r.conns.Get(n.GRPCAddr)
		if err != nil {
			return nil, err
		}
		return cellarv1.NewStorageClient(cc), nil
	}
	return nil, errs.New(errs.Unavailable, "storage node %s of %s is not ready", nodeID, cellID)
}

// ReadyStorage is how many storage nodes of the cell are ready (and so can take
// writes) in this router's gossip view.
func (r *Router) ReadyStorage(cellID string) int {
	return len(r.members.Ready(cellID, cell.RoleStorage))
}

// readyAddr picks a ready node of a role in a cell. With several, it takes the first
// by id, so that every gateway sends a cell's work to the same node.
func (r *Router) readyAddr(cellID string, role cell.Role) (string, error) {
	nodes := r.members.Ready(cellID, role)
	if len(nodes) == 0 {
		return "", errs.New(errs.Unavailable, "no ready %s node in %s", role, cellID)
	}
	return nodes[0].GRPCAddr, nil
}

// MapGroup returns a client for the map group: its leader when leader is true (a
// change of the map must go to it), else its leader or, when it has none, any ready
// member (a read of the map, which may then be a little behind).
func (r *Router) MapGroup(leader bool) (cellarv1.CellMapClient, error) {
	nodes := r.members.Ready("", cell.RoleMap)
	addr := leaderAddr(nodes)
	if addr == "" && !leader && len(nodes) > 0 {
		addr = nodes[0].GRPCAddr
	}
	if addr == "" {
		if len(nodes) == 0 {
			return nil, errs.New(errs.Unavailable, "no ready node of the cell map group")
		}
		return nil, errs.New(errs.Unavailable, "the cell map group has no leader (%d nodes up)", len(nodes))
	}
	cc, err := r.conns.Get(addr)
	if err != nil {
		return nil, err
	}
	return cellarv1.NewCellMapClient(cc), nil
}

func (r *Router) String() string {
	return fmt.Sprintf("router(v%d, %d slots over %d cells, by %s)", r.table.Version, len(r.table.Cells), len(r.cells), r.partition)
}
