// Package loadgen drives S3 load at a fixed arrival rate against a cellar gateway and
// measures it per cell and per operation.
//
// The load is open-loop: request i is due at start + i/rate whatever happened to the
// requests before it, and its latency counts from when it was due, not from when a
// worker got round to sending it. A slow cluster therefore shows as high latency rather
// than as fewer requests (no coordinated omission).
//
// Every response names the cell that served it in the x-cellar-cell header; the
// results are kept per cell, per operation and per second of the run.
package loadgen

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cellarsim/cellar/cell"
)

// Operations the load mixes.
const (
	OpGet    = "GET"
	OpPut    = "PUT"
	OpList   = "LIST"
	OpDelete = "DELETE"
	OpHead   = "HEAD"
)

// Ops lists the operations in report order.
var Ops = []string{OpGet, OpPut, OpList, OpDelete, OpHead}

// Key distributions.
const (
	KeysUniform = "uniform"
	KeysZipf    = "zipf"
)

// Limits that keep a run bounded whatever its configuration says.
const (
	MaxRate        = 5000
	MaxDuration    = time.Hour
	MaxInFlight    = 1024
	MaxObjectSize  = 64 << 20
	MaxKeys        = 1_000_000 // objects seeded per bucket
	defaultTimeout = 5 * time.Second
)

// Config describes one run.
type Config struct {
	// Endpoint is the gateway's S3 URL, e.g. http://127.0.0.1:9000.
	Endpoint  string `json:"endpoint"`
	AccessKey string `json:"-"`
	SecretKey string `json:"-"`
	Region    string `json:"region"`
	// Tenants, if any, sign the requests instead of AccessKey: each request is sent as
	// one of them, picked at random, and the results are kept per tenant too
	// (Result.Tenants). Seeding still uses AccessKey.
	Tenants []cell.Tenant `json:"-"`

	// Rate is the arrival rate in requests per second; Duration how long requests
	// keep arriving. Rate × Duration requests are sent, no more.
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration"`
	// MaxInFlight bounds the requests outstanding at once (default 256). A request
	// that waits for a free slot still counts its latency from when it was due.
	MaxInFlight int `json:"max_in_flight"`
	// Timeout bounds one request (default 5s).
	Timeout time.Duration `json:"timeout"`

	// Mix weighs the operations (default GET 50, PUT 20, HEAD 15, LIST 10, DELETE 5).
	Mix Mix `json:"mix"`
	// Sizes is the distribution of object sizes that PUT and seeding write.
	Sizes Sizes `json:"sizes"`
	// Buckets are the buckets the load uses (created when missing).
	Buckets []string `json:"buckets"`
	// BucketCell says which cell a bucket lives in, to attribute requests that got no
	// answer at all (optional: unattributed requests count under "unknown").
	BucketCell map[string]string `json:"-"`
	// Keys is the number of objects seeded per bucket, the key space of GET and HEAD;
	// PUT and DELETE work on a key space of the same size of their own, so that reads
	// never miss an object because the load deleted it.
	Keys int `json:"keys"`
	// KeyDist is "uniform" (default) or "zipf".
	KeyDist string `json:"key_dist"`
	// Seed makes the sequence of operations, buckets, keys and sizes repeatable.
	Seed uint64 `json:"seed"`

	// Progress, if set, receives a progress line every ProgressEvery (default 1s).
	Progress      io.Writer     `json:"-"`
	ProgressEvery time.Duration `json:"-"`
	// Observe, if set, is called every ProgressEvery with the totals so far, overall
	// and per cell, so that a caller can act on errors while the load runs.
	Observe func(all Summary, cells map[string]Summary) `json:"-"`
	// OnRequest, if set, is called with the outcome of every request the run sends
	// (not the seeding), from the goroutine that sent it: for statistics over a window
	// of the run that the per-second series cannot give (the p99 of one minute).
	OnRequest func(Outcome) `json:"-"`
}

// Outcome is what one request of a run did.
type Outcome struct {
	Op     string
	Bucket string
	Cell   string        // the cell that served it (see CellUnknown)
	Due    time.Time     // when it was due
	Took   time.Duration // from when it was due to its end
	Code   string        // "" for a success, else as ErrorCode names it
}

// withDefaults fills the zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 256
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if len(c.Mix) == 0 {
		c.Mix = DefaultMix()
	}
	if len(c.Sizes) == 0 {
		c.Sizes = DefaultSizes()
	}
	if c.Keys == 0 {
		c.Keys = 20
	}
	if c.KeyDist == "" {
		c.KeyDist = KeysUniform
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = time.Second
	}
	switch {
	case c.Endpoint == "":
		return c, errors.New("no S3 endpoint")
	case len(c.Buckets) == 0:
		return c, errors.New("no buckets")
	}
	return c, c.Validate()
}

// Validate checks the settings of the workload as they are, zero values included:
// rate, duration, max in flight, timeout, keys and key distribution (the mix and the
// sizes are checked by ParseMix and ParseSizes). It needs neither the endpoint nor the
// buckets, so that a command can check its options before it does anything. Seed and
// Run fill the zero fields with their defaults first and then call it.
//
// The error, if any, is an *OptionError.
func (c Config) Validate() error {
	bad := func(option, want string, value any) error {
		return &OptionError{Option: option, Want: want, Value: fmt.Sprint(value)}
	}
	switch {
	case c.Rate <= 0 || c.Rate > MaxRate:
		return bad("rate", fmt.Sprintf("above 0 and at most %d requests per second", MaxRate), c.Rate)
	case c.Duration <= 0 || c.Duration > MaxDuration:
		return bad("duration", fmt.Sprintf("above 0 and at most %v", MaxDuration), c.Duration)
	case c.Total() < 1:
		return bad("duration", fmt.Sprintf("long enough for one request at %g per second", c.Rate), c.Duration)
	case c.MaxInFlight < 1 || c.MaxInFlight > MaxInFlight:
		return bad("max_in_flight", fmt.Sprintf("between 1 and %d", MaxInFlight), c.MaxInFlight)
	case c.Timeout <= 0:
		return bad("timeout", "above 0", c.Timeout)
	case c.Keys < 1 || c.Keys > MaxKeys:
		return bad("keys", fmt.Sprintf("between 1 and %d", MaxKeys), c.Keys)
	case c.KeyDist != KeysUniform && c.KeyDist != KeysZipf:
		return bad("key_dist", fmt.Sprintf("%q or %q", KeysUniform, KeysZipf), fmt.Sprintf("%q", c.KeyDist))
	}
	return nil
}

// OptionError is a setting of a Config that no run can use.
type OptionError struct {
	Option string // the setting, as its JSON name: "rate", "max_in_flight", "key_dist"...
	Want   string // what it must be: "between 1 and 1024"
	Value  string // what it was
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("%s must be %s, not %s", strings.ReplaceAll(e.Option, "_", " "), e.Want, e.Value)
}

// Total is the number of requests the run sends.
func (c Config) Total() int { return int(c.Rate * c.Duration.Seconds()) }

// Mix weighs operations: an operation of weight w is picked w/sum of the time.
type Mix map[string]int

// DefaultMix is a read-heavy mix.
func DefaultMix() Mix {
	return Mix{OpGet: 50, OpPut: 20, OpHead: 15, OpList: 10, OpDelete: 5}
}

// ParseMix reads "GET=50,PUT=20,LIST=10" (operations not named get no weight).
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		op, w, ok := strings.Cut(part, "=")
		op = strings.ToUpper(strings.TrimSpace(op))
		if !ok || !slices.Contains(Ops, op) {
			return nil, fmt.Errorf("mix entry %q: want OP=WEIGHT with OP one of %s", part, strings.Join(Ops, ", "))
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("mix entry %q: the weight must be a whole number of 0 or more", part)
		}
		m[op] += n
	}
	sum := 0
	for _, w := range m {
		sum += w
	}
	if sum == 0 {
		return nil, fmt.Errorf("mix %q gives no operation any weight", s)
	}
	return m, nil
}

func (m Mix) String() string {
	var parts []string
	for _, op := range Ops {
		if m[op] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", op, m[op]))
		}
	}
	return strings.Join(parts, ",")
}

// Size is one bucket of the object size distribution.
type Size struct {
	Bytes  int `json:"bytes"`
	Weight int `json:"weight"`
}

// Sizes is a discrete distribution of object sizes.
type Sizes []Size

// DefaultSizes is mostly small objects with a tail of larger ones.
func DefaultSizes() Sizes {
	return Sizes{{1 << 10, 70}, {16 << 10, 25}, {256 << 10, 5}}
}

// ParseSizes reads "1KiB=70,16KiB=25,256KiB=5" (units: B, KiB, MiB; bare numbers are bytes).
func ParseSizes(s string) (Sizes, error) {
	var out Sizes
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		sz, w, ok := strings.Cut(part, "=")
		if !ok {
			w = "1"
		}
		n, err := parseBytes(strings.TrimSpace(sz))
		if err != nil {
			return nil, fmt.Errorf("size entry %q: %v", part, err)
		}
		weight, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || weight < 1 {
			return nil, fmt.Errorf("size entry %q: the weight must be a whole number of 1 or more", part)
		}
		out = append(out, Size{n, weight})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no sizes in %q", s)
	}
	return out, nil
}

func parseBytes(s string) (int, error) {
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"KB", 1000}, {"MB", 1000 * 1000}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n*mult > MaxObjectSize {
		return 0, fmt.Errorf("want a size from 0 to %d MiB such as 4KiB", MaxObjectSize>>20)
	}
	return n * mult, nil
}

func (s Sizes) String() string {
	var parts []string
	for _, z := range s {
		parts = append(parts, fmt.Sprintf("%dB=%d", z.Bytes, z.Weight))
	}
	return strings.Join(parts, ",")
}

func (s Sizes) max() int {
	m := 0
	for _, z := range s {
		m = max(m, z.Bytes)
	}
	return m
}
