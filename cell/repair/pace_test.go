package repair

import (
	"testing"
	"time"
)

// TestPacerKeepsBothRates: each operation's slot is the longer of its bytes at the
// byte rate and one operation at the operation rate; idle time buys no more than the
// burst.
func TestPacerKeepsBothRates(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	tests := []struct {
		name       string
		bytes, ops int64
		size       int64
		n          int
		want       time.Duration // when the n-th operation (from 0) may start, from now
	}{
		{"small objects: the operation rate binds", 64 << 20, 500, 4 << 10, 500, time.Second - defaultBurst},
		{"large objects: the byte rate binds", 64 << 20, 500, 1 << 20, 64, time.Second - defaultBurst},
		{"no operation cap", 1_000_000, -1, 1000, 1000, time.Second - defaultBurst},
		{"no byte cap", -1, 1000, 1 << 30, 1000, time.Second - defaultBurst},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPacer(tc.bytes, tc.ops)
			p.now = func() time.Time { return now }
			var due time.Time
			for range tc.n + 1 {
				due = p.reserve(tc.size)
			}
			if got := due.Sub(now); got != tc.want {
				t.Errorf("operation %d may start %v from now, want %v", tc.n, got, tc.want)
			}
		})
	}
}

func TestPacerBuildsNoCreditBeyondItsBurst(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	p := newPacer(-1, 100) // 10 ms an operation
	p.now = func() time.Time { return now }
	p.reserve(0)
	now = now.Add(time.Hour) // idle for an hour
	var starts []time.Duration
	for range 10 {
		starts = append(starts, p.reserve(0).Sub(now))
	}
	// The first five fit the 50 ms of burst, the others are spaced 10 ms apart.
	for i, d := range starts {
		want := time.Duration(i)*10*time.Millisecond - defaultBurst
		if d != want {
			t.Errorf("operation %d after the idle hour: starts at %v, want %v", i, d, want)
		}
	}
}

func TestPacerWithNoRatesDoesNotWait(t *testing.T) {
	p := newPacer(-1, -1)
	for range 1000 {
		if err := p.wait(t.Context(), 1<<30); err != nil {
			t.Fatal(err)
		}
	}
}
