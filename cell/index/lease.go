package index

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// The read lease: how the index leader answers a read without a round trip to its
// followers, and why the answer is still linearizable.
//
// Without a lease, every read waits for raft's VerifyLeader: heartbeats to the
// followers and a majority of answers, a network round trip over mutual TLS and some
// CPU in three processes. With a lease, the leader does that work about once per
// half lease for all the reads of that time, and a read costs a clock reading.
//
// What a follower promises (hashicorp/raft v1.8, raft.go). A follower that accepts
// an AppendEntries from the leader of term T records the time (setLastContact) and
// that leader. From then on:
//   - requestVote refuses every candidate while the follower knows a leader other
//     than the candidate ("rejecting vote request since we have a leader"), whatever
//     the candidate's term, unless the request carries the LeadershipTransfer flag.
//   - runFollower forgets the leader (setLeader("", "")) only when its heartbeat
//     timer fires and time.Since(lastContact) >= HeartbeatTimeout, on its own
//     monotonic clock; a newer term can only reach it from a leader that some
//     majority elected.
//
// So a follower that accepted an entry of T at real time f votes for nobody else
// before f + HeartbeatTimeout (its clock), except in three cases: a leadership
// transfer (timeoutNow sets the flag on the target's vote requests, and timeoutNow
// does not even look at the term), a restart (raft keeps the leader and last
// contact in memory only), and the leader itself stepping down (it refuses votes
// while it leads, then forgets itself as leader).
//
// The renewal. A lease is renewed by committing a barrier entry in the current term
// (raft's Barrier), not by VerifyLeader: VerifyLeader counts any answer that arrives
// after it is registered, including the answer to a heartbeat sent, and accepted by
// the follower, before the read arrived; with a process off the CPU for a second,
// that can be long before. A barrier entry exists only from the moment the renewal
// starts (s, on the leader's monotonic clock), so every follower in the majority that
// stored it accepted it at some f > s. Any later leader needs the votes of a
// majority, and every majority shares a member with that one:
//   - a follower of it votes for nobody else before f + HeartbeatTimeout, later than
//     s + HeartbeatTimeout;
//   - a restarted follower refuses every vote for HeartbeatTimeout after its raft
//     starts (voteHold), so its promise outlives the process;
//   - the leader itself refuses votes while raft says it leads; every lease read
//     checks that raft still says so, in the lease's term, after reading the clock.
//
// Hence no other node can be elected, let alone commit, before s + HeartbeatTimeout
// in real time, and a read that finds now < s + lease, with lease a fraction of
// HeartbeatTimeout, can be linearized at that clock reading: the leader's state then
// holds every write acknowledged before the read arrived (the serving barrier of
// watch, and apply waiting for the local FSM) and nothing another leader committed.
// The fraction (lease = HeartbeatTimeout/2) leaves room for the clocks' rates to
// differ (s is read on the leader, f + HeartbeatTimeout measured on the follower) far
// beyond what real clocks do, and renewals start once half the lease is used, so a
// steady stream of reads never waits for one.
//
// Transfers. Before this node starts a leadership transfer it drops the lease and
// refuses leases in every term up to the one current when the transfer returns: a
// transfer that timed out may still elect its target later (the TimeoutNow is out),
// in the same term that this node still leads. The lease is also dropped on a term
// change, when raft leaves the Leader state, before a membership change, and at
// shutdown. Reads without a lease fall back to VerifyLeader, as before.
//
// What the argument assumes: the clocks' rates differ by far less than 2x, and a
// TimeoutNow message from any leader is acted upon (or lost) before the next
// election after the transfer that sent it: raft's TimeoutNow carries no term, so one
// delayed past an election could make its target campaign past every follower's
// promise. Both hold in cellar, whose transfers wait for their outcome.

// errNoLease says the lease cannot serve this read; the caller verifies leadership
// the slow way.
var errNoLease = errors.New("no read lease")

// readLease is the leader's read lease. Its clock, renewal and view of raft are
// functions, so that its logic is tested without raft and without sleeping.
type readLease struct {
	// length is how long a lease lasts from the start of the renewal that won it;
	// renewAfter is when, within it, reads start the next renewal in the background.
	length, renewAfter time.Duration
	now                func() time.Time
	// leading returns the current term and whether this node leads and serves in it.
	leading func() (term uint64, ok bool)
	// renew commits a barrier entry in the current term (Barrier with a timeout).
	renew func() error

	mu sync.Mutex
	// The lease held: valid until start+length, in term.
	held  bool
	term  uint64
	start time.Time
	// epoch grows with every drop; a renewal that started in an earlier epoch wins
	// no lease.
	epoch uint64
	// noLeaseThrough: no lease in this term or any earlier one (leadership
	// transfers). transfers counts the transfers in progress.
	noLeaseThrough uint64
	transfers      int
	inflight       *renewal

	// renewals counts renewals started, waiting the reads waiting for one (tests).
	renewals, waiting atomic.Int64
}

// renewal is one barrier in flight, shared by every read that waits for it.
type renewal struct {
	start time.Time
	term  uint64
	epoch uint64
	done  chan struct{}
	err   error // set before done is closed
}

// check returns nil when the lease covers a read now, errNoLease when leases are
// unavailable in this term (the caller verifies leadership the slow way), and the
// renewal's error when the renewal it waited for failed. A read whose lease has run
// out waits for the renewal in flight; if that one started before the read arrived
// and failed, the read starts (or joins) one more, so no read fails on the strength
// of an answer older than itself.
func (l *readLease) check() error {
	arrived := l.now()
	for range 4 { // a renewal that wins no lease (a drop meanwhile) is retried, a few times
		term, ok := l.leading()
		if !ok {
			return errNoLease
		}
		l.mu.Lock()
		now := l.now()
		if l.held && l.term == term && now.Before(l.start.Add(l.length)) {
			if now.Sub(l.start) >= l.renewAfter && l.inflight == nil && l.usableLocked(term) {
				l.startLocked(term)
			}
			l.mu.Unlock()
			// raft still says this node leads, in the lease's term, after the clock
			// was read: the leader has voted for nobody else (see above).
			if t, ok := l.leading(); !ok || t != term {
				return errNoLease
			}
			return nil
		}
		if !l.usableLocked(term) {
			l.mu.Unlock()
			return errNoLease
		}
		r := l.inflight
		if r == nil {
			r = l.startLocked(term)
		}
		l.mu.Unlock()
		l.waiting.Add(1)
		<-r.done
		l.waiting.Add(-1)
		if r.err != nil && !r.start.Before(arrived) {
			return r.err
		}
		// Either it won a lease (checked at the top), or it was older than this read.
	}
	return errNoLease
}

// usableLocked reports whether a lease may be held in term.
func (l *readLease) usableLocked(term uint64) bool {
	return l.transfers == 0 && term > l.noLeaseThrough
}

// startLocked starts a renewal in term.
func (l *readLease) startLocked(term uint64) *renewal {
	r := &renewal{start: l.now(), term: term, epoch: l.epoch, done: make(chan struct{})}
	l.inflight = r
	l.renewals.Add(1)
	go func() {
		err := l.renew()
		l.mu.Lock()
		defer l.mu.Unlock()
		if err == nil {
			if t, ok := l.leading(); ok && t == r.term && r.epoch == l.epoch && l.usableLocked(r.term) &&
				(!l.held || l.term != r.term || r.start.After(l.start)) {
				l.held, l.term, l.start = true, r.term, r.start
			}
		}
		r.err = err
		l.inflight = nil
		close(r.done)
	}()
	return r
}

// drop ends the lease; renewals in flight win none.
func (l *readLease) drop() {
	l.mu.Lock()
	l.held = false
	l.epoch++
	l.mu.Unlock()
}

// beginTransfer drops the lease before this node hands its leadership over; no lease
// is held until endTransfer, nor ever again in a term up to the current one.
func (l *readLease) beginTransfer(term uint64) {
	l.mu.Lock()
	l.held = false
	l.epoch++
	l.transfers++
	l.noLeaseThrough = max(l.noLeaseThrough, term)
	l.mu.Unlock()
}

// endTransfer closes beginTransfer; term is the term current when the transfer
// returned, in which no lease is taken either.
func (l *readLease) endTransfer(term uint64) {
	l.mu.Lock()
	l.transfers--
	l.noLeaseThrough = max(l.noLeaseThrough, term)
	l.mu.Unlock()
}

// holds reports whether a lease is held for term (metrics and tests).
func (l *readLease) holds(term uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held && l.term == term && l.now().Before(l.start.Add(l.length))
}
