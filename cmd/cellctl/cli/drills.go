package cli

import "github.com/spf13/cobra"

// drillCommands are the commands that put a running cluster under load and take its
// capacity out and back in, behind the guardrails.
func drillCommands() []*cobra.Command {
	return []*cobra.Command{newLoadCommand(), newDrainCommand(), newUndrainCommand(), newAuditCommand(), newDrillCommand(), newRestartCommand()}
}
