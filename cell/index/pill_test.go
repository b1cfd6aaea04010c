package index

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/internal/faultfile"
)

// An armed index pill crashes the node that applies a commit of its object, leaves
// the entry unapplied (a crashed process records nothing), so that the node crashes
// again on replaying it after a restart; once drills are halted, or the pill disarmed,
// the same entry applies as any other write.
func TestIndexPillCrashesOnApplyAndOnReplay(t *testing.T) {
	dir := t.TempDir()
	faults := filepath.Join(t.TempDir(), "faults.json")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var exits []int
	var cur *Store
	t.Cleanup(func() { cur.Close() })
	// open opens the store again, as a restarted node does.
	open := func() fsm {
		if cur != nil {
			cur.Close()
		}
		s, err := Open(dir, quiet)
		if err != nil {
			t.Fatal(err)
		}
		cur = s
		s.armFaults(faults, func(code int) { exits = append(exits, code) })
		return fsm{s: s}
	}
	apply := func(f fsm, idx uint64, cmd *cellarv1.IndexCommand) error {
		b, err := proto.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		return f.Apply(&raft.Log{Type: raft.LogCommand, Index: idx, Data: b}).(applied).err
	}
	commit := func(key string) *cellarv1.IndexCommand {
		return &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_Commit{Commit: &cellarv1.CommitRequest{Location: loc("b", key, 1)}}}
	}
	arm := func(f func(*faultfile.Faults)) {
		if err := faultfile.Update(faults, f); err != nil {
			t.Fatal(err)
		}
		// A new modification time, even on a file system with coarse ones.
		later := time.Now().Add(time.Duration(len(exits)+1) * time.Second)
		if err := os.Chtimes(faults, later, later); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}

	f := open()
	create := &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_CreateBucket{CreateBucket: &cellarv1.CreateBucketRequest{Name: "b"}}}
	if err := apply(f, 1, create); err != nil {
		t.Fatal(err)
	}
	arm(func(ff *faultfile.Faults) { ff.Index = &faultfile.IndexPill{Bucket: "b", Key: "pill"} })
	if err := apply(f, 2, commit("other")); err != nil || len(exits) != 0 {
		t.Fatalf("another key: %v, exits %v", err, exits)
	}
	if err := apply(f, 3, commit("pill")); !errors.Is(err, errCrashed) || len(exits) != 1 || exits[0] != PillExitCode {
		t.Fatalf("the pill's object: %v, exits %v; want a crash with code %d", err, exits, PillExitCode)
	}
	if err := apply(f, 4, commit("after")); !errors.Is(err, errCrashed) || len(exits) != 1 {
		t.Fatalf("a write after the crash: %v, exits %v; want refused without a second crash", err, exits)
	}
	if got := f.s.AppliedIndex(); got != 2 {
		t.Fatalf("applied index %d after the crash, want 2: the pill's entry must stay unapplied", got)
	}

	// Restarted with the pill armed: the replay crashes the node again.
	f = open()
	if err := apply(f, 3, commit("pill")); !errors.Is(err, errCrashed) || len(exits) != 2 {
		t.Fatalf("replay with the pill armed: %v, exits %v; want a second crash", err, exits)
	}

	// Drills halted: the pill is off, and the replay applies the write.
	halt := filepath.Join(filepath.Dir(faults), faultfile.HaltFileName)
	if err := os.WriteFile(halt, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f = open()
	if err := apply(f, 3, commit("pill")); err != nil || len(exits) != 2 {
		t.Fatalf("replay with drills halted: %v, exits %v; want the write applied", err, exits)
	}
	if _, err := f.s.Lookup("b", "pill"); err != nil {
		t.Fatalf("the pill's object after the replay: %v", err)
	}
	os.Remove(halt)

	// Disarmed: the pill's object is an object like any other.
	arm(func(ff *faultfile.Faults) { ff.Index = nil })
	if _, err := os.Stat(faults); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("faults file with nothing armed: %v, want it removed", err)
	}
	if err := apply(f, 4, commit("pill")); err != nil || len(exits) != 2 {
		t.Fatalf("disarmed: %v, exits %v", err, exits)
	}
	if err := apply(f, 5, &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_Delete{Delete: &cellarv1.DeleteRequest{Bucket: "b", Key: "pill"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Lookup("b", "pill"); errs.KindOf(err) != errs.NoSuchKey {
		t.Fatalf("deleted pill object: %v", err)
	}
}

// A node of a cluster without faults has no pill: a commit costs no look at a file.
func TestNoFaultsFileNoPill(t *testing.T) {
	s, err := Open(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.armFaults("", nil)
	if s.pill != nil {
		t.Fatal("a pill without a faults file")
	}
}
