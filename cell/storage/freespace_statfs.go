//go:build linux || darwin || freebsd

package storage

import "syscall"

// freeBytes returns the bytes available to this process on the disk that holds dir,
// and whether it could tell.
func freeBytes(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(uint64(st.Bavail) * uint64(st.Bsize)), true
}
