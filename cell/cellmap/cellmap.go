// Package cellmap is the cell map as data: which cell holds each slot of the slot
// table, and which cell holds each bucket, with a version that every change bumps.
//
// The map is replicated by the map group (package cell/mapgroup), a small raft group of
// its own that applies each change (a cellarv1.MapCommand) with Apply, in log order,
// on every member. Gateways follow it (Follower): they fetch the newest map, keep the
// last one they had on disk (Save, Load) and serve with it when the map group is away,
// across restarts too (static stability).
//
// A bucket's entry overrides the cell of its slot: that is how a bucket moves to
// another cell (its entry goes normal → moving → fenced → normal in the target cell,
// which names the source in moved_from until the source has dropped the bucket's
// records) and how ListBuckets is answered from the map alone, whichever cell is down.
//
//	m := cellmap.Seed(topo.CellIDs(), topo.Slots, topo.Partition)
//	next, changed, err := cellmap.Apply(m, cmd)
//	cellID := cellmap.BucketCell(m, "photos")
package cellmap

import (
	"cmp"
	"hash/fnv"
	"slices"

	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// Slots spreads n slots over cells in contiguous runs of equal size: the slot table a
// map is seeded with.
func Slots(n int, cells []string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = cells[i*len(cells)/n]
	}
	return out
}

// Slot returns the slot of a partition key in a table of n slots.
func Slot(partitionKey string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(partitionKey))
	return int(h.Sum64() % uint64(n))
}

// Seed is the map of version 1 that a new map group starts from: the slot table the
// topology gives, and no bucket entries.
func Seed(cells []string, slots int, partition string) *cellarv1.Map {
	return &cellarv1.Map{Version: 1, Slots: Slots(slots, cells), Partition: partition}
}

// SlotCell returns the cell of a partition key by the slot table alone.
func SlotCell(m *cellarv1.Map, partitionKey string) string {
	if len(m.GetSlots()) == 0 {
		return ""
	}
	return m.Slots[Slot(partitionKey, len(m.Slots))]
}

// BucketCell returns the cell that holds a bucket's record: its entry's cell, or the
// cell of its slot when it has no entry.
func BucketCell(m *cellarv1.Map, bucket string) string {
	if e, ok := m.GetBuckets()[bucket]; ok && e.GetCell() != "" {
		return e.Cell
	}
	return SlotCell(m, bucket)
}

// Bucket is a bucket entry with its name.
type Bucket struct {
	Name string
	*cellarv1.BucketEntry
}

// Buckets lists the map's bucket entries, sorted by name.
func Buckets(m *cellarv1.Map) []Bucket {
	out := make([]Bucket, 0, len(m.GetBuckets()))
	for name, e := range m.GetBuckets() {
		out = append(out, Bucket{Name: name, BucketEntry: e})
	}
	slices.SortFunc(out, func(a, b Bucket) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Apply returns the map after cmd, and whether cmd changed it; m is not modified. Every
// change bumps the version by one; a command that changes nothing (a retried
// registration, the removal of a missing entry) leaves the map as it is. An error says
// why the command is refused; the map is then unchanged.
func Apply(m *cellarv1.Map, cmd *cellarv1.MapCommand) (*cellarv1.Map, bool, error) {
	if m == nil {
		m = &cellarv1.Map{}
	}
	if v := cmd.GetExpectVersion(); v != 0 && v != m.GetVersion() {
		return m, false, errs.New(errs.PreconditionFailed, "the cell map is at version %d, not %d", m.GetVersion(), v)
	}
	next := proto.Clone(m).(*cellarv1.Map)
	if next.Buckets == nil {
		next.Buckets = map[string]*cellarv1.BucketEntry{}
	}
	switch op := cmd.GetOp().(type) {
	case *cellarv1.MapCommand_Seed:
		if len(m.GetSlots()) > 0 {
			return m, false, nil
		}
		if len(op.Seed.GetSlots()) == 0 {
			return m, false, errs.New(errs.InvalidArgument, "a cell map needs at least one slot")
		}
		next.Slots, next.Partition = slices.Clone(op.Seed.Slots), op.Seed.Partition
	case *cellarv1.MapCommand_Register:
		r := op.Register
		if r.GetName() == "" || r.GetCell() == "" {
			return m, false, errs.New(errs.InvalidArgument, "registering a bucket needs its name and cell")
		}
		if e, ok := m.GetBuckets()[r.Name]; ok {
			if e.Cell == r.Cell {
				return m, false, nil
			}
			return m, false, errs.New(errs.BucketExists, "bucket %s is in %s, not %s", r.Name, e.Cell, r.Cell)
		}
		next.Buckets[r.Name] = &cellarv1.BucketEntry{Cell: r.Cell, CreatedUnixNano: r.CreatedUnixNano}
	case *cellarv1.MapCommand_Unregister:
		e, ok := m.GetBuckets()[op.Unregister.GetName()]
		if !ok {
			return m, false, nil
		}
		if c := op.Unregister.GetCell(); c != "" && e.GetCell() != c {
			return m, false, nil // the bucket lives in another cell; its entry stays
		}
		delete(next.Buckets, op.Unregister.Name)
	case *cellarv1.MapCommand_SetState:
		s := op.SetState
		e, ok := next.Buckets[s.GetName()]
		if !ok {
			return m, false, errs.New(errs.NoSuchBucket, "bucket %s has no entry in the cell map", s.GetName())
		}
		if s.State == cellarv1.BucketState_BUCKET_STATE_NORMAL {
			s.MoveTo = ""
		} else if s.MoveTo == "" {
			return m, false, errs.New(errs.InvalidArgument, "a bucket that moves needs a target cell")
		}
		if s.Cell != "" && s.Cell != e.Cell {
			// The cutover: the old cell holds the bucket's records until the move
			// reclaims them (BucketReclaimed).
			e.Cell, e.MovedFrom = s.Cell, e.Cell
		}
		e.State, e.MoveTo = s.State, s.MoveTo
		if proto.Equal(e, m.Buckets[s.Name]) {
			return m, false, nil
		}
	case *cellarv1.MapCommand_Reclaimed:
		r := op.Reclaimed
		e, ok := next.Buckets[r.GetName()]
		if !ok || r.GetCell() == "" || e.MovedFrom != r.Cell {
			return m, false, nil
		}
		e.MovedFrom = ""
	case *cellarv1.MapCommand_SetSlot:
		s := op.SetSlot
		if int(s.GetSlot()) < 0 || int(s.GetSlot()) >= len(next.Slots) || s.GetCell() == "" {
			return m, false, errs.New(errs.InvalidArgument, "slot %d of %d, cell %q: no such slot or no cell", s.GetSlot(), len(next.Slots), s.GetCell())
		}
		if next.Slots[s.Slot] == s.Cell {
			return m, false, nil
		}
		next.Slots[s.Slot] = s.Cell
	default:
		return m, false, errs.New(errs.InvalidArgument, "unknown cell map command")
	}
	next.Version = m.GetVersion() + 1
	return next, true, nil
}
