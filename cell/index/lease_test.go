package index

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cellarsim/cellar/internal/testwait"
)

// fakeLeader is the lease's view of raft and its clock, driven by the test.
type fakeLeader struct {
	mu      sync.Mutex
	clock   time.Time
	term    atomic.Uint64
	leads   atomic.Bool
	renewCh chan error // each renewal takes its outcome from here
}

func (f *fakeLeader) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clock
}

func (f *fakeLeader) advance(d time.Duration) {
	f.mu.Lock()
	f.clock = f.clock.Add(d)
	f.mu.Unlock()
}

func newTestLease(t *testing.T) (*readLease, *fakeLeader) {
	f := &fakeLeader{clock: time.Unix(1000, 0), renewCh: make(chan error)}
	f.term.Store(3)
	f.leads.Store(true)
	l := &readLease{
		length: time.Second, renewAfter: 500 * time.Millisecond, now: f.now,
		leading: func() (uint64, bool) { return f.term.Load(), f.leads.Load() },
		renew:   func() error { return <-f.renewCh },
	}
	return l, f
}

// checkAsync runs n reads at once; their results come on the channel.
func checkAsync(l *readLease, n int) <-chan error {
	out := make(chan error, n)
	for range n {
		go func() { out <- l.check() }()
	}
	return out
}

func waiting(t *testing.T, l *readLease, n int64) {
	t.Helper()
	testwait.Until(t, 10*time.Second, "reads waiting for a renewal", func() bool { return l.waiting.Load() == n })
}

// renewed lets the renewal in flight end with err and waits for it to be done.
func renewed(t *testing.T, l *readLease, f *fakeLeader, err error) {
	t.Helper()
	f.renewCh <- err
	testwait.Until(t, 10*time.Second, "the renewal to end", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.inflight == nil
	})
}

func results(t *testing.T, ch <-chan error, n int) []error {
	t.Helper()
	var out []error
	for range n {
		select {
		case err := <-ch:
			out = append(out, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d reads returned", len(out), n)
		}
	}
	return out
}

func TestLeaseConcurrentReadsShareOneRenewal(t *testing.T) {
	l, f := newTestLease(t)
	ch := checkAsync(l, 8)
	waiting(t, l, 8)
	if got := l.renewals.Load(); got != 1 {
		t.Fatalf("8 reads without a lease started %d renewals, want 1", got)
	}
	f.renewCh <- nil
	for _, err := range results(t, ch, 8) {
		if err != nil {
			t.Fatalf("read after a successful renewal: %v", err)
		}
	}
	if !l.holds(3) {
		t.Fatal("no lease held after a successful renewal")
	}
}

func TestLeaseServesWithoutRenewalUntilItRunsOut(t *testing.T) {
	l, f := newTestLease(t)
	ch := checkAsync(l, 1)
	waiting(t, l, 1)
	f.renewCh <- nil
	if err := results(t, ch, 1)[0]; err != nil {
		t.Fatal(err)
	}
	// Within the first half: no renewal at all.
	f.advance(400 * time.Millisecond)
	for range 100 {
		if err := l.check(); err != nil {
			t.Fatalf("read within the lease: %v", err)
		}
	}
	if got := l.renewals.Load(); got != 1 {
		t.Fatalf("%d renewals, want still 1", got)
	}
	// In the second half: served at once, one renewal starts in the background.
	f.advance(200 * time.Millisecond) // 600 ms into the lease
	for range 10 {
		if err := l.check(); err != nil {
			t.Fatalf("read in the second half of the lease: %v", err)
		}
	}
	if got := l.renewals.Load(); got != 2 {
		t.Fatalf("%d renewals, want 2 (one ahead of time)", got)
	}
	// It wins a lease from its own start (600 ms), so at 1.2 s reads still pass.
	renewed(t, l, f, nil)
	f.advance(600 * time.Millisecond)
	if err := l.check(); err != nil {
		t.Fatalf("read under the renewed lease: %v", err)
	}
}

func TestLeaseRunsOutAndReadsWait(t *testing.T) {
	l, f := newTestLease(t)
	ch := checkAsync(l, 1)
	waiting(t, l, 1)
	f.renewCh <- nil
	results(t, ch, 1)
	f.advance(time.Second) // exactly its length: over
	if l.holds(3) {
		t.Fatal("the lease outlived its length")
	}
	ch = checkAsync(l, 3)
	waiting(t, l, 3)
	f.renewCh <- nil
	for _, err := range results(t, ch, 3) {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestLeaseFailedRenewalFailsOnlyTheReadsThatArrivedBeforeIt(t *testing.T) {
	l, f := newTestLease(t)
	early := checkAsync(l, 2)
	waiting(t, l, 2)
	f.advance(time.Millisecond)
	late := checkAsync(l, 2) // arrive while the first renewal is in flight
	waiting(t, l, 4)
	lost := raft.ErrLeadershipLost
	f.renewCh <- lost
	for _, err := range results(t, early, 2) {
		if !errors.Is(err, lost) {
			t.Fatalf("a read that waited for a failed renewal it had seen start got %v", err)
		}
	}
	// The late reads do not take the old failure: they start one renewal of their own.
	testwait.Until(t, 10*time.Second, "the late reads' renewal", func() bool { return l.renewals.Load() == 2 })
	waiting(t, l, 2)
	f.renewCh <- nil
	for _, err := range results(t, late, 2) {
		if err != nil {
			t.Fatalf("late read: %v", err)
		}
	}
}

func TestLeaseEndsWithTheTermOrTheLeadership(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(f *fakeLeader, l *readLease)
	}{
		{"new term", func(f *fakeLeader, _ *readLease) { f.term.Store(5) }},
		{"not leading", func(f *fakeLeader, _ *readLease) { f.leads.Store(false) }},
		{"dropped", func(_ *fakeLeader, l *readLease) { l.drop() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, f := newTestLease(t)
			ch := checkAsync(l, 1)
			waiting(t, l, 1)
			f.renewCh <- nil
			results(t, ch, 1)
			tc.change(f, l)
			if l.holds(3) && tc.name == "dropped" {
				t.Fatal("a dropped lease is still held")
			}
			if !f.leads.Load() {
				if err := l.check(); !errors.Is(err, errNoLease) {
					t.Fatalf("a node that does not lead got %v, want errNoLease", err)
				}
				return
			}
			// The next read needs a renewal, in the new state.
			ch = checkAsync(l, 1)
			waiting(t, l, 1)
			f.renewCh <- nil
			if err := results(t, ch, 1)[0]; err != nil {
				t.Fatal(err)
			}
			if !l.holds(f.term.Load()) {
				t.Fatalf("no lease in term %d after the renewal", f.term.Load())
			}
		})
	}
}

func TestLeaseRenewalThatStraddlesADropWinsNothing(t *testing.T) {
	l, f := newTestLease(t)
	ch := checkAsync(l, 1)
	waiting(t, l, 1)
	l.drop() // e.g. a membership change starts while the barrier is out
	f.renewCh <- nil
	// The read retries with a renewal of its own, which wins.
	waiting(t, l, 1)
	if l.holds(3) {
		t.Fatal("the renewal that straddled the drop won a lease")
	}
	f.renewCh <- nil
	if err := results(t, ch, 1)[0]; err != nil {
		t.Fatal(err)
	}
	if !l.holds(3) {
		t.Fatal("no lease after a clean renewal")
	}
}

func TestLeaseRenewalAcrossATermChangeWinsNothing(t *testing.T) {
	l, f := newTestLease(t)
	ch := checkAsync(l, 1)
	waiting(t, l, 1)
	f.term.Store(4) // lost and won again while the barrier was out
	f.renewCh <- nil
	waiting(t, l, 1)
	if l.holds(3) || l.holds(4) {
		t.Fatal("a renewal begun in term 3 won a lease")
	}
	f.renewCh <- nil
	if err := results(t, ch, 1)[0]; err != nil {
		t.Fatal(err)
	}
	if !l.holds(4) {
		t.Fatal("no lease in term 4")
	}
}

func TestLeaseNoneDuringOrAfterATransferInItsTerm(t *testing.T) {
	l, f := newTestLease(t)
	ch := checkAsync(l, 1)
	waiting(t, l, 1)
	f.renewCh <- nil
	results(t, ch, 1)

	l.beginTransfer(3)
	if l.holds(3) {
		t.Fatal("the lease survived the start of a transfer")
	}
	if err := l.check(); !errors.Is(err, errNoLease) {
		t.Fatalf("read during a transfer: %v, want errNoLease (verify instead)", err)
	}
	// The transfer timed out: still the leader of term 3, and the target may yet win
	// with the TimeoutNow it got; no lease in term 3.
	l.endTransfer(3)
	if err := l.check(); !errors.Is(err, errNoLease) {
		t.Fatalf("read after a failed transfer in the same term: %v, want errNoLease", err)
	}
	if got := l.renewals.Load(); got != 1 {
		t.Fatalf("%d renewals, want 1: none while leases are off in the term", got)
	}
	// A later term (a new election) may hold one again.
	f.term.Store(6)
	ch = checkAsync(l, 1)
	waiting(t, l, 1)
	f.renewCh <- nil
	if err := results(t, ch, 1)[0]; err != nil {
		t.Fatal(err)
	}
	if !l.holds(6) {
		t.Fatal("no lease in term 6")
	}
}

func TestLeaseRenewalInFlightWhenATransferStartsWinsNothing(t *testing.T) {
	l, f := newTestLease(t)
	ch := checkAsync(l, 1)
	waiting(t, l, 1)
	l.beginTransfer(3)
	f.renewCh <- nil
	if err := results(t, ch, 1)[0]; !errors.Is(err, errNoLease) {
		t.Fatalf("read whose renewal straddled the transfer's start: %v, want errNoLease", err)
	}
	if l.holds(3) {
		t.Fatal("a lease was won during a transfer")
	}
	l.endTransfer(4)
	f.term.Store(4)
	if err := l.check(); !errors.Is(err, errNoLease) {
		t.Fatalf("read in the term the transfer ended in: %v, want errNoLease", err)
	}
}

func TestVoteHoldRefusesVotesOnlyWhileHolding(t *testing.T) {
	in, out, stop := make(chan raft.RPC), make(chan raft.RPC), make(chan struct{})
	defer close(stop)
	var holding atomic.Bool
	holding.Store(true)
	go holdVotes(in, out, holding.Load, stop)

	send := func(cmd any) (passed bool, err error) {
		resp := make(chan raft.RPCResponse, 1)
		in <- raft.RPC{Command: cmd, RespChan: resp}
		select {
		case rpc := <-out:
			rpc.Respond(nil, nil)
			<-resp
			return true, nil
		case r := <-resp:
			return false, r.Error
		case <-time.After(10 * time.Second):
			t.Fatal("the RPC neither passed nor was answered")
			return false, nil
		}
	}
	for _, tc := range []struct {
		cmd     any
		holding bool
		passes  bool
	}{
		{&raft.RequestVoteRequest{}, true, false},
		{&raft.RequestPreVoteRequest{}, true, false},
		{&raft.AppendEntriesRequest{}, true, true},
		{&raft.TimeoutNowRequest{}, true, true},
		{&raft.RequestVoteRequest{}, false, true},
		{&raft.RequestPreVoteRequest{}, false, true},
	} {
		holding.Store(tc.holding)
		passed, err := send(tc.cmd)
		if passed != tc.passes {
			t.Errorf("%T while holding=%v: passed=%v, want %v", tc.cmd, tc.holding, passed, tc.passes)
		}
		if !passed && !errors.Is(err, errVoteHold) {
			t.Errorf("%T refused with %v", tc.cmd, err)
		}
	}
}
