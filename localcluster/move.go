package localcluster

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway/mover"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/pki"
	"github.com/cellarsim/cellar/router"
)

// A bucket's move runs behind the control endpoint, as a drain does:
//
//	POST /v1/moves   move a bucket, or a slot's buckets, to another cell through the
//	                 guardrail workflow (see MoveRequest); the answer streams as
//	                 POST /v1/plans's does, with the copy's progress in its
//	                 progress events and what each bucket's move did in its result
//
// The mover calls the cells and the map group with the supervisor's certificate, the
// only one allowed to change the map's entries of a move and to fence and drop a
// bucket in an index (internal/daemon's Callers).

// MoveRequest is the body of POST /v1/moves. Exactly one of Bucket and Slot is given.
type MoveRequest struct {
	Bucket string `json:"bucket,omitempty"`
	Slot   *int   `json:"slot,omitempty"`
	To     string `json:"to"`
	// Confirm is the id of the plan a dry run showed, to run it; "" asks for a dry
	// run. Reason is required to run a plan; Command says who asked.
	Confirm string `json:"confirm,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Command string `json:"command,omitempty"`
	// ProgressEveryMS is how often the copy's progress is sent (default 2s).
	ProgressEveryMS int64 `json:"progress_every_ms,omitempty"`
}

// check refuses a request that names no target, or both or neither of a bucket and a
// slot.
func (req *MoveRequest) check() error {
	if req.To == "" || (req.Bucket == "") == (req.Slot == nil) {
		return &kindError{"bad request: a move names its target cell (to) and one of a bucket and a slot", guard.ErrBadRequest}
	}
	if req.Slot != nil && *req.Slot < 0 {
		return &kindError{fmt.Sprintf("bad request: no slot %d", *req.Slot), guard.ErrBadRequest}
	}
	return nil
}

func (req *MoveRequest) mover() mover.Request {
	r := mover.Request{Bucket: req.Bucket, Slot: -1, To: req.To}
	if req.Slot != nil {
		r.Slot = *req.Slot
	}
	return r
}

func (req *MoveRequest) what() string {
	if req.Slot != nil {
		return fmt.Sprintf("slot %d", *req.Slot)
	}
	return "bucket " + req.Bucket
}

func (c *controller) serveMove(w http.ResponseWriter, r *http.Request) {
	s := &planStream{w: w}
	var req MoveRequest
	err := decodeBody(r, &req)
	if err == nil {
		err = req.check()
	}
	if err == nil && c.cfg.Mover == nil {
		err = &kindError{"bad request: this cluster's control endpoint runs no moves (its topology has no map group)", guard.ErrBadRequest}
	}
	if err != nil {
		s.send(statusOf(err), resultEvent(nil, err))
		return
	}
	if req.Command == "" {
		req.Command = "POST /v1/moves"
	}
	release := func() {}
	if req.Confirm != "" {
		// One operation at a time: a drain of the target while its bucket moves in
		// would be judged on a cell the move is filling.
		if release, err = c.claim(fmt.Sprintf("a move of %s to %s by %q", req.what(), req.To, req.Command)); err != nil {
			c.refuse(req.Command, req.Reason, req.Confirm, req.To, "", err)
			s.send(statusOf(err), resultEvent(nil, err))
			return
		}
		defer release()
	}
	m, closeMover, err := c.cfg.Mover(r.Context())
	if err != nil {
		s.send(http.StatusServiceUnavailable, resultEvent(nil, err))
		return
	}
	defer closeMover()
	if req.ProgressEveryMS > 0 {
		m.ProgressEvery = time.Duration(req.ProgressEveryMS) * time.Millisecond
	}
	m.Progress = func(p mover.Progress) { s.send(http.StatusOK, PlanEvent{Event: EventProgress, Move: &p}) }
	var op guard.Op
	op = guard.Op{Command: req.Command, Reason: req.Reason, Confirm: req.Confirm,
		Plan:    func(ctx context.Context) (*guard.Plan, error) { return m.Plan(ctx, req.mover()) },
		Execute: m.Execute,
		Show: func(p *guard.Plan) {
			status := http.StatusOK
			if op.Refuses(p) {
				status = http.StatusConflict
			}
			s.send(status, PlanEvent{Event: EventPlan, Plan: p})
		}}
	res, err := c.executor().Run(r.Context(), op)
	release()
	ev := resultEvent(res, err)
	ev.Result.Moved = m.Moved
	s.send(statusOf(err), ev)
}

// movers returns what the control endpoint makes its movers with: attachMover, each
// mover counting into one set of metrics, and the handler that serves those metrics
// (GET /metrics on the control endpoint), from a registry of the supervisor's own.
func (s *Supervisor) movers() (func(context.Context) (*mover.Mover, func(), error), http.Handler) {
	reg := prometheus.NewRegistry()
	metrics, err := mover.NewMetrics(reg)
	if err != nil {
		panic(err) // a fresh registry refuses nothing
	}
	attach := func(ctx context.Context) (*mover.Mover, func(), error) {
		m, closeFn, err := s.attachMover(ctx)
		if m != nil {
			m.Metrics = metrics
		}
		return m, closeFn, err
	}
	return attach, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// moverWait bounds how long the supervisor's mover looks for the map group's leader.
const moverWait = 10 * time.Second

// attachMover joins the cluster's gossip as an observer and returns a mover that
// calls the nodes with the supervisor's certificate (plainly when TLS is off), and a
// function that closes it.
func (s *Supervisor) attachMover(ctx context.Context) (*mover.Mover, func(), error) {
	key, err := GossipKey(s.dir)
	if err != nil {
		return nil, nil, err
	}
	members, err := cell.JoinCluster(cell.MembershipConfig{
		Self: cell.Node{ID: fmt.Sprintf("supervisor-move-%d", os.Getpid()), Role: cell.RoleObserver, State: cell.StateReady,
			PID: os.Getpid(), Started: time.Now()},
		BindAddr: "127.0.0.1:0", SecretKey: key, Fast: s.opts.FastGossip, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("start the mover's gossip: %w", err)
	}
	seeds := s.GossipSeeds()
	if err := members.Join(seeds); err != nil {
		members.Leave(200 * time.Millisecond)
		return nil, nil, fmt.Errorf("the mover found no member of the cluster at %s", strings.Join(seeds, ", "))
	}
	deadline := router.CallDeadline(10 * time.Second)
	conns := daemon.NewConns(deadline)
	if s.pkiDir != "" {
		creds, err := pki.Load(pki.Dir(s.pkiDir).Files(supervisorName))
		if err != nil {
			members.Leave(200 * time.Millisecond)
			return nil, nil, fmt.Errorf("the mover's certificate: %w", err)
		}
		conns = daemon.NewTLSConns(creds.ClientTLS(), deadline)
	}
	closeFn := func() { conns.Close(); members.Leave(500 * time.Millisecond) }
	rt := router.New(s.topo, members, conns)
	until := time.Now().Add(moverWait)
	for {
		_, err := rt.MapGroup(true)
		if err == nil {
			break
		}
		if time.Now().After(until) || ctx.Err() != nil {
			closeFn()
			return nil, nil, fmt.Errorf("the map group: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-members.Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
	m := &mover.Mover{Router: rt, Topology: s.topo, Log: slog.New(slog.DiscardHandler),
		Nodes: func(context.Context) ([]cell.NodeStatus, error) { return MergeStatus(s.Nodes(), members.Nodes()), nil }}
	return m, closeFn, nil
}
