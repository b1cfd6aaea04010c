package localcluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway/mover"
)

// ErrNoControl is returned for a cluster whose supervisor serves no control endpoint.
var ErrNoControl = errors.New("the cluster's supervisor serves no control endpoint")

// Caller is who acts through a control endpoint client, for the supervisor's audit
// log: the command and the reason its per-node calls carry when their context carries
// no step of a plan (guard.StepOf).
type Caller struct{ Command, Reason string }

// Control is a client of a supervisor's control endpoint.
type Control struct {
	addr, token string
	scheme      string // "http://" or "https://"
	client      *http.Client
	// Caller is who this client acts for.
	Caller Caller
}

// NewControl returns a client of the control endpoint cluster.json names.
func NewControl(f *ClusterFile) (*Control, error) {
	if !f.Running || f.ControlAddr == "" {
		return nil, ErrNoControl
	}
	client, scheme, err := controlClient(f)
	if err != nil {
		return nil, err
	}
	return &Control{addr: f.ControlAddr, token: f.ControlToken, scheme: scheme, client: client}, nil
}

// StopNode stops a node gracefully and returns once its process has ended.
func (c *Control) StopNode(ctx context.Context, id string) error {
	_, err := c.Do(ctx, id, actionStop)
	return err
}

// KillNode kills a node with SIGKILL.
func (c *Control) KillNode(ctx context.Context, id string) error {
	_, err := c.Do(ctx, id, actionKill)
	return err
}

// StartNode starts a stopped node and returns once it is ready.
func (c *Control) StartNode(ctx context.Context, id string) error {
	_, err := c.Do(ctx, id, actionStart)
	return err
}

// Do asks the supervisor to stop, kill or start a node. The request says which plan
// it is a step of, and why, as the step ctx carries says (guard.StepOf), or else as
// c.Caller says. A refusal wraps guard.ErrRefused (or guard.ErrHalted, ErrBusy, ...).
func (c *Control) Do(ctx context.Context, id, action string) (ControlResult, error) {
	var res ControlResult
	body := NodeRequest{Command: c.Caller.Command, Reason: c.Caller.Reason}
	if step, ok := guard.StepOf(ctx); ok {
		body = NodeRequest{Command: step.Command, Reason: step.Reason, Plan: step.PlanID}
	}
	resp, err := c.post(ctx, "/v1/nodes/"+id+"/"+action, body)
	if err != nil && ctx.Err() != nil {
		if action == actionStart {
			return res, fmt.Errorf("%s did not become ready in time (it may still be starting): %w", id, ctx.Err())
		}
		return res, fmt.Errorf("%s of %s did not finish in time: %w", action, id, ctx.Err())
	}
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(b, &res); err != nil {
		return res, fmt.Errorf("the supervisor answered %s with something other than JSON", resp.Status)
	}
	switch {
	case res.Error != "":
		return res, errorOfKind(res.Kind, res.Error)
	case resp.StatusCode != http.StatusOK:
		return res, fmt.Errorf("the supervisor answered %s", resp.Status)
	}
	return res, nil
}

// RunPlan asks the supervisor to take one capacity operation through the guardrail
// workflow, as guard.Executor.Run does in-process: show is given the plan once it is
// decided, before anything is done, and progress a line per step as it happens (both
// may be nil). It returns the result (nil when no plan was made) and an error that
// errors.Is and errors.As tell as they would tell Run's: guard.ErrRefused,
// *guard.StaleError, guard.ErrHalted, guard.ErrBadRequest, guard.ErrNoReason, or
// ErrBusy when another capacity operation runs.
func (c *Control) RunPlan(ctx context.Context, req PlanRequest, show func(*guard.Plan), progress io.Writer) (*guard.Result, error) {
	res, _, err := c.stream(ctx, "/v1/plans", req, show, func(ev PlanEvent) {
		if progress != nil {
			fmt.Fprintln(progress, ev.Line)
		}
	})
	return res, err
}

// Move asks the supervisor to move a bucket, or a slot's buckets, through the
// guardrail workflow, as RunPlan does a drain: show is given the plan before anything
// is done, progress (if not nil) where the copy is as it goes. It returns the result,
// what each bucket's move did, and an error that errors.Is and errors.As tell as
// RunPlan's. An interrupt (ctx) before the cutover undoes the move.
func (c *Control) Move(ctx context.Context, req MoveRequest, show func(*guard.Plan), progress func(mover.Progress)) (*guard.Result, []mover.Stats, error) {
	res, last, err := c.stream(ctx, "/v1/moves", req, show, func(ev PlanEvent) {
		if progress != nil && ev.Move != nil {
			progress(*ev.Move)
		}
	})
	var moved []mover.Stats
	if last != nil {
		moved = last.Moved
	}
	return res, moved, err
}

// stream posts body to a path that answers with plan events, and reads them: the
// plan to show, each progress event to progress, and the result last, which it
// returns with the error it stands for.
func (c *Control) stream(ctx context.Context, path string, body any, show func(*guard.Plan), progress func(PlanEvent)) (*guard.Result, *PlanResult, error) {
	resp, err := c.post(ctx, path, body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("interrupted before the supervisor answered: %w", ctx.Err())
		}
		return nil, nil, err
	}
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/x-ndjson" {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var cr ControlResult
		if json.Unmarshal(b, &cr) == nil && cr.Error != "" {
			return nil, nil, errorOfKind(cr.Kind, cr.Error)
		}
		if resp.StatusCode == http.StatusNotFound {
			return nil, nil, errors.New("the cluster's supervisor does not take plans: it runs an older cellctl; restart the cluster with this one")
		}
		return nil, nil, fmt.Errorf("the supervisor answered %s", resp.Status)
	}
	var res *guard.Result
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var ev PlanEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return res, nil, fmt.Errorf("the supervisor answered a line that does not parse: %w", err)
		}
		switch ev.Event {
		case EventPlan:
			res = &guard.Result{Plan: ev.Plan}
			if show != nil && ev.Plan != nil {
				show(ev.Plan)
			}
		case EventProgress:
			progress(ev)
		case EventResult:
			if ev.Result == nil {
				return res, nil, errors.New("the supervisor answered an empty result")
			}
			if res != nil {
				res.Executed, res.Steps = ev.Result.Executed, ev.Result.Steps
			}
			return res, ev.Result, ev.Result.err()
		}
	}
	if ctx.Err() != nil {
		return res, nil, fmt.Errorf("interrupted: the supervisor stops the plan before its next step; 'cellctl audit' shows how far it went: %w", ctx.Err())
	}
	return res, nil, errors.New("the supervisor stopped answering before the plan finished; 'cellctl audit' shows how far it went")
}

// err is the error r stands for, as the workflow returned it.
func (r *PlanResult) err() error {
	if r.Stale != nil {
		return &guard.StaleError{Confirmed: r.Stale.Confirmed, Current: r.Stale.Current, Previewed: r.Stale.Previewed}
	}
	if r.Error == "" {
		return nil
	}
	return errorOfKind(r.Kind, r.Error)
}

// post sends v as JSON to the endpoint's path.
func (c *Control) post(ctx context.Context, path string, v any) (*http.Response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.scheme+c.addr+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("the cluster's supervisor does not answer at %s: %w", c.addr, err)
	}
	return resp, err
}
