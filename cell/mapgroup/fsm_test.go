package mapgroup

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

type sink struct{ bytes.Buffer }

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { return nil }
func (s *sink) Close() error  { return nil }

func logOf(t *testing.T, cmd *cellarv1.MapCommand) *raft.Log {
	data, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Data: data}
}

// The FSM applies commands in order, wakes waiters on a change, answers a refused
// command with its error, and survives a snapshot and restore.
func TestFSM(t *testing.T) {
	f := newFSM()
	_, changed := f.currentAndChange()
	seed := &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Seed{Seed: &cellarv1.SeedMap{Slots: []string{"cell-0", "cell-1"}}}}
	if res := f.Apply(logOf(t, seed)).(applied); res.err != nil || res.m.GetVersion() != 1 {
		t.Fatalf("seed: %+v", res)
	}
	select {
	case <-changed:
	default:
		t.Fatal("a change did not wake the waiters")
	}
	reg := &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Register{Register: &cellarv1.RegisterBucket{Name: "b", Cell: "cell-1"}}}
	f.Apply(logOf(t, reg))
	again := &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Register{Register: &cellarv1.RegisterBucket{Name: "b", Cell: "cell-0"}}}
	if res := f.Apply(logOf(t, again)).(applied); !errs.Is(res.err, errs.BucketExists) || res.m.GetVersion() != 2 {
		t.Fatalf("a conflicting registration: %+v", res)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	g := newFSM()
	if err := g.Restore(io.NopCloser(&s)); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(g.current(), f.current()) {
		t.Errorf("restored %v, want %v", g.current(), f.current())
	}
}
