package cell

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		bad  bool
	}{
		{in: "4096", want: 4096},
		{in: "64MiB", want: 64 << 20},
		{in: "512KiB", want: 512 << 10},
		{in: "1GiB", want: 1 << 30},
		{in: "100B", want: 100},
		{in: "-1", want: -1},
		{in: " 8 MiB ", want: 8 << 20},
		{in: "64MB", bad: true},
		{in: "fast", bad: true},
		{in: "", bad: true},
	} {
		got, err := ParseByteSize(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseByteSize(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
		if back, err := ParseByteSize(got.String()); err != nil || back != got {
			t.Errorf("%q: String %q reads back as %d, %v", tc.in, got.String(), back, err)
		}
	}
}

// TestTopologyRepairSection: the topology's repair section is read with units, left
// out it is zero (each field takes the loop's default), and nonsense is refused.
func TestTopologyRepairSection(t *testing.T) {
	if p := DefaultTopology().Repair; p != (RepairPacing{}) {
		t.Errorf("the embedded defaults set repair %+v; want it left to the loop's defaults", p)
	}
	dir := t.TempDir()
	load := func(yaml string) (Topology, error) {
		path := filepath.Join(dir, "topology.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return LoadTopology(path)
	}
	topo, err := load("repair:\n  interval: 10s\n  rate: 16MiB\n  ops: 200\n  window: 4\n  scrub_rate: -1\n")
	if err != nil {
		t.Fatal(err)
	}
	want := RepairPacing{Interval: 10 * time.Second, Rate: 16 << 20, Ops: 200, Window: 4, ScrubRate: -1}
	if topo.Repair != want {
		t.Errorf("repair section read as %+v, want %+v", topo.Repair, want)
	}
	for _, bad := range []string{"repair:\n  rate: quick\n", "repair:\n  window: -2\n", "repair:\n  interval: -1s\n"} {
		if _, err := load(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
