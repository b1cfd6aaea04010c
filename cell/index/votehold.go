package index

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"
)

// errVoteHold answers a vote request that reaches a node still inside its hold.
var errVoteHold = errors.New("this index node started moments ago and votes for nobody yet")

// voteHoldTransport is the group's raft transport with one change: for hold after
// it is made (HeartbeatTimeout; its raft starts right after), the node answers every
// vote and pre-vote request with an error, which the candidate counts as a refusal.
//
// raft keeps a follower's leader and its last contact in memory only, so a follower
// that restarts forgets that it promised the leader not to vote for anyone else
// until HeartbeatTimeout after their last contact (the read lease rests on that
// promise; see lease.go). Refusing votes for HeartbeatTimeout after the restart keeps
// the promise across it: the old process's last contact was before it died, so before
// the new one started. It costs at most one election round after a whole group
// restarts at once, since a follower's own first election timer is drawn from
// HeartbeatTimeout to twice that anyway.
//
// Every other method, and the interfaces raft looks for (WithClose, WithPreVote,
// WithPeers), are the NetworkTransport's own.
type voteHoldTransport struct {
	*raft.NetworkTransport
	rpcs chan raft.RPC
}

// newVoteHoldTransport starts passing t's RPCs on until stop is closed.
func newVoteHoldTransport(t *raft.NetworkTransport, hold time.Duration, stop <-chan struct{}) *voteHoldTransport {
	v := &voteHoldTransport{NetworkTransport: t, rpcs: make(chan raft.RPC)}
	until := time.Now().Add(hold)
	go holdVotes(t.Consumer(), v.rpcs, func() bool { return time.Now().Before(until) }, stop)
	return v
}

// Consumer is where raft takes the RPCs from.
func (v *voteHoldTransport) Consumer() <-chan raft.RPC { return v.rpcs }

// holdVotes passes RPCs from in to out, answering the vote requests itself while
// holding reports true.
func holdVotes(in <-chan raft.RPC, out chan<- raft.RPC, holding func() bool, stop <-chan struct{}) {
	for {
		var rpc raft.RPC
		select {
		case rpc = <-in:
		case <-stop:
			return
		}
		switch rpc.Command.(type) {
		case *raft.RequestVoteRequest, *raft.RequestPreVoteRequest:
			if holding() {
				rpc.Respond(nil, errVoteHold)
				continue
			}
		}
		select {
		case out <- rpc:
		case <-stop:
			return
		}
	}
}
