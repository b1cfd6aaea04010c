package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/frontrouter"
	"github.com/cellarsim/cellar/gateway"
)

// Faults in one process. A cluster whose topology has faults on gives its gateways a
// faults file in its directory; the drill tooling arms the poison pill in it through
// Control.Poison, as it does through the supervisor's control endpoint of a 'cellctl
// up --faults' cluster: audited, refused while drills are halted. A gateway that
// swallows the pill ends (this node only, not the test process) and stays down until
// it is started again.

// FaultsFile is where the gateways of a cluster with faults on look for armed faults
// ("" when the topology does not allow faults).
func (c *Cluster) FaultsFile() string {
	if !c.Topology.Faults {
		return ""
	}
	return filepath.Join(c.Dir, "faults.json")
}

// crash ends the running node id as a crashed process ends: at once, without a
// caller to report to. A start of the node waits until the run has let go of its
// addresses.
func (c *Cluster) crash(id string) {
	c.mu.Lock()
	n := c.nodes[id]
	cancel, done := n.cancel, n.done
	if done == nil {
		c.mu.Unlock()
		return
	}
	ending := make(chan struct{})
	n.cancel, n.done, n.ending = nil, nil, ending
	c.mu.Unlock()
	cancel()
	<-done
	close(ending)
}

// Poison arms the poison pill with key (or disarms it, when disarm) in the gateways'
// faults file. Like the control endpoint it refuses a cluster without faults, a
// missing reason, a key with '/', '?' or '#', and arming while drills are halted; each
// decision goes to the audit log in the cluster's directory.
func (k *Control) Poison(_ context.Context, key string, disarm bool, reason string) error {
	c := k.c
	what := "arm the poison pill"
	if disarm {
		what = "disarm the poison pill"
	}
	audit := guard.OpenAudit(c.Dir)
	refuse := func(err error) error {
		_ = audit.Append(guard.Entry{Command: "clustertest poison", Reason: reason, Decision: guard.DecisionRefused, Outcome: what + ": " + err.Error()})
		return err
	}
	switch {
	case c.FaultsFile() == "":
		return refuse(errors.New("faults are not enabled in this cluster: its topology needs faults: true"))
	case strings.TrimSpace(reason) == "":
		return refuse(fmt.Errorf("a reason is required to %s", what))
	case !disarm && (key == "" || strings.ContainsAny(key, "/?#")):
		return refuse(fmt.Errorf("the poison pill needs an object key without '/', '?' or '#', not %q", key))
	}
	if disarm {
		if err := os.Remove(c.FaultsFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w", what, err)
		}
		_ = audit.Append(guard.Entry{Command: "clustertest poison", Reason: reason, Decision: guard.DecisionStep, Outcome: "poison pill disarmed"})
		return nil
	}
	if err := guard.CheckHalt(c.Dir); err != nil {
		return refuse(err)
	}
	b, err := json.Marshal(gateway.Faults{Poison: &gateway.PoisonPill{Key: key, ArmedAt: time.Now().UTC(), Reason: reason}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.FaultsFile(), b, 0o600); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	_ = audit.Append(guard.Entry{Command: "clustertest poison", Reason: reason, Decision: guard.DecisionStep,
		Outcome: "poison pill armed: a request for an object named " + key + " crashes the gateway that handles it"})
	return nil
}

// Gateways lists the gateways that run and those that do not (crashed or stopped),
// in the fleet's order.
func (k *Control) Gateways(context.Context) (up, down []string, err error) {
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	for _, id := range k.c.order {
		n := k.c.nodes[id]
		if n.Spec.Role != cell.RoleGateway {
			continue
		}
		if n.done != nil {
			up = append(up, id)
		} else {
			down = append(down, id)
		}
	}
	return up, down, nil
}

// StartRouter serves a front router over the cluster's gateways on addr ("127.0.0.1:0"
// for any port) until the returned stop is called or the test ends, and returns its S3
// endpoint. The router shards the tenants of topo as topo says (the cluster's
// Topology, or a copy of it with another sharding: the gateways do not care).
func (c *Cluster) StartRouter(addr string, topo cell.Topology) (endpoint string, stop func()) {
	c.t.Helper()
	var backends []string
	for i := range c.Topology.Gateways {
		backends = append(backends, c.Node(cell.NodeID("", cell.RoleGateway, i)).S3Addr)
	}
	rt, err := frontrouter.New(frontrouter.Options{Topology: topo, Backends: backends, Logger: c.logs.logger("router")})
	if err != nil {
		c.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		c.t.Fatal(err)
	}
	srv := &http.Server{Handler: rt, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			srv.Close()
		}
	}
	c.t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}
