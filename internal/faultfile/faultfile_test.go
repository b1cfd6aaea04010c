package faultfile

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A watch sees what is armed, nothing while drills are halted or once the file is
// gone, and keeps what was armed over a file it cannot read.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "faults.json")
	w := NewWatch(path)
	if f, _, _ := w.Load(); !f.Empty() {
		t.Fatalf("no file: %+v armed", f)
	}
	touch := func(n int) {
		later := time.Now().Add(time.Duration(n) * time.Second)
		if err := os.Chtimes(path, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if err := Update(path, func(f *Faults) { f.Index = &IndexPill{Bucket: "b", Key: "k"} }); err != nil {
		t.Fatal(err)
	}
	touch(1)
	if f, changed, err := w.Load(); err != nil || !changed || !f.Index.Matches("b", "k") || f.Index.Matches("b", "x") {
		t.Fatalf("armed: %+v, changed %v, %v", f, changed, err)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	touch(2)
	if f, _, err := w.Load(); err == nil || !f.Index.Matches("b", "k") {
		t.Fatalf("unreadable file: %+v, %v; want an error and the pill kept", f, err)
	}
	if err := os.WriteFile(filepath.Join(dir, HaltFileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if f, changed, _ := w.Load(); !f.Empty() || !changed {
		t.Fatalf("halted: %+v armed, changed %v", f, changed)
	}
	os.Remove(filepath.Join(dir, HaltFileName))
	if err := Update(path, func(f *Faults) { f.Poison = &PoisonPill{Key: "g"} }); err != nil {
		t.Fatal(err)
	}
	if f, _, _ := w.Load(); f.Poison == nil || f.Index != nil {
		t.Fatalf("an unreadable file is replaced by Update: %+v", f)
	}
	if err := Update(path, func(f *Faults) { f.Poison = nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("nothing armed: file %v, want it removed", err)
	}
	if f, _, _ := w.Load(); !f.Empty() {
		t.Fatalf("file removed: %+v armed", f)
	}
}

// A change is seen however quickly it follows the last one: file systems stamp
// modification times from a coarse clock, so two writes a few milliseconds apart (an
// arm right after a disarm, a pill re-armed with another key of the same length) carry
// the same time and the same size.
func TestWatchSeesEveryChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "faults.json")
	w := NewWatch(path)
	for i := range 200 {
		key := fmt.Sprintf("pill-%03d", i) // the same length every time
		if err := Update(path, func(f *Faults) { f.Poison = &PoisonPill{Key: key} }); err != nil {
			t.Fatal(err)
		}
		if f, changed, err := w.Load(); err != nil || !changed || f.Poison == nil || f.Poison.Key != key {
			t.Fatalf("write %d: armed %+v, changed %v, %v; want the pill %s", i, f.Poison, changed, err, key)
		}
		if f, changed, _ := w.Load(); changed || f.Poison.Key != key {
			t.Fatalf("write %d, loaded again: %+v, changed %v; want no change", i, f.Poison, changed)
		}
	}
}

// A rewrite that keeps the file's modification time and size is seen: the content
// decides, not the time.
func TestWatchSameTimeAndSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "faults.json")
	w := NewWatch(path)
	stamp := time.Now().Truncate(time.Second)
	write := func(key string) {
		t.Helper()
		if err := Update(path, func(f *Faults) { f.Poison = &PoisonPill{Key: key} }); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	write("aaaa")
	if f, _, _ := w.Load(); f.Poison == nil || f.Poison.Key != "aaaa" {
		t.Fatalf("armed: %+v", f.Poison)
	}
	write("bbbb")
	if f, changed, _ := w.Load(); !changed || f.Poison == nil || f.Poison.Key != "bbbb" {
		t.Fatalf("rewritten with the same time and size: %+v, changed %v; want bbbb", f.Poison, changed)
	}
	// Disarmed and armed again between two loads, at the same time stamp.
	if err := Update(path, func(f *Faults) { f.Poison = nil }); err != nil {
		t.Fatal(err)
	}
	write("cccc")
	if f, changed, _ := w.Load(); !changed || f.Poison == nil || f.Poison.Key != "cccc" {
		t.Fatalf("disarmed and armed again: %+v, changed %v; want cccc", f.Poison, changed)
	}
}
