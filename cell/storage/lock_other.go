//go:build !unix

package storage

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir opens dir/LOCK. On systems without flock it does not exclude a second store.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("storage: lock data dir: %w", err)
	}
	return f, nil
}
