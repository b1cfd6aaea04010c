package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/localcluster"
)

// codeError is an error with an exit code of its own.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }
func (e *codeError) ExitCode() int { return e.code }

func refused(format string, args ...any) error {
	return &codeError{ExitRefused, fmt.Errorf(format, args...)}
}

func halted(err error) error { return &codeError{ExitHalted, err} }

type drainOptions struct {
	dataDir   string
	compose   string // FILE of --cluster compose:FILE
	cell      string
	tier      string
	count     int
	nodes     []string
	confirm   string
	reason    string
	override  string
	output    string
	minPlace  int
	minStore  int
	capShare  float64
	healthFor time.Duration
}

func newDrainCommand() *cobra.Command {
	var o drainOptions
	cmd := &cobra.Command{
		Use:   "drain",
		Short: "Take nodes of one tier of one cell out of a running cluster, behind guardrails",
		Long: `drain stops nodes of one tier (index, placement or storage) of one cell of a cluster
started by 'cellctl up'. It goes through the guardrails:

  - Without --confirm it only shows the plan: the nodes (followers before the index
    leader), the share of the tier they are in the cell and region-wide, what the
    cell keeps against its floor, whether the index keeps quorum, and a plan id.
  - --confirm PLAN_ID --reason TEXT runs that plan and nothing else: if anything it
    was decided on has changed (another node went down, a different override), the
    plan id differs and drain refuses.
  - The floor: a cell keeps a majority of its index group, and at least
    --min-placement placement and --min-storage storage nodes.
  - The cap: one command takes at most --cap-share of a tier region-wide (at least
    one node).
  - --override "WHY" lifts the cap and the floor; a plan that crosses the floor says
    so loudly, and the audit log records the override.
  - Paced: one node at a time, waiting for the cell to be healthy before the next.
  - Every plan, refusal, confirmation, override and step is appended to
    DATA_DIR/audit.log ('cellctl audit' shows it); 'cellctl drill halt' stops it.

The guardrails are kept by the cluster's supervisor ('cellctl up'), not by this command:
drain sends the request to its control endpoint, which plans, checks, audits and acts,
and prints the plan and each step as the supervisor streams them back (see
docs/control.md). 'cellctl undrain' starts the nodes again.`,
		Example: `  cellctl drain --cell cell-2 --tier index --count 1
  cellctl drain --cell cell-2 --tier index --count 1 --confirm 1f0c2d9e8a7b --reason "rotate host"
  cellctl drain --cell cell-2 --tier index --nodes cell-2-index-1,cell-2-index-2 --override "replay 2017"
  cellctl drain --cell cell-0 --tier storage --count 1 --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runDrain(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir, "data directory of a cluster started by 'cellctl up'")
	f.StringVar(&o.cell, "cell", "", "the cell to drain (required)")
	f.StringVar(&o.tier, "tier", "", "the tier: index, placement or storage (required)")
	f.IntVar(&o.count, "count", 0, "how many nodes to take out (drain picks them)")
	f.StringSliceVar(&o.nodes, "nodes", nil, "exactly these nodes, in this order (comma-separated)")
	f.StringVar(&o.confirm, "confirm", "", "run the plan with this id (shown by the dry run)")
	f.StringVar(&o.reason, "reason", "", "why: required to run a plan, recorded in the audit log")
	f.StringVar(&o.override, "override", "", "why the guardrails may be crossed: lifts the cap and the floor")
	outputFlag(cmd, &o.output)
	clusterFlag(cmd)
	pol := guard.DefaultPolicy()
	f.IntVar(&o.minPlace, "min-placement", pol.MinPlacement, "floor of the placement tier: nodes a cell keeps up")
	f.IntVar(&o.minStore, "min-storage", pol.MinStorage, "floor of the storage tier: nodes a cell keeps up")
	f.Float64Var(&o.capShare, "cap-share", pol.CapShare, "most of a tier region-wide one command may take (0-1)")
	f.DurationVar(&o.healthFor, "health-timeout", 30*time.Second, "longest wait for the cell to be healthy between nodes")
	return cmd
}

// drainReport is drain's JSON output.
type drainReport struct {
	Plan     *guard.Plan        `json:"plan"`
	Executed bool               `json:"executed"`
	Steps    []guard.StepResult `json:"steps,omitempty"`
	Error    string             `json:"error,omitempty"`
}

func runDrain(cmd *cobra.Command, o drainOptions) error {
	if err := checkOutput(&o.output); err != nil {
		return err
	}
	if o.cell == "" || o.tier == "" {
		return usageErrorf("--cell and --tier are required (see 'cellctl drain --help')")
	}
	if o.count < 0 || (o.count == 0 && cmd.Flags().Changed("count")) {
		return usageErrorf("--count must be 1 or more, not %d", o.count)
	}
	if (o.count > 0) == (len(o.nodes) > 0) {
		return usageErrorf("give --count N or --nodes a,b, not both or neither")
	}
	if o.confirm != "" && strings.TrimSpace(o.reason) == "" {
		return usageErrorf("--reason is required to run a plan")
	}
	if o.capShare <= 0 || o.capShare > 1 {
		return usageErrorf("--cap-share must be above 0 and at most 1, not %g", o.capShare)
	}
	if o.minPlace < 1 || o.minStore < 1 {
		return usageErrorf("--min-placement and --min-storage must be at least 1")
	}
	file, err := runningCluster(cmd, o.dataDir)
	if err != nil {
		return err
	}
	o.compose, _ = composeFile(cmd)
	out := cmd.OutOrStdout()
	req := localcluster.PlanRequest{Action: guard.ActionDrain, Cell: o.cell, Tier: cell.Role(o.tier), Count: o.count,
		Nodes: o.nodes, Override: o.override, Confirm: o.confirm, Reason: o.reason,
		Policy:          &guard.Policy{MinPlacement: o.minPlace, MinStorage: o.minStore, CapShare: o.capShare},
		HealthTimeoutMS: o.healthFor.Milliseconds()}
	res, err := runPlan(cmd, file, o.output, req, func(p *guard.Plan) {
		if o.output == "text" {
			printPlan(out, p, o)
		}
	})
	if res == nil {
		return guardError(err)
	}
	if err == nil && res.Executed && o.output == "text" {
		fmt.Fprintf(out, "drained %s; 'cellctl undrain --cell %s --nodes %s' brings them back\n",
			strings.Join(res.Plan.Nodes, ", "), res.Plan.Cell, strings.Join(res.Plan.Nodes, ","))
	}
	if o.output == "json" {
		rep := drainReport{Plan: res.Plan, Executed: res.Executed, Steps: res.Steps}
		if err != nil {
			rep.Error = err.Error()
		}
		if jerr := printJSON(out, rep); jerr != nil {
			return jerr
		}
	}
	return guardError(err)
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) }

func printPlan(out io.Writer, p *guard.Plan, o drainOptions) {
	if p.GuardrailsOff {
		printGuardrailsOff(out)
	}
	fmt.Fprintf(out, "Plan %s: drain %d %s node%s of %s\n", p.ID, len(p.Nodes), p.Tier, plural(len(p.Nodes)), p.Cell)
	fmt.Fprintf(out, "  nodes:     %s (one at a time, in this order)\n", strings.Join(p.Nodes, ", "))
	floor := fmt.Sprintf("floor %d", p.Floor)
	if p.Tier == cell.RoleIndex {
		floor += fmt.Sprintf(" (a majority of %d)", p.InCell)
	}
	fmt.Fprintf(out, "  capacity:  %d of %d %s nodes up in %s, %d left after; %s\n", p.UpInCell, p.InCell, p.Tier, p.Cell, p.LeftInCell, floor)
	fmt.Fprintf(out, "  share:     %s of %s's %s tier, %s of the %d %s nodes region-wide; cap %d per command\n",
		pct(p.ShareOfCell), p.Cell, p.Tier, pct(p.ShareOfRegion), p.InRegion, p.Tier, p.Cap)
	if p.Tier == cell.RoleIndex {
		q := "kept"
		if !p.KeepsQuorum {
			q = fmt.Sprintf("LOST: %s's index keeps %d of %d, it needs %d; the cell fails requests until undrained", p.Cell, p.LeftInCell, p.InCell, p.Floor)
		}
		fmt.Fprintf(out, "  quorum:    %s\n", q)
	}
	for _, v := range p.Violations {
		state := "REFUSED"
		if v.Lifted {
			state = "overridden"
		}
		fmt.Fprintf(out, "  %s (%s): %s\n", state, v.Rule, v.Message)
	}
	if p.FloorLifted() {
		bar := strings.Repeat("!", 78)
		fmt.Fprintf(out, "\n%s\n!! FLOOR OVERRIDDEN: this plan takes %s's %s tier below its floor.\n!! Override: %q\n%s\n",
			bar, p.Cell, p.Tier, p.Override, bar)
	}
	fmt.Fprintln(out)
	target := fmt.Sprintf("--count %d", o.count)
	if len(o.nodes) > 0 {
		target = "--nodes " + strings.Join(o.nodes, ",")
	}
	override := ""
	if p.Override != "" && p.Override != guard.GuardrailsOffOverride {
		override = fmt.Sprintf(" --override %q", p.Override)
	}
	switch {
	case o.confirm != "":
	case !p.Allowed():
		fmt.Fprintf(out, "Nothing done. Crossing these guardrails needs --override \"<why>\" (it lifts the cap and the floor).\n")
	default:
		fmt.Fprintf(out, "Dry run: nothing done. To run exactly this plan:\n  cellctl drain %s --cell %s --tier %s %s%s --confirm %s --reason \"<why>\"\n",
			clusterOf(o.compose, o.dataDir), p.Cell, p.Tier, target, override, p.ID)
	}
}

// undrain

type undrainOptions struct {
	dataDir   string
	cell      string
	nodes     []string
	reason    string
	output    string
	healthFor time.Duration
}

func newUndrainCommand() *cobra.Command {
	var o undrainOptions
	cmd := &cobra.Command{
		Use:   "undrain",
		Short: "Start drained nodes of a cell again, one at a time",
		Long: `undrain starts nodes of a cell that are not running (drained, stopped or killed), one at
a time, each one ready before the next, and then waits for the cell to be healthy (a
cell whose index lost quorum only heals once enough of it is back). Without --nodes it starts
every node of the cell that is not running, index nodes first, then storage, then
placement (placement finds its storage up). Adding capacity back needs no override, but
the kill switch applies and every step goes to the audit log.`,
		Example: `  cellctl undrain --cell cell-2
  cellctl undrain --cell cell-2 --nodes cell-2-index-2 --reason "host back"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runUndrain(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir, "data directory of a cluster started by 'cellctl up'")
	f.StringVar(&o.cell, "cell", "", "the cell (required)")
	f.StringSliceVar(&o.nodes, "nodes", nil, "the nodes to start, in this order (default: every stopped node of the cell)")
	f.StringVar(&o.reason, "reason", "", "why, for the audit log")
	outputFlag(cmd, &o.output)
	clusterFlag(cmd)
	f.DurationVar(&o.healthFor, "health-timeout", 60*time.Second, "longest wait for the cell to be healthy once its nodes are started")
	return cmd
}

func runUndrain(cmd *cobra.Command, o undrainOptions) error {
	if err := checkOutput(&o.output); err != nil {
		return err
	}
	if o.cell == "" {
		return usageErrorf("--cell is required (see 'cellctl undrain --help')")
	}
	file, err := runningCluster(cmd, o.dataDir)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	req := localcluster.PlanRequest{Action: guard.ActionUndrain, Cell: o.cell, Nodes: o.nodes, Reason: o.reason,
		HealthTimeoutMS: o.healthFor.Milliseconds()}
	res, err := runPlan(cmd, file, o.output, req, nil)
	if res == nil {
		return guardError(err)
	}
	if err == nil && len(res.Plan.Nodes) == 0 {
		if o.output == "json" {
			fmt.Fprintln(out, `{"steps": []}`)
		} else {
			fmt.Fprintf(out, "every node of %s is running; nothing to do\n", o.cell)
		}
		return nil
	}
	if o.output == "json" {
		rep := map[string]any{"steps": res.Steps}
		if err != nil {
			rep["error"] = err.Error()
		}
		_ = printJSON(out, rep)
	} else if err == nil {
		fmt.Fprintf(out, "%s is whole again\n", o.cell)
	}
	return guardError(err)
}
