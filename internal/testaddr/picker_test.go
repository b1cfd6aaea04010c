package testaddr

import (
	"net"
	"strconv"
	"testing"
)

func TestPickerGivesDistinctFreeAddresses(t *testing.T) {
	p := NewPicker()
	seen := map[string]bool{}
	for i := 0; i < 30; i++ {
		udp := i%2 == 0
		addr, err := p.Pick(udp)
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
		if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
			t.Fatalf("picked %q, want an address on 127.0.0.1", addr)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("picked %s is not free for TCP: %v", addr, err)
		}
		l.Close()
		if udp {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				t.Fatalf("picked gossip address %s is not free for UDP: %v", addr, err)
			}
			pc.Close()
		}
	}
}

func TestPickerStaysBelowEphemeralRange(t *testing.T) {
	lo, ok := ephemeralLow()
	if !ok || lo <= 12000 {
		t.Skipf("no ephemeral range to stay below (%d, %v)", lo, ok)
	}
	p := NewPicker()
	for range 20 {
		addr, err := p.Pick(false)
		if err != nil {
			t.Fatal(err)
		}
		if n := port(t, addr); n >= lo {
			t.Errorf("picked port %d, in the ephemeral range (from %d)", n, lo)
		}
	}
}

func TestPickerReuse(t *testing.T) {
	p := NewPicker()
	addr, err := p.Pick(true)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Reuse(addr, true); ok {
		t.Fatalf("Reuse handed out %s twice", addr)
	}

	q := NewPicker()
	if got, ok := q.Reuse(addr, true); !ok || got != addr {
		t.Fatalf("Reuse(%s) = %q, %v; want the same address back", addr, got, ok)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := NewPicker()
	if _, ok := r.Reuse(l.Addr().String(), false); ok {
		t.Fatalf("Reuse handed out %s, which is in use", l.Addr())
	}
	for _, bad := range []string{"", "nonsense", "127.0.0.1:x", "127.0.0.1:0"} {
		if _, ok := r.Reuse(bad, false); ok {
			t.Errorf("Reuse(%q) succeeded", bad)
		}
	}
}

func TestPickerReserve(t *testing.T) {
	p := NewPicker()
	addr, err := p.Pick(false)
	if err != nil {
		t.Fatal(err)
	}
	q := NewPicker()
	q.Reserve(port(t, addr))
	if _, ok := q.Reuse(addr, false); ok {
		t.Errorf("Reuse handed out %s, which was reserved", addr)
	}
}

// port is addr's port number.
func port(t *testing.T, addr string) int {
	t.Helper()
	_, ps, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(ps)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
