package localcluster_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/localcluster"
)

func TestControlEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of child processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
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

	resp, err := http.Post("http://"+addr+"/v1/nodes/x/stop", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the token: %s", resp.Status)
	}

	ctl, err := localcluster.NewControl(f)
	if err != nil {
		t.Fatal(err)
	}
	id := cell.NodeID(cell.ID(0), cell.RoleStorage, 1)
	if err := ctl.StopNode(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n, _ := sup.Node(id); n.Process != localcluster.ProcStopped {
		t.Errorf("after stop: %s", n.Process)
	}
	res, err := ctl.Do(ctx, id, "start")
	if err != nil {
		t.Fatal(err)
	}
	if res.Process != localcluster.ProcRunning || res.TookMS <= 0 {
		t.Errorf("after start: %+v", res)
	}
	if err := ctl.KillNode(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n, _ := sup.Node(id); n.Process != localcluster.ProcKilled {
		t.Errorf("after kill: %s", n.Process)
	}
	if err := ctl.StopNode(ctx, "cell-9-index-0"); !errors.Is(err, localcluster.ErrUnknownNode) {
		t.Errorf("unknown node: %v", err)
	}
	if _, err := ctl.Do(ctx, id, "reboot"); err == nil {
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
