package cli

import (
	"strings"
	"testing"
)

// A comparison whose sides cannot run is refused before anything starts: exit code 2
// and one line naming the side and what is wrong.
func TestCompareUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"drill", "compare", "poison-pill", "--a", "sharding=some", "--b", "sharding=shuffle"}, `--a: sharding must be "all", "plain" or "shuffle", not "some"`},
		{[]string{"drill", "compare", "poison-pill", "--a", "sharding=all", "--b", "shard_size=9"}, "--b: shard_size 9 is larger than the fleet of 8 gateways"},
		{[]string{"drill", "compare", "poison-pill", "--a", "tenants=0", "--b", "sharding=all"}, "--a: tenants=0: want 1 to 1000"},
		{[]string{"drill", "compare", "poison-pill", "--a", "cells=1"}, "--b is required"},
		{[]string{"drill", "compare", "no-such-scenario", "--a", "cells=1", "--b", "cells=2"}, "no-such-scenario"},
	} {
		t.Run(strings.Join(tc.args[2:], " "), func(t *testing.T) {
			code, _, stderr := run(t, tc.args...)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d (stderr %q)", code, ExitUsage, stderr)
			}
			checkOneLine(t, stderr, tc.want)
		})
	}
}
