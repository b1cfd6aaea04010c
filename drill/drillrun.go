package drill

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/loadgen"
)

// Env is the running cluster a scenario acts on.
type Env struct {
	Topology cell.Topology
	Dir      string // the cluster's data directory: kill switch and audit log
	Cluster  cell.Cluster
	// Load holds where the load goes (endpoint, credentials, region); the scenario's
	// load step sets the rest.
	Load loadgen.Config
	// HealthTimeout bounds each wait for a cell's health (default 30s).
	HealthTimeout time.Duration
	// SampleEvery is how often the cluster's state is sampled (default 250ms).
	SampleEvery time.Duration
	Command     string
	Progress    io.Writer // a line per event (nil: none)
}

// tracked wraps the cluster and remembers which nodes the drill took down.
type tracked struct {
	cell.Cluster
	mu      sync.Mutex
	down    map[string]bool
	started map[string]time.Time // when each node's last start returned
}

func (t *tracked) isDown(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.down[id]
}

func (t *tracked) set(id string, down bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if down {
		t.down[id] = true
	} else {
		delete(t.down, id)
	}
}

func (t *tracked) downNodes() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for id := range t.down {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// StopNode stops a node, or does nothing for one already down.
func (t *tracked) StopNode(ctx context.Context, id string) error {
	if t.isDown(id) {
		return nil
	}
	if err := t.Cluster.StopNode(ctx, id); err != nil {
		return err
	}
	t.set(id, true)
	return nil
}

// StartNode starts a node; its process runs afterwards even when it did not get ready.
func (t *tracked) StartNode(ctx context.Context, id string) error {
	err := t.Cluster.StartNode(ctx, id)
	t.set(id, false)
	t.mu.Lock()
	t.started[id] = time.Now()
	t.mu.Unlock()
	return err
}

// KillNode kills a node and remembers it down.
func (t *tracked) KillNode(ctx context.Context, id string) error {
	err := t.Cluster.KillNode(ctx, id)
	if err == nil {
		t.set(id, true)
	}
	return err
}

type snapshot struct {
	at    time.Duration
	cells map[string]loadgen.Summary
}

type runner struct {
	env    Env
	sc     *Scenario
	target string
	start  time.Time
	ctl    *tracked
	audit  *guard.Audit
	tested []string // cells the drill acts on
	repair *repairSampler

	mu       sync.Mutex
	rep      *Report
	snaps    []snapshot
	quorum   map[string]bool
	lostAt   map[string]time.Duration
	faults   faultState
	failing  map[string]bool
	above    aboveSince
	stopped  string // why a stop condition aborted the drill
	cancel   context.CancelFunc
	load     chan loadOutcome
	loadAt   time.Duration
	stopLoad context.CancelFunc
	// The noisy tenant's load, and every request of both loads for a move step's
	// report (nil without a move step).
	noisy     chan loadOutcome
	noisyName string
	meter     *moveMeter
}

type loadOutcome struct {
	res *loadgen.Result
	err error
}

// ErrAborted is returned when a stop condition of the scenario aborted the drill.
var ErrAborted = errors.New("drill aborted by a stop condition")

// ErrChecksFailed is returned when the drill ran to its end but a check or an
// expectation of it failed.
var ErrChecksFailed = errors.New("drill checks failed")

// RunScenario runs a scenario against a cluster and returns its report. The report is
// returned even with an error: ErrHalted (the kill switch), ErrAborted (a stop
// condition), ErrChecksFailed, or what stopped a step.
func RunScenario(ctx context.Context, env Env, sc *Scenario) (*Report, error) {
	if env.HealthTimeout <= 0 {
		env.HealthTimeout = 30 * time.Second
	}
	if env.SampleEvery <= 0 {
		env.SampleEvery = 250 * time.Millisecond
	}
	sc.Stop.EnsureDefaults()
	if env.Topology.GuardrailsOff() {
		sc = sc.WithoutGuardrails()
	}
	cells := env.Topology.CellIDs()
	target, err := resolveCell(cells, sc.Target, "last")
	if err != nil {
		return nil, err
	}
	if err := canFault(env.Cluster, sc); err != nil {
		return nil, err
	}
	r := &runner{env: env, sc: sc, target: target, start: time.Now(), audit: guard.OpenAudit(env.Dir),
		ctl:    &tracked{Cluster: env.Cluster, down: map[string]bool{}, started: map[string]time.Time{}},
		quorum: map[string]bool{}, lostAt: map[string]time.Duration{}, failing: map[string]bool{}, above: aboveSince{}}
	r.repair = newRepairSampler(r.start)
	r.rep = &Report{Scenario: sc.Name, Description: sc.Description, Target: target, Cells: cells, Started: r.start,
		Overrides: sc.overridden, StopRule: sc.Stop.Rule(), GuardrailsOff: env.Topology.GuardrailsOff()}
	for _, st := range sc.Steps {
		var c string
		switch {
		case st.Drain != nil:
			c = st.Drain.Cell
		case st.Kill != nil:
			c = st.Kill.Cell
		case st.Restart != nil:
			c = st.Restart.Cell
		case st.Wipe != nil:
			c = st.Wipe.Cell
		case st.Undrain != nil:
			c = st.Undrain.Cell
		case st.fault() != nil:
			c = st.fault().Cell
		case st.Poison != nil && st.Poison.Kind == PillIndex:
			c = st.Poison.Cell
		case st.Move != nil:
			// A move acts on its target, and on the noisy bucket's cell, its source.
			c = cmp.Or(st.Move.To, "last")
			if b := st.Move.Bucket; b == "" || b == NoisyBucket {
				for _, l := range sc.Steps {
					if l.Load != nil && l.Load.Noisy != nil {
						src, err := r.cell(l.Load.Noisy.Cell)
						if err != nil {
							return nil, err
						}
						if !slices.Contains(r.tested, src) {
							r.tested = append(r.tested, src)
						}
					}
				}
			}
		default:
			continue
		}
		c, err := r.cell(c)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(r.tested, c) {
			r.tested = append(r.tested, c)
		}
	}
	slices.Sort(r.tested)
	r.rep.Tested = r.tested
	if slices.ContainsFunc(sc.Steps, func(st Step) bool { return st.Move != nil }) {
		r.meter = &moveMeter{start: r.start}
	}

	ctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	defer cancel()
	samplerCtx, stopSampler := context.WithCancel(context.Background())
	r.sample(samplerCtx) // the state before the first step
	samplerDone := every(samplerCtx, env.SampleEvery, func() { r.sample(samplerCtx) })
	repairDone := r.followRepair(samplerCtx)

	r.event("START", "", fmt.Sprintf("drill %s on %d cell%s, target %s", sc.Name, len(cells), plural(len(cells)), target))
	_ = r.audit.Append(guard.Entry{Command: env.Command, Reason: "drill " + sc.Name, Decision: guard.DecisionPlanned, Cell: target, Outcome: "drill started"})
	runErr := r.steps(ctx)

	// The load ends with the steps; its result covers what was sent.
	if r.load != nil {
		r.stopLoad()
		out := <-r.load
		if out.err != nil && runErr == nil {
			runErr = fmt.Errorf("load: %w", out.err)
		}
		r.addLoad(out.res)
	}
	if r.noisy != nil {
		if out := <-r.noisy; out.err != nil && runErr == nil {
			runErr = fmt.Errorf("noisy load: %w", out.err)
		}
	}
	if r.meter != nil && r.rep.Move != nil {
		r.mu.Lock()
		r.rep.Move.measure(r.meter.samples, cells, r.loadAt, r.since())
		r.mu.Unlock()
	}
	r.sample(samplerCtx)
	stopSampler()
	<-samplerDone
	<-repairDone
	r.readRepair(context.Background()) // what the repair did up to the end
	r.rep.Repair = r.repair.report(cells)

	r.mu.Lock()
	stopped := r.stopped
	r.mu.Unlock()
	switch {
	case stopped != "":
		runErr = fmt.Errorf("%w: %s", ErrAborted, stopped)
	case runErr == nil && r.rep.failedChecks() > 0:
		runErr = fmt.Errorf("%w: %d of %d", ErrChecksFailed, r.rep.failedChecks(), len(r.rep.Checks))
	}
	if down := r.ctl.downNodes(); len(down) > 0 {
		r.rep.LeftDown = down
	}
	r.leftFaulted()
	r.rep.Took = time.Since(r.start)
	r.rep.Outcome = "completed"
	switch {
	case errors.Is(runErr, guard.ErrHalted):
		r.rep.Outcome = "halted"
	case errors.Is(runErr, ErrAborted):
		r.rep.Outcome = "aborted"
	case errors.Is(runErr, ErrChecksFailed):
		r.rep.Outcome = "checks failed"
	case runErr != nil:
		r.rep.Outcome = "failed"
	}
	if runErr != nil {
		r.rep.Error = runErr.Error()
	}
	r.event("END", "", fmt.Sprintf("drill %s after %s", r.rep.Outcome, r.rep.Took.Round(time.Second)))
	outcome := r.rep.Outcome
	if runErr != nil {
		outcome += ": " + runErr.Error()
	}
	_ = r.audit.Append(guard.Entry{Command: env.Command, Reason: "drill " + sc.Name, Decision: guard.DecisionDone, Cell: target, Outcome: "drill " + outcome})
	r.rep.finish()
	return r.rep, runErr
}

// every calls f every d until ctx is done; the channel it returns is closed once it
// has stopped.
func every(ctx context.Context, d time.Duration, f func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f()
			}
		}
	}()
	return done
}

func resolveCell(cells []string, c, def string) (string, error) {
	if c == "" {
		c = def
	}
	switch c {
	case "first":
		return cells[0], nil
	case "last":
		return cells[len(cells)-1], nil
	}
	if !slices.Contains(cells, c) {
		return "", fmt.Errorf("no cell %q (cells: %s)", c, strings.Join(cells, ", "))
	}
	return c, nil
}

func (r *runner) cell(c string) (string, error) {
	if c == "" {
		return r.target, nil
	}
	return resolveCell(r.env.Topology.CellIDs(), c, r.target)
}

func (r *runner) since() time.Duration { return time.Since(r.start) }

func (r *runner) event(kind, cellID, text string) {
	r.mu.Lock()
	e := Event{At: r.since(), Kind: kind, Cell: cellID, Text: text}
	r.rep.Timeline = append(r.rep.Timeline, e)
	if r.env.Progress != nil {
		fmt.Fprintln(r.env.Progress, e.String())
	}
	r.mu.Unlock()
}

// sample reads the nodes' states and records each cell's index quorum changing.
func (r *runner) sample(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	nodes, err := r.env.Cluster.Nodes(sctx)
	if err != nil {
		return
	}
	held := map[string]bool{}
	up := map[string]int{}
	for _, c := range r.env.Topology.CellIDs() {
		h := cell.JudgeCell(r.env.Topology, c, nodes)
		held[c], up[c] = h.Index.Held, h.Index.Ready
		r.leaderSeen(c, h.Index.Leader)
	}
	type change struct {
		cell string
		held bool
		lost time.Duration
	}
	var changes []change
	r.mu.Lock()
	for _, c := range r.env.Topology.CellIDs() {
		prev, known := r.quorum[c]
		r.quorum[c] = held[c]
		if !known {
			if !held[c] {
				r.lostAt[c] = r.since()
			}
			continue
		}
		if prev != held[c] {
			changes = append(changes, change{c, held[c], r.since() - r.lostAt[c]})
			if !held[c] {
				r.lostAt[c] = r.since()
			}
		}
	}
	r.mu.Unlock()
	for _, ch := range changes {
		if ch.held {
			r.event("QUORUM RESTORED", ch.cell, fmt.Sprintf("%s index has a leader again, %s after it lost quorum", ch.cell, ch.lost.Round(100*time.Millisecond)))
		} else {
			r.event("QUORUM LOST", ch.cell, fmt.Sprintf("%s index: %d of %d nodes ready, no leader", ch.cell, up[ch.cell], r.env.Topology.IndexNodes))
		}
	}
}

func (r *runner) quorumHeld(c string) (held, known bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	held, known = r.quorum[c]
	return
}

// observe takes the load's totals every second: errors starting and ending per cell,
// and the stop condition (see Stop).
func (r *runner) observe(_ loadgen.Summary, cells map[string]loadgen.Summary) {
	r.mu.Lock()
	var prev map[string]loadgen.Summary
	if n := len(r.snaps); n > 0 {
		prev = r.snaps[n-1].cells
	}
	now := snapshot{at: r.since(), cells: cells}
	r.snaps = append(r.snaps, now)
	type ev struct{ kind, cell, text string }
	var evs []ev
	for _, c := range slices.Sorted(maps.Keys(cells)) {
		cur, before := cells[c], prev[c]
		dReq, dErr := cur.Requests-before.Requests, cur.Errors-before.Errors
		switch {
		case dErr > 0 && !r.failing[c]:
			r.failing[c] = true
			evs = append(evs, ev{"ERRORS", c, fmt.Sprintf("%s: %d of %d requests failed in the last second (%s)",
				c, dErr, dReq, codeList(codesSince(cur.ErrorCodes, before.ErrorCodes)))})
		case dErr == 0 && dReq > 0 && r.failing[c]:
			r.failing[c] = false
			evs = append(evs, ev{"RECOVERED", c, fmt.Sprintf("%s: every request of the last second succeeded", c)})
		}
		if r.stopped != "" || slices.Contains(r.tested, c) {
			continue
		}
		if r.stopped = r.above.check(r.sc.Stop, r.snaps, r.loadAt, c); r.stopped != "" {
			evs = append(evs, ev{"ABORT", c, r.stopped})
			r.cancel()
		}
	}
	r.mu.Unlock()
	for _, e := range evs {
		r.event(e.kind, e.cell, e.text)
	}
}

// aboveSince applies a scenario's stop rule (see Stop) to the cells the drill does
// not act on: it holds since when each cell has failed above the limit.
type aboveSince map[string]time.Duration

// check judges cell c on the load's totals so far, snaps, and returns why the drill
// must stop, or "".
func (a aboveSince) check(st Stop, snaps []snapshot, loadAt time.Duration, c string) string {
	now := snaps[len(snaps)-1]
	cur := now.cells[c]
	from := windowStart(snaps, loadAt, time.Duration(st.Window), func(s snapshot) bool {
		return cur.Requests-s.cells[c].Requests >= st.MinRequests
	})
	reqs, errs := cur.Requests-from.cells[c].Requests, cur.Errors-from.cells[c].Errors
	if reqs < st.MinRequests || ratio(errs, reqs) <= st.OthersErrorRateAbove {
		delete(a, c)
		return ""
	}
	since, ok := a[c]
	if !ok {
		a[c], since = now.at, now.at
	}
	if now.at-since < time.Duration(st.For) {
		return ""
	}
	return fmt.Sprintf("%s, not acted on, failed %s of its requests over the last %s, above %s for %s in a row",
		c, pctf(ratio(errs, reqs)), (now.at - from.at).Round(time.Second), pctf(st.OthersErrorRateAbove), time.Duration(st.For))
}

// windowStart returns the latest of snaps that lies at least span before the last
// one and for which enough holds, or the start of the load (no requests yet) when
// none does.
func windowStart(snaps []snapshot, loadAt, span time.Duration, enough func(snapshot) bool) snapshot {
	if n := len(snaps); n > 0 {
		last := snaps[n-1].at
		for i := n - 1; i >= 0; i-- {
			if last-snaps[i].at >= span && enough(snaps[i]) {
				return snaps[i]
			}
		}
	}
	return snapshot{at: loadAt}
}

// codesSince is how many requests failed with each code between two totals.
func codesSince(now, before map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, n := range now {
		if d := n - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

func codeList(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func (r *runner) steps(ctx context.Context) error {
	for i, st := range r.sc.Steps {
		if st.At != nil {
			if err := r.sleep(ctx, time.Until(r.start.Add(time.Duration(*st.At)))); err != nil {
				return r.stepErr(i, st, err)
			}
		}
		if err := guard.CheckHalt(r.env.Dir); err != nil {
			r.event("HALTED", "", fmt.Sprintf("kill switch set before step %d (%s): the drill stops", i+1, st.Kind()))
			_ = r.audit.Append(guard.Entry{Command: r.env.Command, Reason: "drill " + r.sc.Name, Decision: guard.DecisionAborted, Cell: r.target, Outcome: err.Error()})
			return err
		}
		if err := ctx.Err(); err != nil {
			return r.interrupted(err)
		}
		var err error
		switch {
		case st.Load != nil:
			err = r.startLoad(ctx, st.Load)
		case st.Wait != nil:
			err = r.sleep(ctx, time.Duration(*st.Wait))
		case st.Drain != nil:
			err = r.drain(ctx, st.Drain)
		case st.Undrain != nil:
			err = r.undrain(ctx, st.Undrain)
		case st.Kill != nil:
			err = r.kill(ctx, st.Kill)
		case st.Restart != nil:
			err = r.restart(ctx, st.Restart)
		case st.Assert != nil:
			err = r.assert(ctx, st.Assert)
		case st.fault() != nil:
			err = r.fault(ctx, st)
		case st.Wipe != nil:
			err = r.wipe(ctx, st.Wipe)
		case st.Poison != nil:
			err = r.poison(ctx, st.Poison)
		case st.Move != nil:
			err = r.move(ctx, st.Move)
		}
		if err != nil {
			return r.stepErr(i, st, err)
		}
	}
	return nil
}

func (r *runner) stepErr(i int, st Step, err error) error {
	if errors.Is(err, guard.ErrHalted) {
		r.event("HALTED", "", fmt.Sprintf("during step %d (%s): %v", i+1, st.Kind(), err))
		_ = r.audit.Append(guard.Entry{Command: r.env.Command, Reason: "drill " + r.sc.Name, Decision: guard.DecisionAborted, Cell: r.target, Outcome: err.Error()})
		return err
	}
	return r.interrupted(fmt.Errorf("step %d (%s): %w", i+1, st.Kind(), err))
}

// sleep waits, and stops early when the kill switch is set.
func (r *runner) sleep(ctx context.Context, d time.Duration) error {
	end := time.Now().Add(d)
	for {
		if err := guard.CheckHalt(r.env.Dir); err != nil {
			return err
		}
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		if err := sleep(ctx, min(left, r.env.SampleEvery)); err != nil {
			return err
		}
	}
}

// interrupted turns an error caused by a stop condition into nil: the abort is
// reported on its own.
func (r *runner) interrupted(err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped != "" {
		return nil
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *runner) startLoad(ctx context.Context, l *LoadStep) error {
	if r.load != nil {
		return errors.New("load is already running: a drill has one load step")
	}
	cfg := r.env.Load
	per := l.PerCell
	if per <= 0 {
		per = 2
	}
	cfg.Buckets, cfg.BucketCell = loadgen.Buckets(r.env.Topology, "drill", per)
	cfg.Rate, cfg.Duration = l.Rate, time.Duration(l.Duration)
	cfg.Keys = l.Keys
	if cfg.Keys == 0 {
		cfg.Keys = 20
	}
	if l.Mix != "" {
		m, err := loadgen.ParseMix(l.Mix)
		if err != nil {
			return err
		}
		cfg.Mix = m
	}
	if len(cfg.Sizes) == 0 {
		cfg.Sizes = loadgen.Sizes{{Bytes: 1024, Weight: 1}}
	}
	cfg.Progress, cfg.ProgressEvery, cfg.Observe = nil, time.Second, r.observe
	if r.meter != nil {
		cfg.OnRequest = r.meter.add
	}
	// Every cell healthy first: a drill measures what it does, not a cluster that was
	// still settling.
	for _, c := range r.env.Topology.CellIDs() {
		hctx, cancel := context.WithTimeout(ctx, r.env.HealthTimeout)
		err := cell.WaitSettled(hctx, r.env.Cluster, c)
		cancel()
		if err != nil {
			return fmt.Errorf("%s is not healthy before the load: %w", c, err)
		}
	}
	r.event("LOAD", "", fmt.Sprintf("seeding %d buckets with %d objects each", len(cfg.Buckets), cfg.Keys))
	var err error
	for try := 0; try < 5; try++ {
		if err = loadgen.Seed(ctx, cfg); err == nil || ctx.Err() != nil {
			break
		}
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	var noisy *loadgen.Config
	if l.Noisy != nil {
		if noisy, err = r.seedNoisy(ctx, cfg, l.Noisy); err != nil {
			return err
		}
	}
	lctx, cancel := context.WithCancel(context.Background())
	r.stopLoad = cancel
	r.load = make(chan loadOutcome, 1)
	r.loadAt = r.since()
	r.rep.LoadStartMS = r.loadAt.Milliseconds()
	r.event("LOAD", "", fmt.Sprintf("%g requests/s for %s over %d buckets (mix %s)", cfg.Rate, cfg.Duration, len(cfg.Buckets), mixString(cfg.Mix)))
	go func() {
		res, err := loadgen.Run(lctx, cfg)
		r.load <- loadOutcome{res, err}
	}()
	if noisy != nil {
		r.noisy = make(chan loadOutcome, 1)
		go func() {
			res, err := loadgen.Run(lctx, *noisy)
			r.noisy <- loadOutcome{res, err}
		}()
	}
	return nil
}

func mixString(m loadgen.Mix) string {
	if len(m) == 0 {
		return loadgen.DefaultMix().String()
	}
	return m.String()
}

func (r *runner) executor() *guard.Executor {
	return &guard.Executor{Dir: r.env.Dir, Audit: r.audit, Cluster: r.ctl,
		HealthTimeout: r.env.HealthTimeout, Progress: eventWriter{r}}
}

// eventWriter turns the executor's progress lines into timeline events.
type eventWriter struct{ r *runner }

func (w eventWriter) Write(b []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "stop", "start":
			node, _, _ := strings.Cut(rest, ":")
			w.r.event(strings.ToUpper(kind), cellOfNode(w.r.env.Topology, node), line)
		default:
			w.r.event("HEALTHY", "", line)
		}
	}
	return len(b), nil
}

func cellOfNode(topo cell.Topology, id string) string {
	for _, n := range topo.Nodes() {
		if n.ID == id {
			return n.Cell
		}
	}
	return ""
}

func (r *runner) check(what string, ok bool, detail string) {
	r.mu.Lock()
	r.rep.Checks = append(r.rep.Checks, Check{At: r.since(), What: what, OK: ok, Detail: detail})
	r.mu.Unlock()
	kind := "CHECK OK"
	if !ok {
		kind = "CHECK FAILED"
	}
	r.event(kind, "", what+": "+detail)
}

func (r *runner) expect(what, want, got, detail string) {
	if want == "" {
		want = ExpectDone
	}
	r.check(fmt.Sprintf("%s is %s", what, want), want == got, got+detail)
}

func (r *runner) states(ctx context.Context) ([]cell.NodeStatus, error) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return r.env.Cluster.Nodes(sctx)
}

func (r *runner) decision(g Guardrail) {
	r.mu.Lock()
	r.rep.Guardrails = append(r.rep.Guardrails, g)
	r.mu.Unlock()
}

// guarded takes a scenario's capacity step through the guardrail workflow, as any
// operator's command goes: the scenario is its confirmation, so the plan runs when the
// guardrails allow it. what names the step in events; the plan's id goes into the
// report with the decision. It returns the result, whether the plan ran to its end,
// and an error only for what stops the drill (the kill switch, a plan that could not be
// made); a refusal or a failed execution is an outcome the scenario's expectation is
// checked against.
func (r *runner) guarded(ctx context.Context, x *guard.Executor, c, kind string, expect string,
	plan func(context.Context) (*guard.Plan, error), decided func(*guard.Plan) string) (*guard.Result, bool, error) {
	var what string
	res, err := x.Run(ctx, guard.Op{Command: r.env.Command, Reason: "drill " + r.sc.Name, Auto: true, Plan: plan,
		Show: func(p *guard.Plan) {
			what = decided(p)
			r.event(kind, c, fmt.Sprintf("%s requested: %s (plan %s)", what, strings.Join(p.Nodes, ", "), p.ID))
			if p.Allowed() {
				for _, v := range p.Violations {
					r.event("OVERRIDE", c, fmt.Sprintf("%s lifted (%q): %s", v.Rule, p.Override, v.Message))
				}
			}
		}})
	switch {
	case res == nil:
		return nil, false, err
	case errors.Is(err, guard.ErrHalted):
		return res, false, err
	case errors.Is(err, guard.ErrRefused):
		reason := res.Plan.RefusalText()
		r.event("REFUSED", c, reason)
		r.expect(what, expect, ExpectRefused, ": "+reason)
	case err != nil:
		r.event(kind+" FAILED", c, fmt.Sprintf("%s failed: %v", what, err))
		r.expect(what, expect, ExpectFailed, ": "+err.Error())
	default:
		r.expect(what, expect, ExpectDone, "")
		return res, true, nil
	}
	return res, false, nil
}

func (r *runner) drain(ctx context.Context, d *DrainStep) error {
	c, err := r.cell(d.Cell)
	if err != nil {
		return err
	}
	started := time.Now()
	var what string
	_, done, err := r.guarded(ctx, r.executor(), c, "DRAIN", d.Expect,
		func(ctx context.Context) (*guard.Plan, error) {
			states, err := r.states(ctx)
			if err != nil {
				return nil, err
			}
			req := guard.Request{Cell: c, Tier: cell.Role(d.Tier), Count: d.Count, Nodes: d.Nodes, Override: d.Override}
			return guard.PlanDrain(r.env.Topology, states, guard.DefaultPolicy(), req)
		},
		func(p *guard.Plan) string {
			what = fmt.Sprintf("drain of %d %s node%s of %s", len(p.Nodes), d.Tier, plural(len(p.Nodes)), c)
			r.decision(Guardrail{At: r.since(), Action: "drain", Cell: c, Tier: d.Tier, Nodes: p.Nodes, PlanID: p.ID,
				Allowed: p.Allowed(), Override: p.Override, Violations: p.Violations})
			return what
		})
	if done {
		r.event("DRAINED", c, fmt.Sprintf("%s done in %s", what, time.Since(started).Round(time.Millisecond)))
	}
	return err
}

func (r *runner) undrain(ctx context.Context, u *UndrainStep) error {
	c, err := r.cell(u.Cell)
	if err != nil {
		return err
	}
	var nodes []string
	for _, t := range guard.RestartOrder {
		for _, n := range r.env.Topology.Nodes() {
			if n.Cell == c && n.Role == t && r.ctl.isDown(n.ID) {
				nodes = append(nodes, n.ID)
			}
		}
	}
	if len(nodes) == 0 {
		r.event("UNDRAIN", c, "no node of "+c+" is down")
		return nil
	}
	r.event("UNDRAIN", c, "starting "+strings.Join(nodes, ", "))
	res, err := r.executor().Run(ctx, guard.Op{Command: r.env.Command, Reason: "drill " + r.sc.Name, Auto: true,
		Plan: func(context.Context) (*guard.Plan, error) { return guard.PlanUndrain(c, nodes), nil }})
	if res != nil {
		r.recordStarts(c, res.Steps)
	}
	if err != nil {
		if errors.Is(err, guard.ErrHalted) {
			return err
		}
		r.check("undrain of "+c, false, err.Error())
		return nil
	}
	return nil
}

func (r *runner) kill(ctx context.Context, k *KillStep) error {
	c, err := r.cell(k.Cell)
	if err != nil {
		return err
	}
	nodes := k.Nodes
	if len(nodes) == 0 {
		states, err := r.states(ctx)
		if err != nil {
			return err
		}
		// Followers before the leader, as a drain would pick them.
		var followers, leaders []string
		for _, n := range states {
			if n.Cell == c && string(n.Role) == k.Tier && n.Ready() {
				if n.Leader {
					leaders = append(leaders, n.ID)
				} else {
					followers = append(followers, n.ID)
				}
			}
		}
		all := append(followers, leaders...)
		if len(all) < k.Count {
			return fmt.Errorf("%s has %d %s node%s up, fewer than %d to kill", c, len(all), k.Tier, plural(len(all)), k.Count)
		}
		nodes = all[:k.Count]
	}
	for _, id := range nodes {
		if err := r.ctl.KillNode(ctx, id); err != nil {
			return fmt.Errorf("kill %s: %w", id, err)
		}
		_ = r.audit.Append(guard.Entry{Command: r.env.Command, Reason: "drill " + r.sc.Name, Decision: guard.DecisionStep, Cell: cellOfNode(r.env.Topology, id), Node: id, Outcome: "killed"})
		r.event("KILL", cellOfNode(r.env.Topology, id), id+" killed")
	}
	return nil
}

func (r *runner) restart(ctx context.Context, s *RestartStep) error {
	c, err := r.cell(s.Cell)
	if err != nil {
		return err
	}
	var what, how string
	var order []string
	x := r.executor()
	x.StartTimeout = time.Duration(s.StartTimeout)
	started := time.Now()
	res, done, err := r.guarded(ctx, x, c, "RESTART", s.Expect,
		func(ctx context.Context) (*guard.Plan, error) {
			states, err := r.states(ctx)
			if err != nil {
				return nil, err
			}
			// A restart takes every node of its tiers: those the drill took down, and
			// those still starting, are restarted too.
			for i, n := range states {
				if n.Cell == c {
					states[i].Running, states[i].State = true, cell.StateReady
				}
			}
			req := guard.RestartRequest{Cell: c, Tiers: roles(s.Tiers), Order: roles(s.Order), Cold: s.Cold, Override: s.Override}
			if len(req.Order) > 0 && len(req.Tiers) == 0 {
				req.Tiers = req.Order
			}
			return guard.PlanRestart(r.env.Topology, states, guard.DefaultPolicy(), req)
		},
		func(p *guard.Plan) string {
			for _, t := range p.Tiers {
				order = append(order, string(t.Tier))
			}
			how = "rolling"
			if p.Cold {
				how = "cold"
			}
			what = fmt.Sprintf("%s restart of %s (%s)", how, c, strings.Join(order, " → "))
			r.decision(Guardrail{At: r.since(), Action: "restart", Cell: c, Tier: strings.Join(order, ","), Nodes: p.Nodes, PlanID: p.ID,
				Allowed: p.Allowed(), Override: p.Override, Violations: p.Violations, Cold: p.Cold})
			return what
		})
	took := time.Since(started)
	if res != nil {
		r.recordStarts(c, res.Steps)
	}
	if !done {
		return err
	}
	r.mu.Lock()
	r.rep.CellRestarts = append(r.rep.CellRestarts, CellRestart{Cell: c, How: how, Order: order, Took: took, Nodes: len(res.Plan.Nodes)})
	r.mu.Unlock()
	r.event("RESTORED", c, fmt.Sprintf("%s done: %d nodes ready, %s healthy, in %s", what, len(res.Plan.Nodes), c, took.Round(time.Millisecond)))
	return nil
}

func roles(ss []string) []cell.Role {
	var out []cell.Role
	for _, s := range ss {
		out = append(out, cell.Role(s))
	}
	return out
}

func (r *runner) recordStarts(c string, steps []guard.StepResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range steps {
		if s.Action != "start" {
			continue
		}
		tier := ""
		for _, n := range r.env.Topology.Nodes() {
			if n.ID == s.Node {
				tier = string(n.Role)
			}
		}
		at := r.since()
		r.ctl.mu.Lock()
		if t, ok := r.ctl.started[s.Node]; ok {
			at = t.Sub(r.start)
		}
		r.ctl.mu.Unlock()
		r.rep.NodeRestarts = append(r.rep.NodeRestarts, NodeRestart{At: at, Cell: c, Node: s.Node, Tier: tier, Took: s.Took, Error: s.Error})
	}
}

func (r *runner) assert(ctx context.Context, a *AssertStep) error {
	var cells []string
	switch a.Cell {
	case "others":
		for _, c := range r.env.Topology.CellIDs() {
			if !slices.Contains(r.tested, c) {
				cells = append(cells, c)
			}
		}
	case "all":
		cells = r.env.Topology.CellIDs()
	default:
		c, err := r.cell(a.Cell)
		if err != nil {
			return err
		}
		cells = []string{c}
	}
	if len(cells) == 0 {
		r.check("assert on "+a.Cell, true, "no such cells in this cluster; nothing to check")
		return nil
	}
	if a.Leader != "" {
		return r.assertLeader(ctx, cells, a)
	}
	if a.Quorum != "" {
		want := a.Quorum == "held"
		deadline := time.Now().Add(time.Duration(a.Within))
		for {
			var bad []string
			for _, c := range cells {
				if held, _ := r.quorumHeld(c); held != want {
					bad = append(bad, c)
				}
			}
			if len(bad) == 0 {
				r.check(fmt.Sprintf("quorum of %s %s", strings.Join(cells, ", "), a.Quorum), true, "as expected")
				return nil
			}
			if time.Now().After(deadline) {
				r.check(fmt.Sprintf("quorum of %s %s", strings.Join(cells, ", "), a.Quorum), false, "not so in "+strings.Join(bad, ", "))
				return nil
			}
			if err := sleep(ctx, r.env.SampleEvery); err != nil {
				return err
			}
		}
	}
	window := time.Duration(a.Window)
	if window <= 0 {
		window = 5 * time.Second
	}
	r.mu.Lock()
	var last, first snapshot
	if n := len(r.snaps); n > 0 {
		last = r.snaps[n-1]
		first = windowStart(r.snaps, r.loadAt, window, func(snapshot) bool { return true })
	}
	r.mu.Unlock()
	var parts []string
	ok := true
	for _, c := range cells {
		reqs := last.cells[c].Requests - first.cells[c].Requests
		errs := last.cells[c].Errors - first.cells[c].Errors
		rate := 0.0
		if reqs > 0 {
			rate = float64(errs) / float64(reqs)
		}
		if a.ErrorRateAbove != nil && !(reqs > 0 && rate > *a.ErrorRateAbove) {
			ok = false
		}
		if a.ErrorRateBelow != nil && !(reqs > 0 && rate < *a.ErrorRateBelow) {
			ok = false
		}
		parts = append(parts, fmt.Sprintf("%s %d/%d failed (%.1f%%)", c, errs, reqs, 100*rate))
	}
	what := fmt.Sprintf("error rate of %s over the last %s", strings.Join(cells, ", "), window)
	if a.ErrorRateAbove != nil {
		what += fmt.Sprintf(" above %.1f%%", 100**a.ErrorRateAbove)
	} else {
		what += fmt.Sprintf(" below %.1f%%", 100**a.ErrorRateBelow)
	}
	r.check(what, ok, strings.Join(parts, ", "))
	return nil
}

// addLoad puts the load's result into the report: per-cell series on the drill's
// clock, and the totals.
func (r *runner) addLoad(res *loadgen.Result) {
	if res == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.load(res, r.loadAt)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
