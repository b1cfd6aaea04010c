package s3bench

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Options say what Run measures. The zero value of a field takes its default.
type Options struct {
	// Endpoint is cellar's S3 endpoint, http://HOST:PORT.
	Endpoint string
	// AccessKey, SecretKey and Region sign the requests to both targets.
	AccessKey, SecretKey, Region string
	// Sizes are the object sizes, in bytes (default 4 KiB and 1 MiB).
	Sizes []int64
	// Concurrency is how many clients send requests at once (default 16).
	Concurrency int
	// Duration is how long each operation of each size is measured, per pass and
	// target (default 20 s).
	Duration time.Duration
	// Passes is how many times each target is measured, interleaved (default 2).
	Passes int
	// Bucket is the bucket the objects go to on both targets (default "bench-s3").
	Bucket string
	// Reference is the server to compare with; required.
	Reference *Reference
	// Progress, if not nil, gets a progress line a second.
	Progress io.Writer
}

// Limits of the options.
const (
	MaxConcurrency = 1024
	MaxSize        = 256 << 20
	MaxPasses      = 9
	MaxDuration    = 10 * time.Minute
)

// EnsureDefaults fills the fields left zero.
func (o *Options) EnsureDefaults() {
	if len(o.Sizes) == 0 {
		o.Sizes = []int64{4 << 10, 1 << 20}
	}
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
	if o.Duration == 0 {
		o.Duration = 20 * time.Second
	}
	if o.Passes == 0 {
		o.Passes = 2
	}
	if o.Bucket == "" {
		o.Bucket = "bench-s3"
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
}

// Validate names the first option out of range; its message starts with the option's
// name as `cellctl bench s3` spells its flag.
func (o *Options) Validate() error {
	switch {
	case o.Concurrency < 1 || o.Concurrency > MaxConcurrency:
		return fmt.Errorf("concurrency must be between 1 and %d, not %d", MaxConcurrency, o.Concurrency)
	case o.Duration < 100*time.Millisecond || o.Duration > MaxDuration:
		return fmt.Errorf("duration must be between 100ms and %v, not %v", MaxDuration, o.Duration)
	case o.Passes < 1 || o.Passes > MaxPasses:
		return fmt.Errorf("passes must be between 1 and %d, not %d", MaxPasses, o.Passes)
	}
	seen := map[int64]bool{}
	for _, s := range o.Sizes {
		if s < 1 || s > MaxSize {
			return fmt.Errorf("sizes: each size must be between 1B and %s, not %s", FormatSize(MaxSize), FormatSize(s))
		}
		if seen[s] {
			return fmt.Errorf("sizes: %s is given twice", FormatSize(s))
		}
		seen[s] = true
	}
	if o.Endpoint != "" && !strings.HasPrefix(o.Endpoint, "http://") {
		return fmt.Errorf("endpoint %q: want http://HOST:PORT", o.Endpoint)
	}
	return nil
}

// ParseSizes reads a comma-separated list of sizes: a number of bytes with an optional
// unit B, KiB, MiB or GiB (or K, M, G, same meaning), as in "4KiB,1MiB".
func ParseSizes(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, errors.New("empty size in the list")
		}
		n, err := parseSize(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	num, mult := s, int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes, with B, KiB, MiB or GiB", s)
	}
	return n * mult, nil
}

// FormatSize spells a size the way ParseSizes reads it: 4KiB, 1MiB, 100B.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}
