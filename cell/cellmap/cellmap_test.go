package cellmap

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/internal/testwait"
)

func register(name, cellID string) *cellarv1.MapCommand {
	return &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Register{Register: &cellarv1.RegisterBucket{Name: name, Cell: cellID, CreatedUnixNano: 7}}}
}

func setState(name string, st cellarv1.BucketState, to, cellID string) *cellarv1.MapCommand {
	return &cellarv1.MapCommand{Op: &cellarv1.MapCommand_SetState{SetState: &cellarv1.SetBucketState{Name: name, State: st, MoveTo: to, Cell: cellID}}}
}

func reclaimed(name, cellID string) *cellarv1.MapCommand {
	return &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Reclaimed{Reclaimed: &cellarv1.BucketReclaimed{Name: name, Cell: cellID}}}
}

func TestApply(t *testing.T) {
	seeded := Seed([]string{"cell-0", "cell-1"}, 4, "bucket")
	withB, _, err := Apply(seeded, register("b", "cell-0"))
	if err != nil {
		t.Fatal(err)
	}
	moved, _, err := Apply(withB, setState("b", cellarv1.BucketState_BUCKET_STATE_NORMAL, "", "cell-1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		from    *cellarv1.Map
		cmd     *cellarv1.MapCommand
		changed bool
		kind    errs.Kind // of the error, if wantErr
		wantErr bool
		check   func(t *testing.T, m *cellarv1.Map)
	}{
		{name: "seed an empty map", from: &cellarv1.Map{},
			cmd:     &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Seed{Seed: &cellarv1.SeedMap{Slots: []string{"cell-0"}, Partition: "bucket"}}},
			changed: true, check: func(t *testing.T, m *cellarv1.Map) {
				if len(m.Slots) != 1 || m.Partition != "bucket" {
					t.Errorf("seeded map %v", m)
				}
			}},
		{name: "seed a seeded map does nothing", from: seeded,
			cmd: &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Seed{Seed: &cellarv1.SeedMap{Slots: []string{"cell-9"}}}}},
		{name: "register", from: seeded, cmd: register("b", "cell-1"), changed: true, check: func(t *testing.T, m *cellarv1.Map) {
			if got := BucketCell(m, "b"); got != "cell-1" {
				t.Errorf("entry of b is %s, want cell-1 (it overrides the slot)", got)
			}
		}},
		{name: "register again in the same cell does nothing", from: withB, cmd: register("b", "cell-0")},
		{name: "register in another cell is refused", from: withB, cmd: register("b", "cell-1"), wantErr: true, kind: errs.BucketExists},
		{name: "register without a cell", from: seeded, cmd: register("b", ""), wantErr: true, kind: errs.InvalidArgument},
		{name: "unregister", from: withB, cmd: &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Unregister{Unregister: &cellarv1.UnregisterBucket{Name: "b"}}},
			changed: true, check: func(t *testing.T, m *cellarv1.Map) {
				if len(m.Buckets) != 0 {
					t.Errorf("buckets left: %v", m.Buckets)
				}
			}},
		{name: "unregister by the cell that holds it", from: withB, cmd: &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Unregister{Unregister: &cellarv1.UnregisterBucket{Name: "b", Cell: "cell-0"}}},
			changed: true, check: func(t *testing.T, m *cellarv1.Map) {
				if len(m.Buckets) != 0 {
					t.Errorf("buckets left: %v", m.Buckets)
				}
			}},
		{name: "unregister by another cell leaves the entry", from: withB, cmd: &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Unregister{Unregister: &cellarv1.UnregisterBucket{Name: "b", Cell: "cell-1"}}},
			check: func(t *testing.T, m *cellarv1.Map) {
				if e := m.Buckets["b"]; e.GetCell() != "cell-0" {
					t.Errorf("entry of b: %v, want it kept in cell-0", e)
				}
			}},
		{name: "unregister a missing bucket does nothing", from: seeded, cmd: &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Unregister{Unregister: &cellarv1.UnregisterBucket{Name: "b"}}}},
		{name: "moving", from: withB, cmd: setState("b", cellarv1.BucketState_BUCKET_STATE_MOVING, "cell-1", ""), changed: true,
			check: func(t *testing.T, m *cellarv1.Map) {
				if e := m.Buckets["b"]; e.Cell != "cell-0" || e.MoveTo != "cell-1" || e.State != cellarv1.BucketState_BUCKET_STATE_MOVING {
					t.Errorf("entry %v", e)
				}
			}},
		{name: "moving needs a target", from: withB, cmd: setState("b", cellarv1.BucketState_BUCKET_STATE_MOVING, "", ""), wantErr: true, kind: errs.InvalidArgument},
		{name: "state of a missing bucket", from: seeded, cmd: setState("b", cellarv1.BucketState_BUCKET_STATE_NORMAL, "", ""), wantErr: true, kind: errs.NoSuchBucket},
		{name: "cutover", from: withB, cmd: setState("b", cellarv1.BucketState_BUCKET_STATE_NORMAL, "", "cell-1"), changed: true,
			check: func(t *testing.T, m *cellarv1.Map) {
				if e := m.Buckets["b"]; e.Cell != "cell-1" || e.MoveTo != "" || e.State != cellarv1.BucketState_BUCKET_STATE_NORMAL || e.MovedFrom != "cell-0" {
					t.Errorf("entry %v, want normal in cell-1, moved from cell-0", e)
				}
			}},
		{name: "cutover again does nothing", from: moved, cmd: setState("b", cellarv1.BucketState_BUCKET_STATE_NORMAL, "", "cell-1")},
		{name: "reclaimed", from: moved, cmd: reclaimed("b", "cell-0"), changed: true,
			check: func(t *testing.T, m *cellarv1.Map) {
				if e := m.Buckets["b"]; e.Cell != "cell-1" || e.MovedFrom != "" {
					t.Errorf("entry %v, want in cell-1, moved from nowhere", e)
				}
			}},
		{name: "reclaimed in another cell does nothing", from: moved, cmd: reclaimed("b", "cell-1")},
		{name: "reclaimed of a missing bucket does nothing", from: seeded, cmd: reclaimed("b", "cell-0")},
		{name: "set slot", from: seeded, cmd: &cellarv1.MapCommand{Op: &cellarv1.MapCommand_SetSlot{SetSlot: &cellarv1.SetSlot{Slot: 0, Cell: "cell-1"}}}, changed: true,
			check: func(t *testing.T, m *cellarv1.Map) {
				if m.Slots[0] != "cell-1" {
					t.Errorf("slots %v", m.Slots)
				}
			}},
		{name: "set a slot out of range", from: seeded, cmd: &cellarv1.MapCommand{Op: &cellarv1.MapCommand_SetSlot{SetSlot: &cellarv1.SetSlot{Slot: 4, Cell: "cell-1"}}}, wantErr: true, kind: errs.InvalidArgument},
		{name: "expected version holds", from: seeded, cmd: func() *cellarv1.MapCommand { c := register("b", "cell-0"); c.ExpectVersion = 1; return c }(), changed: true},
		{name: "expected version does not hold", from: withB, cmd: func() *cellarv1.MapCommand { c := register("c", "cell-0"); c.ExpectVersion = 1; return c }(),
			wantErr: true, kind: errs.PreconditionFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := proto.Clone(tc.from)
			next, changed, err := Apply(tc.from, tc.cmd)
			if !proto.Equal(before, tc.from) {
				t.Fatalf("Apply modified its input")
			}
			if tc.wantErr {
				if err == nil || errs.KindOf(err) != tc.kind {
					t.Fatalf("err %v, want a %v", err, tc.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.changed {
				t.Fatalf("changed %v, want %v", changed, tc.changed)
			}
			switch {
			case changed && next.Version != tc.from.GetVersion()+1:
				t.Errorf("a change made version %d of %d", next.Version, tc.from.GetVersion())
			case !changed && !proto.Equal(next, tc.from):
				t.Errorf("no change, yet the map differs")
			}
			if tc.check != nil {
				tc.check(t, next)
			}
		})
	}
}

func TestBucketsSorted(t *testing.T) {
	m := Seed([]string{"cell-0"}, 1, "bucket")
	for _, b := range []string{"c", "a", "b"} {
		m, _, _ = Apply(m, register(b, "cell-0"))
	}
	var names []string
	for _, b := range Buckets(m) {
		names = append(names, b.Name)
	}
	if got := names; len(got) != 3 || got[0] != "a" || got[1] != "b" || got[2] != "c" {
		t.Errorf("Buckets = %v, want a b c", got)
	}
}

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", CacheFile)
	if m, err := Load(path); err != nil || m != nil {
		t.Fatalf("Load of a missing file = %v, %v; want nil, nil", m, err)
	}
	m, _, _ := Apply(Seed([]string{"cell-0", "cell-1"}, 8, "bucket"), register("b", "cell-1"))
	if err := Save(path, m); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, m) {
		t.Errorf("loaded %v, saved %v", got, m)
	}
}

// The follower starts from its cache file, takes only newer maps, caches each, and
// keeps its map while fetches fail.
func TestFollower(t *testing.T) {
	path := filepath.Join(t.TempDir(), CacheFile)
	fallback := Seed([]string{"cell-0"}, 4, "bucket")
	fallback.Version = 0
	v3 := Seed([]string{"cell-0"}, 4, "bucket")
	v3.Version = 3
	if err := Save(path, v3); err != nil {
		t.Fatal(err)
	}
	v5, _, _ := Apply(v3, register("b", "cell-0"))
	v5.Version = 5

	var calls atomic.Int32
	var changes atomic.Int32
	f, err := NewFollower(FollowerOptions{CachePath: path, Retry: time.Millisecond,
		OnChange: func(*cellarv1.Map) { changes.Add(1) },
		Fetch: func(ctx context.Context, known uint64) (*cellarv1.Map, error) {
			switch calls.Add(1) {
			case 1:
				return nil, errors.New("map group away")
			case 2:
				return v5, nil
			}
			<-ctx.Done()
			return nil, ctx.Err()
		}}, fallback)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version() != 3 {
		t.Fatalf("started at version %d, want 3 from the cache file", f.Version())
	}
	if f.Offer(fallback) {
		t.Errorf("took an older map")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	testwait.Succeeds(t, 10*time.Second, "the follower takes version 5", func() error {
		if f.Version() != 5 {
			return errors.New("not yet")
		}
		return nil
	})
	cancel()
	<-done
	if changes.Load() != 1 {
		t.Errorf("OnChange called %d times, want 1", changes.Load())
	}
	cached, err := Load(path)
	if err != nil || cached.GetVersion() != 5 {
		t.Errorf("cache file holds version %d (%v), want 5", cached.GetVersion(), err)
	}
}
