package drill

import (
	"strings"
	"testing"
)

func TestBuiltinScenariosParse(t *testing.T) {
	names := map[string]bool{}
	for _, b := range Builtins() {
		names[b.Name] = true
		if b.Description == "" {
			t.Errorf("%s has no description", b.Name)
		}
	}
	for _, want := range []string{"s3-2017", "smoke"} {
		if !names[want] {
			t.Errorf("no built-in %s (have %v)", want, names)
		}
	}
	if _, err := LoadScenario("no-such-drill"); err == nil || !strings.Contains(err.Error(), "s3-2017") {
		t.Errorf("unknown scenario: %v", err)
	}
}

func TestParseScenarioRefusesMistakes(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"no steps", "name: x\n", "no steps"},
		{"two actions", "name: x\nsteps:\n  - wait: 1s\n    kill: {nodes: [a]}\n", "exactly one"},
		{"bad tier", "name: x\nsteps:\n  - drain: {tier: gateway, count: 1}\n", "tier"},
		{"bad expect", "name: x\nsteps:\n  - drain: {tier: index, count: 1, expect: maybe}\n", "expect"},
		{"bad duration", "name: x\nsteps:\n  - wait: soon\n", "duration"},
		{"unknown field", "name: x\nsteps:\n  - wait: 1s\n    colour: red\n", "colour"},
		{"assert nothing", "name: x\nsteps:\n  - assert: {cell: others}\n", "one of"},
	} {
		if _, err := ParseScenario([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}
