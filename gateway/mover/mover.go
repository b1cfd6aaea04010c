// Package mover moves a bucket, or every bucket of a slot, from one cell to another
// while it serves, through the guardrail workflow (drill/guard): a plan first (what
// moves, how many objects and bytes, the target's health and headroom), then, once
// confirmed with a reason, the move itself, audited, halted by the kill switch.
//
// A move of bucket B from cell S to cell T:
//
//  1. B's entry in the cell map becomes moving(T); B is created in T's index.
//  2. Copy: every object of B is copied from S to T (gateway.Copier: the bytes as a GET
//     reads them, written as a PUT writes them), while B keeps serving from S.
//  3. Catch-up passes copy what changed since (a new version, a deleted key), until a
//     pass finds little to do.
//  4. Write fence: B's entry becomes fenced and S's index refuses writes to B
//     (Unavailable: clients retry). A final pass copies the last changes; nothing
//     can change B in S any more.
//  5. S's index refuses everything of B (a gateway with an older map gets a 503, never
//     a stale read), and the map flips B to T, in one map change. The write pause is
//     from 4 to here; reads pause only from 5 until the gateways have the new map,
//     which the map group pushes to them at once.
//  6. Reclaim: S drops B and its object records in one command, and B's blobs in S
//     are deleted.
//
// Cancelled (or failed) before 5, the move is undone: S's fence is lifted, the map
// entry goes back to normal in S, and what was copied to T is dropped there. From 5
// on it goes to the end whatever happens to its context. A move that stopped part way
// (its process died) is resumed by running the same move again: the map entry says
// where it was.
package mover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/cellmap"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/router"
)

// Mover moves buckets between cells. Its zero value is not usable: give Router,
// Topology and Nodes.
type Mover struct {
	// Router reaches the cells and the map group, with connections that hold the
	// supervisor's certificate: only it may fence and drop a bucket in an index and
	// change a bucket's map entry (the supervisor runs moves behind its control
	// endpoint, localcluster).
	Router   *router.Router
	Topology cell.Topology
	// Nodes is the state of every node, to judge the target cell's health.
	Nodes func(ctx context.Context) ([]cell.NodeStatus, error)
	Log   *slog.Logger
	// Progress, if not nil, gets the copy's progress every ProgressEvery (default 2 s)
	// and at the end of every step.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// CatchUpPasses bounds the catch-up passes before the write fence (default 3);
	// a pass that copies at most CatchUpEnough objects (default 16) ends them earlier.
	CatchUpPasses, CatchUpEnough int

	// Moved is what each bucket's move did, in order, as Execute moved them.
	Moved []Stats
}

// Request asks for a move: of Bucket, or of every bucket of Slot (Slot >= 0), to To.
type Request struct {
	Bucket string
	Slot   int
	To     string
}

// Progress is where a move is.
type Progress struct {
	Bucket  string        `json:"bucket"`
	Step    string        `json:"step"` // copy, catch-up, fence, final, cutover, reclaim, done, undone
	Objects int64         `json:"objects_copied"`
	Bytes   int64         `json:"bytes_copied"`
	Total   int64         `json:"objects_planned"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Rates since the copy started, and the time left at that rate (0 when unknown).
	ObjectsPerSec float64       `json:"objects_per_s"`
	BytesPerSec   float64       `json:"bytes_per_s"`
	ETA           time.Duration `json:"eta_ns"`
}

// Stats is what one bucket's move did.
type Stats struct {
	Bucket  string `json:"bucket"`
	Objects int64  `json:"objects_copied"`
	Bytes   int64  `json:"bytes_copied"`
	Passes  int    `json:"passes"`
	// WritePause is how long the bucket's writes were fenced; Took the whole move.
	WritePause time.Duration `json:"write_pause_ns"`
	Took       time.Duration `json:"took_ns"`
	Reclaimed  int64         `json:"source_records_dropped"`
}

func (m *Mover) log() *slog.Logger {
	if m.Log == nil {
		return slog.Default()
	}
	return m.Log
}

// cellMap reads the map from the map group's leader.
func (m *Mover) cellMap(ctx context.Context) (*cellarv1.Map, error) {
	mc, err := m.Router.MapGroup(true)
	if err != nil {
		return nil, err
	}
	return mc.Get(ctx, &cellarv1.GetMapRequest{})
}

// changeMap applies cmd through the map group's leader.
func (m *Mover) changeMap(ctx context.Context, cmd *cellarv1.MapCommand) (*cellarv1.Map, error) {
	mc, err := m.Router.MapGroup(true)
	if err != nil {
		return nil, err
	}
	return mc.Apply(ctx, cmd)
}

// Plan decides the plan of req from the cluster as it is now.
func (m *Mover) Plan(ctx context.Context, req Request) (*guard.Plan, error) {
	if req.To == "" || !slices.Contains(m.Topology.CellIDs(), req.To) {
		return nil, fmt.Errorf("%w: no cell %q to move to", guard.ErrBadRequest, req.To)
	}
	cm, err := m.cellMap(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the cell map: %w", err)
	}
	d := guard.MoveDetail{Bucket: req.Bucket, Slot: -1, Target: req.To, MapVersion: cm.GetVersion(), TargetCopies: m.Topology.PromisedCopies()}
	if req.Bucket != "" {
		e, ok := cm.GetBuckets()[req.Bucket]
		if !ok {
			return nil, fmt.Errorf("%w: bucket %s is not in the cell map", guard.ErrBadRequest, req.Bucket)
		}
		d.Source, d.Buckets = e.Cell, []string{req.Bucket}
	} else {
		if req.Slot < 0 || req.Slot >= len(cm.GetSlots()) {
			return nil, fmt.Errorf("%w: no slot %d (the map has %d)", guard.ErrBadRequest, req.Slot, len(cm.GetSlots()))
		}
		d.Slot, d.Source = req.Slot, cm.Slots[req.Slot]
		for _, b := range cellmap.Buckets(cm) {
			if cellmap.Slot(b.Name, len(cm.Slots)) == req.Slot && b.Cell == d.Source {
				d.Buckets = append(d.Buckets, b.Name)
			}
		}
	}
	for _, b := range d.Buckets {
		n, size, err := m.count(ctx, d.Source, b)
		if err != nil {
			return nil, fmt.Errorf("count the objects of %s in %s: %w", b, d.Source, err)
		}
		d.Objects += n
		d.Bytes += size
	}
	nodes, err := m.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	h := cell.JudgeCell(m.Topology, req.To, nodes)
	d.TargetHealthy, d.TargetHealth = h.Health == cell.HealthServing, string(h.Health)
	if h.Reason != "" {
		d.TargetHealth += ": " + h.Reason
	}
	d.TargetWritableNodes = h.Ready[cell.RoleStorage]
	return guard.PlanMove(d, m.Topology.GuardrailsOff()), nil
}

// count is how many objects, and bytes, bucket holds in cellID.
func (m *Mover) count(ctx context.Context, cellID, bucket string) (n, size int64, err error) {
	err = m.eachObject(ctx, cellID, bucket, func(loc *cellarv1.Location) error {
		n++
		size += loc.Size
		return nil
	})
	return n, size, err
}

// eachObject calls fn for every object of bucket in cellID, in key order.
func (m *Mover) eachObject(ctx context.Context, cellID, bucket string, fn func(*cellarv1.Location) error) error {
	ix, err := m.Router.Index(cellID)
	if err != nil {
		return err
	}
	after := ""
	for {
		page, err := ix.List(ctx, &cellarv1.ListRequest{Bucket: bucket, StartAfter: after, Limit: 1000})
		if err != nil {
			return err
		}
		for _, loc := range page.Entries {
			if err := fn(loc); err != nil {
				return err
			}
		}
		if !page.Truncated || len(page.Entries) == 0 {
			return nil
		}
		after = page.Next
	}
}

// Execute carries out a confirmed move plan: each of its buckets in turn, then, for a
// slot, the slot's cell. It is the Execute of the guard.Op the move runs as.
func (m *Mover) Execute(ctx context.Context, p *guard.Plan) ([]guard.StepResult, error) {
	d := p.MoveDetail
	if d == nil {
		return nil, errors.New("not a move plan")
	}
	var steps []guard.StepResult
	for _, b := range d.Buckets {
		start := time.Now()
		st, err := m.MoveBucket(ctx, b, d.Source, d.Target)
		m.Moved = append(m.Moved, st)
		step := guard.StepResult{Node: b, Action: "move to " + d.Target, Took: time.Since(start)}
		if err != nil {
			step.Error = err.Error()
			return append(steps, step), err
		}
		steps = append(steps, step)
	}
	if d.Slot >= 0 {
		if _, err := m.changeMap(ctx, &cellarv1.MapCommand{Op: &cellarv1.MapCommand_SetSlot{SetSlot: &cellarv1.SetSlot{Slot: int32(d.Slot), Cell: d.Target}}}); err != nil {
			return steps, fmt.Errorf("give slot %d to %s: %w", d.Slot, d.Target, err)
		}
	}
	return steps, nil
}

// run is one bucket's move in progress.
type run struct {
	m        *Mover
	cp       *gateway.Copier
	bucket   string
	src, dst string
	// copied is, per key, the source version last copied (its object id, or its
	// first part's).
	copied map[string]string
	// srcLocs are the source's objects as the last pass listed them: after the final
	// pass, what the reclaim deletes.
	srcLocs []*cellarv1.Location
	stats   Stats
	start   time.Time
	total   int64
	step    string
	last    time.Time
}

// versionOf names the version of an object at loc.
func versionOf(loc *cellarv1.Location) string {
	if len(loc.Parts) > 0 {
		return string(loc.Parts[0].ObjectId)
	}
	return string(loc.ObjectId)
}

// MoveBucket moves bucket from cell src to cell dst (see the package doc). It resumes
// a move of the same bucket to the same cell that stopped part way.
func (m *Mover) MoveBucket(ctx context.Context, bucket, src, dst string) (Stats, error) {
	r := &run{m: m, cp: gateway.NewCopier(m.Router, m.Topology, m.log()), bucket: bucket, src: src, dst: dst,
		copied: map[string]string{}, start: time.Now(), stats: Stats{Bucket: bucket}}
	cm, err := m.cellMap(ctx)
	if err != nil {
		return r.stats, fmt.Errorf("read the cell map: %w", err)
	}
	e, ok := cm.GetBuckets()[bucket]
	switch {
	case !ok:
		return r.stats, fmt.Errorf("bucket %s is not in the cell map", bucket)
	case e.Cell == dst && e.State == cellarv1.BucketState_BUCKET_STATE_NORMAL:
		return r.stats, nil // moved already
	case e.Cell != src:
		return r.stats, fmt.Errorf("bucket %s is in %s, not %s", bucket, e.Cell, src)
	case e.State != cellarv1.BucketState_BUCKET_STATE_NORMAL && e.MoveTo != dst:
		return r.stats, fmt.Errorf("bucket %s is moving to %s already", bucket, e.MoveTo)
	}
	if err := r.prepare(ctx, cm.GetVersion(), e); err != nil {
		return r.stats, r.undo(err)
	}
	if err := r.copyAndFence(ctx); err != nil {
		return r.stats, r.undo(err)
	}
	// Past the point of no return: the cutover and the reclaim go to the end.
	if err := r.cutover(context.WithoutCancel(ctx)); err != nil {
		return r.stats, err
	}
	r.stats.Took = time.Since(r.start)
	r.report("done", true)
	return r.stats, nil
}

// prepare marks the bucket moving in the map and creates it in the target.
func (r *run) prepare(ctx context.Context, version uint64, e *cellarv1.BucketEntry) error {
	if e.State == cellarv1.BucketState_BUCKET_STATE_NORMAL {
		if _, err := r.m.changeMap(ctx, &cellarv1.MapCommand{ExpectVersion: version, Op: &cellarv1.MapCommand_SetState{SetState: &cellarv1.SetBucketState{
			Name: r.bucket, State: cellarv1.BucketState_BUCKET_STATE_MOVING, MoveTo: r.dst}}}); err != nil {
			return fmt.Errorf("mark %s moving in the cell map: %w", r.bucket, err)
		}
	}
	ix, err := r.m.Router.Index(r.dst)
	if err != nil {
		return err
	}
	if _, err := ix.CreateBucket(ctx, &cellarv1.CreateBucketRequest{Name: r.bucket}); err != nil && !errs.Is(err, errs.BucketExists) {
		return fmt.Errorf("create %s in %s: %w", r.bucket, r.dst, err)
	}
	// A target left fenced by an earlier, undone move serves again.
	if _, err := ix.FenceBucket(ctx, &cellarv1.FenceBucketRequest{Name: r.bucket}); err != nil {
		return fmt.Errorf("unfence %s in %s: %w", r.bucket, r.dst, err)
	}
	n, _, err := r.m.count(ctx, r.src, r.bucket)
	r.total = n
	return err
}

// pass copies what changed in the source since the last pass, and deletes in the
// target what the source no longer has. It returns how many objects it changed.
func (r *run) pass(ctx context.Context) (int, error) {
	r.stats.Passes++
	seen := map[string]bool{}
	changed := 0
	r.srcLocs = r.srcLocs[:0]
	err := r.m.eachObject(ctx, r.src, r.bucket, func(loc *cellarv1.Location) error {
		seen[loc.Key] = true
		r.srcLocs = append(r.srcLocs, loc)
		v := versionOf(loc)
		if r.copied[loc.Key] == v {
			return nil
		}
		if _, err := r.cp.CopyObject(ctx, r.src, r.dst, loc); err != nil {
			return fmt.Errorf("copy %s/%s: %w", r.bucket, loc.Key, err)
		}
		r.copied[loc.Key] = v
		r.stats.Objects++
		r.stats.Bytes += loc.Size
		changed++
		r.report(r.step, false)
		return nil
	})
	if err != nil {
		return changed, err
	}
	ix, err := r.m.Router.Index(r.dst)
	if err != nil {
		return changed, err
	}
	for key := range r.copied {
		if seen[key] {
			continue
		}
		resp, err := ix.Delete(ctx, &cellarv1.DeleteRequest{Bucket: r.bucket, Key: key})
		if err != nil {
			return changed, fmt.Errorf("delete %s/%s in %s: %w", r.bucket, key, r.dst, err)
		}
		if resp.Previous != nil {
			r.cp.DeleteBlobs(r.dst, resp.Previous)
		}
		delete(r.copied, key)
		changed++
	}
	return changed, nil
}

// copyAndFence copies the bucket, catches up, fences its writes in the source and
// copies the last changes.
func (r *run) copyAndFence(ctx context.Context) error {
	r.step = "copy"
	if _, err := r.pass(ctx); err != nil {
		return err
	}
	r.step = "catch-up"
	passes, enough := r.m.CatchUpPasses, r.m.CatchUpEnough
	if passes == 0 {
		passes = 3
	}
	if enough == 0 {
		enough = 16
	}
	for i := 0; i < passes; i++ {
		n, err := r.pass(ctx)
		if err != nil {
			return err
		}
		if n <= enough {
			break
		}
	}
	r.report("fence", true)
	fenced := time.Now()
	if err := r.setState(ctx, cellarv1.BucketState_BUCKET_STATE_FENCED, ""); err != nil {
		return err
	}
	if err := r.fence(ctx, cellarv1.BucketFence_BUCKET_FENCE_WRITES); err != nil {
		return err
	}
	r.step = "final"
	if _, err := r.pass(ctx); err != nil {
		return err
	}
	r.stats.WritePause = time.Since(fenced) // completed in cutover
	return nil
}

func (r *run) setState(ctx context.Context, st cellarv1.BucketState, cellID string) error {
	moveTo := r.dst
	if st == cellarv1.BucketState_BUCKET_STATE_NORMAL {
		moveTo = ""
	}
	_, err := r.m.changeMap(ctx, &cellarv1.MapCommand{Op: &cellarv1.MapCommand_SetState{SetState: &cellarv1.SetBucketState{
		Name: r.bucket, State: st, MoveTo: moveTo, Cell: cellID}}})
	if err != nil {
		return fmt.Errorf("set %s %s in the cell map: %w", r.bucket, st, err)
	}
	return nil
}

// fence sets the bucket's fence in the source index.
func (r *run) fence(ctx context.Context, f cellarv1.BucketFence) error {
	ix, err := r.m.Router.Index(r.src)
	if err == nil {
		_, err = ix.FenceBucket(ctx, &cellarv1.FenceBucketRequest{Name: r.bucket, Fence: f, MovedTo: r.dst})
	}
	if err != nil {
		return fmt.Errorf("fence %s in %s (%s): %w", r.bucket, r.src, f, err)
	}
	return nil
}

// cutover seals the source, flips the map and reclaims the source's copy. Each step
// is retried until it succeeds: the bucket is unavailable until the map flips.
func (r *run) cutover(ctx context.Context) error {
	r.report("cutover", true)
	start := time.Now().Add(-r.stats.WritePause)
	if err := retry(ctx, func() error { return r.fence(ctx, cellarv1.BucketFence_BUCKET_FENCE_ALL) }); err != nil {
		return err
	}
	if err := retry(ctx, func() error { return r.setState(ctx, cellarv1.BucketState_BUCKET_STATE_NORMAL, r.dst) }); err != nil {
		return err
	}
	r.stats.WritePause = time.Since(start)
	r.m.log().Info("bucket moved", "bucket", r.bucket, "from", r.src, "to", r.dst, "objects", r.stats.Objects, "write_pause", r.stats.WritePause)
	r.report("reclaim", true)
	// The records go with the bucket, in one command; the blobs are those the final
	// pass listed (nothing could change them since the write fence).
	return retry(ctx, func() error {
		ix, err := r.m.Router.Index(r.src)
		if err != nil {
			return err
		}
		resp, err := ix.DropBucket(ctx, &cellarv1.DropBucketRequest{Name: r.bucket})
		if err == nil {
			r.stats.Reclaimed = resp.Objects
			for _, loc := range r.srcLocs {
				r.cp.DeleteBlobs(r.src, loc)
			}
		}
		return err
	})
}

// undo takes back a move stopped before its cutover: the source serves the bucket
// again, and what was copied to the target is dropped.
func (r *run) undo(cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errsOut []error
	if err := r.fence(ctx, cellarv1.BucketFence_BUCKET_FENCE_NONE); err != nil {
		errsOut = append(errsOut, err)
	}
	if err := r.setState(ctx, cellarv1.BucketState_BUCKET_STATE_NORMAL, ""); err != nil {
		errsOut = append(errsOut, err)
	}
	if ix, err := r.m.Router.Index(r.dst); err != nil {
		errsOut = append(errsOut, err)
	} else {
		var locs []*cellarv1.Location
		_ = r.m.eachObject(ctx, r.dst, r.bucket, func(loc *cellarv1.Location) error { locs = append(locs, loc); return nil })
		if _, err := ix.FenceBucket(ctx, &cellarv1.FenceBucketRequest{Name: r.bucket, Fence: cellarv1.BucketFence_BUCKET_FENCE_ALL, MovedTo: r.src}); err != nil {
			errsOut = append(errsOut, err)
		} else if _, err := ix.DropBucket(ctx, &cellarv1.DropBucketRequest{Name: r.bucket}); err != nil {
			errsOut = append(errsOut, err)
		} else {
			for _, loc := range locs {
				r.cp.DeleteBlobs(r.dst, loc)
			}
		}
	}
	r.report("undone", true)
	if len(errsOut) > 0 {
		return fmt.Errorf("%w; undoing it: %w", cause, errors.Join(errsOut...))
	}
	return fmt.Errorf("%w (undone: %s serves %s)", cause, r.src, r.bucket)
}

// report gives the move's progress to the Mover's Progress, at most every
// ProgressEvery unless now.
func (r *run) report(step string, now bool) {
	if r.m.Progress == nil {
		return
	}
	every := r.m.ProgressEvery
	if every == 0 {
		every = 2 * time.Second
	}
	if !now && time.Since(r.last) < every {
		return
	}
	r.last = time.Now()
	p := Progress{Bucket: r.bucket, Step: step, Objects: r.stats.Objects, Bytes: r.stats.Bytes, Total: r.total, Elapsed: time.Since(r.start)}
	if s := p.Elapsed.Seconds(); s > 0 {
		p.ObjectsPerSec, p.BytesPerSec = float64(p.Objects)/s, float64(p.Bytes)/s
	}
	if p.ObjectsPerSec > 0 && p.Total > p.Objects {
		p.ETA = time.Duration(float64(p.Total-p.Objects) / p.ObjectsPerSec * float64(time.Second))
	}
	r.m.Progress(p)
}

// retry calls f until it succeeds, a second apart, for up to a minute.
func retry(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
