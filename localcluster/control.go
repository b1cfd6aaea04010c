package localcluster

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// controlEndpoint is the supervisor's control endpoint, once ServeControl runs it.
type controlEndpoint struct{ addr, token string }

// ControlResult is the answer to a node control request.
type ControlResult struct {
	Node   string `json:"node"`
	Action string `json:"action"`
	TookMS int64  `json:"took_ms"`
	Error  string `json:"error,omitempty"`
	// Process is the node's process state afterwards.
	Process ProcState `json:"process,omitempty"`
}

// ServeControl serves the supervisor's node controls over HTTP on a 127.0.0.1 port of
// its own, so that other commands can stop, start and kill nodes of the running
// cluster; the address and a random token go into cluster.json. Every request must
// carry the token as "Authorization: Bearer TOKEN".
//
//	GET  /v1/nodes                 every node, as in cluster.json
//	POST /v1/nodes/{id}/stop       StopNode
//	POST /v1/nodes/{id}/kill       KillNode
//	POST /v1/nodes/{id}/start      StartNode (answers once the node is ready)
//
// The returned function stops serving.
func (s *Supervisor) ServeControl() (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("control endpoint: %w", err)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	srv := &http.Server{Handler: s.controlHandler(token), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	s.mu.Lock()
	s.control = controlEndpoint{addr: l.Addr().String(), token: token}
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
	}, nil
}

func (s *Supervisor) controlHandler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Nodes())
	})
	mux.HandleFunc("POST /v1/nodes/{id}/{action}", func(w http.ResponseWriter, r *http.Request) {
		id, action := r.PathValue("id"), r.PathValue("action")
		res := ControlResult{Node: id, Action: action}
		start := time.Now()
		var err error
		switch action {
		case "stop":
			err = s.StopNode(r.Context(), id)
		case "kill":
			err = s.KillNode(id)
		case "start":
			err = s.StartNode(r.Context(), id)
		default:
			res.Error = fmt.Sprintf("unknown action %q: want stop, kill or start", action)
			writeJSON(w, http.StatusNotFound, res)
			return
		}
		res.TookMS = time.Since(start).Milliseconds()
		if n, ok := s.Node(id); ok {
			res.Process = n.Process
		}
		status := http.StatusOK
		switch {
		case errors.Is(err, ErrUnknownNode):
			status = http.StatusNotFound
		case err != nil:
			status = http.StatusInternalServerError
		}
		if err != nil {
			res.Error = err.Error()
		}
		writeJSON(w, status, res)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, ControlResult{Error: "missing or wrong control token"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrNoControl is returned for a cluster whose supervisor serves no control endpoint.
var ErrNoControl = errors.New("the cluster's supervisor serves no control endpoint")

// Control is a client of a supervisor's control endpoint.
type Control struct {
	addr, token string
	client      *http.Client
}

// NewControl returns a client of the control endpoint cluster.json names.
func NewControl(f *ClusterFile) (*Control, error) {
	if !f.Running || f.ControlAddr == "" {
		return nil, ErrNoControl
	}
	return &Control{addr: f.ControlAddr, token: f.ControlToken, client: &http.Client{}}, nil
}

// StopNode stops a node gracefully and returns once its process has ended.
func (c *Control) StopNode(ctx context.Context, id string) error {
	_, err := c.Do(ctx, id, "stop")
	return err
}

// KillNode kills a node with SIGKILL.
func (c *Control) KillNode(ctx context.Context, id string) error {
	_, err := c.Do(ctx, id, "kill")
	return err
}

// StartNode starts a stopped node and returns once it is ready.
func (c *Control) StartNode(ctx context.Context, id string) error {
	_, err := c.Do(ctx, id, "start")
	return err
}

// Do asks the supervisor to stop, kill or start a node.
func (c *Control) Do(ctx context.Context, id, action string) (ControlResult, error) {
	var res ControlResult
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.addr+"/v1/nodes/"+id+"/"+action, nil)
	if err != nil {
		return res, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.client.Do(req)
	if err != nil && ctx.Err() != nil {
		if action == "start" {
			return res, fmt.Errorf("%s did not become ready in time (it may still be starting): %w", id, ctx.Err())
		}
		return res, fmt.Errorf("%s of %s did not finish in time: %w", action, id, ctx.Err())
	}
	if err != nil {
		return res, fmt.Errorf("the cluster's supervisor does not answer at %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(b, &res); err != nil {
		return res, fmt.Errorf("the supervisor answered %s with something other than JSON", resp.Status)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && res.Error != "":
		return res, fmt.Errorf("%w: %s", ErrUnknownNode, res.Error)
	case res.Error != "":
		return res, errors.New(res.Error)
	case resp.StatusCode != http.StatusOK:
		return res, fmt.Errorf("the supervisor answered %s", resp.Status)
	}
	return res, nil
}
