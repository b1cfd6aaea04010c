package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway/mover"
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

// The line of a bucket's move says what it did: a copy, or the finish of a move that
// stopped after its flip; a resumed copy says what it kept of the earlier run's.
func TestMovedLine(t *testing.T) {
	for _, tc := range []struct {
		st   mover.Stats
		want string
	}{
		{mover.Stats{Bucket: "b", Objects: 3, Bytes: 2048, Took: 1500 * time.Millisecond, WritePause: 12 * time.Millisecond},
			"moved b to cell-1: 3 objects (2.0 KiB) in 1.5s, writes paused 12ms"},
		{mover.Stats{Bucket: "b", Objects: 3, Bytes: 2048, Kept: 997, Took: 1500 * time.Millisecond, WritePause: 12 * time.Millisecond},
			"moved b to cell-1: 3 objects (2.0 KiB) (997 more kept from the earlier run) in 1.5s, writes paused 12ms"},
		{mover.Stats{Bucket: "b", ReclaimOnly: true, Reclaimed: 24, Took: 40 * time.Millisecond},
			"finished the move of b to cell-1: cell-0 dropped the 24 object records its stopped move had left there (in 40ms)"},
	} {
		if got := movedLine(tc.st, "cell-0", "cell-1"); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

// The plan of a move says what it copies, and says so of a bucket whose earlier move
// it only finishes, rather than "0 objects".
func TestMovePlanText(t *testing.T) {
	for _, tc := range []struct {
		name    string
		d       guard.MoveDetail
		want    []string
		notWant []string
	}{
		{"copy", guard.MoveDetail{Bucket: "b", Slot: -1, Buckets: []string{"b"}, Source: "cell-0", Target: "cell-1", Objects: 3, Bytes: 2048},
			[]string{"copy:      3 objects, 2.0 KiB"}, []string{"finish:"}},
		{"finish", guard.MoveDetail{Bucket: "b", Slot: -1, Buckets: []string{"b"}, Finish: []string{"b"}, Source: "cell-0", Target: "cell-1"},
			[]string{"finish:    b, in cell-1 already", "nothing to copy; cell-0 drops the records it still holds"}, []string{"copy:"}},
		{"empty slot", guard.MoveDetail{Slot: 3, Source: "cell-0", Target: "cell-1"},
			[]string{"copy:      0 objects"}, []string{"finish:"}},
		{"slot with both", guard.MoveDetail{Slot: 7, Buckets: []string{"a", "b"}, Finish: []string{"b"}, Source: "cell-0", Target: "cell-1", Objects: 1, Bytes: 10},
			[]string{"copy:      1 object, ", "finish:    b, in cell-1 already"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			printMovePlan(&out, guard.PlanMove(tc.d, false), moveOptions{})
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("the plan lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("the plan says %q:\n%s", w, out.String())
				}
			}
		})
	}
}
