package repair

import (
	"context"
	"testing"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
)

type fakeMembers []cell.Node

func (f fakeMembers) Nodes() []cell.Node { return f }

// TestOrphansWaitTheirGrace: an orphan blob is deletable only once it is older than
// the grace AND was first seen orphaned a grace ago (a GET that looked its key up just
// before an overwrite may still open it); a referenced blob never is.
func TestOrphansWaitTheirGrace(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	now := t0
	r, err := New(Options{Cell: "cell-0", Self: "p", GCGrace: time.Minute, Now: func() time.Time { return now }}, fakeMembers{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := func(b byte) blobID { return blobID{b} }
	blob := func(b byte, written time.Time) *cellarv1.BlobInfo {
		x := id(b)
		return &cellarv1.BlobInfo{ObjectId: x[:], FileSize: 100, ModifiedUnixNano: written.UnixNano()}
	}
	snap := &snapshot{
		nodes: map[string]cell.Node{"s0": {ID: "s0", State: cell.StateReady}},
		inv: map[string]inventory{"s0": {
			id(1): blob(1, t0.Add(-time.Hour)),     // referenced
			id(2): blob(2, t0.Add(-time.Hour)),     // replaced long ago: the index just stopped naming it
			id(3): blob(3, t0.Add(30*time.Second)), // written moments before the second look
		}},
	}
	refs := map[blobID]struct{}{id(1): {}}
	count := func(want NodeGarbage, what string) {
		t.Helper()
		got := r.collect(context.Background(), snap, refs, false)[0]
		if got.EligibleBlobs != want.EligibleBlobs || got.PendingBlobs != want.PendingBlobs {
			t.Errorf("%s: %d deletable, %d waiting; want %d and %d", what, got.EligibleBlobs, got.PendingBlobs, want.EligibleBlobs, want.PendingBlobs)
		}
	}
	count(NodeGarbage{EligibleBlobs: 0, PendingBlobs: 2}, "first seen now: both wait, however old the file")
	now = t0.Add(61 * time.Second)
	count(NodeGarbage{EligibleBlobs: 1, PendingBlobs: 1}, "a grace later: the old one goes, the new file waits")
	now = t0.Add(91 * time.Second)
	count(NodeGarbage{EligibleBlobs: 2, PendingBlobs: 0}, "the new file is past its grace too")
	refs[id(2)] = struct{}{}
	count(NodeGarbage{EligibleBlobs: 1, PendingBlobs: 0}, "referenced again (a commit came): never deletable")
}

// TestVersionID: a multipart object's version is its first part's blob.
func TestVersionID(t *testing.T) {
	single := &cellarv1.Location{ObjectId: []byte{1}}
	multi := &cellarv1.Location{Parts: []*cellarv1.PartLocation{{ObjectId: []byte{2}}, {ObjectId: []byte{3}}}}
	if string(versionID(single)) != "\x01" || string(versionID(multi)) != "\x02" {
		t.Errorf("versionID: %v, %v", versionID(single), versionID(multi))
	}
}
