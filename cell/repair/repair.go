package repair

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/errs"
)

// Options configure a Repairer. The zero value of each field is its default.
type Options struct {
	Cell string // the cell repaired
	Self string // the node id of the host
	// Copies is how many copies every object should have (default 2).
	Copies int
	// Interval between passes (default 30 s).
	Interval time.Duration
	// RepairRate caps the bytes copied per second, over every copy in flight (default
	// 64 MiB/s; negative: no cap).
	RepairRate int64
	// RepairOps caps the blobs copied per second, over every copy in flight (default
	// 500; negative: no cap). A small blob costs its two storage nodes a stream each,
	// a file, an fsync of it and of its directory, whatever its bytes: this is the
	// limit that binds for small objects, RepairRate the one for large ones.
	RepairOps int64
	// Workers is the copy window: how many objects are copied at once (default 16).
	// A copy spends most of its time waiting for the target's fsyncs, which a disk
	// batches when several come together; the pacing above, not the window, sets the
	// rate.
	Workers int
	// ScrubRate caps the bytes verified per second (default 8 MiB/s; negative: no
	// scrub). A blob counts as at least 64 KiB.
	ScrubRate int64
	// GCGrace is how long an orphan blob waits before it is deleted (default 1 m): it
	// must be at least the gateway's --reclaim-grace.
	GCGrace time.Duration
	// NoAutoGC leaves orphans to 'cellctl gc --apply' instead of deleting them every pass.
	NoAutoGC bool
	// CallTimeout bounds each unary call (default 5 s); CopyIdleTimeout a copy stream
	// that makes no progress (default 10 s).
	CallTimeout time.Duration
	Logger      *slog.Logger
	// Now is the clock (default time.Now), for tests.
	Now func() time.Time
}

// The defaults of the repair's pacing (see Options).
const (
	DefaultRepairRate = 64 << 20
	DefaultRepairOps  = 500
	DefaultWorkers    = 16
	DefaultScrubRate  = 8 << 20
)

// EnsureDefaults fills the zero values.
func (o *Options) EnsureDefaults() {
	if o.Copies <= 0 {
		o.Copies = cell.DefaultCopies
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.RepairRate == 0 {
		o.RepairRate = DefaultRepairRate
	}
	if o.RepairOps == 0 {
		o.RepairOps = DefaultRepairOps
	}
	if o.ScrubRate == 0 {
		o.ScrubRate = DefaultScrubRate
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.GCGrace <= 0 {
		o.GCGrace = time.Minute
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports what makes the options unusable.
func (o *Options) Validate() error {
	if o.Cell == "" {
		return errors.New("repair: no cell")
	}
	return nil
}

// Members is the part of the gossip view the loop reads (a *cell.Membership).
type Members interface {
	Nodes() []cell.Node
}

// Dialer gives a client connection to a node's gRPC address (a *daemon.Conns).
type Dialer interface {
	Get(addr string) (*grpc.ClientConn, error)
}

// Repairer is the repair, scrub and garbage collection loop of one cell.
type Repairer struct {
	o       Options
	members Members
	conns   Dialer
	log     *slog.Logger
	m       *metrics

	copyPace  *pacer
	scrubPace *pacer

	passMu sync.Mutex // one pass (or garbage collection) at a time
	kick   chan struct{}

	mu        sync.Mutex
	firstSeen map[string]map[blobID]time.Time // orphans by node, when first seen
	scrubList []scrubItem                     // what the scrubber goes through
	scrubGen  int
	last      PassResult
	passes    int64
	lastPass  time.Time
	leading   atomic.Bool
	maxNodes  int // the most storage nodes of the cell the gossip has shown at once
}

// New returns a Repairer; Run runs it.
func New(o Options, members Members, conns Dialer) (*Repairer, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Repairer{
		o: o, members: members, conns: conns, log: o.Logger.With("component", "repair"),
		m:         newMetrics(),
		copyPace:  newPacer(o.RepairRate, o.RepairOps),
		scrubPace: newPacer(o.ScrubRate, max(1, o.ScrubRate/scrubMinCost)),
		kick:      make(chan struct{}, 1),
		firstSeen: map[string]map[blobID]time.Time{},
	}, nil
}

// Options returns the options in use, defaults filled.
func (r *Repairer) Options() Options { return r.o }

// Kick asks for a pass now (when this host runs the loop).
func (r *Repairer) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Leading reports whether this host runs its cell's loop now.
func (r *Repairer) Leading() bool { return r.leading.Load() }

// Run makes a pass every Interval while this host leads its cell's repair, and scrubs
// between passes, until ctx is done. A storage node of the cell that comes back ready
// (it started again, or was not ready at the last look) gets a pass at once: a
// replaced or wiped node starts its refill within a second or two, not an interval.
func (r *Repairer) Run(ctx context.Context) error {
	go r.scrubLoop(ctx)
	go r.lifecycleLoop(ctx)
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	look := time.NewTicker(min(r.o.Interval, time.Second))
	defer look.Stop()
	seen := map[string]time.Time{}
	r.storageReturned(seen)
	for {
		r.leading.Store(r.isLeader())
		if r.leading.Load() {
			if _, err := r.Pass(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("repair pass did not complete; next one in an interval", "err", err)
			}
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				break wait
			case <-r.kick:
				break wait
			case <-look.C:
				if r.storageReturned(seen) {
					break wait
				}
			}
		}
	}
}

// storageReturned reports whether a storage node of the cell is ready now that was
// not ready, or had another start time, at the last look; seen is what that look saw
// (node id → start time of the ready ones), and is updated.
func (r *Repairer) storageReturned(seen map[string]time.Time) bool {
	back := false
	now := map[string]time.Time{}
	for _, n := range r.members.Nodes() {
		if n.Cell != r.o.Cell || n.Role != cell.RoleStorage || n.State != cell.StateReady {
			continue
		}
		now[n.ID] = n.Started
		if started, ok := seen[n.ID]; !ok || !started.Equal(n.Started) {
			back = true
		}
	}
	clear(seen)
	maps.Copy(seen, now)
	return back
}

// isLeader: the ready placement node of the cell with the smallest id runs the loop
// (this node when the gossip shows no other).
func (r *Repairer) isLeader() bool {
	for _, n := range r.members.Nodes() {
		if n.Cell != r.o.Cell || n.Role != cell.RolePlacement || n.State != cell.StateReady {
			continue
		}
		return n.ID >= r.o.Self // the first ready one, in id order
	}
	return true
}

// blobID is a 16-byte object id as a map key.
type blobID [16]byte

func toID(b []byte) (blobID, bool) {
	var id blobID
	if len(b) != len(id) {
		return id, false
	}
	copy(id[:], b)
	return id, true
}

func (id blobID) String() string { return hex.EncodeToString(id[:]) }

// versionID tells one version of a key from another: as the index's VersionID.
func versionID(loc *cellarv1.Location) []byte {
	if len(loc.GetObjectId()) > 0 {
		return loc.GetObjectId()
	}
	if parts := loc.GetParts(); len(parts) > 0 {
		return parts[0].GetObjectId()
	}
	return nil
}

// inventory is what one storage node holds, as listed at the start of a pass.
type inventory map[blobID]*cellarv1.BlobInfo

// PassResult is what one pass found and did.
type PassResult struct {
	Started         time.Time
	Took            time.Duration
	Objects         int64 // object versions scanned (a multipart object counts once)
	Blobs           int64 // blob copies the index references
	UnderReplicated int64 // objects below their copy count after the pass
	Repaired        int64 // objects given back a copy
	RepairedBytes   int64
	Lost            int64 // objects with no copy left on any node that was listed
	Unknown         []string
	Garbage         []NodeGarbage
}

// NodeGarbage is the orphan blobs of one storage node.
type NodeGarbage struct {
	Node          string `json:"node"`
	EligibleBlobs int64  `json:"eligible_blobs"`
	EligibleBytes int64  `json:"eligible_bytes"`
	PendingBlobs  int64  `json:"pending_blobs"`
	PendingBytes  int64  `json:"pending_bytes"`
	DeletedBlobs  int64  `json:"deleted_blobs"`
	DeletedBytes  int64  `json:"deleted_bytes"`
	Error         string `json:"error,omitempty"`
}

// copyRef is one blob of an object version: the object's own, or one of its parts.
type copyRef struct {
	part     int // -1 for the object's blob, else the index in loc.Parts
	id       blobID
	size     int64
	replicas []string
}

func refsOf(loc *cellarv1.Location) []copyRef {
	if id, ok := toID(loc.GetObjectId()); ok {
		return []copyRef{{part: -1, id: id, size: loc.GetSize(), replicas: loc.GetReplicas()}}
	}
	var out []copyRef
	for i, p := range loc.GetParts() {
		if id, ok := toID(p.GetObjectId()); ok {
			out = append(out, copyRef{part: i, id: id, size: p.GetSize(), replicas: p.GetReplicas()})
		}
	}
	return out
}

// snapshot is what a pass knows about the cell's storage nodes.
type snapshot struct {
	nodes    map[string]cell.Node // storage nodes of the cell in the gossip
	inv      map[string]inventory // nodes listed; absent: unknown
	listErrs map[string]error
}

func (s *snapshot) writable(id string) bool {
	n, ok := s.nodes[id]
	_, listed := s.inv[id]
	return ok && listed && n.State == cell.StateReady
}

// Pass makes one pass now, as Run does every Interval (see the package doc), and
// returns what it found and did.
func (r *Repairer) Pass(ctx context.Context) (PassResult, error) {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	res := PassResult{Started: r.o.Now()}
	// Objects committed after the listing began may have blobs the listing missed:
	// they are judged by the next pass (the margin covers clocks of the cell's nodes
	// that differ a little).
	recent := time.Now().Add(-RecentMargin).UnixNano()
	snap := r.listNodes(ctx)
	r.mu.Lock()
	r.maxNodes = max(r.maxNodes, len(snap.nodes))
	r.mu.Unlock()
	copies := r.copies()
	for id, err := range snap.listErrs {
		res.Unknown = append(res.Unknown, id)
		r.log.Debug("storage node not listed; its copies are unknown this pass", "node", id, "err", err)
	}
	sort.Strings(res.Unknown)

	refs := map[blobID]struct{}{}
	var suspects, work []*cellarv1.Location
	var scrub []scrubItem
	err := r.scan(ctx, func(loc *cellarv1.Location, version bool) {
		for _, c := range refsOf(loc) {
			refs[c.id] = struct{}{}
		}
		if !version {
			return // a part of an upload in progress: referenced, not repaired
		}
		res.Objects++
		if modifiedSince(loc, recent) {
			return
		}
		for _, c := range refsOf(loc) {
			res.Blobs += int64(len(c.replicas))
			for _, node := range c.replicas {
				if inv, ok := snap.inv[node]; ok && inv[c.id] != nil {
					scrub = append(scrub, scrubItem{bucket: loc.Bucket, key: loc.Key, version: versionID(loc), node: node, id: c.id, size: c.size, replicas: c.replicas})
				}
			}
		}
		if needs, _ := judge(snap, loc, copies); needs {
			suspects = append(suspects, loc)
		}
	})
	if err != nil {
		return res, fmt.Errorf("repair %s: scan the index: %w", r.o.Cell, err)
	}
	// A record committed after the nodes were listed may name blobs the listing
	// missed, whatever its modification time says (a bucket moved in from another
	// cell keeps its objects' times): the nodes that seem to lack a copy are listed
	// again, now that the scan is over, before anything is judged missing.
	judged := snap
	if len(suspects) > 0 {
		judged = r.relist(ctx, snap, suspects)
	}
	for _, loc := range suspects {
		needs, lost := judge(judged, loc, copies)
		if lost {
			res.Lost++
		}
		if needs && !lost {
			work = append(work, loc)
		}
	}

	// Repair, on Workers goroutines.
	var repaired, repairedBytes, still atomic.Int64
	ch := make(chan *cellarv1.Location)
	var wg sync.WaitGroup
	for range r.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loc := range ch {
				n, ok := r.repairObject(ctx, judged, loc, copies)
				if n > 0 {
					repaired.Add(1)
					repairedBytes.Add(n)
				}
				if !ok {
					still.Add(1)
				}
			}
		}()
	}
	for _, loc := range work {
		if ctx.Err() != nil {
			break
		}
		ch <- loc
	}
	close(ch)
	wg.Wait()
	res.Repaired, res.RepairedBytes = repaired.Load(), repairedBytes.Load()
	res.UnderReplicated = still.Load() + res.Lost

	res.Garbage = r.collect(ctx, snap, refs, !r.o.NoAutoGC)
	res.Took = r.o.Now().Sub(res.Started)

	r.mu.Lock()
	r.last = res
	r.passes++
	r.lastPass = res.Started
	r.scrubList = scrub
	r.scrubGen++
	r.mu.Unlock()
	r.m.passDone(res)
	if res.Repaired > 0 || res.UnderReplicated > 0 || res.Lost > 0 {
		r.log.Info("repair pass", "objects", res.Objects, "repaired", res.Repaired, "repaired_bytes", res.RepairedBytes,
			"under_replicated", res.UnderReplicated, "lost", res.Lost, "unknown_nodes", res.Unknown, "took", res.Took)
	}
	if res.Lost > 0 {
		r.log.Error("objects with no copy left on the storage nodes listed", "objects", res.Lost)
	}
	return res, nil
}

// RecentMargin: objects modified less than this before a pass's listing began are
// left to a later pass, and the pass's counts (under-replicated, lost) do not include
// them. A pass that says nothing is under-replicated speaks only of objects written
// RecentMargin before it began (PassResult.Started, RepairStatusResponse.last_pass_unix_nano).
const RecentMargin = 5 * time.Second

// modifiedSince reports whether loc, or one of its parts, was written at or after t.
func modifiedSince(loc *cellarv1.Location, t int64) bool {
	if loc.GetModifiedUnixNano() >= t {
		return true
	}
	for _, p := range loc.GetParts() {
		if p.GetModifiedUnixNano() >= t {
			return true
		}
	}
	return false
}

// judge says whether loc needs a copy written (a replica listed without it, or fewer
// copies than copies), and whether it is lost: no copy left on any of its replicas,
// every one of them listed.
func judge(snap *snapshot, loc *cellarv1.Location, copies int) (needs, lost bool) {
	for _, c := range refsOf(loc) {
		held, missing := count(snap, c)
		if held == 0 && missing > 0 && missing == len(c.replicas) {
			lost = true
		}
		if held+unknownOf(snap, c) < copies || missing > 0 {
			needs = true
		}
	}
	return needs, lost
}

// relist returns snap with the nodes that lack a copy of one of locs listed again:
// each such node's inventory is what either listing found (a node that cannot be
// listed again keeps its first listing). The inventories of snap are not changed:
// garbage collection judges orphans by the first listing only.
func (r *Repairer) relist(ctx context.Context, snap *snapshot, locs []*cellarv1.Location) *snapshot {
	again := map[string]bool{}
	for _, loc := range locs {
		for _, c := range refsOf(loc) {
			for _, node := range c.replicas {
				if inv, ok := snap.inv[node]; ok && inv[c.id] == nil {
					again[node] = true
				}
			}
		}
	}
	out := &snapshot{nodes: snap.nodes, inv: maps.Clone(snap.inv), listErrs: snap.listErrs}
	for node := range again {
		inv, err := r.list(ctx, snap.nodes[node])
		if err != nil {
			continue
		}
		maps.Copy(inv, snap.inv[node])
		out.inv[node] = inv
	}
	return out
}

// copies is the copy count repair keeps: Options.Copies, but no more than the storage
// nodes the cell has shown (a cell of one storage node keeps one copy).
func (r *Repairer) copies() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.maxNodes == 0 {
		return r.o.Copies
	}
	return min(r.o.Copies, r.maxNodes)
}

// count returns how many of c's replicas are held and how many are missing on nodes
// that were listed.
func count(snap *snapshot, c copyRef) (held, missing int) {
	for _, node := range c.replicas {
		inv, ok := snap.inv[node]
		switch {
		case !ok:
		case inv[c.id] != nil:
			held++
		default:
			missing++
		}
	}
	return held, missing
}

func unknownOf(snap *snapshot, c copyRef) int {
	n := 0
	for _, node := range c.replicas {
		if _, ok := snap.inv[node]; !ok {
			n++
		}
	}
	return n
}

// listNodes lists every storage node of the cell in the gossip.
func (r *Repairer) listNodes(ctx context.Context) *snapshot {
	snap := &snapshot{nodes: map[string]cell.Node{}, inv: map[string]inventory{}, listErrs: map[string]error{}}
	for _, n := range r.members.Nodes() {
		if n.Cell != r.o.Cell || n.Role != cell.RoleStorage {
			continue
		}
		snap.nodes[n.ID] = n
		inv, err := r.list(ctx, n)
		if err != nil {
			snap.listErrs[n.ID] = err
			continue
		}
		snap.inv[n.ID] = inv
	}
	return snap
}

func (r *Repairer) list(ctx context.Context, n cell.Node) (inventory, error) {
	if n.State != cell.StateReady && n.State != cell.StateReadOnly && n.State != cell.StateDraining && n.State != cell.StateDrained {
		return nil, fmt.Errorf("node is %s", n.State)
	}
	cc, err := r.conns.Get(n.GRPCAddr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*r.o.CallTimeout)
	defer cancel()
	st, err := cellarv1.NewBlobsClient(cc).List(ctx, &cellarv1.ListBlobsRequest{})
	if err != nil {
		return nil, err
	}
	inv := inventory{}
	for {
		page, err := st.Recv()
		if err == io.EOF {
			return inv, nil
		}
		if err != nil {
			return nil, err
		}
		for _, b := range page.Blobs {
			if id, ok := toID(b.ObjectId); ok {
				inv[id] = b
			}
		}
	}
}

// index returns a client of the cell's index: its leader first, as the gossip says.
func (r *Repairer) indexNodes() []cell.Node {
	var out []cell.Node
	for _, n := range r.members.Nodes() {
		if n.Cell == r.o.Cell && n.Role == cell.RoleIndex && n.State == cell.StateReady {
			out = append(out, n)
		}
	}
	slices.SortStableFunc(out, func(a, b cell.Node) int {
		switch {
		case a.Leader == b.Leader:
			return 0
		case a.Leader:
			return -1
		}
		return 1
	})
	return out
}

// indexCall runs fn against the cell's index, trying its ready nodes leader first.
func (r *Repairer) indexCall(ctx context.Context, fn func(ctx context.Context, c cellarv1.IndexClient) error) error {
	nodes := r.indexNodes()
	if len(nodes) == 0 {
		return errs.New(errs.Unavailable, "no ready index node in %s", r.o.Cell)
	}
	var last error
	for _, n := range nodes {
		cc, err := r.conns.Get(n.GRPCAddr)
		if err != nil {
			last = err
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, r.o.CallTimeout)
		err = fn(cctx, cellarv1.NewIndexClient(cc))
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		switch errs.KindOf(err) {
		case errs.PreconditionFailed, errs.NoSuchKey, errs.NoSuchBucket, errs.InvalidArgument:
			return err // an answer, not a node that cannot give one
		}
		last = err
	}
	return last
}

// scan calls fn with every version of every object of the cell's index, current or
// older (version true: an acknowledged older version keeps its copies as the current
// one does), and with every part of every multipart upload in progress (as a
// Location whose Parts hold it), version false: its blobs are referenced, not
// repaired. Delete markers have no blobs and are not passed.
func (r *Repairer) scan(ctx context.Context, fn func(loc *cellarv1.Location, version bool)) error {
	var buckets []*cellarv1.Bucket
	if err := r.indexCall(ctx, func(ctx context.Context, c cellarv1.IndexClient) error {
		resp, err := c.ListBuckets(ctx, &cellarv1.ListBucketsRequest{})
		buckets = resp.GetBuckets()
		return err
	}); err != nil {
		return err
	}
	for _, b := range buckets {
		after := ""
		for {
			var page *cellarv1.ListResponse
			err := r.indexCall(ctx, func(ctx context.Context, c cellarv1.IndexClient) error {
				var err error
				page, err = c.List(ctx, &cellarv1.ListRequest{Bucket: b.Name, StartAfter: after, Limit: 1000, Versions: true})
				return err
			})
			if errs.KindOf(err) == errs.NoSuchBucket {
				break // deleted meanwhile: it was empty
			}
			if err != nil {
				return err
			}
			for _, loc := range page.Entries {
				// The older versions of a versioned key (and those under a delete
				// marker) are versions like the current one: kept and repaired.
				older := loc.Versions
				loc.Versions = nil
				if !loc.DeleteMarker {
					fn(loc, true)
				}
				for _, v := range older {
					if v.DeleteMarker {
						continue
					}
					v.Bucket, v.Key = loc.Bucket, loc.Key
					fn(v, true)
				}
			}
			if !page.Truncated || page.Next == "" {
				break
			}
			after = page.Next
		}
		if err := r.scanUploads(ctx, b.Name, fn); err != nil {
			return err
		}
	}
	return nil
}

func (r *Repairer) scanUploads(ctx context.Context, bucket string, fn func(*cellarv1.Location, bool)) error {
	keyMarker, idMarker := "", ""
	for {
		var resp *cellarv1.ListUploadsResponse
		err := r.indexCall(ctx, func(ctx context.Context, c cellarv1.IndexClient) error {
			var err error
			resp, err = c.ListUploads(ctx, &cellarv1.ListUploadsRequest{Bucket: bucket, KeyMarker: keyMarker, UploadIdMarker: idMarker, Limit: 1000})
			return err
		})
		if errs.KindOf(err) == errs.NoSuchBucket {
			return nil
		}
		if err != nil {
			return err
		}
		for _, u := range resp.Uploads {
			var marker int32
			for {
				var parts *cellarv1.ListPartsResponse
				err := r.indexCall(ctx, func(ctx context.Context, c cellarv1.IndexClient) error {
					var err error
					parts, err = c.ListParts(ctx, &cellarv1.ListPartsRequest{Bucket: bucket, Key: u.Key, UploadId: u.UploadId, PartNumberMarker: marker, Limit: 1000})
					return err
				})
				if k := errs.KindOf(err); k == errs.NoSuchUpload || k == errs.NoSuchBucket {
					break // completed or aborted meanwhile
				}
				if err != nil {
					return err
				}
				fn(&cellarv1.Location{Bucket: bucket, Key: u.Key, Parts: parts.Parts}, false)
				if !parts.Truncated || len(parts.Parts) == 0 {
					break
				}
				marker = parts.Parts[len(parts.Parts)-1].Number
			}
		}
		if !resp.Truncated || len(resp.Uploads) == 0 {
			return nil
		}
		last := resp.Uploads[len(resp.Uploads)-1]
		keyMarker, idMarker = last.Key, last.UploadId
	}
}

// repairObject gives loc back its copies: it rewrites missing copies on the nodes that
// should hold them, and places copies an under-replicated version lacks on other ready
// nodes, committing the new replica list. It returns the bytes it copied and whether
// the version is now at its copy count.
func (r *Repairer) repairObject(ctx context.Context, snap *snapshot, loc *cellarv1.Location, copies int) (int64, bool) {
	var copied int64
	ok := true
	changed := false
	next := proto.Clone(loc).(*cellarv1.Location)
	var added []struct {
		node string
		id   blobID
	}
	for _, c := range refsOf(loc) {
		var sources []string
		for _, node := range c.replicas {
			if inv, ok := snap.inv[node]; ok && inv[c.id] != nil {
				sources = append(sources, node)
			}
		}
		good := len(sources)
		// Missing copies on nodes that should hold them: write them back there.
		for _, node := range c.replicas {
			inv, listed := snap.inv[node]
			if !listed || inv[c.id] != nil {
				continue
			}
			if !snap.writable(node) {
				ok = false
				continue
			}
			if err := r.copyBlob(ctx, snap, c.id, c.size, sources, node); err != nil {
				r.log.Warn("repair: could not copy a missing blob back", "bucket", loc.Bucket, "key", loc.Key, "object", c.id.String(), "to", node, "err", err)
				ok = false
				continue
			}
			copied += c.size
			good++
		}
		// Too few replicas listed: place copies on other ready nodes.
		reps := slices.Clone(c.replicas)
		for len(reps) < copies {
			target := r.pickTarget(snap, reps)
			if target == "" {
				ok = false
				break
			}
			if err := r.copyBlob(ctx, snap, c.id, c.size, sources, target); err != nil {
				r.log.Warn("repair: could not place a copy", "bucket", loc.Bucket, "key", loc.Key, "object", c.id.String(), "to", target, "err", err)
				ok = false
				break
			}
			copied += c.size
			reps = append(reps, target)
			added = append(added, struct {
				node string
				id   blobID
			}{target, c.id})
			changed = true
		}
		if c.part < 0 {
			next.Replicas = reps
		} else {
			next.Parts[c.part].Replicas = reps
		}
	}
	if changed {
		err := r.indexCall(ctx, func(ctx context.Context, ic cellarv1.IndexClient) error {
			_, err := ic.Commit(ctx, &cellarv1.CommitRequest{Location: next, IfObjectId: versionID(loc)})
			return err
		})
		switch k := errs.KindOf(err); {
		case err == nil:
		case k == errs.PreconditionFailed || k == errs.NoSuchKey:
			// The version is gone (deleted, or overwritten in a bucket that keeps
			// no versions): no record points to the new copies.
			for _, a := range added {
				r.deleteBlob(ctx, snap, a.node, a.id)
			}
			return copied, true
		default:
			// The commit may or may not have been applied: leave the copies to
			// garbage collection, which deletes them if no record took them.
			r.log.Warn("repair: commit of new replicas failed", "bucket", loc.Bucket, "key", loc.Key, "err", err)
			return copied, false
		}
	}
	if copied > 0 {
		r.m.repaired.Inc()
		r.log.Debug("repaired", "bucket", loc.Bucket, "key", loc.Key, "bytes", copied)
	}
	return copied, ok
}

// pickTarget chooses a ready storage node not among reps, the one holding the fewest
// blobs (so refills spread), or "" if there is none.
func (r *Repairer) pickTarget(snap *snapshot, reps []string) string {
	best, bestN := "", -1
	ids := make([]string, 0, len(snap.nodes))
	for id := range snap.nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if slices.Contains(reps, id) || !snap.writable(id) {
			continue
		}
		if n := len(snap.inv[id]); bestN < 0 || n < bestN {
			best, bestN = id, n
		}
	}
	return best
}

// storage returns the Storage and Blobs clients of a storage node.
func (r *Repairer) storage(snap *snapshot, node string) (cellarv1.StorageClient, cellarv1.BlobsClient, error) {
	n, ok := snap.nodes[node]
	if !ok {
		return nil, nil, errs.New(errs.Unavailable, "storage node %s is not in the gossip", node)
	}
	cc, err := r.conns.Get(n.GRPCAddr)
	if err != nil {
		return nil, nil, err
	}
	return cellarv1.NewStorageClient(cc), cellarv1.NewBlobsClient(cc), nil
}

// copyBlob copies blob id (size bytes) from the first of sources that reads whole to
// node, paced by RepairRate. The source checks every block it sends; the target
// stores the blob only if every byte arrived.
func (r *Repairer) copyBlob(ctx context.Context, snap *snapshot, id blobID, size int64, sources []string, node string) error {
	if len(sources) == 0 {
		return errs.New(errs.Unavailable, "no copy of %s to copy from", id)
	}
	if err := r.copyPace.wait(ctx, size); err != nil {
		return err
	}
	var last error
	for _, src := range sources {
		if src == node {
			continue
		}
		if last = r.copyFrom(ctx, snap, id, size, src, node); last == nil {
			r.m.bytes.Add(float64(size))
			return nil
		}
	}
	if last == nil {
		last = errs.New(errs.Unavailable, "no other copy of %s", id)
	}
	return last
}

func (r *Repairer) copyFrom(ctx context.Context, snap *snapshot, id blobID, size int64, src, dst string) error {
	from, _, err := r.storage(snap, src)
	if err != nil {
		return err
	}
	to, _, err := r.storage(snap, dst)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // a failed copy cancels the write: the target keeps nothing
	// A copy that makes no progress for CopyIdleTimeout is abandoned.
	idle := time.AfterFunc(10*r.o.CallTimeout, cancel)
	defer idle.Stop()
	rs, err := from.Read(ctx, &cellarv1.ReadRequest{ObjectId: id[:]})
	if err != nil {
		return err
	}
	ws, err := to.Write(ctx)
	if err != nil {
		return err
	}
	if err := ws.Send(&cellarv1.WriteRequest{Msg: &cellarv1.WriteRequest_Header{Header: &cellarv1.WriteHeader{ObjectId: id[:], Size: size}}}); err != nil {
		return err
	}
	var n int64
	for {
		msg, err := rs.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read from %s: %w", src, err)
		}
		idle.Reset(10 * r.o.CallTimeout)
		n += int64(len(msg.Data))
		if err := ws.Send(&cellarv1.WriteRequest{Msg: &cellarv1.WriteRequest_Data{Data: msg.Data}}); err != nil {
			return fmt.Errorf("write to %s: %w", dst, err)
		}
	}
	if n != size {
		return errs.New(errs.Corrupt, "%s on %s has %d bytes, the index says %d", id, src, n, size)
	}
	if _, err := ws.CloseAndRecv(); err != nil {
		return fmt.Errorf("write to %s: %w", dst, err)
	}
	return nil
}

func (r *Repairer) deleteBlob(ctx context.Context, snap *snapshot, node string, id blobID) error {
	st, _, err := r.storage(snap, node)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.CallTimeout)
	defer cancel()
	_, err = st.Delete(ctx, &cellarv1.DeleteBlobRequest{ObjectId: id[:]})
	return err
}

// collect counts the orphan blobs of every listed node and, with apply, deletes those
// past their grace. refs holds every blob the index references, read after the
// listing.
func (r *Repairer) collect(ctx context.Context, snap *snapshot, refs map[blobID]struct{}, apply bool) []NodeGarbage {
	now := r.o.Now()
	grace := r.o.GCGrace
	var out []NodeGarbage
	ids := make([]string, 0, len(snap.nodes))
	for id := range snap.nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	r.mu.Lock()
	for node := range r.firstSeen {
		if _, ok := snap.nodes[node]; !ok {
			delete(r.firstSeen, node)
		}
	}
	r.mu.Unlock()
	for _, node := range ids {
		g := NodeGarbage{Node: node}
		inv, ok := snap.inv[node]
		if !ok {
			g.Error = fmt.Sprint(snap.listErrs[node])
			out = append(out, g)
			continue
		}
		r.mu.Lock()
		prev := r.firstSeen[node]
		seen := map[blobID]time.Time{}
		var eligible []*cellarv1.BlobInfo
		for id, b := range inv {
			if _, ok := refs[id]; ok {
				continue
			}
			first, ok := prev[id]
			if !ok {
				first = now
			}
			seen[id] = first
			if now.Sub(first) >= grace && now.Sub(time.Unix(0, b.ModifiedUnixNano)) >= grace {
				eligible = append(eligible, b)
				g.EligibleBlobs++
				g.EligibleBytes += b.FileSize
			} else {
				g.PendingBlobs++
				g.PendingBytes += b.FileSize
			}
		}
		r.firstSeen[node] = seen
		r.mu.Unlock()
		if apply {
			for _, b := range eligible {
				id, _ := toID(b.ObjectId)
				if err := r.deleteBlob(ctx, snap, node, id); err != nil {
					r.log.Warn("garbage collection: delete failed", "node", node, "object", id.String(), "err", err)
					continue
				}
				g.DeletedBlobs++
				g.DeletedBytes += b.FileSize
				r.mu.Lock()
				delete(r.firstSeen[node], id)
				r.mu.Unlock()
			}
			if g.DeletedBlobs > 0 {
				r.log.Info("garbage collection: orphan blobs deleted", "node", node, "blobs", g.DeletedBlobs, "bytes", g.DeletedBytes)
			}
			r.m.gcBlobs.Add(float64(g.DeletedBlobs))
			r.m.gcBytes.Add(float64(g.DeletedBytes))
		}
		out = append(out, g)
	}
	return out
}

// CollectGarbage makes a pass's listing and index scan now and counts the orphan
// blobs of every storage node; with apply it deletes those past their grace. It does
// not repair.
func (r *Repairer) CollectGarbage(ctx context.Context, apply bool) ([]NodeGarbage, error) {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	snap := r.listNodes(ctx)
	refs := map[blobID]struct{}{}
	if err := r.scan(ctx, func(loc *cellarv1.Location, _ bool) {
		for _, c := range refsOf(loc) {
			refs[c.id] = struct{}{}
		}
	}); err != nil {
		return nil, fmt.Errorf("garbage collection in %s: scan the index: %w", r.o.Cell, err)
	}
	return r.collect(ctx, snap, refs, apply), nil
}

// Last returns the result of the last pass and how many passes were made.
func (r *Repairer) Last() (PassResult, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.passes
}
