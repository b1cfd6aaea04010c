package testaddr

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// host is the interface every address handed out is on.
const host = "127.0.0.1"

// Picker hands out 127.0.0.1 addresses whose ports are free now and that it has not
// handed out before. It picks below the kernel's ephemeral range, so that a port it
// hands out is not taken in the meantime as the source port of some outgoing
// connection (which would make the later bind fail). A Picker is safe for concurrent
// use.
type Picker struct {
	mu     sync.Mutex
	lo, hi int // the range to pick from, [lo, hi); 0, 0: ask the kernel for port 0
	used   map[int]bool
}

// NewPicker returns a Picker that has handed out nothing yet.
func NewPicker() *Picker {
	p := &Picker{used: map[int]bool{}}
	switch ephLo, ok := ephemeralLow(); {
	case !ok:
		// Not Linux: below the ephemeral range of the BSDs, macOS and Windows
		// (49152 and up), and of Linux's default (32768 and up).
		p.lo, p.hi = 20000, 32000
	case ephLo > 12000:
		p.lo, p.hi = 10000, ephLo
	}
	return p
}

// ephemeralLow reads the low end of Linux's ephemeral port range.
func ephemeralLow() (int, bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, false
	}
	lo, err := strconv.Atoi(f[0])
	return lo, err == nil
}

// Reserve marks a port as handed out: it is in use by, or promised to, someone else.
func (p *Picker) Reserve(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.used[port] = true
}

// Reuse hands out addr's port again if it is still free and not yet handed out, and
// returns the address on 127.0.0.1; it is how a cluster restarted on the same data
// directory keeps its addresses. udp asks that UDP be free on it too.
func (p *Picker) Reuse(addr string, udp bool) (string, bool) {
	_, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false
	}
	port, err := strconv.Atoi(ps)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil || port <= 0 || p.used[port] || !portFree(port, udp) {
		return "", false
	}
	p.used[port] = true
	return hostPort(port), true
}

// Pick hands out a free address; udp asks that UDP be free on it too (gossip needs
// both).
func (p *Picker) Pick(udp bool) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range 500 {
		port := 0
		if p.hi > p.lo {
			port = p.lo + rand.IntN(p.hi-p.lo)
			if p.used[port] || !portFree(port, udp) {
				continue
			}
		} else {
			l, err := net.Listen("tcp", hostPort(0))
			if err != nil {
				return "", fmt.Errorf("find a free port on %s: %w", host, err)
			}
			port = l.Addr().(*net.TCPAddr).Port
			l.Close()
			if p.used[port] || (udp && !portFree(port, true)) {
				continue
			}
		}
		p.used[port] = true
		return hostPort(port), nil
	}
	return "", errors.New("no free port found on " + host)
}

func hostPort(port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// portFree reports whether TCP (and, if udp, UDP) can bind 127.0.0.1:port now.
func portFree(port int, udp bool) bool {
	a := hostPort(port)
	l, err := net.Listen("tcp", a)
	if err != nil {
		return false
	}
	defer l.Close()
	if udp {
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			return false
		}
		pc.Close()
	}
	return true
}
