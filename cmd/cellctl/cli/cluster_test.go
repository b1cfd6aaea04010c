package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --cluster compose:FILE when Docker or the project is not there, or the value is
// wrong: one line on stderr, a non-zero exit code, and no docker command but the
// looks (version, ps) run.
func TestComposeClusterErrors(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "calls.log")
	docker := filepath.Join(dir, "docker")
	script := `#!/bin/sh
echo "$*" >> ` + log + `
case "$1" in
version) [ -n "$FAKE_DOCKER_DOWN" ] && { echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1; }; echo 20.10 ;;
ps) ;;
*) exit 1 ;;
esac
`
	if err := os.WriteFile(docker, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := composeOptions
	composeOptions.Docker, composeOptions.Project = docker, "cellartest"
	t.Cleanup(func() { composeOptions = old })
	file := "compose:../../../deploy/docker-compose.yml"
	for _, tt := range []struct {
		name string
		down bool
		args []string
		code int
		says string
	}{
		{"docker down", true, []string{"drain", "--cluster", file, "--cell", "cell-1", "--tier", "index", "--count", "1"}, ExitError, "Docker does not answer: Cannot connect to the Docker daemon"},
		{"not running", false, []string{"restart", "--cluster", file, "--cell", "cell-1", "--tier", "index"}, ExitError, `compose project "cellartest"`},
		{"status, not running", false, []string{"status", "--cluster", file}, ExitError, "has no running container"},
		{"drill run, not running", false, []string{"drill", "run", "index-partition", "--cluster", file}, ExitError, "has no running container"},
		{"undrain, docker down", true, []string{"undrain", "--cluster", file, "--cell", "cell-1"}, ExitError, "start the Docker daemon"},
		{"not compose", false, []string{"drain", "--cluster", "kube:x", "--cell", "cell-1", "--tier", "index", "--count", "1"}, ExitUsage, "want compose:FILE"},
		{"both", false, []string{"status", "--cluster", file, "--data-dir", dir}, ExitUsage, "not both"},
		{"no file", false, []string{"status", "--cluster", "compose:" + filepath.Join(dir, "nope.yml")}, ExitError, "no compose file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.down {
				t.Setenv("FAKE_DOCKER_DOWN", "1")
			}
			_ = os.Remove(log)
			var stdout, stderr bytes.Buffer
			code := Main(tt.args, &stdout, &stderr)
			msg := strings.TrimSpace(stderr.String())
			if code != tt.code || !strings.Contains(msg, tt.says) || strings.Count(msg, "\n") > 0 {
				t.Fatalf("exit %d, stderr %q; want exit %d and one line saying %q", code, msg, tt.code, tt.says)
			}
			b, _ := os.ReadFile(log)
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if f := strings.Fields(line); len(f) > 0 && f[0] != "version" && f[0] != "ps" {
					t.Errorf("docker %s was run", line)
				}
			}
		})
	}
}
