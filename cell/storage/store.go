package storage

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cellarsim/cellar/internal/errs"
)

// ID is an object id. On disk it is spelled as its 32 lowercase hex digits, so no id can
// name a path outside the store.
type ID [16]byte

// ParseID checks that b is an object id (exactly 16 bytes) and returns it.
func ParseID(b []byte) (ID, error) {
	var id ID
	if len(b) != len(id) {
		return id, errs.New(errs.InvalidArgument, "object id must be %d bytes, got %d", len(id), len(b))
	}
	copy(id[:], b)
	return id, nil
}

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Store is the blobs of one storage node, in one directory. Its methods are safe for
// concurrent use. Open it with Open; Close releases the directory.
type Store struct {
	dir      string
	tmpDir   string
	blobsDir string
	lock     *os.File
	recovery Recovery
	fans     [256]atomic.Bool // fan-out directories known to exist durably

	// mu makes "look at the old file, rename or remove, adjust the counts" one step, so
	// that blobs and used stay exact when writes and deletes of one id race.
	mu    sync.Mutex
	blobs atomic.Int64
	used  atomic.Int64

	faults atomic.Pointer[Faults] // injected failures, for tests; nil: none

	// healthMu guards unwritable: why the store cannot take writes (nil if it can).
	// See health.go.
	healthMu   sync.Mutex
	unwritable error
	writeErrs  chan struct{} // signalled when a write meets a disk error

	written atomic.Int64 // object bytes committed by Write
	read    atomic.Int64 // object bytes handed out by Read
	corrupt atomic.Int64 // blocks (or footers) that failed their checksum on a read
}

// Recovery is what Open found and did in the data directory.
type Recovery struct {
	TempRemoved int           // writes in flight at the last stop, removed
	Blobs       int64         // blobs found
	UsedBytes   int64         // their size on disk, trailers included
	Stray       int           // files in blobs/ that are not named like blobs; left alone
	Took        time.Duration // time to open and walk the directory
}

// Stats are a store's running counts.
type Stats struct {
	Blobs         int64 // blobs stored
	UsedBytes     int64 // size of the blob files on disk
	WrittenBytes  int64 // object bytes committed since Open
	ReadBytes     int64 // object bytes read since Open
	CorruptBlocks int64 // checksum failures seen by reads since Open
}

// Open opens the store in dir, creating it if needed. It takes the directory's lock (a
// second Store on the same directory fails), removes the temporary files of writes that
// were in flight when the last process stopped, and counts the blobs.
func Open(dir string) (*Store, error) {
	start := time.Now()
	if dir == "" {
		return nil, errors.New("storage: no data directory")
	}
	s := &Store{dir: dir, tmpDir: filepath.Join(dir, "tmp"), blobsDir: filepath.Join(dir, "blobs"),
		writeErrs: make(chan struct{}, 1)}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: create data dir: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.recover(); err != nil {
		lock.Close()
		return nil, err
	}
	s.recovery.Took = time.Since(start)
	return s, nil
}

// recover prepares the layout, empties tmp/ and counts what blobs/ holds.
func (s *Store) recover() error {
	for _, d := range []string{s.tmpDir, s.blobsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("storage: create %s: %w", d, err)
		}
	}
	// Make the directories themselves durable, so a blob renamed into one survives a crash.
	for _, d := range []string{s.blobsDir, s.dir} {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
	}

	tmps, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return fmt.Errorf("storage: read tmp dir: %w", err)
	}
	for _, e := range tmps {
		if err := os.RemoveAll(filepath.Join(s.tmpDir, e.Name())); err != nil {
			return fmt.Errorf("storage: remove leftover temp file: %w", err)
		}
		s.recovery.TempRemoved++
	}

	fans, err := os.ReadDir(s.blobsDir)
	if err != nil {
		return fmt.Errorf("storage: read blobs dir: %w", err)
	}
	for _, fan := range fans {
		b, err := hex.DecodeString(fan.Name())
		if err != nil || len(b) != 1 || fan.Name() != fmt.Sprintf("%02x", b[0]) || !fan.IsDir() {
			s.recovery.Stray++
			continue
		}
		entries, err := os.ReadDir(filepath.Join(s.blobsDir, fan.Name()))
		if err != nil {
			return fmt.Errorf("storage: read %s: %w", fan.Name(), err)
		}
		for _, e := range entries {
			if !isBlobName(e.Name(), fan.Name()) || !e.Type().IsRegular() {
				s.recovery.Stray++
				continue
			}
			info, err := e.Info()
			if errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				return fmt.Errorf("storage: stat blob: %w", err)
			}
			s.recovery.Blobs++
			s.recovery.UsedBytes += info.Size()
		}
		s.fans[b[0]].Store(true)
	}
	s.blobs.Store(s.recovery.Blobs)
	s.used.Store(s.recovery.UsedBytes)
	return nil
}

// makeFan makes sure the fan-out directory of id exists, durably. Directories are
// made on first use, so a new store is 2 directories, not 258.
func (s *Store) makeFan(id ID) error {
	if s.fans[id[0]].Load() {
		return nil
	}
	err := os.Mkdir(filepath.Dir(s.Path(id)), 0o755)
	if err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	// Another writer may have made it a moment ago and not synced blobs/ yet: sync
	// whoever made it.
	if err := syncDir(s.blobsDir); err != nil {
		return err
	}
	s.fans[id[0]].Store(true)
	return nil
}

// isBlobName reports whether name is 32 lowercase hex digits starting with fan.
func isBlobName(name, fan string) bool {
	if len(name) != 2*len(ID{}) || name[:2] != fan {
		return false
	}
	for _, c := range []byte(name) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Close releases the data directory. Calls in flight may still finish; no new calls
// should be made.
func (s *Store) Close() error { return s.lock.Close() }

// Dir is the store's data directory.
func (s *Store) Dir() string { return s.dir }

// Recovery says what Open found.
func (s *Store) Recovery() Recovery { return s.recovery }

// Stats returns the store's counts.
func (s *Store) Stats() Stats {
	return Stats{
		Blobs: s.blobs.Load(), UsedBytes: s.used.Load(),
		WrittenBytes: s.written.Load(), ReadBytes: s.read.Load(), CorruptBlocks: s.corrupt.Load(),
	}
}

// Path is the file that holds blob id. It is exported for tests and tools that inspect
// the disk; everything else goes through the Store's methods.
func (s *Store) Path(id ID) string {
	name := id.String()
	return filepath.Join(s.blobsDir, name[:2], name)
}

// install renames a complete, fsynced temp file into place as blob id, replacing any
// blob of that id, and makes the rename durable.
func (s *Store) install(tmp string, id ID, size int64) error {
	final := s.Path(id)
	if err := s.makeFan(id); err != nil {
		return s.writeFailed(err, "store object %s", id)
	}
	s.mu.Lock()
	old, statErr := os.Lstat(final)
	if err := os.Rename(tmp, final); err != nil {
		s.mu.Unlock()
		return s.writeFailed(err, "store object %s", id)
	}
	if statErr == nil {
		s.used.Add(size - old.Size())
	} else {
		s.blobs.Add(1)
		s.used.Add(size)
	}
	s.mu.Unlock()
	if err := syncDir(filepath.Dir(final)); err != nil {
		return s.writeFailed(err, "store object %s", id)
	}
	return nil
}

// Delete removes blob id. Deleting a blob that does not exist is not an error.
func (s *Store) Delete(id ID) error {
	final := s.Path(id)
	s.mu.Lock()
	info, err := os.Lstat(final)
	if err == nil {
		if err = os.Remove(final); err == nil {
			s.blobs.Add(-1)
			s.used.Add(-info.Size())
		}
	}
	s.mu.Unlock()
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return ioErr(err, "delete object %s", id)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return ioErr(err, "delete object %s", id)
	}
	return nil
}

// syncDir fsyncs a directory, which makes the creations, renames and removals in it
// durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// ioErr classifies a disk error: a full disk is Unavailable (another node may take
// the write), anything else Internal. The cause is kept for the log, not the client.
func ioErr(err error, format string, args ...any) error {
	if errors.Is(err, syscall.ENOSPC) {
		return errs.Wrap(errs.Unavailable, err, "storage node is out of space")
	}
	return errs.Wrap(errs.Internal, err, format, args...)
}
