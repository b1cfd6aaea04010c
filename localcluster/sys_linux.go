package localcluster

import "syscall"

// childAttr puts a child in a process group of its own (a Ctrl-C at the terminal reaches
// only the supervisor, which then stops the children in order) and has the kernel kill
// it if the supervisor dies, so that no daemon outlives it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
