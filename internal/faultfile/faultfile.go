// Package faultfile is the faults file of a cluster that allows faults: what the drill
// tooling has armed, as the supervisor (or the in-process test cluster) writes it, and
// the watch with which the nodes that may swallow a fault read it.
//
// Only a cluster started with faults on gives its nodes the file's path (the
// --faults-file flag of gateways and index nodes), and only the supervisor's control
// endpoint writes it: a client of the S3 API cannot arm anything. While drills are
// halted (the kill switch file beside it), nothing in it is armed.
//
//	w := faultfile.NewWatch(path)
//	if f, _, _ := w.Load(); f.Index != nil && f.Index.Matches(bucket, key) { ... }
package faultfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Faults is what is armed.
type Faults struct {
	// Poison, if set, is the gateways' poison pill: a request for an object whose key
	// is Poison.Key crashes the gateway process that handles it.
	Poison *PoisonPill `json:"poison,omitempty"`
	// Index, if set, is the index pill: a write of Index.Bucket/Index.Key crashes
	// every index node that applies it, which is every replica of the cell's group.
	Index *IndexPill `json:"index_poison,omitempty"`
}

// PoisonPill is an armed poison pill of the gateways.
type PoisonPill struct {
	Key     string    `json:"key"`
	ArmedAt time.Time `json:"armed_at"`
	Reason  string    `json:"reason,omitempty"`
}

// IndexPill is an armed poison pill of the index: the object it names.
type IndexPill struct {
	Bucket  string    `json:"bucket"`
	Key     string    `json:"key"`
	ArmedAt time.Time `json:"armed_at"`
	Reason  string    `json:"reason,omitempty"`
}

// Matches reports whether a write of bucket/key swallows the pill.
func (p *IndexPill) Matches(bucket, key string) bool {
	return p != nil && p.Bucket == bucket && p.Key == key
}

// HaltFileName is the kill switch of drills in the directory of the faults file
// (drill/guard's HaltFileName): while it exists, no fault is armed.
const HaltFileName = "drills.halted"

// Read reads the faults file at path as it is written, kill switch aside: empty
// Faults when there is none.
func Read(path string) (Faults, error) {
	var f Faults
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read faults file: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("read faults file %s: %w", path, err)
	}
	return f, nil
}

// Watch keeps the faults file's current content, read again when its modification
// time changes.
type Watch struct {
	path string
	cur  atomic.Pointer[Faults]
	mu   sync.Mutex // serialises Load
	mod  time.Time
}

// NewWatch watches the faults file at path, read at once.
func NewWatch(path string) *Watch {
	w := &Watch{path: path}
	w.Load()
	return w
}

// Current is what was armed at the last Load: never nil.
func (w *Watch) Current() *Faults {
	if f := w.cur.Load(); f != nil {
		return f
	}
	return &Faults{}
}

// Load reads the file again if it changed, and returns what is armed now (never nil)
// and whether that changed. An unreadable file keeps what was armed, and is reported.
func (w *Watch) Load() (f *Faults, changed bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fi, err := os.Stat(w.path)
	if err == nil {
		if _, herr := os.Stat(filepath.Join(filepath.Dir(w.path), HaltFileName)); herr == nil {
			err = fs.ErrNotExist // drills are halted: the faults are off
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		changed = w.cur.Load() != nil
		w.cur.Store(nil)
		w.mod = time.Time{}
		return w.Current(), changed, nil
	}
	if err != nil || fi.ModTime().Equal(w.mod) {
		return w.Current(), false, nil
	}
	next, err := Read(w.path)
	if err != nil {
		return w.Current(), false, err
	}
	w.mod = fi.ModTime()
	if next.Poison != nil && next.Poison.Key == "" {
		next.Poison = nil
	}
	if next.Index != nil && (next.Index.Bucket == "" || next.Index.Key == "") {
		next.Index = nil
	}
	w.cur.Store(&next)
	return &next, true, nil
}

// Empty reports whether nothing is armed.
func (f Faults) Empty() bool { return f.Poison == nil && f.Index == nil }

// Update changes the faults file at path with change: what it arms is kept unless
// change replaces it, and the file is removed when nothing is left armed. The file is
// written with mode 0600; it is for the nodes of the cluster alone.
func Update(path string, change func(*Faults)) error {
	f, err := Read(path)
	if err != nil {
		f = Faults{} // an unreadable file is replaced
	}
	change(&f)
	if f.Empty() {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("update faults file: %w", err)
		}
		return nil
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("update faults file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("update faults file: %w", err)
	}
	return nil
}
