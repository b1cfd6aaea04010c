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
