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
)

type drillRunOptions struct {
	dataDir, output, reportDir, cell string
	healthFor                        time.Duration
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
drill halt') is checked before every step; a stop condition of the scenario (by default:
a cell the drill does not act on failing more than 5% of its requests) aborts it.

The timeline is printed as it happens. At the end the report (timeline, per-cell
availability and p99 latency over time, blast radius, restart time per node and per
cell, guardrail decisions) is written to --report as report.json and report.html (one
self-contained page), and summed up on the terminal; --output json prints report.json.

Exit codes: 0 the drill ran and every check passed; 1 a check failed, a stop condition
aborted it or a step failed; 4 drills are halted.`,
		Example: `  cellctl drill list
  cellctl drill run smoke
  cellctl drill run s3-2017 --report ./s3-2017-report
  cellctl drill run ./my-drill.yaml --cell cell-1 --output json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("want one scenario: a built-in name (see 'cellctl drill list') or a YAML file")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runDrill(cmd, args[0], o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir, "data directory of a cluster started by 'cellctl up'")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.StringVar(&o.reportDir, "report", "", "directory for report.json and report.html (default DATA_DIR/drill-reports/SCENARIO-TIME)")
	f.StringVar(&o.cell, "cell", "", "the cell under test, instead of the scenario's target")
	f.DurationVar(&o.healthFor, "health-timeout", 30*time.Second, "longest wait for a cell to be healthy between steps")
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
	file, err := runningCluster(o.dataDir)
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
	cl, err := attachCluster(ctx, file)
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
		Command: "cellctl " + strings.Join(os.Args[1:], " "), Progress: progress,
	}
	env.Load.Endpoint, env.Load.AccessKey, env.Load.SecretKey, env.Load.Region = file.S3Endpoint, file.AccessKey, file.SecretKey, file.Region
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
