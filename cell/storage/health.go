package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

// A storage node that cannot write must say so, or placement keeps choosing it and every
// PUT of its cell fails. The store records the first disk error a write meets, and a
// probe (a small write and fsync in tmp/) runs every Config.ProbeInterval: the node is
// read-only (cell.StateReadOnly) from the moment a write fails until a probe passes,
// and while a probe fails or the disk has less than Config.MinFreeBytes free. A
// read-only node still serves reads and deletes (deletes are how a full disk empties).

// probeName is the file the probe writes, in tmp/. Writes in flight have other names.
const probeName = "PROBE"

// probeData is what the probe writes: one page.
var probeData = make([]byte, 4096)

// Faults makes a storage node fail on purpose, so that tests can watch what the rest of
// the cell does about it. The zero value injects nothing. Set them with
// Store.InjectFaults, or Config.Faults for a node started with Run.
type Faults struct {
	// DiskWrite, if set, is asked before each write to the data directory (a blob's
	// temp file, its data, its fsync, the probe). A non-nil error fails that write as
	// the disk would have: syscall.ENOSPC for a full disk.
	DiskWrite func() error
	// Hold, if set, is called at the start of every Storage call and before each
	// message a stream receives or sends. It blocks for as long as the node should look
	// frozen (as a process under SIGSTOP does) and must return once ctx is done.
	Hold func(ctx context.Context)
}

// InjectFaults makes the store (and the server over it) fail as f says, from now on.
func (s *Store) InjectFaults(f Faults) { s.faults.Store(&f) }

// diskFault is the error the injected faults give a write now, if any.
func (s *Store) diskFault() error {
	if f := s.faults.Load(); f != nil && f.DiskWrite != nil {
		return f.DiskWrite()
	}
	return nil
}

// hold blocks while the injected faults freeze the node.
func (s *Store) hold(ctx context.Context) {
	if f := s.faults.Load(); f != nil && f.Hold != nil {
		f.Hold(ctx)
	}
}

// writeFailed records a disk error met by a write: the store is not writable until a
// probe passes. It returns err classified for the client (see ioErr).
func (s *Store) writeFailed(err error, format string, args ...any) error {
	s.healthMu.Lock()
	if s.unwritable == nil {
		s.unwritable = fmt.Errorf("cannot write: a write failed: %w", err)
	}
	s.healthMu.Unlock()
	select {
	case s.writeErrs <- struct{}{}:
	default:
	}
	return ioErr(err, format, args...)
}

// Writable returns nil if the store takes writes, or why it does not: the disk error a
// write met since the last probe passed, or what the last probe found.
func (s *Store) Writable() error {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	return s.unwritable
}

// WriteErrors is signalled (without blocking the writer) when a write meets a disk
// error, so that the node can say at once that it is read-only.
func (s *Store) WriteErrors() <-chan struct{} { return s.writeErrs }

// Probe checks that the store can write: that tmp/ and blobs/ are there, that a small
// file in tmp/ can be written and fsynced, and that at least minFree bytes are free on
// the disk (0: no minimum). Its result is what Writable says until the next probe or
// write error.
func (s *Store) Probe(minFree int64) error {
	err := s.probe(minFree)
	s.healthMu.Lock()
	s.unwritable = err
	s.healthMu.Unlock()
	return err
}

func (s *Store) probe(minFree int64) error {
	for _, d := range []string{s.tmpDir, s.blobsDir} {
		if _, err := os.Stat(d); err != nil {
			return fmt.Errorf("cannot write: the data directory is damaged: %w", err)
		}
	}
	if err := s.diskFault(); err != nil {
		return fmt.Errorf("cannot write a probe file: %w", err)
	}
	name := filepath.Join(s.tmpDir, probeName)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("cannot write a probe file: %w", err)
	}
	_, err = f.Write(probeData)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	os.Remove(name)
	if err != nil {
		return fmt.Errorf("cannot write a probe file: %w", err)
	}
	if minFree > 0 {
		if free, ok := freeBytes(s.dir); ok && free < minFree {
			return fmt.Errorf("cannot write: disk nearly full: %d bytes free in %s, under the %d kept free", free, s.dir, minFree)
		}
	}
	return nil
}

// watchWrites keeps the node's state in step with whether its store takes writes, until
// ctx is done: ready while it does, read-only (with the reason on /readyz) while it does
// not. It probes every interval, and publishes a failed write at once.
func watchWrites(ctx context.Context, d *daemon.Daemon, st *Store, interval time.Duration, minFree int64) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	publish := func() {
		err := st.Writable()
		switch state := d.State(); {
		case err != nil && state == cell.StateReady:
			d.Log.Error("storage node cannot write; it serves reads only until it can", "err", err)
			d.SetStateWhy(cell.StateReadOnly, err.Error())
		case err == nil && state == cell.StateReadOnly:
			d.Log.Info("storage node can write again")
			d.SetState(cell.StateReady, 1)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.WriteErrors():
		case <-tick.C:
			st.Probe(minFree)
		}
		publish()
	}
}
