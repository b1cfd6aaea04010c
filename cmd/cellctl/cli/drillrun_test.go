package cli

import (
	"strings"
	"testing"
)

func TestDrillList(t *testing.T) {
	code, out, _ := run(t, "drill", "list")
	if code != ExitOK || !strings.Contains(out, "s3-2017") || !strings.Contains(out, "smoke") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func TestDrillRunRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"drill", "run"}, ExitUsage, "one scenario"},
		{[]string{"drill", "run", "no-such-drill", "--data-dir", dir}, ExitUsage, "not a built-in (index-partition, index-pill, lose-a-disk, move-noisy-tenant, poison-pill, s3-2017, smoke, storage-copies"},
		{[]string{"drill", "run", "smoke", "--output", "yaml", "--data-dir", dir}, ExitUsage, "--output"},
		{[]string{"drill", "run", "smoke", "--data-dir", dir}, ExitError, "no cluster"},
	} {
		code, _, errOut := run(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, errOut)
		}
	}
}

// --rate and --duration are checked before anything else: a bad value is a usage
// error in one line; good values go on to look for the cluster.
func TestDrillRunLoadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		flags []string
		code  int
		want  string
	}{
		{[]string{"--rate", "0"}, ExitUsage, "--rate must be above 0 and at most 5000 requests per second, not 0"},
		{[]string{"--rate", "-5"}, ExitUsage, "--rate must be above 0 and at most 5000 requests per second, not -5"},
		{[]string{"--rate", "NaN"}, ExitUsage, "--rate must be above 0 and at most 5000 requests per second, not NaN"},
		{[]string{"--rate", "100000"}, ExitUsage, "--rate must be above 0 and at most 5000 requests per second, not 100000"},
		{[]string{"--rate", "fast"}, ExitUsage, `invalid argument "fast" for "--rate" flag`},
		{[]string{"--duration", "0s"}, ExitUsage, "--duration must be above 0 and at most 1h0m0s, not 0s"},
		{[]string{"--duration", "-1m"}, ExitUsage, "--duration must be above 0 and at most 1h0m0s, not -1m0s"},
		{[]string{"--duration", "3h"}, ExitUsage, "--duration must be above 0 and at most 1h0m0s, not 3h0m0s"},
		{[]string{"--duration", "soon"}, ExitUsage, `invalid argument "soon" for "--duration" flag`},
		{[]string{"--rate", "0.5", "--duration", "1s"}, ExitUsage, "--rate must give the load at least one request"},
		{[]string{"--rate", "20", "--duration", "90s"}, ExitError, "no cluster"},
	} {
		args := append([]string{"drill", "run", "s3-2017", "--data-dir", dir}, tc.flags...)
		code, _, errOut := run(t, args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d:\n%s", tc.flags, code, tc.code, errOut)
		}
		checkOneLine(t, errOut, tc.want)
	}
}
