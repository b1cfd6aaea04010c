package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway/mover"
	"github.com/cellarsim/cellar/localcluster"
)

type moveOptions struct {
	dataDir  string
	bucket   string
	slot     int
	to       string
	confirm  string
	reason   string
	output   string
	progress time.Duration
}

func newMoveCommand() *cobra.Command {
	o := moveOptions{slot: -1}
	cmd := &cobra.Command{
		Use:   "move",
		Short: "Move a bucket, or a slot's buckets, to another cell while it serves, behind guardrails",
		Long: `move moves a bucket (--bucket B) or every bucket of a slot (--slot N) of a cluster
with a map group (topology map_nodes) to another cell (--to CELL), while it serves.

  - Without --confirm it only shows the plan: what moves, the source and target
    cells, the objects and bytes to copy, the target's health and headroom (storage
    nodes that take writes against the copies it keeps), and a plan id.
  - --confirm PLAN_ID --reason TEXT runs that plan and nothing else.
  - Refused: a target that is not healthy, or has fewer storage nodes that take writes
    than the copies it keeps of every object.
  - The copy: the bucket's objects are copied while it serves, what changed is copied
    again, then its writes are fenced in the source for a moment (clients get 503 and
    retry), the last changes are copied, the cell map flips the bucket to the target,
    and the source's copy is reclaimed. Progress (objects/s, bytes/s, ETA) is printed
    as it goes. Ctrl-C before the flip undoes the move: the source keeps serving.
  - A move that stopped after the flip, before the source dropped its copy (its
    supervisor died), is finished by the same command: the bucket is in the target
    already, the map still names the source, and the plan (nothing to copy) has the
    source drop the records it kept.
  - Every plan, refusal, confirmation and outcome is appended to DATA_DIR/audit.log
    ('cellctl audit'); the kill switch ('cellctl drill halt') refuses a move.

The guardrails are kept by the cluster's supervisor ('cellctl up'), not by this command:
move sends the request to its control endpoint, which plans, checks, audits and runs
the move with a certificate of its own (the operator's may not change the cell map's
entries or fence a bucket), and prints the plan and the progress it streams back. A
compose cluster (--cluster compose:FILE) runs no moves yet (see docs/cellmap.md).`,
		Example: `  cellctl move --bucket photos --to cell-3
  cellctl move --bucket photos --to cell-3 --confirm 4be1a09c22f1 --reason "noisy tenant"
  cellctl move --slot 17 --to cell-3 --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runMove(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir, "data directory of a cluster started by 'cellctl up'")
	f.StringVar(&o.bucket, "bucket", "", "the bucket to move")
	f.IntVar(&o.slot, "slot", -1, "the slot whose buckets move (and the slot itself)")
	f.StringVar(&o.to, "to", "", "the target cell (required)")
	f.StringVar(&o.confirm, "confirm", "", "run the plan with this id (shown by the dry run)")
	f.StringVar(&o.reason, "reason", "", "why: required to run a plan, recorded in the audit log")
	f.DurationVar(&o.progress, "progress-every", 2*time.Second, "how often a long copy prints its progress")
	outputFlag(cmd, &o.output)
	clusterFlag(cmd)
	return cmd
}

// moveReport is move's JSON output.
type moveReport struct {
	Plan     *guard.Plan        `json:"plan"`
	Executed bool               `json:"executed"`
	Steps    []guard.StepResult `json:"steps,omitempty"`
	Moved    []mover.Stats      `json:"moved,omitempty"`
	Error    string             `json:"error,omitempty"`
}

func runMove(cmd *cobra.Command, o moveOptions) error {
	if err := checkOutput(&o.output); err != nil {
		return err
	}
	if o.to == "" || (o.bucket == "") == (o.slot < 0) {
		return usageErrorf("give --to CELL and one of --bucket B or --slot N (see 'cellctl move --help')")
	}
	if o.confirm != "" && strings.TrimSpace(o.reason) == "" {
		return usageErrorf("--reason is required to run a plan")
	}
	compose, err := composeFile(cmd)
	if err != nil {
		return err
	}
	if compose != "" {
		return errors.New("moving buckets is not offered on a compose cluster yet: only a 'cellctl up' cluster runs moves (see docs/cellmap.md)")
	}
	file, err := localcluster.Running(o.dataDir)
	if err != nil {
		return err
	}
	if file.Topology.MapNodes == 0 {
		return usageErrorf("this cluster has no map group (topology map_nodes: 0): its buckets cannot move")
	}
	ctl, err := localcluster.NewControl(file)
	if errors.Is(err, localcluster.ErrNoControl) {
		return errors.New("the cluster's supervisor serves no control endpoint: restart the cluster with 'cellctl up'")
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	req := localcluster.MoveRequest{Bucket: o.bucket, To: o.to, Confirm: o.confirm, Reason: o.reason,
		Command: commandLine(), ProgressEveryMS: o.progress.Milliseconds()}
	if o.slot >= 0 {
		req.Slot = &o.slot
	}
	out := cmd.OutOrStdout()
	var progress func(mover.Progress)
	if o.output == outputText {
		progress = func(p mover.Progress) { printMoveProgress(out, p) }
	}
	res, moved, err := ctl.Move(ctx, req, func(p *guard.Plan) {
		if o.output == outputText {
			printMovePlan(out, p, o)
		}
	}, progress)
	if o.output == outputJSON && res != nil {
		rep := moveReport{Plan: res.Plan, Executed: res.Executed, Steps: res.Steps, Moved: moved}
		if err != nil {
			rep.Error = err.Error()
		}
		if jerr := printJSON(out, rep); jerr != nil {
			return jerr
		}
	} else if err == nil && res != nil && res.Executed {
		for _, st := range moved {
			fmt.Fprintln(out, movedLine(st, res.Plan.Source, res.Plan.Target))
		}
	}
	return guardError(err)
}

func printMovePlan(out io.Writer, p *guard.Plan, o moveOptions) {
	if p.GuardrailsOff {
		printGuardrailsOff(out)
	}
	d := p.MoveDetail
	what := "bucket " + d.Bucket
	if d.Slot >= 0 {
		what = fmt.Sprintf("slot %d (%d bucket%s: %s)", d.Slot, len(d.Buckets), plural(len(d.Buckets)), strings.Join(d.Buckets, ", "))
	}
	fmt.Fprintf(out, "Plan %s: move %s from %s to %s\n", p.ID, what, d.Source, d.Target)
	if len(d.Finish) == 0 || len(d.Finish) < len(d.Buckets) {
		fmt.Fprintf(out, "  copy:      %d object%s, %s\n", d.Objects, plural(int(d.Objects)), humanBytes(d.Bytes))
	}
	if len(d.Finish) > 0 {
		fmt.Fprintf(out, "  finish:    %s, in %s already (an earlier move stopped after its flip): nothing to copy; %s drops the records it still holds\n",
			strings.Join(d.Finish, ", "), d.Target, d.Source)
	}
	health := "healthy"
	if !d.TargetHealthy {
		health = "NOT healthy (" + d.TargetHealth + ")"
	}
	takes := "storage nodes take"
	if d.TargetWritableNodes == 1 {
		takes = "storage node takes"
	}
	copies := "copies"
	if d.TargetCopies == 1 {
		copies = "copy"
	}
	fmt.Fprintf(out, "  target:    %s is %s; %d %s writes, it keeps %d %s of every object\n",
		d.Target, health, d.TargetWritableNodes, takes, d.TargetCopies, copies)
	fmt.Fprintf(out, "  cell map:  version %d\n", d.MapVersion)
	for _, v := range p.Violations {
		state := "REFUSED"
		if v.Lifted {
			state = "let through (guardrails off)"
		}
		fmt.Fprintf(out, "  %s (%s): %s\n", state, v.Rule, v.Message)
	}
	fmt.Fprintln(out)
	switch {
	case o.confirm != "":
	case !p.Allowed():
		fmt.Fprintln(out, "Nothing done.")
	default:
		target := "--bucket " + o.bucket
		if o.slot >= 0 {
			target = fmt.Sprintf("--slot %d", o.slot)
		}
		fmt.Fprintf(out, "Dry run: nothing done. To run exactly this plan:\n  cellctl move --data-dir %s %s --to %s --confirm %s --reason \"<why>\"\n",
			o.dataDir, target, o.to, p.ID)
	}
}

// movedLine says what one bucket's move did.
func movedLine(st mover.Stats, source, target string) string {
	if st.ReclaimOnly {
		return fmt.Sprintf("finished the move of %s to %s: %s dropped the %d object record%s its stopped move had left there (in %s)",
			st.Bucket, target, source, st.Reclaimed, plural(int(st.Reclaimed)), st.Took.Round(time.Millisecond))
	}
	kept := ""
	if st.Kept > 0 {
		kept = fmt.Sprintf(" (%d more kept from the earlier run)", st.Kept)
	}
	return fmt.Sprintf("moved %s to %s: %d objects (%s)%s in %s, writes paused %s", st.Bucket, target,
		st.Objects, humanBytes(st.Bytes), kept, st.Took.Round(time.Millisecond), st.WritePause.Round(time.Millisecond))
}

func printMoveProgress(out io.Writer, p mover.Progress) {
	eta := ""
	if p.ETA > 0 {
		eta = ", ETA " + p.ETA.Round(time.Second).String()
	}
	fmt.Fprintf(out, "  %s %-8s %d/%d objects, %s, %.0f objects/s, %s/s%s\n", p.Bucket, p.Step, p.Objects, p.Total,
		humanBytes(p.Bytes), p.ObjectsPerSec, humanBytes(int64(p.BytesPerSec)), eta)
}
