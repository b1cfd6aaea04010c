package localcluster

import (
	"context"

	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway/mover"
)

// MoveBucket asks the supervisor's control endpoint to move bucket to cell to, as
// 'cellctl move' does: a dry run when confirm is "", else the plan confirm names, run
// for reason (see Control.Move). The drill's move step calls it (drill.BucketMover).
func (a *Attached) MoveBucket(ctx context.Context, bucket, to, confirm, reason string,
	show func(*guard.Plan), progress func(mover.Progress)) (*guard.Result, []mover.Stats, error) {
	if a.control == nil {
		return nil, nil, ErrNoControl
	}
	req := MoveRequest{Bucket: bucket, To: to, Confirm: confirm, Reason: reason, Command: a.control.Caller.Command, ProgressEveryMS: 1000}
	return a.control.Move(ctx, req, show, progress)
}
