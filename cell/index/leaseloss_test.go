package index_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/internal/raftpebble"
	"github.com/cellarsim/cellar/internal/testwait"
)

// A leader whose two followers stop (gracefully, as a drain stops them) serves reads
// under its lease for at most a lease after the second stop, and commits no write
// sent after it. The lease lasts from the start of the renewal that won it, and a
// renewal is won only with a follower's answer, which the second follower gave, if at
// all, before its stop returned: so a read sent a lease after that stop, or later, that
// succeeds would be a leader serving without a quorum.
//
// The checks hold whatever the machine's speed: a slow machine sends fewer reads, and
// the test waits (on conditions) until reads sent well after the lease have come back.
func TestLeaderThatLostItsFollowersStopsServingWithinALease(t *testing.T) {
	if testing.Short() {
		t.Skip("a raft group stopped part way: skipped with -short")
	}
	lease := raftpebble.NewConfig("lease", io.Discard).HeartbeatTimeout / 2 // as group.go sets it

	fc := newFaultCluster(t)
	for i := range fc.nodes {
		fc.start(i)
	}
	t.Cleanup(fc.stopAll)
	if err := fc.untilOK(time.Minute, func(ctx context.Context, c cellarv1.IndexClient) error {
		_, err := c.CreateBucket(ctx, &cellarv1.CreateBucketRequest{Name: faultBucket})
		if errs.Is(err, errs.BucketExists) {
			return nil
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	l := fc.waitLeader(time.Minute)
	if l < 0 {
		t.Fatal("no leader")
	}
	c, err := fc.client(fc.nodes[l].grpcAddr)
	if err != nil {
		t.Fatal(err)
	}

	// One reader and one writer at the leader, from before the stops until after.
	type call struct {
		sent time.Time
		ok   bool
	}
	var mu sync.Mutex
	var reads, writes []call
	// Bounded in time, and in count well beyond what the time allows.
	ctx, stop := context.WithTimeout(context.Background(), 3*time.Minute)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	record := func(to *[]call, sent time.Time, err error) {
		mu.Lock()
		*to = append(*to, call{sent, err == nil})
		mu.Unlock()
	}
	wg.Go(func() {
		for n := 0; n < 10_000_000 && ctx.Err() == nil; n++ {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			sent := time.Now()
			_, err := lookup(cctx, c, "key-0")
			cancel()
			record(&reads, sent, err)
			pause(ctx, err)
		}
	})
	wg.Go(func() {
		for n := 0; n < 10_000_000 && ctx.Err() == nil; n++ {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			sent := time.Now()
			_, err := c.Commit(cctx, &cellarv1.CommitRequest{
				Location: &cellarv1.Location{Bucket: faultBucket, Key: "key-1", ObjectId: []byte("w"), Size: 1}, RequireBucket: true})
			cancel()
			record(&writes, sent, err)
			pause(ctx, err)
		}
	})
	testwait.Until(t, time.Minute, "the leader serves reads under its lease", func() bool {
		return fc.leaseReads()[l] > 0
	})

	var followers []int
	for i := range fc.nodes {
		if i != l {
			followers = append(followers, i)
		}
	}
	fc.stop(followers[0])
	oneStopped := time.Now()
	// The node still leads with one follower: it serves a read sent after the first
	// stop (otherwise leadership moved, and the test would show nothing).
	testwait.Until(t, time.Minute, "the leader serves a read sent after one follower stopped", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range reads {
			if r.ok && r.sent.After(oneStopped) {
				return true
			}
		}
		return false
	})
	fc.stop(followers[1])
	stopped := time.Now()
	after := stopped.Add(lease)

	// Until a read sent well after the lease has come back, and one more after that.
	testwait.Until(t, 2*time.Minute, "reads sent after the lease come back", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range reads {
			if r.sent.After(after.Add(lease)) {
				n++
			}
		}
		return n >= 2
	})
	stop()
	wg.Wait()

	var lastRead, lastWrite time.Time
	readsAfter := 0
	for _, r := range reads {
		if r.ok && r.sent.After(lastRead) {
			lastRead = r.sent
		}
		if !r.sent.Before(after) {
			readsAfter++
			if r.ok {
				t.Errorf("a read sent %v after the second follower stopped was served (the lease lasts %v)", r.sent.Sub(stopped), lease)
			}
		}
	}
	for _, w := range writes {
		if w.ok && w.sent.After(lastWrite) {
			lastWrite = w.sent
		}
		if w.ok && !w.sent.Before(stopped) {
			t.Errorf("a write sent %v after the second follower stopped was committed", w.sent.Sub(stopped))
		}
	}
	t.Logf("%d reads and %d writes; the last read served was sent %v after the second stop, the last write committed %v; %d reads sent a lease or more after it, none served",
		len(reads), len(writes), lastRead.Sub(stopped).Round(time.Millisecond), lastWrite.Sub(stopped).Round(time.Millisecond), readsAfter)
}

// pause waits a moment after a failed call, so that a node that refuses at once is
// not asked in a tight loop.
func pause(ctx context.Context, err error) {
	if err != nil {
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}
