package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestProgressBarInALog: to a file or pipe the bar is a line at every quarter,
// and the last line says how long the work took.
func TestProgressBarInALog(t *testing.T) {
	var b bytes.Buffer
	bar := newProgressBar(&b, "seeding 1000 objects into 2 cells", 1000)
	for done := 0; done <= 1000; done += 10 {
		bar.set(done)
	}
	bar.finish(1500 * time.Millisecond)
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	var pcts []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "seeding 1000 objects into 2 cells [") {
			t.Errorf("line %q lacks the label and bar", l)
		}
		pcts = append(pcts, strings.Fields(l)[7])
	}
	if got := strings.Join(pcts, " "); got != "0% 25% 50% 75% 100%" {
		t.Errorf("percentages %s, want 0%% 25%% 50%% 75%% 100%%\n%s", got, b.String())
	}
	if !strings.HasSuffix(lines[len(lines)-1], "1000/1000 in 1.5s") || strings.Contains(b.String(), "\r") {
		t.Errorf("last line %q, want the total and the time, and no carriage returns", lines[len(lines)-1])
	}
}
