package composecluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

// accessDocker writes a docker command for the compose project "cellartest" of the
// compose file in dir, every container running: the nodes of topo and its front
// routers, the one named front publishing the S3 port on 127.0.0.1:19000 (as
// deploy.Compose publishes it) with the cluster's credentials in its environment.
func accessDocker(t *testing.T, topo cell.Topology, front string) string {
	t.Helper()
	dir := t.TempDir()
	var ps strings.Builder
	var list []map[string]any
	for _, n := range append(topo.Nodes(), topo.RouterNodes()...) {
		fmt.Fprintf(&ps, "id-%s %s running\n", n.ID, n.ID)
		k := map[string]any{"Id": "id-" + n.ID,
			"State":  map[string]any{"Status": "running", "Running": true},
			"Config": map[string]any{"Labels": map[string]string{"com.docker.compose.service": n.ID}},
			"NetworkSettings": map[string]any{"Networks": map[string]any{
				"cellartest_cellar": map[string]string{"IPAddress": "127.0.0.1"}}}}
		if n.Role == cell.RoleGateway || n.Role == cell.RoleRouter {
			k["Config"].(map[string]any)["Env"] = []string{cell.EnvAccessKey + "=AKFRONT", cell.EnvSecretKey + "=front-secret"}
		}
		if n.ID == front {
			k["NetworkSettings"].(map[string]any)["Ports"] = map[string]any{
				"9000/tcp": []map[string]string{{"HostIp": "127.0.0.1", "HostPort": "19000"}}}
		}
		list = append(list, k)
	}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"ps.txt": []byte(ps.String()), "inspect.json": b} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := `#!/bin/sh
case "$1" in
version) echo 20.10.24 ;;
ps)
	case "$*" in *working_dir*) exit 0 ;; esac
	cat ` + filepath.Join(dir, "ps.txt") + ` ;;
inspect) cat ` + filepath.Join(dir, "inspect.json") + ` ;;
*)
	echo "fake docker: $1 not expected here" >&2
	exit 1 ;;
esac
`
	docker := filepath.Join(dir, "docker")
	if err := os.WriteFile(docker, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return docker
}

// Access finds the S3 port where the compose file publishes it: on the first front
// router of a sharded cluster (its gateways publish none), on the first gateway
// otherwise; and says so in one line when no container publishes it.
func TestAccessFindsTheS3Front(t *testing.T) {
	for _, tt := range []struct {
		name, file, front string
	}{
		{"sharded", "../deploy/sharded/docker-compose.yml", "router-0"},
		{"default", composeFile, "gateway-0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			topo, err := cell.LoadTopology(filepath.Join(filepath.Dir(tt.file), "topology.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			c, err := Open(ctx, tt.file, Options{Docker: accessDocker(t, topo, tt.front), Project: "cellartest"})
			if err != nil {
				t.Fatal(err)
			}
			a, err := c.Access(ctx)
			if err != nil || a.Endpoint != "http://127.0.0.1:19000" || a.AccessKey != "AKFRONT" || a.SecretKey != "front-secret" || a.Region != topo.Region {
				t.Errorf("Access: %+v, %v; want %s's published port and credentials", a, err, tt.front)
			}

			c, err = Open(ctx, tt.file, Options{Docker: accessDocker(t, topo, "none"), Project: "cellartest"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Access(ctx)
			if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "publishes its S3 port") || strings.Contains(err.Error(), "\n") {
				t.Errorf("Access with no published port: %v; want one line, ErrNotRunning", err)
			}
		})
	}
}
