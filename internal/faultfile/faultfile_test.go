package faultfile

import (
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
