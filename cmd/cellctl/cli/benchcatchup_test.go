package cli

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/cellarsim/cellar/bench"
)

func TestBenchCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	bin := cellctlBinary(t)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "bench", "catchup", "--writes", "20,300", "--output", "json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench catchup: %v\n%s", err, stderr.String())
	}
	var rows []bench.CatchUpRow
	if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
		t.Fatalf("output is not JSON rows: %v\n%s", err, stdout.String())
	}
	if len(rows) != 2 || rows[0].Writes != 20 || rows[1].Writes != 300 {
		t.Fatalf("rows %+v, want one for 20 and one for 300 writes", rows)
	}
	for _, r := range rows {
		// Caught up means applied everything, which comes after being ready.
		if r.ReadyMS <= 0 || r.CatchUpMS < r.ReadyMS || r.WritesPerS <= 0 {
			t.Errorf("row %+v has an impossible measurement", r)
		}
	}
}
