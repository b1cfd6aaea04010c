package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cellarsim/cellar/drill/guard"
	"github.com/spf13/cobra"
)

func newAuditCommand() *cobra.Command {
	var dataDir, output string
	var last int
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log of drills: plans, refusals, confirmations, overrides, steps",
		Long: `audit prints DATA_DIR/audit.log, the append-only record of every drill decision: each
plan shown, refused or confirmed, each guardrail overridden, each node acted on, each
halt and resume, with its time, user, reason, plan id and outcome. It works whether
the cluster runs or not.`,
		Example: `  cellctl audit
  cellctl audit --last 20
  cellctl audit --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(&output); err != nil {
				return err
			}
			if _, err := os.Stat(dataDir); err != nil {
				return fmt.Errorf("no data directory %s", dataDir)
			}
			entries, err := guard.ReadAudit(dataDir)
			if err != nil {
				return err
			}
			if last > 0 && len(entries) > last {
				entries = entries[len(entries)-last:]
			}
			out := cmd.OutOrStdout()
			if output == outputJSON {
				if entries == nil {
					entries = []guard.Entry{}
				}
				return printJSON(out, entries)
			}
			if len(entries) == 0 {
				fmt.Fprintln(out, "the audit log is empty")
				return nil
			}
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tUSER\tDECISION\tPLAN\tCELL\tNODE\tREASON\tOUTCOME")
			for _, e := range entries {
				reason := e.Reason
				if e.Override != "" {
					reason += " [override: " + e.Override + "]"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), e.User, e.Decision,
					dash(e.PlanID), dash(e.Cell), dash(e.Node), dash(strings.TrimSpace(reason)), dash(e.Outcome))
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", defaultDataDir, "data directory of the cluster")
	outputFlag(cmd, &output)
	f.IntVar(&last, "last", 0, "only the last N entries (0: all)")
	return cmd
}

func newDrillCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Run drills (scenarios under load, with a report) and control them (kill switch)",
		Long: `drill run runs a scenario against the running cluster and writes its report; drill
list shows the built-in scenarios.

drill halt sets the kill switch in the data directory: a drill, drain or undrain in
progress stops before its next step, new ones are refused (exit code 4) until
'cellctl drill resume' clears it, and the supervisor disarms every poison pill (each
disarm is in the audit log); resume arms none of them again. drill status says whether it is set; with --output
json, halt, resume and status all print the kill switch as it is afterwards.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	var dataDir, reason, output string
	audit := func(decision, outcome string) error {
		return guard.OpenAudit(dataDir).Append(guard.Entry{Command: "cellctl " + strings.Join(os.Args[1:], " "),
			Reason: reason, Decision: decision, Outcome: outcome})
	}
	// checkFlags checks --output and the data directory, before anything is done.
	checkFlags := func() error {
		if err := checkOutput(&output); err != nil {
			return err
		}
		if st, err := os.Stat(dataDir); err != nil || !st.IsDir() {
			return fmt.Errorf("no data directory %s", dataDir)
		}
		return nil
	}
	halt := &cobra.Command{
		Use:     "halt",
		Short:   "Stop every running drill, disarm every pill, and refuse new drills until resumed",
		Example: `  cellctl drill halt --reason "customer traffic spike"`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFlags(); err != nil {
				return err
			}
			if err := guard.Halt(dataDir, reason); err != nil {
				return err
			}
			if err := audit(guard.DecisionHalt, "drills halted"); err != nil {
				return err
			}
			if output == outputJSON {
				return printHaltJSON(cmd.OutOrStdout(), dataDir)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "drills halted; 'cellctl drill resume' lets them run again")
			return nil
		},
	}
	resume := &cobra.Command{
		Use:     "resume",
		Short:   "Clear the kill switch so that drills may run again",
		Example: `  cellctl drill resume --reason "spike over"`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFlags(); err != nil {
				return err
			}
			was, _ := guard.Halted(dataDir)
			if err := guard.Resume(dataDir); err != nil {
				return err
			}
			if was {
				if err := audit(guard.DecisionResume, "drills resumed"); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			switch {
			case output == outputJSON:
				return printHaltJSON(out, dataDir)
			case was:
				fmt.Fprintln(out, "drills may run again")
			default:
				fmt.Fprintln(out, "drills were not halted")
			}
			return nil
		},
	}
	status := &cobra.Command{
		Use:     "status",
		Short:   "Say whether drills are halted",
		Example: `  cellctl drill status --output json`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFlags(); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == outputJSON {
				return printHaltJSON(out, dataDir)
			}
			if h, _ := guard.Halted(dataDir); !h {
				fmt.Fprintln(out, "drills may run")
				return nil
			}
			fmt.Fprintln(out, guard.CheckHalt(dataDir).Error())
			return nil
		},
	}
	for _, c := range []*cobra.Command{halt, resume, status} {
		c.Flags().StringVar(&dataDir, "data-dir", defaultDataDir, "data directory of the cluster")
		outputFlag(c, &output)
		clusterFlag(c)
		c.PreRunE = func(cmd *cobra.Command, args []string) (err error) {
			dataDir, err = auditDirOf(cmd, dataDir) // a compose project's kill switch
			return err
		}
	}
	halt.Flags().StringVar(&reason, "reason", "", "why, for the audit log and whoever is refused")
	resume.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	cmd.AddCommand(halt, resume, status, newDrillRunCommand(), newScenarioListCommand(), newDrillCompareCommand())
	return cmd
}

// printHaltJSON prints the kill switch of dataDir as drill halt, resume and status do
// with --output json: {"halted": true, "info": {"time": ..., "user": ..., "reason": ...}}
// (when not halted, info has zero values).
func printHaltJSON(out io.Writer, dataDir string) error {
	h, info := guard.Halted(dataDir)
	return json.NewEncoder(out).Encode(map[string]any{"halted": h, "info": info})
}
