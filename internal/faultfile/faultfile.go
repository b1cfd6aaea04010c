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
	"bytes"
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

// Watch keeps the faults file's current content, read again when it changes.
//
// A change is told by the file's content, not by its modification time alone: file
// systems stamp that time from a coarse clock (on Linux, the kernel's tick of a few
// milliseconds), so a rewrite a moment after the last one, such as a pill armed right
// after another was disarmed, can carry the same time and the same size. Load compares
// the bytes whenever the time might lie: while the file's modification time is within
// racyWindow of the last read. Once the file is older than that, any later write
// stamps a later time (unless the clock is set back by more than the window), and a
// stat is enough: the "racily clean" rule of git's index.
type Watch struct {
	path string
	cur  atomic.Pointer[Faults]
	mu   sync.Mutex // serialises Load and guards what follows
	// raw is the file's content at the last read (nil: no file, or drills halted);
	// mod and size its stat then, and readAt when the read started.
	raw    []byte
	mod    time.Time
	size   int64
	readAt time.Time
}

// racyWindow is how close to the last read a file's modification time must be for
// the stat not to be trusted. It is larger than the coarsest time stamps of the file
// systems a cluster's data directory is likely on (FAT's 2 s).
const racyWindow = 3 * time.Second

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

// Load reads the file again if it may have changed, and returns what is armed now
// (never nil) and whether that changed. An unreadable file keeps what was armed, and
// is reported.
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
		changed = !w.Current().Empty()
		w.cur.Store(nil)
		w.raw, w.mod, w.size, w.readAt = nil, time.Time{}, 0, time.Time{}
		return w.Current(), changed, nil
	}
	if err != nil {
		return w.Current(), false, nil
	}
	if w.raw != nil && fi.Size() == w.size && fi.ModTime().Equal(w.mod) && fi.ModTime().Before(w.readAt.Add(-racyWindow)) {
		return w.Current(), false, nil // unchanged: any write since the last read would stamp a later time
	}
	readAt := time.Now()
	b, err := os.ReadFile(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		// Removed since the stat: nothing is armed.
		b, err = []byte{}, nil
	}
	if err != nil {
		return w.Current(), false, fmt.Errorf("read faults file: %w", err)
	}
	if w.raw != nil && bytes.Equal(b, w.raw) {
		w.mod, w.size, w.readAt = fi.ModTime(), fi.Size(), readAt
		return w.Current(), false, nil
	}
	var next Faults
	if len(b) > 0 {
		if err := json.Unmarshal(b, &next); err != nil {
			return w.Current(), false, fmt.Errorf("read faults file %s: %w", w.path, err)
		}
	}
	// The stat may be of an older version of the file than the bytes: the next Load
	// then sees another stat and reads again, which costs a read and misses nothing.
	w.raw, w.mod, w.size, w.readAt = b, fi.ModTime(), fi.Size(), readAt
	if next.Poison != nil && next.Poison.Key == "" {
		next.Poison = nil
	}
	if next.Index != nil && (next.Index.Bucket == "" || next.Index.Key == "") {
		next.Index = nil
	}
	prev := w.Current()
	w.cur.Store(&next)
	return &next, !sameFaults(*prev, next), nil
}

// sameFaults reports whether a and b arm the same pills.
func sameFaults(a, b Faults) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
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
