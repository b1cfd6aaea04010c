// Package testaddr hands tests 127.0.0.1 addresses for servers that must keep their
// address across restarts (a stopped node comes back where its peers expect it).
//
// Ports come from below the kernel's ephemeral range, so no outgoing connection can
// be given one of them while its node is down, and none is handed out twice in a
// process.
package testaddr

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

var (
	mu   sync.Mutex
	used = map[int]bool{}
)

// Free returns a 127.0.0.1 address whose port is free for both TCP and UDP (gossip
// needs both).
func Free(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for i := 0; i < 500; i++ {
		port := 20000 + rand.IntN(12000)
		if used[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			used[port] = true
			return addr
		}
	}
	t.Fatal("no free port for TCP and UDP")
	return ""
}
