package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/localcluster"
)

type restartOptions struct {
	dataDir      string
	compose      string // FILE of --cluster compose:FILE
	cell         string
	tiers        []string
	order        []string
	cold         bool
	confirm      string
	reason       string
	override     string
	output       string
	startTimeout time.Duration
	healthFor    time.Duration
}

func newRestartCommand() *cobra.Command {
	var o restartOptions
	cmd := &cobra.Command{
		Use:   "restart",
		Short: "Restart the tiers of a cell in dependency order, rolling or cold, timing each node",
		Long: `restart restarts the running nodes of one cell of a cluster started by 'cellctl up', tier
by tier in dependency order: the index first (everything else follows it), then
storage, then placement (which picks storage nodes). Each node's time from start to
ready is measured and reported.

Rolling (the default): one node at a time (index followers before the leader), each
stopped, started, ready, and the cell healthy before the next; the index keeps quorum.
A tier of one node is empty while it restarts, which crosses its floor.
--cold stops every node of the tiers first and then starts them tier by tier, all of a
tier at once, as after a full outage: below every floor, so it needs --override.
--order starts the tiers in another order, which also needs --override: it exists to
show what a wrong-order restart does (the first tier that does not become ready within
--start-timeout stops the restart).

Like drain, restart only shows the plan and its id unless --confirm PLAN_ID --reason
TEXT runs it; every decision and step goes to the audit log; 'cellctl drill halt'
stops it before its next step.`,
		Example: `  cellctl restart --cell cell-1
  cellctl restart --cell cell-1 --tier index --confirm 6c1d0e2f9a8b --reason "new build"
  cellctl restart --cell cell-2 --cold --override "full outage drill"
  cellctl restart --cell cell-2 --tier index,placement --order placement,index --cold --override "wrong order"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runRestart(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir, "data directory of a cluster started by 'cellctl up'")
	f.StringVar(&o.cell, "cell", "", "the cell to restart (required)")
	f.StringSliceVar(&o.tiers, "tier", nil, "tiers to restart: index, placement, storage (default all three)")
	f.StringSliceVar(&o.order, "order", nil, "start the tiers in this order instead of the dependency order (needs --override)")
	f.BoolVar(&o.cold, "cold", false, "stop every node of the tiers first, then start them tier by tier (needs --override)")
	f.StringVar(&o.confirm, "confirm", "", "run the plan with this id (shown by the dry run)")
	f.StringVar(&o.reason, "reason", "", "why: required to run a plan, recorded in the audit log")
	f.StringVar(&o.override, "override", "", "why the guardrails may be crossed: lifts the floors and the order")
	outputFlag(cmd, &o.output)
	clusterFlag(cmd)
	f.DurationVar(&o.startTimeout, "start-timeout", 2*time.Minute, "longest a node may take from start to ready")
	f.DurationVar(&o.healthFor, "health-timeout", 60*time.Second, "longest wait for the cell to be healthy after a node")
	return cmd
}

// restartReport is restart's JSON output.
type restartReport struct {
	Plan     *guard.Plan        `json:"plan"`
	Executed bool               `json:"executed"`
	Steps    []guard.StepResult `json:"steps,omitempty"`
	// ReadyMS is each node's time from start to ready, in milliseconds.
	ReadyMS map[string]int64 `json:"ready_ms,omitempty"`
	TookMS  int64            `json:"took_ms,omitempty"`
	Error   string           `json:"error,omitempty"`
}

func roles(names []string) []cell.Role {
	var out []cell.Role
	for _, n := range names {
		out = append(out, cell.Role(strings.TrimSpace(n)))
	}
	return out
}

func runRestart(cmd *cobra.Command, o restartOptions) error {
	if err := checkOutput(&o.output); err != nil {
		return err
	}
	if o.cell == "" {
		return usageErrorf("--cell is required (see 'cellctl restart --help')")
	}
	if o.confirm != "" && strings.TrimSpace(o.reason) == "" {
		return usageErrorf("--reason is required to run a plan")
	}
	file, err := runningCluster(cmd, o.dataDir)
	if err != nil {
		return err
	}
	o.compose, _ = composeFile(cmd)
	out := cmd.OutOrStdout()
	req := localcluster.PlanRequest{Action: guard.ActionRestart, Cell: o.cell, Tiers: roles(o.tiers), Order: roles(o.order),
		Cold: o.cold, Override: o.override, Confirm: o.confirm, Reason: o.reason,
		HealthTimeoutMS: o.healthFor.Milliseconds(), StartTimeoutMS: o.startTimeout.Milliseconds()}
	start := time.Now()
	res, err := runPlan(cmd, file, o.output, req, func(p *guard.Plan) {
		if o.output == "text" {
			printRestartPlan(out, p, o)
		}
	})
	if res == nil {
		return guardError(err)
	}
	rep := restartReport{Plan: res.Plan, Executed: res.Executed, Steps: res.Steps}
	if res.Executed {
		rep.TookMS = time.Since(start).Milliseconds()
		rep.ReadyMS = map[string]int64{}
		for _, s := range rep.Steps {
			if s.Action == "start" && s.Error == "" {
				rep.ReadyMS[s.Node] = s.Took.Milliseconds()
			}
		}
		if o.output == "text" {
			printReadyTimes(out, res.Plan, rep)
		}
	}
	if o.output == "json" {
		if err != nil {
			rep.Error = err.Error()
		}
		if jerr := printJSON(out, rep); jerr != nil {
			return jerr
		}
	}
	return guardError(err)
}

func printRestartPlan(out io.Writer, p *guard.Plan, o restartOptions) {
	mode := "rolling"
	if p.Cold {
		mode = "cold"
	}
	if p.GuardrailsOff {
		printGuardrailsOff(out)
	}
	fmt.Fprintf(out, "Plan %s: %s restart of %s\n", p.ID, mode, p.Cell)
	for i, t := range p.Tiers {
		fmt.Fprintf(out, "  %d. %-9s %s (floor %d, at least %d up throughout)\n", i+1, t.Tier, strings.Join(t.Nodes, ", "), t.Floor, t.Least)
	}
	for _, v := range p.Violations {
		state := "REFUSED"
		if v.Lifted {
			state = "overridden"
		}
		fmt.Fprintf(out, "  %s (%s): %s\n", state, v.Rule, v.Message)
	}
	fmt.Fprintln(out)
	if o.confirm != "" {
		return
	}
	if !p.Allowed() {
		fmt.Fprintf(out, "Nothing done. Crossing these guardrails needs --override \"<why>\".\n")
		return
	}
	var flags []string
	if len(o.tiers) > 0 {
		flags = append(flags, "--tier "+strings.Join(o.tiers, ","))
	}
	if len(o.order) > 0 {
		flags = append(flags, "--order "+strings.Join(o.order, ","))
	}
	if o.cold {
		flags = append(flags, "--cold")
	}
	if p.Override != "" && p.Override != guard.GuardrailsOffOverride {
		flags = append(flags, fmt.Sprintf("--override %q", p.Override))
	}
	line := append([]string{"cellctl restart", clusterOf(o.compose, o.dataDir), "--cell", p.Cell}, flags...)
	fmt.Fprintf(out, "Dry run: nothing done. To run exactly this plan:\n  %s --confirm %s --reason \"<why>\"\n", strings.Join(line, " "), p.ID)
}

func printReadyTimes(out io.Writer, p *guard.Plan, rep restartReport) {
	if len(rep.ReadyMS) == 0 {
		return
	}
	fmt.Fprintf(out, "\nstart to ready, per node (restart took %s):\n", (time.Duration(rep.TookMS) * time.Millisecond).String())
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	for _, t := range p.Tiers {
		for _, n := range t.Nodes {
			if ms, ok := rep.ReadyMS[n]; ok {
				fmt.Fprintf(tw, "  %s\t%s\t%dms\n", t.Tier, n, ms)
			} else {
				fmt.Fprintf(tw, "  %s\t%s\tnot ready\n", t.Tier, n)
			}
		}
	}
	tw.Flush()
}
