// Package mover moves a bucket, or every bucket of a slot, from one cell to another
// while it serves, through the guardrail workflow (drill/guard): a plan first (what
// moves, how many objects and bytes, the target's health and headroom), then, once
// confirmed with a reason, the move itself, audited, halted by the kill switch.
//
// A move of bucket B from cell S to cell T:
//
//  1. B's entry in the cell map becomes moving(T); B is created in T's index.
//  2. Copy: S's index starts logging the keys of B whose records change (its change
//     log); then every object of B is copied from S to T (gateway.Copier: the bytes
//     as a GET reads them, written as a PUT writes them; the object's tags and times
//     kept), and B's configuration (tags, CORS and lifecycle rules) with it, while B
//     keeps serving from S. This pass lists S in key order and copies
//     CopyConcurrency objects at once (16 by default); the first copy that fails
//     stops the pass, whose next try copies only what is not copied yet.
//  3. Catch-up passes copy what changed since (a new version, a deleted key), as the
//     change log lists it, until a pass finds little to do.
//  4. Write fence: B's entry becomes fenced and S's index refuses writes to B
//     (Unavailable: clients retry). A final pass copies the last changes the log
//     lists; nothing can change B in S any more. It reads only those changes, so the
//     write pause does not grow with the bucket.
//  5. S's index refuses everything of B (a gateway with an older map gets a 503, never
//     a stale read), and the map flips B to T, in one map change. The write pause is
//     from 4 to here; reads pause only from 5 until the gateways have the new map,
//     which the map group pushes to them at once.
//  6. Reclaim: S drops B and its object records in one command, and B's blobs in S
//     are deleted. Until then B's entry names S as the cell it moved from.
//
// A step that fails (a node of S or T away, the map group changing leader) is tried
// again, for up to RetryFor (a step of an undo five times as long). Cancelled, or
// still failing, before the map flips, the move is undone: S's fence is lifted, the
// map entry goes back to normal in S, and what was copied to T is dropped there. From the seal (5) on, a cancel no longer
// stops it. A move that stopped part way (its process died) is resumed by running the
// same move again: the map entry says where it was, what the earlier run copied to T
// is kept where it is still a copy of what S has (so a resumed copy goes on rather
// than starting over), and a move that had flipped the map has the source's records
// dropped. The entry of such a bucket names the source
// (moved_from) until they are, so Plan of a move of it to the cell that holds it
// plans that reclaim, and Execute runs it; a move of it elsewhere finishes it first.
//
// A bucket with S3 versioning (enabled or suspended) is not moved: the copy carries
// the current version of each key only. Its plan is refused, and a move whose bucket
// gets versioning while it copies is undone.
//
// Its metrics (NewMetrics) count the copies,
// the moves by outcome and their write pause.
package mover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

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
	// Catch-up passes run before the write fence while each changes fewer objects
	// than the one before: the first that changes at most CatchUpEnough (default 16),
	// or no fewer than the pass before it (the bucket's writes keep up with the copy),
	// is the last. CatchUpPasses bounds them (default 10).
	CatchUpPasses, CatchUpEnough int
	// RetryFor bounds how long a step that fails (a node of either cell away, the map
	// group changing leader) is tried again before the move gives up: undone before
	// its cutover, left to be run again after (default 1 minute).
	RetryFor time.Duration
	// Metrics, if not nil, counts what the moves do (NewMetrics).
	Metrics *Metrics
	// CopyConcurrency is how many objects a pass copies at once (default 16; 1
	// copies one object at a time). The first pass lists the source in key order,
	// the others read its change log, and each hands what changed to that many
	// copies; the first copy that fails stops the pass.
	CopyConcurrency int

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
	Total   int64         `json:"objects_planned"` // less what an earlier run copied and this one keeps
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
	// Listed counts the source's objects the passes listed, and Changes the changed
	// keys they read from the source's change log instead.
	Listed  int64 `json:"objects_listed"`
	Changes int64 `json:"changes_read"`
	// Kept counts the objects an earlier run of the same move had copied to the
	// target that this run found still current in the source, and did not copy again.
	Kept int64 `json:"objects_kept"`
	// WritePause is how long the bucket's writes were fenced; Took the whole move.
	WritePause time.Duration `json:"write_pause_ns"`
	Took       time.Duration `json:"took_ns"`
	Reclaimed  int64         `json:"source_records_dropped"`
	// ReclaimOnly says the bucket had moved already (its move had stopped between
	// the map's flip and the reclaim): this run only dropped the source's records.
	ReclaimOnly bool `json:"reclaim_only,omitempty"`
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
	// unfinished are the buckets in the target already whose move from the source
	// stopped between the map's flip and its reclaim: the plan finishes them (the
	// source drops their records), and copies nothing of them.
	unfinished := map[string]bool{}
	if req.Bucket != "" {
		e, ok := cm.GetBuckets()[req.Bucket]
		if !ok {
			return nil, fmt.Errorf("%w: bucket %s is not in the cell map", guard.ErrBadRequest, req.Bucket)
		}
		d.Source, d.Buckets = e.Cell, []string{req.Bucket}
		if reclaimPending(e, req.To) {
			d.Source, unfinished[req.Bucket] = e.MovedFrom, true
		}
	} else {
		if req.Slot < 0 || req.Slot >= len(cm.GetSlots()) {
			return nil, fmt.Errorf("%w: no slot %d (the map has %d)", guard.ErrBadRequest, req.Slot, len(cm.GetSlots()))
		}
		d.Slot, d.Source = req.Slot, cm.Slots[req.Slot]
		for _, b := range cellmap.Buckets(cm) {
			if cellmap.Slot(b.Name, len(cm.Slots)) != req.Slot {
				continue
			}
			switch {
			case b.Cell == d.Source:
				d.Buckets = append(d.Buckets, b.Name)
			case reclaimPending(b.BucketEntry, req.To) && b.MovedFrom == d.Source:
				d.Buckets, unfinished[b.Name] = append(d.Buckets, b.Name), true
			}
		}
	}
	for _, b := range d.Buckets {
		if unfinished[b] {
			d.Finish = append(d.Finish, b)
		}
	}
	var versioned []string
	for _, b := range d.Buckets {
		if unfinished[b] {
			continue
		}
		v, err := m.versioning(ctx, d.Source, b)
		if err != nil && cm.GetBuckets()[b].GetState() == cellarv1.BucketState_BUCKET_STATE_NORMAL {
			return nil, fmt.Errorf("read bucket %s in %s: %w", b, d.Source, err)
		}
		if v != cellarv1.BucketVersioning_BUCKET_VERSIONING_OFF {
			versioned = append(versioned, b)
		}
	}
	if len(versioned) > 0 {
		return nil, fmt.Errorf("%w: %s", guard.ErrBadRequest, refuseVersioned(versioned))
	}
	for _, b := range d.Buckets {
		if unfinished[b] {
			continue // the source refuses it: nothing is copied
		}
		n, size, err := m.count(ctx, d.Source, b)
		if err != nil && cm.GetBuckets()[b].GetState() != cellarv1.BucketState_BUCKET_STATE_NORMAL {
			// A move that stopped in its cutover left the source sealed: its objects
			// are not counted, and running the move again resumes it.
			continue
		}
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

// reclaimPending says whether e is a bucket in cell to already whose move there
// stopped between the map's flip and its reclaim: its source still holds its records.
func reclaimPending(e *cellarv1.BucketEntry, to string) bool {
	return e.GetCell() == to && e.GetState() == cellarv1.BucketState_BUCKET_STATE_NORMAL && e.GetMovedFrom() != "" && e.GetMovedFrom() != to
}

// refuseVersioned says why the buckets named cannot move.
func refuseVersioned(buckets []string) string {
	what := "bucket " + buckets[0] + " has"
	if len(buckets) > 1 {
		what = fmt.Sprintf("buckets %s have", strings.Join(buckets, ", "))
	}
	return what + " S3 versioning enabled or suspended, and a move carries only the current version of each key, " +
		"so it would lose the older versions and delete markers: cellar does not move a versioned bucket"
}

// versioning is bucket's S3 versioning in cellID.
func (m *Mover) versioning(ctx context.Context, cellID, bucket string) (cellarv1.BucketVersioning, error) {
	ix, err := m.Router.Index(cellID)
	if err != nil {
		return 0, err
	}
	resp, err := ix.GetBucket(ctx, &cellarv1.GetBucketRequest{Name: bucket})
	if err != nil {
		return 0, err
	}
	return resp.GetBucket().GetVersioning(), nil
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

// defaultCopyConcurrency is the copies a pass makes at once when the Mover does not
// say.
const defaultCopyConcurrency = 16

func (m *Mover) copyConcurrency() int {
	if m.CopyConcurrency <= 0 {
		return defaultCopyConcurrency
	}
	return m.CopyConcurrency
}

// run is one bucket's move in progress.
type run struct {
	m        *Mover
	cp       *gateway.Copier
	bucket   string
	src, dst string
	// copied is, per key, what the target has of the source (see copyMark): the
	// source's objects as the last pass found them are what the reclaim deletes the
	// blobs of.
	copied map[string]copyMark
	// srcFence is the fence the run has set on the bucket in the source.
	srcFence cellarv1.BucketFence
	// logged says that a pass has listed the whole source since the source began
	// logging the bucket's changes, at changesFrom; each pass after it reads the log
	// from where the previous one stopped (see pass).
	logged      bool
	changesFrom uint64
	stats       Stats
	start       time.Time
	total       int64
	step        string
	last        time.Time
	// fenced is when the bucket's writes were fenced: the start of the write pause.
	fenced time.Time
}

// copyMark is what a run knows of a key: the source's object the target has a copy
// of, and the last pass that saw the key in the source. A mark without loc is a key
// the target held when the run began (held is the target's record of it): a copy
// from an earlier run of the same move, kept if it is a copy of what the source has
// now, copied again if not, deleted if the source no longer has the key.
type copyMark struct {
	loc  *cellarv1.Location
	held *cellarv1.Location
	pass int
}

// same says whether the target has loc as it is: its version, with the same tags (a
// tagging changes them and keeps the version).
func (m copyMark) same(loc *cellarv1.Location) bool {
	if m.loc == nil {
		return m.held != nil && copyOf(m.held, loc)
	}
	return versionOf(m.loc) == versionOf(loc) && tagsEqual(m.loc.GetTags(), loc.GetTags())
}

// copyOf says whether the target's record c is a copy of the source's record loc: a
// copy keeps every field of its source (size, MD5, modification time to the
// nanosecond, metadata, tags, checksums) and differs only in its blobs' ids and
// replicas, which are the target's own.
func copyOf(c, loc *cellarv1.Location) bool {
	return proto.Equal(withoutBlobs(c), withoutBlobs(loc))
}

func withoutBlobs(loc *cellarv1.Location) *cellarv1.Location {
	out := proto.Clone(loc).(*cellarv1.Location)
	out.ObjectId, out.Replicas = nil, nil
	for _, p := range out.Parts {
		p.ObjectId, p.Replicas = nil, nil
	}
	return out
}

func tagsEqual(a, b []*cellarv1.Tag) bool {
	return slices.EqualFunc(a, b, func(x, y *cellarv1.Tag) bool { return x.GetKey() == y.GetKey() && x.GetValue() == y.GetValue() })
}

// versionOf names the version of an object at loc.
func versionOf(loc *cellarv1.Location) string {
	if len(loc.Parts) > 0 {
		return string(loc.Parts[0].ObjectId)
	}
	return string(loc.ObjectId)
}

// MoveBucket moves bucket from cell src to cell dst (see the package doc). It resumes
// a move of the same bucket to the same cell that stopped part way: one whose process
// died before its cutover goes on from the map entry's state (moving or fenced), and
// one that died after the map's flip has the source's records dropped.
func (m *Mover) MoveBucket(ctx context.Context, bucket, src, dst string) (Stats, error) {
	r := &run{m: m, cp: gateway.NewCopier(m.Router, m.Topology, m.log()), bucket: bucket, src: src, dst: dst,
		copied: map[string]copyMark{}, start: time.Now(), stats: Stats{Bucket: bucket}}
	m.Metrics.started()
	outcome := "failed"
	defer func() { m.Metrics.ended(outcome, time.Since(r.start).Seconds()) }()
	var cm *cellarv1.Map
	if err := r.retry(ctx, "read the cell map", func() (err error) { cm, err = m.cellMap(ctx); return err }); err != nil {
		return r.stats, fmt.Errorf("read the cell map: %w", err)
	}
	e, ok := cm.GetBuckets()[bucket]
	switch {
	case !ok:
		return r.stats, fmt.Errorf("bucket %s is not in the cell map", bucket)
	case e.Cell == dst && e.State == cellarv1.BucketState_BUCKET_STATE_NORMAL:
		// Moved already. A move that stopped between the map's flip and its reclaim
		// left the source's records behind, fenced (the entry names the source in
		// moved_from until they are dropped): drop them now.
		if src != dst {
			r.stats.ReclaimOnly = true
			r.report("reclaim", true)
			if err := r.reclaim(context.WithoutCancel(ctx), src, false); err != nil {
				return r.stats, err
			}
		}
		outcome = "done"
		r.stats.Took = time.Since(r.start)
		r.report("done", true)
		return r.stats, nil
	case e.Cell != src:
		return r.stats, fmt.Errorf("bucket %s is in %s, not %s", bucket, e.Cell, src)
	case e.State != cellarv1.BucketState_BUCKET_STATE_NORMAL && e.MoveTo != dst:
		return r.stats, fmt.Errorf("bucket %s is moving to %s already", bucket, e.MoveTo)
	}
	undo := func(err error) (Stats, error) {
		err, clean := r.undo(err)
		if clean {
			outcome = "undone"
		}
		return r.stats, err
	}
	if e.State == cellarv1.BucketState_BUCKET_STATE_NORMAL && e.MovedFrom != "" {
		// An earlier move brought the bucket here and did not reclaim its source:
		// that is finished first, so that no cell keeps records the map no longer
		// names (and a move back there does not find them).
		if err := r.reclaim(ctx, e.MovedFrom, false); err != nil {
			return r.stats, fmt.Errorf("finish the earlier move of %s from %s: %w", bucket, e.MovedFrom, err)
		}
	}
	if e.State == cellarv1.BucketState_BUCKET_STATE_NORMAL {
		// Nothing is done yet: a move that cannot mark its bucket has nothing to undo
		// (and must not touch an entry something else changed).
		if err := r.markMoving(ctx, cm.GetVersion()); err != nil {
			return r.stats, err
		}
	}
	if err := r.prepare(ctx, e); err != nil {
		return undo(err)
	}
	if err := r.copyAndFence(ctx); err != nil {
		return undo(err)
	}
	// From here on the move goes on whatever happens to its context: the source is
	// fenced, and only a flip of the map or an undo serves the bucket again.
	cctx := context.WithoutCancel(ctx)
	flipped, err := r.cutover(cctx)
	switch {
	case err != nil && flipped == flipNot:
		return undo(err)
	case err != nil && flipped == flipUnknown:
		return r.stats, fmt.Errorf("%w; %s is fenced in %s until the same move is run again", err, bucket, src)
	case err != nil:
		return r.stats, err
	}
	r.report("reclaim", true)
	if err := r.reclaim(cctx, src, true); err != nil {
		return r.stats, fmt.Errorf("%s is moved to %s, but %w; run the same move again to drop them", bucket, dst, err)
	}
	outcome = "done"
	r.stats.Took = time.Since(r.start)
	r.report("done", true)
	return r.stats, nil
}

// markMoving marks the bucket moving to the target in the map, if the map is still
// at version.
func (r *run) markMoving(ctx context.Context, version uint64) error {
	err := r.retry(ctx, "mark moving", func() error {
		_, err := r.m.changeMap(ctx, &cellarv1.MapCommand{ExpectVersion: version, Op: &cellarv1.MapCommand_SetState{SetState: &cellarv1.SetBucketState{
			Name: r.bucket, State: cellarv1.BucketState_BUCKET_STATE_MOVING, MoveTo: r.dst}}})
		if !errs.Is(err, errs.PreconditionFailed) {
			return err
		}
		// The map changed since it was read: by this very change, applied by a try
		// that answered late, or by something else.
		cm, gerr := r.m.cellMap(ctx)
		if gerr != nil {
			return gerr
		}
		now := cm.GetBuckets()[r.bucket]
		switch {
		case now.GetCell() == r.src && now.GetState() == cellarv1.BucketState_BUCKET_STATE_MOVING && now.GetMoveTo() == r.dst:
			return nil
		case now.GetCell() == r.src && now.GetState() == cellarv1.BucketState_BUCKET_STATE_NORMAL:
			version = cm.GetVersion()
			return err
		}
		return permanent{fmt.Errorf("%w (the entry is now %v)", err, now)}
	})
	if err != nil {
		return fmt.Errorf("mark %s moving in the cell map: %w", r.bucket, err)
	}
	return nil
}

// prepare creates the bucket in the target, marked moving there in the map. A move
// that resumes finds the entry moving or fenced already, and what an earlier run
// copied in the target.
func (r *run) prepare(ctx context.Context, e *cellarv1.BucketEntry) error {
	if e.State == cellarv1.BucketState_BUCKET_STATE_FENCED {
		// A run that stopped in its cutover may have sealed the source (FENCE_ALL)
		// without flipping the map: nothing was served by the target yet, so the
		// source goes back to refusing writes only, and its final pass reads it.
		if err := r.retry(ctx, "fence", func() error { return r.fence(ctx, cellarv1.BucketFence_BUCKET_FENCE_WRITES) }); err != nil {
			return err
		}
	}
	err := r.retry(ctx, "create in the target", func() error {
		ix, err := r.m.Router.Index(r.dst)
		if err != nil {
			return err
		}
		// A target left fenced by an earlier, undone move (its copy dropped, or not
		// yet) serves again: what it still holds is listed below and set right by
		// the first pass. A target without the bucket gets it.
		_, err = ix.FenceBucket(ctx, &cellarv1.FenceBucketRequest{Name: r.bucket})
		if !errs.Is(err, errs.NoSuchBucket) {
			if err != nil {
				return fmt.Errorf("unfence %s in %s: %w", r.bucket, r.dst, err)
			}
			return nil
		}
		if _, err := ix.CreateBucket(ctx, &cellarv1.CreateBucketRequest{Name: r.bucket}); err != nil && !errs.Is(err, errs.BucketExists) {
			return fmt.Errorf("create %s in %s: %w", r.bucket, r.dst, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// What an earlier run of this move copied: kept where it is a copy of what the
	// source has now, copied again or deleted by the first pass otherwise.
	return r.retry(ctx, "list the target", func() error {
		r.total = 0
		clear(r.copied)
		err := r.m.eachObject(ctx, r.dst, r.bucket, func(loc *cellarv1.Location) error {
			r.copied[loc.Key] = copyMark{held: loc}
			return nil
		})
		if err != nil {
			return err
		}
		n, _, err := r.m.count(ctx, r.src, r.bucket)
		r.total = n
		return err
	})
}

// pass copies what changed in the source since the last pass, and deletes in the
// target what the source no longer has. It returns how many objects it changed.
//
// The first pass lists the whole source, having asked the source's index to log the
// bucket's changes from then on (FenceBucket with track_changes). Each pass after it
// reads only the keys that log lists since the previous pass, and looks each up in
// the source: so the final pass, behind the write fence, takes as long as the last
// changes take to copy, whatever the size of the bucket.
func (r *run) pass(ctx context.Context) (int, error) {
	r.stats.Passes++
	pass := r.stats.Passes
	if err := r.copyConfig(ctx); err != nil {
		return 0, err
	}
	if r.logged {
		changed, err := r.copyLogged(ctx, pass)
		if !errors.Is(err, errNotLogged) {
			return changed, err
		}
		// The source no longer logs the bucket's changes (its fence was lifted by
		// something else): the bucket is listed again, and logged from now on.
		r.logged = false
	}
	from, err := r.track(ctx)
	if err != nil {
		return 0, err
	}
	changed, gone, err := r.copyObjects(ctx, pass, r.eachSource)
	if err != nil {
		return changed, err
	}
	for key, mark := range r.copied {
		if mark.pass != pass {
			gone = append(gone, key)
		}
	}
	n, err := r.deleteInTarget(ctx, gone)
	if err == nil {
		r.logged, r.changesFrom = true, from
	}
	return changed + n, err
}

// track asks the source's index to log the bucket's changes, under the fence the run
// has set there, and returns the change sequence the log starts after.
func (r *run) track(ctx context.Context) (uint64, error) {
	return r.setFence(ctx, r.srcFence, true)
}

// errNotLogged says the source's change log does not hold every change since the
// last pass (its fence was lifted, and the log dropped, by something else).
var errNotLogged = errors.New("the source no longer logs the bucket's changes")

// copyLogged copies the keys the source's change log lists since the last pass, and
// deletes in the target those the source no longer has. A pass that fails part way
// reads the log again from the same place: what it copied is not copied again.
func (r *run) copyLogged(ctx context.Context, pass int) (int, error) {
	ix, err := r.m.Router.Index(r.src)
	if err != nil {
		return 0, err
	}
	after := r.changesFrom
	var keys []string
	seen := map[string]bool{}
	for {
		resp, err := ix.Changes(ctx, &cellarv1.ChangesRequest{Bucket: r.bucket, After: after, Limit: 1000})
		if errs.Is(err, errs.InvalidRequest) {
			return 0, fmt.Errorf("%w: %w", errNotLogged, err)
		}
		if err != nil {
			return 0, fmt.Errorf("read the changes of %s in %s: %w", r.bucket, r.src, err)
		}
		r.stats.Changes += int64(len(resp.GetChanges()))
		for _, c := range resp.GetChanges() {
			after = c.Seq
			if !seen[c.Key] {
				seen[c.Key] = true
				keys = append(keys, c.Key)
			}
		}
		if !resp.GetTruncated() {
			break
		}
	}
	each := func(ctx context.Context, fn func(copyJob) error) error {
		for _, k := range keys {
			if err := fn(copyJob{key: k}); err != nil {
				return err
			}
		}
		return nil
	}
	changed, gone, err := r.copyObjects(ctx, pass, each)
	if err != nil {
		return changed, err
	}
	n, err := r.deleteInTarget(ctx, gone)
	if err == nil {
		r.changesFrom = after
	}
	return changed + n, err
}

// deleteInTarget deletes keys in the target, where the run copied them (or found
// them), and forgets them.
func (r *run) deleteInTarget(ctx context.Context, keys []string) (int, error) {
	ix, err := r.m.Router.Index(r.dst)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, key := range keys {
		if _, ok := r.copied[key]; !ok {
			continue // never in the target: made and deleted between two passes
		}
		resp, err := ix.Delete(ctx, &cellarv1.DeleteRequest{Bucket: r.bucket, Key: key})
		if err != nil {
			return n, fmt.Errorf("delete %s/%s in %s: %w", r.bucket, key, r.dst, err)
		}
		if resp.Previous != nil {
			r.cp.DeleteBlobs(r.dst, resp.Previous)
		}
		delete(r.copied, key)
		n++
	}
	return n, nil
}

// copyJob is one key for a pass's copies: with the source's object as a listing
// found it, or only its key, to be looked up in the source.
type copyJob struct {
	key string
	loc *cellarv1.Location
	// known is what the target has of key (a lookup that finds the same copies
	// nothing).
	known copyMark
}

// copied is the outcome of one job.
type copied struct {
	job  copyJob
	loc  *cellarv1.Location // the source's object (nil: the key is gone there)
	same bool               // the target had loc as it is already
	err  error
}

// copyOne does one job: the lookup of a key only named, then the copy of a version
// the target does not have.
func (r *run) copyOne(ctx context.Context, j copyJob) copied {
	loc := j.loc
	if loc == nil {
		ix, err := r.m.Router.Index(r.src)
		if err != nil {
			return copied{job: j, err: err}
		}
		resp, err := ix.Lookup(ctx, &cellarv1.LookupRequest{Bucket: r.bucket, Key: j.key})
		if errs.Is(err, errs.NoSuchKey) {
			return copied{job: j}
		}
		if err != nil {
			return copied{job: j, err: err}
		}
		loc = resp.GetLocation()
		if j.known.same(loc) {
			return copied{job: j, loc: loc, same: true}
		}
	}
	_, err := r.cp.CopyObject(ctx, r.src, r.dst, loc)
	return copied{job: j, loc: loc, err: err}
}

// copyObjects runs the jobs each gives, CopyConcurrency at once, marking every key
// found in the source with pass, and returns how many objects it copied and the keys
// found gone from the source. The run's state (copied, stats, metrics, progress) is
// changed by the calling goroutine alone, as the jobs end. The first copy that fails
// cancels the others; once they have ended, its error is returned (the copies that
// succeeded are kept, so the pass tried again copies only the rest).
func (r *run) copyObjects(ctx context.Context, pass int, each func(context.Context, func(copyJob) error) error) (int, []string, error) {
	n := r.m.copyConcurrency()
	cctx, cancel := context.WithCancel(ctx)
	jobs := make(chan copyJob)
	results := make(chan copied, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				results <- r.copyOne(cctx, j)
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()
	jobsOpen := true
	closeJobs := func() {
		if jobsOpen {
			close(jobs)
			jobsOpen = false
		}
	}
	// However this returns (or its goroutine ends mid-way), no copy outlives it.
	defer func() {
		cancel()
		closeJobs()
		for range results {
		}
	}()
	changed := 0
	var gone []string
	var failed error
	done := func(c copied) {
		switch {
		case c.err != nil:
			if failed == nil {
				failed = fmt.Errorf("copy %s/%s: %w", r.bucket, c.job.key, c.err)
				cancel()
			}
		case c.loc == nil:
			gone = append(gone, c.job.key)
		default:
			r.copied[c.job.key] = copyMark{loc: c.loc, pass: pass}
			if c.same {
				return
			}
			r.stats.Objects++
			r.stats.Bytes += c.loc.Size
			r.m.Metrics.copied(c.loc.Size)
			changed++
			r.report(r.step, false)
		}
	}
	err := each(cctx, func(j copyJob) error {
		mark, ok := r.copied[j.key]
		if j.loc != nil && ok && mark.same(j.loc) {
			// A key an earlier run copied (held) is seen only by the first
			// pass, which lists the source: the passes that read the change log
			// come after it.
			if mark.loc == nil {
				r.stats.Kept++
			}
			r.copied[j.key] = copyMark{loc: j.loc, pass: pass}
			return nil
		}
		j.known = mark
		for failed == nil {
			select {
			case jobs <- j:
				return nil
			case c := <-results:
				done(c)
			}
		}
		return failed
	})
	// The copies under way end (cancelled if one failed), and count.
	closeJobs()
	for c := range results {
		done(c)
	}
	if failed != nil {
		return changed, gone, failed
	}
	return changed, gone, err
}

// eachSource calls fn for every object of the bucket in the source, in key order, a
// page of the listing at a time. The first error (of the listing, or of fn) ends it.
func (r *run) eachSource(ctx context.Context, fn func(copyJob) error) error {
	ix, err := r.m.Router.Index(r.src)
	if err != nil {
		return err
	}
	after := ""
	for {
		resp, err := ix.List(ctx, &cellarv1.ListRequest{Bucket: r.bucket, StartAfter: after, Limit: 1000})
		if err != nil {
			return err
		}
		r.stats.Listed += int64(len(resp.GetEntries()))
		for _, loc := range resp.GetEntries() {
			if err := fn(copyJob{key: loc.Key, loc: loc}); err != nil {
				return err
			}
			after = loc.Key
		}
		if !resp.GetTruncated() || len(resp.GetEntries()) == 0 {
			return nil
		}
	}
}

// copyConfig gives the bucket in the target the configuration it has in the source
// (its tags, CORS rules and lifecycle rules), as every pass reads it: the final pass,
// after the write fence, copies the last of it. A bucket whose versioning was turned
// on since the move was planned stops the move (see refuseVersioned).
func (r *run) copyConfig(ctx context.Context) error {
	src, err := r.m.Router.Index(r.src)
	if err != nil {
		return err
	}
	resp, err := src.GetBucket(ctx, &cellarv1.GetBucketRequest{Name: r.bucket})
	if err != nil {
		return fmt.Errorf("read %s in %s: %w", r.bucket, r.src, err)
	}
	b := resp.GetBucket()
	if b.GetVersioning() != cellarv1.BucketVersioning_BUCKET_VERSIONING_OFF {
		return permanent{errs.New(errs.InvalidRequest, "%s", refuseVersioned([]string{r.bucket}))}
	}
	dst, err := r.m.Router.Index(r.dst)
	if err != nil {
		return err
	}
	_, err = dst.PutBucketConfig(ctx, &cellarv1.PutBucketConfigRequest{Name: r.bucket,
		SetTags: true, Tags: b.GetTags(), SetCors: true, Cors: b.GetCors(), SetLifecycle: true, Lifecycle: b.GetLifecycle()})
	if err != nil {
		return fmt.Errorf("copy the configuration of %s to %s: %w", r.bucket, r.dst, err)
	}
	return nil
}

// passes runs a pass, tried again while it fails (a node of either cell away); it
// returns how many objects the tries changed.
func (r *run) passes(ctx context.Context) (int, error) {
	total := 0
	err := r.retry(ctx, r.step, func() error {
		n, err := r.pass(ctx)
		total += n
		return err
	})
	return total, err
}

// copyAndFence copies the bucket, catches up, fences its writes in the source and
// copies the last changes.
func (r *run) copyAndFence(ctx context.Context) error {
	r.step = "copy"
	if _, err := r.passes(ctx); err != nil {
		return err
	}
	r.step = "catch-up"
	r.report(r.step, true)
	passes, enough := r.m.CatchUpPasses, r.m.CatchUpEnough
	if passes == 0 {
		passes = 10
	}
	if enough == 0 {
		enough = 16
	}
	// Each pass copies what changed while the one before ran, so the passes shrink
	// as long as the copy outruns the bucket's writes; the final pass, behind the
	// fence, copies what changed during the last of them.
	last := -1
	for i := 0; i < passes; i++ {
		n, err := r.passes(ctx)
		if err != nil {
			return err
		}
		if n <= enough || (last >= 0 && n >= last) {
			break
		}
		last = n
	}
	r.report("fence", true)
	r.fenced = time.Now()
	if err := r.retry(ctx, "fence", func() error { return r.setState(ctx, cellarv1.BucketState_BUCKET_STATE_FENCED, "") }); err != nil {
		return err
	}
	if err := r.retry(ctx, "fence", func() error { return r.fence(ctx, cellarv1.BucketFence_BUCKET_FENCE_WRITES) }); err != nil {
		return err
	}
	r.step = "final"
	if _, err := r.passes(ctx); err != nil {
		return err
	}
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
	_, err := r.setFence(ctx, f, false)
	return err
}

// setFence sets the bucket's fence in the source index, with its changes logged from
// now on when track (see index.Store.FenceBucket), and returns the change sequence of
// that moment.
func (r *run) setFence(ctx context.Context, f cellarv1.BucketFence, track bool) (uint64, error) {
	ix, err := r.m.Router.Index(r.src)
	if err != nil {
		return 0, fmt.Errorf("fence %s in %s (%s): %w", r.bucket, r.src, f, err)
	}
	resp, err := ix.FenceBucket(ctx, &cellarv1.FenceBucketRequest{Name: r.bucket, Fence: f, MovedTo: r.dst, TrackChanges: track})
	if err != nil {
		return 0, fmt.Errorf("fence %s in %s (%s): %w", r.bucket, r.src, f, err)
	}
	r.srcFence = f
	return resp.GetChangesFrom(), nil
}

// flip says where a cutover left the map.
type flip int

const (
	flipNot     flip = iota // the map still routes the bucket to the source
	flipUnknown             // the map could not be read: it may have flipped
	flipDone                // the map routes the bucket to the target
)

// cutover seals the source and flips the map. Each step is tried again while it
// fails; the bucket is unavailable from the seal until the map flips. A cutover that
// cannot seal, or whose flip the map group refused, can still be undone: no gateway
// was sent to the target.
func (r *run) cutover(ctx context.Context) (flip, error) {
	r.report("cutover", true)
	if r.fenced.IsZero() {
		r.fenced = time.Now()
	}
	if err := r.retry(ctx, "cutover", func() error { return r.fence(ctx, cellarv1.BucketFence_BUCKET_FENCE_ALL) }); err != nil {
		return flipNot, err
	}
	err := r.retry(ctx, "cutover", func() error { return r.setState(ctx, cellarv1.BucketState_BUCKET_STATE_NORMAL, r.dst) })
	if err != nil {
		// A change that timed out may have been applied: the map says.
		var cm *cellarv1.Map
		if rerr := r.retry(ctx, "cutover", func() (err error) { cm, err = r.m.cellMap(ctx); return err }); rerr != nil {
			return flipUnknown, err
		}
		if cm.GetBuckets()[r.bucket].GetCell() != r.dst {
			return flipNot, err
		}
	}
	r.stats.WritePause = time.Since(r.fenced)
	r.m.Metrics.paused(r.stats.WritePause.Seconds())
	r.m.log().Info("bucket moved", "bucket", r.bucket, "from", r.src, "to", r.dst, "objects", r.stats.Objects, "write_pause", r.stats.WritePause)
	return flipDone, nil
}

// reclaim drops the bucket's records in from, the source of its move, in one command
// (the bucket's record stays, fenced, as a tombstone); then the map's entry stops
// naming from as the cell the bucket moved from; then, when blobs, it deletes the
// blobs of the source's objects as the passes last found them (the final pass read
// the last changes, and nothing could change them since the write fence). A run that
// resumes after the flip has no such list: the blobs are left to the source cell's
// garbage collection, which deletes blobs no record names.
func (r *run) reclaim(ctx context.Context, from string, blobs bool) error {
	err := r.retry(ctx, "reclaim", func() error {
		ix, err := r.m.Router.Index(from)
		if err != nil {
			return err
		}
		resp, err := ix.DropBucket(ctx, &cellarv1.DropBucketRequest{Name: r.bucket})
		if err != nil {
			if errs.Is(err, errs.InvalidRequest) {
				// Not fenced in the source: it never held the bucket's copy.
				return permanent{err}
			}
			return err
		}
		r.stats.Reclaimed += resp.Objects
		return nil
	})
	if err != nil {
		return fmt.Errorf("the records of %s in %s were not dropped: %w", r.bucket, from, err)
	}
	err = r.retry(ctx, "reclaim", func() error {
		_, err := r.m.changeMap(ctx, &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Reclaimed{Reclaimed: &cellarv1.BucketReclaimed{
			Name: r.bucket, Cell: from}}})
		return err
	})
	if err != nil {
		return fmt.Errorf("the records of %s in %s were dropped, but the cell map still names %s as where it moved from: %w",
			r.bucket, from, from, err)
	}
	if blobs {
		locs := make([]*cellarv1.Location, 0, len(r.copied))
		for _, m := range r.copied {
			if m.loc != nil {
				locs = append(locs, m.loc)
			}
		}
		r.deleteBlobs(ctx, from, locs)
	}
	return nil
}

// deleteBlobs deletes the blobs of locs in cellID, CopyConcurrency at once, and
// returns when every delete has been tried: a bucket of a million objects is not a
// million deletes at once in a cell that serves other buckets. A blob whose delete
// fails (a storage node away) is left to the cell's garbage collection, which deletes
// blobs no record names.
func (r *run) deleteBlobs(ctx context.Context, cellID string, locs []*cellarv1.Location) {
	jobs := make(chan *cellarv1.Location)
	var wg sync.WaitGroup
	var failed atomic.Int64
	del := func(objectID []byte, replicas []string) {
		for _, nodeID := range replicas {
			st, err := r.m.Router.Storage(cellID, nodeID)
			if err == nil {
				_, err = st.Delete(ctx, &cellarv1.DeleteBlobRequest{ObjectId: objectID})
			}
			if err != nil {
				failed.Add(1)
			}
		}
	}
	for range r.m.copyConcurrency() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loc := range jobs {
				if len(loc.GetObjectId()) > 0 {
					del(loc.ObjectId, loc.Replicas)
				}
				for _, p := range loc.GetParts() {
					del(p.ObjectId, p.Replicas)
				}
			}
		}()
	}
	for _, loc := range locs {
		jobs <- loc
	}
	close(jobs)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		r.m.log().Warn("blobs of a moved bucket not deleted in its source; its garbage collection deletes them",
			"bucket", r.bucket, "cell", cellID, "blobs", n)
	}
}

// undo takes back a move stopped before its cutover: the source serves the bucket
// again, and what was copied to the target is dropped. Each step is tried again while
// it fails; clean says every step was done.
func (r *run) undo(cause error) (err error, clean bool) {
	ctx := context.Background()
	var errsOut []error
	if err := r.retry(ctx, "undo", func() error { return r.fence(ctx, cellarv1.BucketFence_BUCKET_FENCE_NONE) }); err != nil {
		errsOut = append(errsOut, err)
	}
	if err := r.retry(ctx, "undo", func() error { return r.setState(ctx, cellarv1.BucketState_BUCKET_STATE_NORMAL, "") }); err != nil {
		errsOut = append(errsOut, err)
	}
	// The target's copy: its records listed, the bucket fenced there and dropped,
	// then its blobs deleted.
	var locs []*cellarv1.Location
	err = r.retry(ctx, "undo", func() error {
		locs = locs[:0]
		return r.m.eachObject(ctx, r.dst, r.bucket, func(loc *cellarv1.Location) error { locs = append(locs, loc); return nil })
	})
	if err == nil || errs.Is(err, errs.NoSuchBucket) {
		err = r.retry(ctx, "undo", func() error {
			ix, err := r.m.Router.Index(r.dst)
			if err != nil {
				return err
			}
			if _, err := ix.FenceBucket(ctx, &cellarv1.FenceBucketRequest{Name: r.bucket, Fence: cellarv1.BucketFence_BUCKET_FENCE_ALL, MovedTo: r.src}); err != nil {
				if errs.Is(err, errs.NoSuchBucket) {
					return nil // never created there
				}
				return err
			}
			_, err = ix.DropBucket(ctx, &cellarv1.DropBucketRequest{Name: r.bucket})
			return err
		})
	}
	if err != nil {
		errsOut = append(errsOut, fmt.Errorf("drop the copy in %s: %w", r.dst, err))
	} else {
		for _, loc := range locs {
			r.cp.DeleteBlobs(r.dst, loc)
		}
	}
	r.report("undone", true)
	if len(errsOut) > 0 {
		return fmt.Errorf("%w; undoing it: %w", cause, errors.Join(errsOut...)), false
	}
	return fmt.Errorf("%w (undone: %s serves %s)", cause, r.src, r.bucket), true
}

// undoPatience is how many times RetryFor a step of an undo is tried.
const undoPatience = 5

// permanent marks an error that trying again cannot mend.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// isPermanent says whether err is a refusal that no retry changes: a missing bucket,
// a caller the node does not let in, a request it judges wrong.
func isPermanent(err error) bool {
	switch status.Code(err) {
	case codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument:
		return true
	}
	for _, k := range []errs.Kind{errs.NoSuchBucket, errs.AccessDenied, errs.InvalidArgument, errs.InvalidRequest} {
		if errs.Is(err, k) {
			return true
		}
	}
	return false
}

// retry calls f until it succeeds, with a growing pause (up to a second) between
// tries, for up to the Mover's RetryFor; it gives up at once when ctx is done or f
// fails with a permanent error.
func (r *run) retry(ctx context.Context, step string, f func() error) error {
	limit := r.m.RetryFor
	if limit <= 0 {
		limit = time.Minute
	}
	if step == "undo" {
		// An undo given up leaves the bucket fenced in its source, or its copy in
		// the target: it is given longer.
		limit *= undoPatience
	}
	deadline := time.Now().Add(limit)
	wait := 100 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.error
		}
		if isPermanent(err) {
			return err
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		r.m.Metrics.retried()
		r.m.log().Warn("a step of a move failed; trying again", "bucket", r.bucket, "step", step, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
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
	// What an earlier run copied and this one keeps is not to be copied: out of the total.
	p := Progress{Bucket: r.bucket, Step: step, Objects: r.stats.Objects, Bytes: r.stats.Bytes, Total: max(r.total-r.stats.Kept, 0), Elapsed: time.Since(r.start)}
	if s := p.Elapsed.Seconds(); s > 0 {
		p.ObjectsPerSec, p.BytesPerSec = float64(p.Objects)/s, float64(p.Bytes)/s
	}
	if p.ObjectsPerSec > 0 && p.Total > p.Objects {
		p.ETA = time.Duration(float64(p.Total-p.Objects) / p.ObjectsPerSec * float64(time.Second))
	}
	r.m.Progress(p)
}
