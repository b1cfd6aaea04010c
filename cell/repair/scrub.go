package repair

import (
	"context"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/errs"
)

// scrubMinCost is what one verified blob costs the scrub's pacing at least: the calls
// and disk seeks of a small blob are not free either.
const scrubMinCost = 64 << 10

// scrubItem is one copy for the scrubber to verify.
type scrubItem struct {
	bucket, key string
	version     []byte
	node        string
	id          blobID
	size        int64
	replicas    []string
}

// scrubLoop verifies, in turn, every copy the last pass found held, paced at
// ScrubRate, and rewrites the corrupt ones from another copy. At the end of a cycle it
// starts over on the list of the newest pass; a new pass does not restart a cycle.
func (r *Repairer) scrubLoop(ctx context.Context) {
	if r.o.ScrubRate < 0 {
		return
	}
	wrapped, i := -1, 0
	for ctx.Err() == nil {
		r.mu.Lock()
		list, gen := r.scrubList, r.scrubGen
		r.mu.Unlock()
		if i < len(list) && r.leading.Load() {
			item := list[i]
			i++
			r.Scrub(ctx, item)
			continue
		}
		if i >= len(list) && gen != wrapped {
			// A cycle is done: start over, on the list of the newest pass.
			wrapped, i = gen, 0
			continue
		}
		t := time.NewTimer(r.o.Interval / 4)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Scrub verifies one copy and rewrites it from another if it is corrupt.
func (r *Repairer) Scrub(ctx context.Context, item scrubItem) {
	// Small blobs are paced here at a floor cost; big ones by the storage node as it
	// reads them.
	rate := int64(0)
	if item.size >= 1<<20 {
		rate = r.o.ScrubRate
	} else if err := r.scrubPace.wait(ctx, item.size); err != nil {
		return
	}
	snap := r.gossipSnapshot()
	_, blobs, err := r.storage(snap, item.node)
	if err != nil {
		return
	}
	vctx, cancel := context.WithTimeout(ctx, r.o.CallTimeout+time.Duration(float64(item.size)/float64(max(r.o.ScrubRate, 1))*float64(time.Second)))
	_, err = blobs.Verify(vctx, &cellarv1.VerifyBlobRequest{ObjectId: item.id[:], RateBytesPerSecond: rate})
	cancel()
	r.m.scrubbed.Add(float64(item.size))
	if errs.KindOf(err) != errs.Corrupt {
		return // intact, or gone (deleted, or the node went away): the next pass sees to it
	}
	r.m.corruptFound.Inc()
	r.log.Warn("scrub: a corrupt copy; rewriting it from another", "bucket", item.bucket, "key", item.key, "object", item.id.String(), "node", item.node)
	var sources []string
	for _, n := range item.replicas {
		if n != item.node {
			sources = append(sources, n)
		}
	}
	if err := r.copyBlob(ctx, snap, item.id, item.size, sources, item.node); err != nil {
		r.log.Error("scrub: could not rewrite a corrupt copy", "bucket", item.bucket, "key", item.key, "object", item.id.String(), "node", item.node, "err", err)
		return
	}
	r.m.corruptRepaired.Inc()
}

// gossipSnapshot is a snapshot of the cell's storage nodes from the gossip, with no
// listing.
func (r *Repairer) gossipSnapshot() *snapshot {
	snap := &snapshot{nodes: map[string]cell.Node{}, inv: map[string]inventory{}}
	for _, n := range r.members.Nodes() {
		if n.Cell == r.o.Cell && n.Role == cell.RoleStorage {
			snap.nodes[n.ID] = n
		}
	}
	return snap
}
