//go:build unix && !linux

package localcluster

import "syscall"

// childAttr puts a child in a process group of its own, so that a Ctrl-C at the
// terminal reaches only the supervisor. (Only Linux can also tie the child's life to
// the supervisor's.)
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
