package composecluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDocker writes a docker command that logs its arguments to a file and answers as
// mode says: "down" (no daemon), "empty" (no container of the project), or "up" (a
// container per node of deploy/topology.yaml, all running). It returns the command and
// the log.
func fakeDocker(t *testing.T, mode string) (docker, log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "calls.log")
	script := `#!/bin/sh
echo "$*" >> ` + log + `
case "$1" in
version)
	if [ "` + mode + `" = down ]; then
		echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
		exit 1
	fi
	echo 20.10.24 ;;
ps)
	case "$*" in *working_dir*) exit 0 ;; esac
	if [ "` + mode + `" = up ]; then
		for n in gateway-0 cell-0-index-0 cell-0-index-1 cell-0-index-2 cell-1-index-0; do echo "id-$n $n running"; done
	fi ;;
*)
	echo "fake docker: $1 not expected here" >&2
	exit 1 ;;
esac
`
	docker = filepath.Join(dir, "docker")
	if err := os.WriteFile(docker, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return docker, log
}

func calls(t *testing.T, log string) string {
	b, err := os.ReadFile(log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

const composeFile = "../deploy/docker-compose.yml"

// What Open says when Docker or the project is not there: one line, the kind of
// failure, and nothing acted on.
func TestOpenErrors(t *testing.T) {
	for _, tt := range []struct {
		mode, docker string
		want         error
		says         string
	}{
		{mode: "down", want: ErrNoDocker, says: "Cannot connect to the Docker daemon"},
		{mode: "missing", docker: "/nonexistent/docker", want: ErrNoDocker, says: "no /nonexistent/docker command on PATH"},
		{mode: "empty", want: ErrNotRunning, says: "has no running container; start it with 'docker-compose -f " + composeFile + " up -d'"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			docker, log := fakeDocker(t, tt.mode)
			if tt.docker != "" {
				docker = tt.docker
			}
			_, err := Open(context.Background(), composeFile, Options{Docker: docker, Project: "cellartest"})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Open: %v; want %v, one line saying %q", err, tt.want, tt.says)
			}
			for _, line := range strings.Split(strings.TrimSpace(calls(t, log)), "\n") {
				if f := strings.Fields(line); len(f) > 0 && f[0] != "version" && f[0] != "ps" {
					t.Errorf("docker %s called: Open only looks", line)
				}
			}
		})
	}
	if _, err := Open(context.Background(), "no-such-dir/docker-compose.yml", Options{}); err == nil || !strings.Contains(err.Error(), "no compose file") {
		t.Errorf("Open of a missing file: %v", err)
	}
}

// A node name the cluster does not have, and a partition no network could make, are
// refused before docker is asked to change anything.
func TestBadNodesChangeNothing(t *testing.T) {
	docker, log := fakeDocker(t, "up")
	c, err := Open(context.Background(), composeFile, Options{Docker: docker, Project: "cellartest"})
	if err != nil {
		t.Fatal(err)
	}
	before := calls(t, log)
	ctx := context.Background()
	for _, tt := range []struct {
		what string
		err  error
		says string
	}{
		{"stop", c.StopNode(ctx, "cell-9-index-0"), `no node "cell-9-index-0"`},
		{"kill", c.KillNode(ctx, "index-0"), `no node "index-0"`},
		{"pause", c.PauseNode(ctx, "cell-2-index-0"), "has no container for cell-2-index-0"},
		{"partition of two cells", c.Partition(ctx, []string{"cell-0-index-0", "cell-1-index-0"}), "the nodes cut off together are of one cell"},
		{"partition of a gateway", c.Partition(ctx, []string{"gateway-0"}), "belongs to no cell"},
		{"partition of nothing", c.Partition(ctx, nil), "name the nodes"},
	} {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.says) || strings.Contains(tt.err.Error(), "\n") {
			t.Errorf("%s: %v, want one line saying %q", tt.what, tt.err, tt.says)
		}
	}
	if !errors.Is(c.StopNode(ctx, "cell-9-index-0"), ErrUnknownNode) {
		t.Errorf("an unknown node is not ErrUnknownNode")
	}
	if after := calls(t, log); after != before {
		t.Errorf("docker called after Open:\n%s", strings.TrimPrefix(after, before))
	}
}

func TestDefaultProject(t *testing.T) {
	for dir, want := range map[string]string{"/work/main/deploy": "deploy", "/tmp/My Cellar.2": "mycellar2", "/x/a_b-c": "a_b-c"} {
		if got := DefaultProject(dir); got != want {
			t.Errorf("DefaultProject(%q) = %q, want %q", dir, got, want)
		}
	}
}
