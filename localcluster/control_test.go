package localcluster_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cmd/cellctl/cli"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/internal/pki"
	"github.com/cellarsim/cellar/localcluster"
)

// rawClient talks to a control endpoint as any program could: plain HTTP and JSON,
// no cellctl, no localcluster client.
type rawClient struct {
	t           *testing.T
	addr, token string
	// tls, when set, is the client's TLS configuration: the endpoint serves mutual TLS.
	tls *tls.Config
}

func (c rawClient) post(path string, body any) (*http.Response, []byte) {
	c.t.Helper()
	b, _ := json.Marshal(body)
	scheme, client := "http://", http.DefaultClient
	if c.tls != nil {
		scheme, client = "https://", &http.Client{Transport: &http.Transport{TLSClientConfig: c.tls}}
	}
	req, _ := http.NewRequest(http.MethodPost, scheme+c.addr+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	return resp, out.Bytes()
}

// lastAudit is the last entry of the audit log of dir.
func lastAudit(t *testing.T, dir string) guard.Entry {
	t.Helper()
	es, err := guard.ReadAudit(dir)
	if err != nil || len(es) == 0 {
		t.Fatalf("audit log: %d entries, %v", len(es), err)
	}
	return es[len(es)-1]
}

func runCLI(args ...string) (int, string) {
	var out, errOut bytes.Buffer
	code := cli.Main(args, &out, &errOut)
	return code, out.String() + errOut.String()
}

// The control endpoint is where the guardrails are enforced: a stop that takes a tier
// of a cell below its floor is refused and audited whoever asks, exactly as 'cellctl
// drain' of that node is, and a drill's override reaches the endpoint only as a step
// of a plan the audit log shows confirmed with it.
func TestControlEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of child processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	sup, err := localcluster.Start(ctx, smallTopology(t), dir, testOptions(t, &syncBuffer{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Stop(context.Background())
	addr, stop, err := sup.ServeControl()
	if err != nil {
		t.Fatal(err)
	}
	f, err := localcluster.ReadClusterFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if f.ControlAddr != addr || len(f.ControlToken) != 32 {
		t.Fatalf("cluster.json: control at %q token %q, want %s", f.ControlAddr, f.ControlToken, addr)
	}
	if !f.ControlTLS {
		t.Fatal("the control endpoint of a cluster with TLS (the default) serves plain HTTP")
	}
	operator, err := localcluster.OperatorCreds(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw := rawClient{t, addr, f.ControlToken, operator.ClientTLS()}
	storage0, storage1 := cell.NodeID(cell.ID(0), cell.RoleStorage, 0), cell.NodeID(cell.ID(0), cell.RoleStorage, 1)

	// Without the operator's certificate nothing gets through, token or not: a node's
	// certificate of the same cluster, or none.
	gateway, err := pki.Load(pki.Dir(localcluster.PKIDir(dir)).Files(cell.NodeID("", cell.RoleGateway, 0)))
	if err != nil {
		t.Fatal(err)
	}
	noCert := operator.ClientTLS()
	noCert.Certificates = nil
	for name, cfg := range map[string]*tls.Config{"a gateway's certificate": gateway.ClientTLS(), "no certificate": noCert} {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/v1/nodes", nil)
		req.Header.Set("Authorization", "Bearer "+f.ControlToken)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("with %s and the token: %s, want the handshake refused", name, resp.Status)
		}
	}

	if resp, _ := (rawClient{t, addr, "wrong", operator.ClientTLS()}).post("/v1/nodes/"+storage1+"/stop", localcluster.NodeRequest{Reason: "r"}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the token: %s", resp.Status)
	}
	if resp, body := raw.post("/v1/nodes/"+storage1+"/stop", nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "a reason is required") {
		t.Errorf("a stop without a reason: %s %s", resp.Status, body)
	}

	// One storage node of two may go: the cell keeps its floor of one.
	ctl, err := localcluster.NewControl(f)
	if err != nil {
		t.Fatal(err)
	}
	ctl.Caller = localcluster.Caller{Command: "control test", Reason: "maintenance"}
	if err := ctl.StopNode(ctx, storage1); err != nil {
		t.Fatal(err)
	}
	if n, _ := sup.Node(storage1); n.Process != localcluster.ProcStopped {
		t.Errorf("after stop: %s", n.Process)
	}
	if e := lastAudit(t, dir); e.Decision != guard.DecisionDone || e.Command != "control test" || e.Reason != "maintenance" {
		t.Errorf("stop audited as %+v", e)
	}

	// The last one may not, asked with plain HTTP...
	resp, body := raw.post("/v1/nodes/"+storage0+"/stop", localcluster.NodeRequest{Command: "curl", Reason: "typo"})
	var res localcluster.ControlResult
	if err := json.Unmarshal(body, &res); err != nil || resp.StatusCode != http.StatusConflict || res.Kind != localcluster.KindRefused {
		t.Fatalf("stop below the floor: %s %s", resp.Status, body)
	}
	refusal := res.Error
	if !strings.HasPrefix(refusal, "refused: floor: cell-0 would keep 0 storage nodes up, below its floor") {
		t.Errorf("refusal %q", refusal)
	}
	if n, _ := sup.Node(storage0); n.Process != localcluster.ProcRunning {
		t.Fatalf("the refused stop stopped %s: %s", storage0, n.Process)
	}
	byRaw := lastAudit(t, dir)
	if byRaw.Decision != guard.DecisionRefused || byRaw.PlanID != res.PlanID || byRaw.Cell != "cell-0" || byRaw.Outcome != strings.TrimPrefix(refusal, "refused: ") ||
		byRaw.Command != "curl" || byRaw.Reason != "typo" {
		t.Errorf("refusal audited as %+v (plan %s)", byRaw, res.PlanID)
	}

	// ... and asked through cellctl: the same plan, refusal and audit record.
	drain := []string{"drain", "--data-dir", dir, "--cell", "cell-0", "--tier", "storage", "--nodes", storage0}
	code, out := runCLI(drain...)
	if code != cli.ExitRefused || !strings.Contains(out, "Plan "+res.PlanID+":") || !strings.Contains(out, refusal) {
		t.Errorf("cellctl drain: exit %d\n%s", code, out)
	}
	code, out = runCLI(append(drain, "--confirm", res.PlanID, "--reason", "typo")...)
	if code != cli.ExitRefused {
		t.Errorf("cellctl drain --confirm: exit %d\n%s", code, out)
	}
	byCLI := lastAudit(t, dir)
	if byCLI.Decision != byRaw.Decision || byCLI.PlanID != byRaw.PlanID || byCLI.Outcome != byRaw.Outcome || byCLI.Cell != byRaw.Cell {
		t.Errorf("cellctl's refusal audited as %+v,\nthe raw request's as %+v", byCLI, byRaw)
	}

	// A plan asked for with plain HTTP streams its plan and result.
	resp, body = raw.post("/v1/plans", localcluster.PlanRequest{Action: guard.ActionDrain, Cell: "cell-0", Tier: cell.RoleStorage,
		Nodes: []string{storage0}, Auto: true, Reason: "typo", Command: "curl"})
	events := planEvents(t, body)
	if resp.StatusCode != http.StatusConflict || len(events) != 2 || events[0].Plan == nil || events[0].Plan.ID != res.PlanID ||
		events[1].Result == nil || events[1].Result.Kind != localcluster.KindRefused || events[1].Result.Error != refusal {
		t.Errorf("POST /v1/plans below the floor: %s\n%s", resp.Status, body)
	}

	// The kill switch holds for starts too.
	if err := guard.Halt(dir, "incident"); err != nil {
		t.Fatal(err)
	}
	if err := ctl.StartNode(ctx, storage1); !errors.Is(err, guard.ErrHalted) {
		t.Errorf("start while halted: %v", err)
	}
	if err := guard.Resume(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.Do(ctx, storage1, "start"); err != nil {
		t.Fatal(err)
	}
	if n, _ := sup.Node(storage1); n.Process != localcluster.ProcRunning {
		t.Errorf("after start: %s", n.Process)
	}

	// A drill runs its workflow in its own process on an Attached cluster: its calls
	// carry its plan, whose override lifts the floor at the endpoint.
	att, err := localcluster.Attach(ctx, f, localcluster.Caller{Command: "drill test", Reason: "drill"})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	x := &guard.Executor{Dir: dir, Audit: guard.OpenAudit(dir), Cluster: att, HealthTimeout: 30 * time.Second}
	result, err := x.Run(ctx, guard.Op{Command: "drill test", Reason: "drill", Auto: true,
		Plan: func(ctx context.Context) (*guard.Plan, error) {
			states, err := att.Nodes(ctx)
			if err != nil {
				return nil, err
			}
			return guard.PlanDrain(att.Topology(), states, guard.DefaultPolicy(),
				guard.Request{Cell: "cell-0", Tier: cell.RoleStorage, Count: 2, Override: "show the empty tier"})
		}})
	if err != nil || !result.Executed {
		t.Fatalf("drill's drain with an override: %v", err)
	}
	var lifted bool
	es, _ := guard.ReadAudit(dir)
	for _, e := range es {
		if e.Decision == guard.DecisionOverride && strings.Contains(e.Command, "step of plan "+result.Plan.ID) && e.Override == "show the empty tier" {
			lifted = true
		}
	}
	if !lifted {
		t.Errorf("the endpoint recorded no override for the drill's steps:\n%+v", es)
	}

	// A call that names a plan the audit log does not show running is refused.
	if err := ctl.StartNode(ctx, storage1); err != nil {
		t.Fatal(err)
	}
	resp, body = raw.post("/v1/nodes/"+storage1+"/stop", localcluster.NodeRequest{Reason: "r", Plan: result.Plan.ID})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "does not show confirmed, running") {
		t.Errorf("a step of a finished plan: %s %s", resp.Status, body)
	}

	// A kill is judged as a stop is: the only storage node up stays up.
	if err := ctl.KillNode(ctx, storage1); !errors.Is(err, guard.ErrRefused) {
		t.Errorf("a kill below the floor: %v", err)
	}
	if err := ctl.StartNode(ctx, storage0); err != nil {
		t.Fatal(err)
	}
	if err := ctl.KillNode(ctx, storage1); err != nil {
		t.Fatal(err)
	}
	if n, _ := sup.Node(storage1); n.Process != localcluster.ProcKilled {
		t.Errorf("after kill: %s", n.Process)
	}
	if err := ctl.StopNode(ctx, "cell-9-index-0"); !errors.Is(err, localcluster.ErrUnknownNode) {
		t.Errorf("unknown node: %v", err)
	}
	if _, err := ctl.Do(ctx, storage1, "reboot"); err == nil {
		t.Error("unknown action accepted")
	}

	stop()
	f, _ = localcluster.ReadClusterFile(dir)
	if f.ControlAddr != "" {
		t.Errorf("control address %q left in cluster.json", f.ControlAddr)
	}
	if _, err := localcluster.NewControl(f); !errors.Is(err, localcluster.ErrNoControl) {
		t.Errorf("NewControl without an endpoint: %v", err)
	}
}

func planEvents(t *testing.T, body []byte) []localcluster.PlanEvent {
	t.Helper()
	var out []localcluster.PlanEvent
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var ev localcluster.PlanEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%v: %s", err, sc.Bytes())
		}
		out = append(out, ev)
	}
	return out
}
