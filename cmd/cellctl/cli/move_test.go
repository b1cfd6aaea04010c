package cli

import (
	"strings"
	"testing"
)

// move refuses a request it cannot make sense of before it looks for a cluster.
func TestMoveUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"move", "--data-dir", dir, "--bucket", "b"}, "give --to CELL and one of --bucket B or --slot N"},
		{[]string{"move", "--data-dir", dir, "--to", "cell-1"}, "give --to CELL and one of --bucket B or --slot N"},
		{[]string{"move", "--data-dir", dir, "--bucket", "b", "--slot", "3", "--to", "cell-1"}, "one of --bucket B or --slot N"},
		{[]string{"move", "--data-dir", dir, "--bucket", "b", "--to", "cell-1", "--confirm", "abc"}, "--reason is required"},
		{[]string{"move", "--data-dir", dir, "--bucket", "b", "--to", "cell-1", "--output", "yaml"}, `--output "yaml"`},
	} {
		t.Run(strings.Join(tc.args[3:], " "), func(t *testing.T) {
			code, _, stderr := run(t, tc.args...)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d (stderr %q)", code, ExitUsage, stderr)
			}
			checkOneLine(t, stderr, tc.want)
		})
	}
}

// A compose cluster runs no moves yet: move says so before it looks for the project.
func TestMoveRefusesACompose(t *testing.T) {
	code, _, stderr := run(t, "move", "--cluster", "compose:"+t.TempDir()+"/docker-compose.yml", "--bucket", "b", "--to", "cell-1")
	if code != ExitError {
		t.Errorf("exit code %d, want %d (stderr %q)", code, ExitError, stderr)
	}
	checkOneLine(t, stderr, "moving buckets is not offered on a compose cluster yet")
}
