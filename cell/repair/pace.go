package repair

import (
	"context"
	"sync"
	"time"
)

// minCost is what one object costs a pacer at least: the calls and disk seeks of a
// small object are not free either.
const minCost = 64 << 10

// pacer spaces work so that it averages at most rate bytes per second, over every
// goroutine that shares it. A rate of zero or less does not pace.
type pacer struct {
	mu   sync.Mutex
	rate int64
	next time.Time
}

func newPacer(rate int64) *pacer { return &pacer{rate: rate} }

// wait returns when n more bytes fit the rate (at once for the first).
func (p *pacer) wait(ctx context.Context, n int64) error {
	if p == nil || p.rate <= 0 {
		return ctx.Err()
	}
	cost := max(n, minCost)
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	due := p.next
	p.next = p.next.Add(time.Duration(float64(cost) / float64(p.rate) * float64(time.Second)))
	p.mu.Unlock()
	d := time.Until(due)
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
