// Package testwait is the one way cellar's tests wait: on a condition, polled, with a
// deadline that fails the test and says what never happened. A test never sleeps for a
// fixed time to let something happen.
package testwait

import (
	"testing"
	"time"
)

// every is how often a condition is polled.
const every = 20 * time.Millisecond

// Until returns once cond holds; it fails the test when within passes first, saying
// that what never happened.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting until %s", within, what)
		case <-tick.C:
		}
	}
}

// Succeeds waits until try returns nil, calling it every 20 ms. If within passes
// first, it fails the test with what and the last error try returned.
func Succeeds(t testing.TB, within time.Duration, what string, try func() error) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		err := try()
		if err == nil {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting until %s: %v", within, what, err)
		case <-tick.C:
		}
	}
}
