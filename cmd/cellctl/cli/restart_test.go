package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRestartRollingDryRunAndConfirm(t *testing.T) {
	dir, fc := drillCluster(t, nil)
	args := []string{"restart", "--data-dir", dir, "--cell", "cell-2", "--tier", "index"}
	code, out, stderr := run(t, args...)
	if code != ExitOK || stderr != "" {
		t.Fatalf("dry run: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "rolling restart of cell-2") || !strings.Contains(out, "cell-2-index-1, cell-2-index-2, cell-2-index-0") {
		t.Errorf("plan:\n%s", out)
	}
	id := planIDOf(t, out)
	if !strings.Contains(out, "--tier index --confirm "+id) || len(fc.actions()) != 0 {
		t.Errorf("dry run:\n%s\ncalls %v", out, fc.actions())
	}
	code, out, stderr = run(t, append(args, "--confirm", id, "--reason", "new build", "--output", "json")...)
	if code != ExitOK {
		t.Fatalf("confirm: exit %d: %s", code, stderr)
	}
	var rep restartReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.Executed {
		t.Fatalf("json %v:\n%s", err, out)
	}
	if len(rep.ReadyMS) != 3 || len(rep.Steps) != 6 {
		t.Errorf("ready times %v, steps %d", rep.ReadyMS, len(rep.Steps))
	}
	want := "stop cell-2-index-1,start cell-2-index-1,stop cell-2-index-2,start cell-2-index-2,stop cell-2-index-0,start cell-2-index-0"
	if got := strings.Join(fc.actions(), ","); got != want {
		t.Errorf("calls %s", got)
	}
	if got := auditDecisions(t, dir); got != "planned,confirmed,step,step,step,step,step,step,done" {
		t.Errorf("audit %s", got)
	}
}

func TestRestartGuardrails(t *testing.T) {
	dir, fc := drillCluster(t, nil)
	// The whole cell, rolling: its only placement node leaves the tier empty.
	code, out, stderr := run(t, "restart", "--data-dir", dir, "--cell", "cell-0")
	if code != ExitRefused || !strings.Contains(out, "REFUSED (floor)") {
		t.Errorf("rolling with a single placement node: exit %d\n%s", code, out)
	}
	checkOneLine(t, stderr, "placement")
	code, out, _ = run(t, "restart", "--data-dir", dir, "--cell", "cell-0", "--tier", "index,storage", "--cold")
	if code != ExitRefused || strings.Count(out, "REFUSED (floor)") != 2 {
		t.Errorf("cold: exit %d\n%s", code, out)
	}
	wrong := []string{"restart", "--data-dir", dir, "--cell", "cell-0", "--order", "storage,index"}
	code, out, _ = run(t, wrong...)
	if code != ExitRefused || !strings.Contains(out, "REFUSED (order)") {
		t.Errorf("wrong order: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, append(wrong, "--override", "show it")...)
	if code != ExitOK || !strings.Contains(out, "overridden (order)") || !strings.Contains(out, `--override "show it"`) {
		t.Errorf("wrong order with override: exit %d\n%s", code, out)
	}
	for _, bad := range [][]string{{"--tier", "gateway"}, {"--order", "index,index"}, {"--cell", "cell-8"}, {"--confirm", "x"}} {
		a := append([]string{"restart", "--data-dir", dir, "--cell", "cell-0"}, bad...)
		if code, _, _ := run(t, a...); code != ExitUsage {
			t.Errorf("%v: exit %d", bad, code)
		}
	}
	if len(fc.actions()) != 0 {
		t.Errorf("acted: %v", fc.actions())
	}
}
