package localcluster

import (
	"net"
	"strconv"
	"testing"
)

func TestPortPickerGivesDistinctFreePorts(t *testing.T) {
	p := newPortPicker("127.0.0.1")
	seen := map[int]bool{}
	for i := 0; i < 30; i++ {
		port, err := p.pick(i%2 == 0)
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("picked port %d is not free for TCP: %v", port, err)
		}
		l.Close()
		if i%2 == 0 {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				t.Fatalf("picked gossip port %d is not free for UDP: %v", port, err)
			}
			pc.Close()
		}
	}
}

func TestPortPickerReuse(t *testing.T) {
	p := newPortPicker("127.0.0.1")
	port, err := p.pick(true)
	if err != nil {
		t.Fatal(err)
	}
	addr := p.addr(port)
	if _, ok := p.reuse(addr, true); ok {
		t.Fatalf("reuse handed out %s twice", addr)
	}

	q := newPortPicker("127.0.0.1")
	if got, ok := q.reuse(addr, true); !ok || got != port {
		t.Fatalf("reuse(%s) = %d, %v; want the same port back", addr, got, ok)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := newPortPicker("127.0.0.1")
	if _, ok := r.reuse(l.Addr().String(), false); ok {
		t.Fatalf("reuse handed out %s, which is in use", l.Addr())
	}
	for _, bad := range []string{"", "nonsense", "127.0.0.1:x", "127.0.0.1:0"} {
		if _, ok := r.reuse(bad, false); ok {
			t.Errorf("reuse(%q) succeeded", bad)
		}
	}
}
