package localcluster

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway/mover"
	"github.com/cellarsim/cellar/internal/pki"
)

// The control endpoint is where every capacity operation on a running cluster is
// carried out: the supervisor acts on its nodes only through the guardrail workflow
// (drill/guard), so a client that skips cellctl meets the same guardrails, gets the
// same refusal and leaves the same audit record as one that uses it.
//
//	GET  /v1/nodes                 every node, as in cluster.json
//	POST /v1/plans                 a drain, restart or undrain through the guardrail
//	                               workflow; the answer streams its plan, progress and
//	                               result (see PlanRequest and PlanEvent)
//	POST /v1/nodes/{id}/stop       stop one node: judged and audited as a drain of
//	POST /v1/nodes/{id}/kill       that node (a kill as a crash of it), refused with
//	                               409 below its tier's floor (see NodeRequest)
//	POST /v1/nodes/{id}/start      start one node: audited as an undrain of it
//	POST /v1/moves                 a bucket's move, through the same workflow (move.go)
//
// Every request carries the endpoint's token as "Authorization: Bearer TOKEN". One
// operation that removes capacity runs at a time: another one meanwhile is refused
// (409), so that two operations cannot together take a tier below its floor.

// controlEndpoint is the supervisor's control endpoint, once ServeControl runs it.
type controlEndpoint struct {
	addr, token string
	tls         bool
}

// ControlOptions tune the supervisor's control endpoint. The zero value serves plain
// HTTP on a port of its own on 127.0.0.1.
type ControlOptions struct {
	// TLS, when set, makes the endpoint serve HTTPS with it (a configuration that
	// requires client certificates makes it mutual TLS); its clients then need a
	// matching configuration. Nil serves plain HTTP, which only loopback allows.
	TLS *tls.Config
}

// ServeControl serves the control endpoint with the default options: mutual TLS when
// the cluster has certificates (only the operator's certificate is let in, and
// requests still carry the token), plain HTTP on loopback when TLS is off.
func (s *Supervisor) ServeControl() (addr string, stop func(), err error) {
	var opts ControlOptions
	if s.pkiDir != "" {
		creds, err := pki.Load(pki.Dir(s.pkiDir).Files(supervisorName))
		if err != nil {
			return "", nil, fmt.Errorf("control endpoint: %w", err)
		}
		opts.TLS = creds.ServerTLS(pki.AllowRoles(pki.RoleOperator))
	}
	return s.ServeControlWith(opts)
}

// ServeControlWith serves the supervisor's control endpoint on a 127.0.0.1 port of its
// own, acting on the supervisor's cluster (Supervised), so that other commands drain,
// restart and undrain its nodes through it; the address and a random token go into
// cluster.json. The returned function stops serving.
func (s *Supervisor) ServeControlWith(opts ControlOptions) (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("control endpoint: %w", err)
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		l.Close()
		return "", nil, fmt.Errorf("control endpoint token: %w", err)
	}
	token := hex.EncodeToString(b)
	cfg := ControlConfig{Dir: s.dir, Cluster: s.Cluster(), Procs: s.Nodes, Token: token, FaultsFile: s.faultsFile()}
	if s.topo.MapNodes > 0 {
		cfg.Mover, cfg.Metrics = s.movers()
	}
	h := NewControlHandler(cfg)
	// The kill switch disarms every pill for good (halt.go): the supervisor, which
	// alone writes the faults file, watches for it while it serves.
	wctx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if cfg.FaultsFile != "" {
			watchHalt(wctx, s.dir, cfg.FaultsFile, guard.OpenAudit(s.dir), haltEvery, func(err error) {
				s.printf("  kill switch: disarm the faults: %v\n", err)
			})
		}
	}()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, TLSConfig: opts.TLS}
	go func() {
		if opts.TLS != nil {
			_ = srv.ServeTLS(l, "", "")
			return
		}
		_ = srv.Serve(l)
	}()
	s.mu.Lock()
	s.control = controlEndpoint{addr: l.Addr().String(), token: token, tls: opts.TLS != nil}
	s.mu.Unlock()
	s.save()
	return l.Addr().String(), func() {
		s.mu.Lock()
		s.control = controlEndpoint{}
		s.mu.Unlock()
		s.save()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		stopWatch()
		<-watched
	}, nil
}

// ControlConfig is what a control endpoint acts on.
type ControlConfig struct {
	// Dir is the cluster's data directory: its audit log and its kill switch.
	Dir string
	// Cluster is what the endpoint acts on and judges the guardrails against.
	Cluster cell.Cluster
	// Procs lists every node with its process, as GET /v1/nodes serves them; an
	// undrain starts the nodes of a cell whose process does not run.
	Procs func() []Node
	// Token is what every request must carry as "Authorization: Bearer TOKEN".
	Token string
	// SettleWait bounds how long a per-node stop refused by a floor waits for a cell
	// whose nodes are still changing state to settle before the refusal stands
	// (default 5s): a node just restarted may be ready before its cell's gossip says so.
	SettleWait time.Duration
	// FaultsFile is where faults are armed for the gateways (see FaultsFileName);
	// empty when the cluster does not allow faults.
	FaultsFile string
	// Mover, when set, returns a mover of the cluster and a function that closes it,
	// for POST /v1/moves; nil for a cluster whose buckets cannot move.
	Mover func(ctx context.Context) (*mover.Mover, func(), error)
	// Metrics, when set, serves GET /metrics (the moves' metrics) without the token:
	// Prometheus scrapes it, and it holds no secret.
	Metrics http.Handler
}

// NewControlHandler returns the control endpoint's HTTP API over cfg.Cluster. The
// supervisor serves it over its own cluster (ServeControl); tests serve it over a
// cluster of their own.
func NewControlHandler(cfg ControlConfig) http.Handler {
	if cfg.SettleWait <= 0 {
		cfg.SettleWait = 5 * time.Second
	}
	c := &controller{cfg: cfg, audit: guard.OpenAudit(cfg.Dir)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, cfg.Procs())
	})
	mux.HandleFunc("POST /v1/plans", c.servePlan)
	mux.HandleFunc("POST /v1/moves", c.recordMoves(c.serveMove))
	mux.HandleFunc("POST /v1/nodes/{id}/{action}", c.serveNode)
	mux.HandleFunc("POST /v1/faults/poison", c.servePoison)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cfg.Metrics != nil && r.Method == http.MethodGet && r.URL.Path == "/metrics" {
			cfg.Metrics.ServeHTTP(w, r)
			return
		}
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(cfg.Token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, ControlResult{Error: "missing or wrong control token"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// controller carries out the control endpoint's requests.
type controller struct {
	cfg   ControlConfig
	audit *guard.Audit

	// removing is held by the one operation that removes capacity now; what says
	// which, for the refusal of another.
	removing sync.Mutex
	whatMu   sync.Mutex
	what     string
}

// ErrBusy is returned when another operation that removes capacity is running.
var ErrBusy = errors.New("another capacity operation is running")

// claim takes the right to remove capacity for what, or returns an error wrapping
// ErrBusy that says which operation holds it. release gives it back; calling it again
// does nothing.
func (c *controller) claim(what string) (release func(), err error) {
	if !c.removing.TryLock() {
		c.whatMu.Lock()
		other := c.what
		c.whatMu.Unlock()
		return nil, fmt.Errorf("%w (%s): wait for it to finish, or stop it with 'cellctl drill halt'", ErrBusy, other)
	}
	c.whatMu.Lock()
	c.what = what
	c.whatMu.Unlock()
	var once sync.Once
	return func() { once.Do(c.removing.Unlock) }, nil
}

// refuse audits a refusal that came before any plan was made.
func (c *controller) refuse(command, reason, planID, cellID, node string, err error) {
	_ = c.audit.Append(guard.Entry{Command: command, Reason: reason, PlanID: planID, Decision: guard.DecisionRefused,
		Cell: cellID, Node: node, Outcome: err.Error()})
}

func (c *controller) executor() *guard.Executor {
	return &guard.Executor{Dir: c.cfg.Dir, Audit: c.audit, Cluster: c.cfg.Cluster}
}

func (c *controller) proc(id string) (Node, bool) {
	procs := c.cfg.Procs()
	i := slices.IndexFunc(procs, func(n Node) bool { return n.ID == id })
	if i < 0 {
		return Node{}, false
	}
	return procs[i], true
}

func running(n Node) bool { return n.Process == ProcRunning || n.Process == ProcStarting }

// Node actions a per-node request may ask for.
const (
	actionStop  = "stop"
	actionKill  = "kill"
	actionStart = "start"
)

// NodeRequest is the body of a per-node request. A stop or kill needs a reason. Plan,
// when set, is the plan the call is a step of (see guard.StepOf): a plan the audit log
// shows confirmed and not finished, that names this node. Its override, if it has
// one, lifts the floor for this call; without it, a stop that takes the node's tier
// of its cell below the floor is refused, as a drain of that one node would be.
type NodeRequest struct {
	Command string `json:"command,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Plan    string `json:"plan,omitempty"`
}

// ControlResult is the answer to a per-node request.
type ControlResult struct {
	Node   string `json:"node"`
	Action string `json:"action"`
	TookMS int64  `json:"took_ms"`
	Error  string `json:"error,omitempty"`
	// Kind says what kind of failure Error is (see the Kind constants).
	Kind string `json:"kind,omitempty"`
	// PlanID is the id of the one-node plan the request was judged as.
	PlanID string `json:"plan_id,omitempty"`
	// Process is the node's process state afterwards.
	Process ProcState `json:"process,omitempty"`
}

func (c *controller) serveNode(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	res := ControlResult{Node: id, Action: action}
	fail := func(status int, err error) {
		res.Error, res.Kind = err.Error(), kindOf(err)
		writeJSON(w, status, res)
	}
	if action != actionStop && action != actionKill && action != actionStart {
		fail(http.StatusNotFound, fmt.Errorf("unknown action %q: want stop, kill or start", action))
		return
	}
	n, ok := c.proc(id)
	if !ok {
		fail(http.StatusNotFound, fmt.Errorf("%w %q", ErrUnknownNode, id))
		return
	}
	var req NodeRequest
	if err := decodeBody(r, &req); err != nil {
		fail(http.StatusBadRequest, err)
		return
	}
	if req.Command == "" {
		req.Command = fmt.Sprintf("POST /v1/nodes/%s/%s", id, action)
	}
	start := time.Now()
	var err error
	switch {
	case action == actionStart:
		res.PlanID, err = c.startNode(r.Context(), n, req)
	case !running(n):
		// Nothing to take out: stopping a node that is not running does nothing.
	default:
		res.PlanID, err = c.removeNode(r.Context(), n, action, req)
	}
	res.TookMS = time.Since(start).Milliseconds()
	if p, ok := c.proc(id); ok {
		res.Process = p.Process
	}
	if err != nil {
		fail(statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// removeNode stops or kills one running node through the guardrail workflow, as a
// drain of that node (with guard.DefaultPolicy). It returns the id of the plan.
func (c *controller) removeNode(ctx context.Context, n Node, action string, req NodeRequest) (string, error) {
	if strings.TrimSpace(req.Reason) == "" {
		return "", &kindError{fmt.Sprintf("a reason is required to %s a node", action), guard.ErrNoReason}
	}
	release, err := c.claim(fmt.Sprintf("%s of %s (%s)", action, n.ID, req.Command))
	if err != nil {
		c.refuse(req.Command, req.Reason, req.Plan, n.Cell, n.ID, err)
		return "", err
	}
	defer release()
	if n.Role == cell.RoleGateway || n.Role == cell.RoleRouter {
		return "", c.removeGateway(ctx, n, action, req)
	}
	override := ""
	if req.Plan != "" {
		e, ok, err := guard.RunningPlan(c.cfg.Dir, req.Plan)
		switch {
		case err != nil:
			return "", err
		case !ok || e.Cell != n.Cell || !slices.Contains(e.Nodes, n.ID):
			err := fmt.Errorf("%w: %s of %s names plan %s, which the audit log does not show confirmed, running and acting on %s",
				guard.ErrRefused, action, n.ID, req.Plan, n.ID)
			c.refuse(req.Command, req.Reason, req.Plan, n.Cell, n.ID, err)
			return "", err
		}
		override = e.Override
		req.Command = fmt.Sprintf("%s (step of plan %s)", req.Command, req.Plan)
	}
	x := c.executor()
	x.Kill = action == actionKill
	var planID string
	_, err = x.Run(ctx, guard.Op{Command: req.Command, Reason: req.Reason, Auto: true,
		Plan: func(ctx context.Context) (*guard.Plan, error) { return c.planRemoval(ctx, n, override) },
		Show: func(p *guard.Plan) { planID = p.ID }})
	return planID, err
}

// planRemoval is the plan of a drain of node n alone, judged on the cluster as it is
// now. A refusal stands once the cell has settled (at most SettleWait): while a node
// of the cell is still changing state, its readiness may be on its way.
func (c *controller) planRemoval(ctx context.Context, n Node, override string) (*guard.Plan, error) {
	deadline := time.Now().Add(c.cfg.SettleWait)
	for {
		states, err := c.cfg.Cluster.Nodes(ctx)
		if err != nil {
			return nil, err
		}
		// What is judged is what the cell keeps: the nodes up besides n. n itself
		// counts as up, whatever the gossip says of it, so that taking out a node that
		// is still starting is judged as taking out one that serves.
		for i, s := range states {
			if s.ID == n.ID {
				states[i].Running, states[i].State = true, cell.StateReady
			}
		}
		topo := c.cfg.Cluster.Topology()
		p, err := guard.PlanDrain(topo, states, guard.DefaultPolicy(),
			guard.Request{Cell: n.Cell, Tier: n.Role, Nodes: []string{n.ID}, Override: override})
		if err != nil || p.Allowed() || cell.JudgeCell(topo, n.Cell, states).Unsettled == "" || time.Now().After(deadline) {
			return p, err
		}
		select {
		case <-ctx.Done():
			return p, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// removeGateway stops or kills a gateway: gateways belong to no cell and have no
// floor, but the kill switch holds and the step is audited.
func (c *controller) removeGateway(ctx context.Context, n Node, action string, req NodeRequest) error {
	x := c.executor()
	if err := x.Halted(guard.Op{Command: req.Command, Reason: req.Reason, Confirm: req.Plan}, ""); err != nil {
		return err
	}
	start := time.Now()
	var err error
	if action == actionKill {
		err = c.cfg.Cluster.KillNode(ctx, n.ID)
	} else {
		err = c.cfg.Cluster.StopNode(ctx, n.ID)
	}
	outcome := fmt.Sprintf("%s done in %s", action, time.Since(start).Round(time.Millisecond))
	if err != nil {
		outcome = fmt.Sprintf("%s failed: %v", action, err)
	}
	if aerr := c.audit.Append(guard.Entry{Command: req.Command, Reason: req.Reason, PlanID: req.Plan,
		Decision: guard.DecisionStep, Node: n.ID, Outcome: outcome}); aerr != nil && err == nil {
		err = aerr
	}
	return err
}

// startNode starts one node that is not running, through the guardrail workflow as
// an undrain of it: the kill switch holds, and it is audited. It returns the id of
// the plan.
func (c *controller) startNode(ctx context.Context, n Node, req NodeRequest) (string, error) {
	if running(n) {
		return "", fmt.Errorf("%w: %s is running already", guard.ErrBadRequest, n.ID)
	}
	if strings.TrimSpace(req.Reason) == "" {
		req.Reason = "capacity back" // adding capacity back needs no reason of its own
	}
	if req.Plan != "" {
		req.Command = fmt.Sprintf("%s (step of plan %s)", req.Command, req.Plan)
	}
	var planID string
	_, err := c.executor().Run(ctx, guard.Op{Command: req.Command, Reason: req.Reason, Auto: true,
		Plan: func(context.Context) (*guard.Plan, error) { return guard.PlanUndrain(n.Cell, []string{n.ID}), nil },
		Show: func(p *guard.Plan) { planID = p.ID }})
	return planID, err
}

// Kinds of failure a control request answers with, so that a client can tell them
// apart without parsing messages.
const (
	KindRefused    = "refused"     // a guardrail refused it (guard.ErrRefused)
	KindStale      = "stale"       // the plan confirmed is not the plan as it stands (*guard.StaleError)
	KindHalted     = "halted"      // the kill switch is set (guard.ErrHalted)
	KindBusy       = "busy"        // another capacity operation is running (ErrBusy)
	KindBadRequest = "bad_request" // the request names nothing sensible (guard.ErrBadRequest)
	KindNoReason   = "no_reason"   // a reason is required (guard.ErrNoReason)
	KindUnknown    = "unknown"     // no such node (ErrUnknownNode)
	KindFailed     = "failed"      // what was asked for failed
)

// kindErrors are the errors each kind of failure stands for.
var kindErrors = []struct {
	kind string
	err  error
}{
	{KindRefused, guard.ErrRefused}, {KindHalted, guard.ErrHalted}, {KindBusy, ErrBusy},
	{KindBadRequest, guard.ErrBadRequest}, {KindNoReason, guard.ErrNoReason}, {KindUnknown, ErrUnknownNode},
}

func kindOf(err error) string {
	var stale *guard.StaleError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &stale):
		return KindStale
	}
	for _, k := range kindErrors {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	return KindFailed
}

// errorOfKind is an error with message msg that wraps the error kind stands for.
func errorOfKind(kind, msg string) error {
	for _, k := range kindErrors {
		if k.kind == kind {
			return &kindError{msg, k.err}
		}
	}
	return errors.New(msg)
}

// statusOf is the HTTP status of a failed request: 409 for what the guardrails (or
// another operation) refused, 400 for a request that makes no sense.
func statusOf(err error) int {
	switch kindOf(err) {
	case "":
		return http.StatusOK
	case KindRefused, KindStale, KindHalted, KindBusy:
		return http.StatusConflict
	case KindBadRequest, KindNoReason:
		return http.StatusBadRequest
	case KindUnknown:
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// kindError is an error with a message of its own that wraps the error its kind
// stands for (guard.ErrRefused, ErrBusy...), so that errors.Is tells it.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// decodeBody reads a JSON request body into v; an empty body leaves v as it is.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: the request body is not the JSON expected: %v", guard.ErrBadRequest, err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
