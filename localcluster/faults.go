package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway"
)

// FaultsFileName is the file in a cluster's data directory in which the control
// endpoint arms faults (gateway.Faults) for the gateways to see. Only a cluster
// started with faults on (topology faults: true, 'cellctl up --faults') has gateways
// that watch it.
const FaultsFileName = "faults.json"

// ErrFaultsOff is returned when a fault is asked of a cluster that does not allow them.
var ErrFaultsOff = errors.New("faults are not enabled in this cluster")

// PoisonRequest arms (or, with Disarm, disarms) the poison pill through the control
// endpoint: POST /v1/faults/poison. A reason is required; the command is for the audit.
type PoisonRequest struct {
	Key     string `json:"key,omitempty"`
	Disarm  bool   `json:"disarm,omitempty"`
	Reason  string `json:"reason"`
	Command string `json:"command,omitempty"`
}

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
	what := "arm the poison pill"
	if req.Disarm {
		what = "disarm the poison pill"
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
	case !req.Disarm && (req.Key == "" || strings.ContainsAny(req.Key, "/?#")):
		fail(http.StatusBadRequest, KindBadRequest, fmt.Errorf("the poison pill needs an object key without '/', '?' or '#', not %q", req.Key))
		return
	}
	if !req.Disarm {
		if err := guard.CheckHalt(c.cfg.Dir); err != nil {
			fail(http.StatusConflict, KindHalted, err)
			return
		}
	}
	var err error
	if req.Disarm {
		err = os.Remove(c.cfg.FaultsFile)
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	} else {
		var b []byte
		b, err = json.MarshalIndent(gateway.Faults{Poison: &gateway.PoisonPill{Key: req.Key, ArmedAt: time.Now().UTC(), Reason: req.Reason}}, "", "  ")
		if err == nil {
			err = writePrivate(c.cfg.FaultsFile, append(b, '\n'))
		}
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, PoisonResult{Error: err.Error(), Kind: KindFailed})
		return
	}
	outcome := "poison pill armed: a request for an object named " + req.Key + " crashes the gateway that handles it"
	if req.Disarm {
		outcome = "poison pill disarmed"
	}
	_ = c.audit.Append(guard.Entry{Command: req.Command, Reason: req.Reason, Decision: guard.DecisionStep, Outcome: outcome})
	writeJSON(w, http.StatusOK, PoisonResult{Armed: !req.Disarm, Key: req.Key})
}

// Poison arms the poison pill with key (or disarms it, when disarm) through the
// control endpoint. A refusal wraps ErrFaultsOff, guard.ErrHalted, guard.ErrNoReason
// or guard.ErrBadRequest.
func (c *Control) Poison(ctx context.Context, key string, disarm bool, reason string) error {
	body := PoisonRequest{Key: key, Disarm: disarm, Reason: reason, Command: c.Caller.Command}
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
