package cell

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// RepairPacing is how fast each cell's repair loop (package cell/repair, run by the
// cell's placement node) may go: the topology's "repair" section, rendered as the
// placement nodes' flags. A zero field takes the loop's default, given with each
// field; docs/durability.md has what the defaults cost foreground requests.
type RepairPacing struct {
	// Interval between passes (--repair-interval; 0: 30s). A storage node that comes
	// back ready gets a pass at once, whatever the interval.
	Interval time.Duration `yaml:"interval,omitempty"`
	// Rate caps the bytes copied per second (--repair-rate; 0: 64MiB; negative: no cap).
	Rate ByteSize `yaml:"rate,omitempty"`
	// Ops caps the blobs copied per second (--repair-ops; 0: 500; negative: no cap):
	// the limit that binds for small objects.
	Ops int64 `yaml:"ops,omitempty"`
	// Window is how many objects are copied at once (--repair-workers; 0: 16).
	Window int `yaml:"window,omitempty"`
	// ScrubRate caps the bytes the scrubber verifies per second (--scrub-rate; 0:
	// 8MiB; negative: no scrub).
	ScrubRate ByteSize `yaml:"scrub_rate,omitempty"`
}

// Validate reports a field out of range.
func (p RepairPacing) Validate() error {
	switch {
	case p.Interval < 0:
		return fmt.Errorf("repair.interval must not be negative, not %s", p.Interval)
	case p.Window < 0:
		return fmt.Errorf("repair.window must be at least 1 (or 0 for the default), not %d", p.Window)
	}
	return nil
}

// ByteSize is a number of bytes that YAML may give as a plain number or with a unit:
// "64MiB", "512KiB", "1GiB", "4096".
type ByteSize int64

// ParseByteSize reads a size as ByteSize's YAML form does; a leading minus is allowed.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	neg := strings.HasPrefix(t, "-")
	t = strings.TrimPrefix(t, "-")
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a number of bytes, with B, KiB, MiB or GiB, such as 64MiB", s)
	}
	if neg {
		n = -n
	}
	return ByteSize(n * mult), nil
}

// UnmarshalYAML reads a number, or a string with a unit.
func (b *ByteSize) UnmarshalYAML(v *yaml.Node) error {
	n, err := ParseByteSize(v.Value)
	if err != nil {
		return err
	}
	*b = n
	return nil
}

// MarshalYAML writes the size with the largest unit that divides it.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// String spells the size as ParseByteSize reads it.
func (b ByteSize) String() string {
	n := int64(b)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
