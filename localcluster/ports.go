package localcluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// portPicker hands out ports on one host that are free now and that it has not handed
// out before. It picks below the kernel's ephemeral range when it can, so that a port
// it hands out is not taken in the meantime as the source port of some outgoing
// connection (which would make the daemon's later bind fail).
type portPicker struct {
	host   string
	lo, hi int // the range to pick from, [lo, hi); 0, 0: ask the kernel for port 0
	used   map[int]bool
}

func newPortPicker(host string) *portPicker {
	p := &portPicker{host: host, used: map[int]bool{}}
	if ephLo, ok := ephemeralLow(); ok && ephLo > 12000 {
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

// reserve marks a port as handed out (it is in use by, or promised to, someone else).
func (p *portPicker) reserve(port int) { p.used[port] = true }

// reuse hands out addr's port again if it is still free and not yet handed out; it is
// how a cluster restarted on the same data directory keeps its addresses.
func (p *portPicker) reuse(addr string, udp bool) (int, bool) {
	_, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, false
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port <= 0 || p.used[port] || !portFree(p.host, port, udp) {
		return 0, false
	}
	p.used[port] = true
	return port, true
}

// pick hands out a free port; udp asks that UDP be free on it too (gossip needs both).
func (p *portPicker) pick(udp bool) (int, error) {
	for range 200 {
		port := 0
		if p.hi > p.lo {
			port = p.lo + rand.IntN(p.hi-p.lo)
			if p.used[port] || !portFree(p.host, port, udp) {
				continue
			}
		} else {
			l, err := net.Listen("tcp", net.JoinHostPort(p.host, "0"))
			if err != nil {
				return 0, fmt.Errorf("find a free port on %s: %w", p.host, err)
			}
			port = l.Addr().(*net.TCPAddr).Port
			l.Close()
			if p.used[port] || (udp && !portFree(p.host, port, true)) {
				continue
			}
		}
		p.used[port] = true
		return port, nil
	}
	return 0, errors.New("no free port found on " + p.host)
}

// addr returns host:port for a picked port.
func (p *portPicker) addr(port int) string { return net.JoinHostPort(p.host, strconv.Itoa(port)) }

// portFree reports whether TCP (and, if udp, UDP) can bind host:port now.
func portFree(host string, port int, udp bool) bool {
	a := net.JoinHostPort(host, strconv.Itoa(port))
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
