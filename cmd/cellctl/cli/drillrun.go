package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/drill"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/loadgen"
	"github.com/cellarsim/cellar/localcluster"
)

type drillRunOptions struct {
	dataDir, output, reportDir, cell string
	healthFor                        time.Duration
	rate                             float64       // requests/s of the load step, when set
	duration                         time.Duration // of the load step, when set
	setRate, setDuration             bool
}

func newDrillRunCommand() *cobra.Command {
	var o drillRunOptions
	cmd := &cobra.Command{
		Use:   "run <scenario.yaml|built-in name>",
		Short: "Run a drill scenario against the running cluster and write its report",
		Long: `run runs a scenario (a built-in one, see 'cellctl drill list', or a YAML file) against
the cluster started by 'cellctl up' in --data-dir: it starts load, drains, kills and
restarts nodes through the same guardrails, executor and audit log as 'cellctl drain'
and 'cellctl restart', and checks what the scenario asserts. The kill switch ('cellctl
drill halt') is checked before every step; a stop condition of the scenario aborts it:
by default, a cell the drill does not act on failing more than 5% of its requests over
the last 5s (at least 20 requests) for 15s in a row. A leader election that costs such a
cell a few seconds of errors does not abort the drill; the report still counts them.

--rate and --duration replace the rate and the duration of the scenario's load step,
for a smaller machine or a shorter run; the report records them.

The timeline is printed as it happens. At the end the report is written to --report as
report.json and report.html (one self-contained page), and summed up on the terminal;
--output json prints report.json. It opens with a one-line verdict and the headline:
the blast radius (the share of requests that failed, and the cells hit: those where
more than 1% of the requests failed), how long each cell acted on was down, its restart
time, and the checks passed; then the timeline, per-cell availability and p99 latency
over time, restart time per node and per cell, and the guardrail decisions.

Exit codes: 0 the drill ran and every check passed; 1 a check failed, a stop condition
aborted it or a step failed; 2 the command line is wrong (a bad --rate, for one);
4 drills are halted.`,
		Example: `  cellctl drill list
  cellctl drill run smoke
  cellctl drill run s3-2017 --report ./s3-2017-report
  cellctl drill run s3-2017 --rate 30 --duration 2m
  cellctl drill run ./my-drill.yaml --cell cell-1 --output json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("want one scenario: a built-in name (see 'cellctl drill list') or a YAML file")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.setRate, o.setDuration = cmd.Flags().Changed("rate"), cmd.Flags().Changed("duration")
			return runDrill(cmd, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir, "data directory of a cluster started by 'cellctl up'")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	clusterFlag(cmd)
	f.StringVar(&o.reportDir, "report", "", "directory for report.json and report.html (default DATA_DIR/drill-reports/SCENARIO-TIME)")
	f.StringVar(&o.cell, "cell", "", "the cell under test, instead of the scenario's target")
	f.DurationVar(&o.healthFor, "health-timeout", 30*time.Second, "longest wait for a cell to be healthy between steps")
	f.Float64Var(&o.rate, "rate", 0, fmt.Sprintf("requests per second of the load, instead of the scenario's (at most %d)", loadgen.MaxRate))
	f.DurationVar(&o.duration, "duration", 0, fmt.Sprintf("how long the load runs, instead of the scenario's (at most %v)", loadgen.MaxDuration))
	return cmd
}

func newDrillListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the built-in drill scenarios",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDESCRIPTION")
			for _, b := range drill.Builtins() {
				desc, _, _ := strings.Cut(b.Description, ". ")
				fmt.Fprintf(tw, "%s\t%s\n", b.Name, strings.TrimSuffix(desc, "."))
			}
			return tw.Flush()
		},
	}
}

func runDrill(cmd *cobra.Command, name string, o drillRunOptions) error {
	if o.output != "text" && o.output != "json" {
		return usageErrorf("--output %q: want text or json", o.output)
	}
	sc, err := drill.LoadScenario(name)
	if err != nil {
		return usageErrorf("%v", err)
	}
	if o.cell != "" {
		sc.Target = o.cell
	}
	var ov drill.Overrides
	if o.setRate {
		ov.Rate = &o.rate
	}
	if o.setDuration {
		ov.Duration = &o.duration
	}
	if err := sc.Override(ov); err != nil {
		return usageErrorf("--%v", err) // its messages start with the setting
	}
	file, err := runningCluster(cmd, o.dataDir)
	if err != nil {
		return err
	}
	if err := loopbackOnly(file.S3Endpoint); err != nil {
		return err
	}
	if err := guard.CheckHalt(file.DataDir); err != nil {
		return halted(err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The drill runs its guardrail workflow here; each node action it takes goes to
	// the supervisor, which checks it as a step of the drill's confirmed plan.
	cl, err := attachCluster(ctx, file, localcluster.Caller{Command: commandLine(), Reason: "drill " + sc.Name})
	if err != nil {
		return err
	}
	defer cl.Close()
	var progress io.Writer = cmd.OutOrStdout()
	if o.output == "json" {
		progress = cmd.ErrOrStderr()
	}
	env := drill.Env{
		Topology: file.Topology.Topology, Dir: file.DataDir, Cluster: cl, HealthTimeout: o.healthFor,
		Command: commandLine(), Progress: progress,
	}
	env.Load.Endpoint, env.Load.AccessKey, env.Load.SecretKey, env.Load.Region = file.S3Endpoint, file.AccessKey, file.SecretKey, file.Region
	env.Load.Tenants = file.Topology.Tenants // a cluster with tenants is loaded by them
	rep, runErr := drill.RunScenario(ctx, env, sc)
	if rep == nil {
		return usageErrorf("%v", runErr)
	}
	dir := o.reportDir
	if dir == "" {
		dir = filepath.Join(file.DataDir, "drill-reports", sc.Name+"-"+rep.Started.UTC().Format("20060102-150405"))
	}
	if err := rep.Write(dir); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	out := cmd.OutOrStdout()
	if o.output == "json" {
		if err := printJSON(out, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(out)
		rep.Summary(out)
		fmt.Fprintf(out, "\nreport: %s\n", filepath.Join(dir, "report.html"))
	}
	if errors.Is(runErr, guard.ErrHalted) {
		return halted(runErr)
	}
	return runErr
}
