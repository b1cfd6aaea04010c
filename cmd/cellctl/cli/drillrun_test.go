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
		{[]string{"drill", "run", "no-such-drill", "--data-dir", dir}, ExitUsage, "not a built-in (s3-2017, smoke)"},
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
		{[]string{"--rate", "0"}, ExitUsage, `"0" for "--rate" flag: want a positive number of requests per second`},
		{[]string{"--rate", "-5"}, ExitUsage, `"-5" for "--rate" flag: want a positive number`},
		{[]string{"--rate", "NaN"}, ExitUsage, `"NaN" for "--rate" flag: want a positive number`},
		{[]string{"--rate", "fast"}, ExitUsage, `"fast" for "--rate" flag: want a positive number`},
		{[]string{"--rate", "100000"}, ExitUsage, "a rate of 100000 requests/s is out of range"},
		{[]string{"--duration", "0s"}, ExitUsage, `"0s" for "--duration" flag: want a positive duration`},
		{[]string{"--duration", "-1m"}, ExitUsage, `"-1m" for "--duration" flag: want a positive duration`},
		{[]string{"--duration", "soon"}, ExitUsage, `"soon" for "--duration" flag: want a positive duration`},
		{[]string{"--duration", "3h"}, ExitUsage, "a load duration of 3h0m0s is out of range"},
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
