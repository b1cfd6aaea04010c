// Package cmd_test checks what each daemon binary links: the daemon bootstrap and its
// own role, and nothing of the operator's tools (the CLI, drills, load generator,
// status page, deployment, benchmarks), of the S3 client SDK, or of the other roles.
// A daemon binary that links less starts faster, is smaller, and cannot break when
// code it does not run changes.
package cmd_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/cellarsim/cellar/"

// notInAnyDaemon are packages (and everything below them) that no daemon links.
var notInAnyDaemon = []string{
	module + "cmd/cellctl",
	module + "node",
	module + "drill",
	module + "loadgen",
	module + "status",
	module + "localcluster",
	module + "clustertest",
	module + "deploy",
	module + "bench",
	module + "internal/linearkv",
	"github.com/anishathalye/porcupine",
	"github.com/aws/aws-sdk-go-v2",
	"github.com/spf13/cobra",
}

// roleCode is the code of each role that only its own daemon links.
var roleCode = map[string][]string{
	"indexd":     {module + "cell/index"},
	"placementd": {module + "cell/placement"},
	"storaged":   {module + "cell/storage"},
	"gatewayd":   {module + "gateway", module + "router"},
	"routerd":    {module + "frontrouter"},
	"mapd":       {module + "cell/mapgroup"},
}

// sharedCode is code that several daemons link, by design: the raft groups (each
// cell's index, and the map group) keep their logs in Pebble.
var sharedCode = map[string][]string{
	"indexd": {"github.com/cockroachdb/pebble", "github.com/hashicorp/raft", module + "internal/raftpebble"},
	"mapd":   {"github.com/cockroachdb/pebble", "github.com/hashicorp/raft", module + "internal/raftpebble"},
}

func TestDaemonsLinkOnlyWhatTheyRun(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to list dependencies with")
	}
	for daemon, own := range roleCode {
		t.Run(daemon, func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command("go", "list", "-deps", "./"+daemon).Output()
			if err != nil {
				t.Fatalf("go list -deps ./%s: %v", daemon, stderr(err))
			}
			deps := strings.Fields(string(out))
			forbidden := slices.Clone(notInAnyDaemon)
			for other, code := range roleCode {
				if other != daemon {
					forbidden = append(forbidden, code...)
				}
			}
			for other, code := range sharedCode {
				for _, c := range code {
					if other != daemon && !slices.Contains(sharedCode[daemon], c) {
						forbidden = append(forbidden, c)
					}
				}
			}
			for _, f := range forbidden {
				if p, ok := findUnder(deps, f); ok {
					t.Errorf("%s links %s", daemon, p)
				}
			}
			for _, o := range append(slices.Clone(own), sharedCode[daemon]...) {
				if _, ok := findUnder(deps, o); !ok {
					t.Errorf("%s does not link %s, its own role's code", daemon, o)
				}
			}
		})
	}
}

// findUnder returns the first of deps that is prefix or a package below it.
func findUnder(deps []string, prefix string) (string, bool) {
	for _, d := range deps {
		if d == prefix || strings.HasPrefix(d, prefix+"/") {
			return d, true
		}
	}
	return "", false
}

func stderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return err.Error() + ": " + string(ee.Stderr)
	}
	return err.Error()
}
