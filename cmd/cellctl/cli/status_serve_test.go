package cli

import "testing"

func TestStatusServeRefusals(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status", "--serve", "127.0.0.1:0", "--output", "json"}, ExitUsage, "--output and --serve do not go together"},
		{[]string{"status", "--serve", "127.0.0.1:0", "--stale-after", "0s"}, ExitUsage, "--stale-after and --interval must be positive"},
		{[]string{"status", "--serve", "127.0.0.1:0", "--join", ""}, ExitUsage, "--join needs at least one gossip address"},
		{[]string{"status", "--serve", "127.0.0.1:0", "--data-dir", empty}, ExitError, "no cluster found"},
		{[]string{"status", "--serve", "not-an-address", "--join", "127.0.0.1:1"}, ExitError, "status page"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr)
			continue
		}
		checkOneLine(t, stderr, tc.want)
	}
}
