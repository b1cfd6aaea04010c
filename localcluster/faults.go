package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/internal/faultfile"
)

// FaultsFileName is the file in a cluster's data directory in which the control
// endpoint arms faults (internal/faultfile) for the gateways and index nodes to see.
// Only a cluster started with faults on (topology faults: true, 'cellctl up --faults')
// has nodes that watch it.
const FaultsFileName = "faults.json"

// ErrFaultsOff is returned when a fault is asked of a cluster that does not allow them.
var ErrFaultsOff = errors.New("faults are not enabled in this cluster")

// PoisonRequest arms (or, with Disarm, disarms) a poison pill through the control
// endpoint: POST /v1/faults/poison. A reason is required; the command is for the audit.
// Pill is which one: the gateways' (PillGateway, the default: Key is the object key a
// request names) or the index's (PillIndex: a write of Bucket/Key crashes every index
// node of the bucket's cell that applies it).
type PoisonRequest struct {
	Pill    string `json:"pill,omitempty"`
	Bucket  string `json:"bucket,omitempty"`
	Key     string `json:"key,omitempty"`
	Disarm  bool   `json:"disarm,omitempty"`
	Reason  string `json:"reason"`
	Command string `json:"command,omitempty"`
}

// The pills PoisonRequest.Pill names.
const (
	PillGateway = "gateway"
	PillIndex   = "index"
)

// PoisonResult is the answer to a PoisonRequest.
type PoisonResult struct {
	Armed bool   `json:"armed"`
	Key   string `json:"key,omitempty"`
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"`
}

// servePoison arms or disarms the poison pill: only in a cluster with faults on, only
// with a reason, never while drills are halted (disarming always works), and every
// decision is audited.
func (c *controller) servePoison(w http.ResponseWriter, r *http.Request) {
	var req PoisonRequest
	if err := decodeBody(r, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, PoisonResult{Error: err.Error(), Kind: KindBadRequest})
		return
	}
	if req.Command == "" {
		req.Command = "POST /v1/faults/poison"
	}
	if req.Pill == "" {
		req.Pill = PillGateway
	}
	what := "arm the poison pill"
	if req.Pill == PillIndex {
		what = "arm the index pill"
	}
	if req.Disarm {
		what = "dis" + what
	}
	fail := func(status int, kind string, err error) {
		_ = c.audit.Append(guard.Entry{Command: req.Command, Reason: req.Reason, Decision: guard.DecisionRefused,
			Outcome: what + ": " + err.Error()})
		writeJSON(w, status, PoisonResult{Error: err.Error(), Kind: kind})
	}
	switch {
	case c.cfg.FaultsFile == "":
		fail(http.StatusConflict, KindRefused, fmt.Errorf("%w: start it with 'cellctl up --faults' (or faults: true in its topology) to let drills arm the poison pill", ErrFaultsOff))
		return
	case strings.TrimSpace(req.Reason) == "":
		fail(http.StatusBadRequest, KindNoReason, fmt.Errorf("a reason is required to %s", what))
		return
	case req.Pill != PillGateway && req.Pill != PillIndex:
		fail(http.StatusBadRequest, KindBadRequest, fmt.Errorf("no pill %q (pills: %s, %s)", req.Pill, PillGateway, PillIndex))
		return
	case !req.Disarm && req.Pill == PillGateway && (req.Key == "" || strings.ContainsAny(req.Key, "/?#")):
		fail(http.StatusBadRequest, KindBadRequest, fmt.Errorf("the poison pill needs an object key without '/', '?' or '#', not %q", req.Key))
		return
	case !req.Disarm && req.Pill == PillIndex && (req.Bucket == "" || req.Key == ""):
		fail(http.StatusBadRequest, KindBadRequest, fmt.Errorf("the index pill needs a bucket and an object key, not %q/%q", req.Bucket, req.Key))
		return
	}
	if !req.Disarm {
		if err := guard.CheckHalt(c.cfg.Dir); err != nil {
			fail(http.StatusConflict, KindHalted, err)
			return
		}
	}
	outcome, err := armPill(c.cfg.FaultsFile, req)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, PoisonResult{Error: err.Error(), Kind: KindFailed})
		return
	}
	_ = c.audit.Append(guard.Entry{Command: req.Command, Reason: req.Reason, Decision: guard.DecisionStep, Outcome: outcome})
	writeJSON(w, http.StatusOK, PoisonResult{Armed: !req.Disarm, Key: req.Key})
}

// armPill arms or disarms the pill of req in the faults file at path, leaving the
// other pill as it is, and says what it did for the audit.
func armPill(path string, req PoisonRequest) (outcome string, err error) {
	now := time.Now().UTC()
	faultsMu.Lock()
	defer faultsMu.Unlock()
	err = faultfile.Update(path, func(f *faultfile.Faults) {
		switch {
		case req.Pill == PillIndex && req.Disarm:
			f.Index, outcome = nil, "index pill disarmed"
		case req.Pill == PillIndex:
			f.Index = &faultfile.IndexPill{Bucket: req.Bucket, Key: req.Key, ArmedAt: now, Reason: req.Reason}
			outcome = "index pill armed: a write of " + req.Bucket + "/" + req.Key + " crashes every index node of its cell that applies it"
		case req.Disarm:
			f.Poison, outcome = nil, "poison pill disarmed"
		default:
			f.Poison = &faultfile.PoisonPill{Key: req.Key, ArmedAt: now, Reason: req.Reason}
			outcome = "poison pill armed: a request for an object named " + req.Key + " crashes the gateway that handles it"
		}
	})
	return outcome, err
}

// Poison arms the poison pill with key (or disarms it, when disarm) through the
// control endpoint. A refusal wraps ErrFaultsOff, guard.ErrHalted, guard.ErrNoReason
// or guard.ErrBadRequest.
func (c *Control) Poison(ctx context.Context, key string, disarm bool, reason string) error {
	return c.poison(ctx, PoisonRequest{Pill: PillGateway, Key: key, Disarm: disarm, Reason: reason})
}

// PoisonIndex arms the index pill with bucket/key (or disarms it, when disarm) through
// the control endpoint, which refuses it as it refuses the poison pill.
func (c *Control) PoisonIndex(ctx context.Context, bucket, key string, disarm bool, reason string) error {
	return c.poison(ctx, PoisonRequest{Pill: PillIndex, Bucket: bucket, Key: key, Disarm: disarm, Reason: reason})
}

func (c *Control) poison(ctx context.Context, body PoisonRequest) error {
	body.Command = c.Caller.Command
	if step, ok := guard.StepOf(ctx); ok {
		body.Command = step.Command
	}
	if body.Reason == "" {
		body.Reason = c.Caller.Reason
	}
	resp, err := c.post(ctx, "/v1/faults/poison", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var res PoisonResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return fmt.Errorf("control endpoint: %s", resp.Status)
	}
	if res.Error != "" {
		if strings.Contains(res.Error, ErrFaultsOff.Error()) {
			return fmt.Errorf("%w%s", ErrFaultsOff, strings.TrimPrefix(res.Error, ErrFaultsOff.Error()))
		}
		return errorOfKind(res.Kind, res.Error)
	}
	return nil
}

// faultsFile is where the gateways of s look for armed faults: "" when its topology
// does not allow faults.
func (s *Supervisor) faultsFile() string {
	if !s.topo.Faults {
		return ""
	}
	return filepath.Join(s.dir, FaultsFileName)
}

// Poison arms the poison pill with key (or disarms it) through the supervisor's
// control endpoint, which refuses it unless the cluster was started with faults on.
func (a *Attached) Poison(ctx context.Context, key string, disarm bool, reason string) error {
	if a.control == nil {
		return ErrNoControl
	}
	return a.control.Poison(ctx, key, disarm, reason)
}

// PoisonIndex arms the index pill with bucket/key (or disarms it) through the
// supervisor's control endpoint, which refuses it unless the cluster was started with
// faults on.
func (a *Attached) PoisonIndex(ctx context.Context, bucket, key string, disarm bool, reason string) error {
	if a.control == nil {
		return ErrNoControl
	}
	return a.control.PoisonIndex(ctx, bucket, key, disarm, reason)
}

// Gateways lists the gateways whose processes run, and those that do not (crashed,
// killed or stopped), as the supervisor's cluster.json says.
func (a *Attached) Gateways(context.Context) (up, down []string, err error) {
	file, err := ReadClusterFile(a.dir)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range file.Nodes {
		if n.Role != cell.RoleGateway {
			continue
		}
		if running(n) {
			up = append(up, n.ID)
		} else {
			down = append(down, n.ID)
		}
	}
	return up, down, nil
}
