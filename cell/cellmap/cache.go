package cellmap

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
)

// CacheFile is the name of the file a gateway keeps its last map in, in its state
// directory.
const CacheFile = "cellmap.pb"

// Save writes m to path so that a crash leaves the old file or the new one, never a
// part: to a temporary file beside it, synced, then renamed over it.
func Save(path string, m *cellarv1.Map) error {
	data, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("cellmap: save: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("cellmap: save: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".cellmap-*")
	if err != nil {
		return fmt.Errorf("cellmap: save: %w", err)
	}
	defer os.Remove(f.Name()) // gone after the rename; cleans up after a failure
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cellmap: save: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cellmap: save: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cellmap: save: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("cellmap: save: %w", err)
	}
	return nil
}

// Load reads the map Save wrote to path. A missing file gives (nil, nil): there is no
// map yet.
func Load(path string) (*cellarv1.Map, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cellmap: load: %w", err)
	}
	m := &cellarv1.Map{}
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("cellmap: load %s: %w", path, err)
	}
	return m, nil
}
