package repair

import (
	"context"
	"sync"
	"time"
)

// pacer spaces work so that, over every goroutine that shares it, it averages at most
// bytes bytes and ops operations per second. It keeps a schedule: each operation
// reserves the next slot, whose length is the larger of what its bytes and what one
// operation cost at the two rates, and waits for its slot's start. Work that waited
// for nothing builds no credit beyond burst: after an idle spell the schedule restarts
// from now, less burst, so a window of copies can start together but the long-run
// rates hold. A rate of zero or less is no limit on that dimension; with both, the
// pacer does not pace.
type pacer struct {
	mu    sync.Mutex
	bytes float64 // bytes per second; <= 0: no limit
	ops   float64 // operations per second; <= 0: no limit
	burst time.Duration
	next  time.Time
	now   func() time.Time
}

// defaultBurst is how much idle time a pacer turns into work that may start at once.
const defaultBurst = 50 * time.Millisecond

func newPacer(bytes, ops int64) *pacer {
	return &pacer{bytes: float64(bytes), ops: float64(ops), burst: defaultBurst, now: time.Now}
}

// cost is the length of the slot of one operation of n bytes.
func (p *pacer) cost(n int64) time.Duration {
	var s float64
	if p.bytes > 0 {
		s = float64(n) / p.bytes
	}
	if p.ops > 0 {
		s = max(s, 1/p.ops)
	}
	return time.Duration(s * float64(time.Second))
}

// reserve books the slot of one operation of n bytes and returns when it starts.
func (p *pacer) reserve(n int64) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if floor := now.Add(-p.burst); p.next.Before(floor) {
		p.next = floor
	}
	due := p.next
	p.next = p.next.Add(p.cost(n))
	return due
}

// wait returns when one more operation of n bytes fits the rates.
func (p *pacer) wait(ctx context.Context, n int64) error {
	if p == nil || (p.bytes <= 0 && p.ops <= 0) {
		return ctx.Err()
	}
	d := p.reserve(n).Sub(p.now())
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
