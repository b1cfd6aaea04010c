//go:build linux || darwin || freebsd || netbsd || openbsd

package frontrouter

import (
	"net"
	"syscall"
)

// alive says whether an idle connection is still open at the other end, with a
// peek that does not wait: nothing to read is what an idle connection to a live
// gateway has; an end of stream is a gateway that closed it; bytes no request asked
// for make the connection unusable too.
func alive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var one [1]byte
	open := false
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && open
}
