package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/drill"
)

// drillCommands are the commands that put a running cluster under load and take its
// capacity out and back in, behind the guardrails.
func drillCommands() []*cobra.Command {
	return []*cobra.Command{newLoadCommand(), newDrainCommand(), newUndrainCommand(), newAuditCommand(), newDrillCommand(), newRestartCommand()}
}

// scenarioEntry is one built-in scenario in 'drill list --output json'.
type scenarioEntry struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// newScenarioListCommand is 'cellctl drill list'.
func newScenarioListCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the built-in drill scenarios",
		Long: `list shows the scenarios built into cellctl, which 'cellctl drill run NAME' runs: their
names and the first sentence of their descriptions, or with --output json, a list of
{"name", "description"} with the whole descriptions.`,
		Example: `  cellctl drill list
  cellctl drill list --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(&output); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == outputJSON {
				entries := []scenarioEntry{}
				for _, b := range drill.Builtins() {
					entries = append(entries, scenarioEntry{Name: b.Name, Description: strings.TrimSpace(b.Description)})
				}
				return printJSON(out, entries)
			}
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDESCRIPTION")
			for _, b := range drill.Builtins() {
				desc, _, _ := strings.Cut(b.Description, ". ")
				fmt.Fprintf(tw, "%s\t%s\n", b.Name, strings.TrimSuffix(desc, "."))
			}
			return tw.Flush()
		},
	}
	outputFlag(cmd, &output)
	return cmd
}
