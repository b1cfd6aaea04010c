package clustertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/frontrouter"
	"github.com/cellarsim/cellar/internal/faultfile"
)

// Faults in one process. A cluster whose topology has faults on gives its gateways and
// index nodes a faults file in its directory; the drill tooling arms the poison pill
// in it through Control.Poison (the index pill through Control.PoisonIndex), as it
// does through the supervisor's control endpoint of a 'cellctl up --faults' cluster:
// audited, refused while drills are halted. A node that swallows a pill ends (this
// node only, not the test process) and stays down until it is started again.

// FaultsFile is where the nodes of a cluster with faults on look for armed faults
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
	return k.arm("poison pill", disarm, reason, func() error {
		if !disarm && (key == "" || strings.ContainsAny(key, "/?#")) {
			return fmt.Errorf("the poison pill needs an object key without '/', '?' or '#', not %q", key)
		}
		return nil
	}, func(f *faultfile.Faults) string {
		if disarm {
			f.Poison = nil
			return "poison pill disarmed"
		}
		f.Poison = &faultfile.PoisonPill{Key: key, ArmedAt: time.Now().UTC(), Reason: reason}
		return "poison pill armed: a request for an object named " + key + " crashes the gateway that handles it"
	})
}

// PoisonIndex arms the index pill with bucket/key (or disarms it, when disarm): a
// write of that object crashes every index node of its cell that applies it (the node
// ends, not the test process). It refuses what Poison refuses, and a pill without a
// bucket or a key.
func (k *Control) PoisonIndex(_ context.Context, bucket, key string, disarm bool, reason string) error {
	return k.arm("index pill", disarm, reason, func() error {
		if !disarm && (bucket == "" || key == "") {
			return fmt.Errorf("the index pill needs a bucket and an object key, not %q/%q", bucket, key)
		}
		return nil
	}, func(f *faultfile.Faults) string {
		if disarm {
			f.Index = nil
			return "index pill disarmed"
		}
		f.Index = &faultfile.IndexPill{Bucket: bucket, Key: key, ArmedAt: time.Now().UTC(), Reason: reason}
		return "index pill armed: a write of " + bucket + "/" + key + " crashes every index node of its cell that applies it"
	})
}

// arm changes the faults file with change after the checks of the control endpoint,
// and audits the decision.
func (k *Control) arm(pill string, disarm bool, reason string, check func() error, change func(*faultfile.Faults) string) error {
	c := k.c
	what := "arm the " + pill
	if disarm {
		what = "disarm the " + pill
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
	}
	if err := check(); err != nil {
		return refuse(err)
	}
	if !disarm {
		if err := guard.CheckHalt(c.Dir); err != nil {
			return refuse(err)
		}
	}
	var outcome string
	if err := faultfile.Update(c.FaultsFile(), func(f *faultfile.Faults) { outcome = change(f) }); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	_ = audit.Append(guard.Entry{Command: "clustertest poison", Reason: reason, Decision: guard.DecisionStep, Outcome: outcome})
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
