package guard

import (
	"fmt"
	"strconv"
)

// MoveDetail is what a move plan was decided on: what moves, from where to where, how
// much, and what the target cell has.
type MoveDetail struct {
	// Bucket is the bucket that moves; with Slot >= 0, the buckets of that slot do.
	Bucket  string   `json:"bucket,omitempty"`
	Slot    int      `json:"slot"`
	Buckets []string `json:"buckets"`
	Source  string   `json:"source"`
	Target  string   `json:"target"`
	Objects int64    `json:"objects"`
	Bytes   int64    `json:"bytes"`
	// Finish are the buckets of Buckets whose earlier move to Target stopped after the
	// map's flip: they are there already, nothing of them is copied, and the plan has
	// Source drop the records it still holds of them.
	Finish []string `json:"finish,omitempty"`
	// The target cell: its health by the one definition of cell health, and its
	// headroom: storage nodes that take writes against the copies it promises.
	TargetHealthy       bool   `json:"target_healthy"`
	TargetHealth        string `json:"target_health,omitempty"`
	TargetWritableNodes int    `json:"target_writable_storage_nodes"`
	TargetCopies        int    `json:"target_copies"`
	// MapVersion is the cell map's version the plan was made on.
	MapVersion uint64 `json:"map_version"`
}

// PlanMove is the plan of a move. It is refused when the target is the source, is
// not healthy, or has fewer storage nodes that take writes than the copies it promises
// (the capacity floor); no override lifts these. Its id covers what moves where and
// the target's state, so a plan previewed before the target changed is stale.
func PlanMove(d MoveDetail, guardrailsOff bool) *Plan {
	p := &Plan{Action: ActionMove, Cell: d.Source, Nodes: []string{}, MoveDetail: &d, GuardrailsOff: guardrailsOff}
	refuse := func(format string, args ...any) {
		p.Violations = append(p.Violations, Violation{Rule: RuleTarget, Lifted: guardrailsOff, Message: fmt.Sprintf(format, args...)})
	}
	switch {
	case d.Target == d.Source:
		refuse("%s is already in %s", what(d), d.Target)
	case !d.TargetHealthy:
		refuse("the target %s is not healthy (%s)", d.Target, d.TargetHealth)
	case d.TargetWritableNodes < d.TargetCopies:
		refuse("the target %s has %d storage node%s that take writes, fewer than the %d copies it keeps of every object",
			d.Target, d.TargetWritableNodes, plural(d.TargetWritableNodes), d.TargetCopies)
	}
	// The id covers what moves where and the target's state, not the object count or
	// the map's version: a bucket under load changes them between preview and run.
	p.seal(struct {
		Buckets       []string
		Slot          int
		Source        string
		Target        string
		Writable      int
		TargetHealthy bool
	}{d.Buckets, d.Slot, d.Source, d.Target, d.TargetWritableNodes, d.TargetHealthy})
	return p
}

func what(d MoveDetail) string {
	if d.Slot >= 0 {
		return "slot " + strconv.Itoa(d.Slot)
	}
	return "bucket " + d.Bucket
}
