package cli

import (
	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/node"
)

func newDaemonCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "daemon <index|placement|storage|gateway> [flags]",
		Short: "Run one daemon in this process (what up starts for every node)",
		Long: `daemon runs one cellar daemon in this process, with the same flags as its own binary
(indexd, placementd, storaged, gatewayd). 'cellctl up' re-executes cellctl this way for
every node, so that a local cluster needs no other binary.

'cellctl daemon <role> --help' lists the role's flags.`,
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("missing role: index, placement, storage or gateway (see 'cellctl daemon --help')")
			}
			if args[0] == "-h" || args[0] == "--help" {
				return cmd.Help()
			}
			role, err := cell.ParseRole(args[0])
			command, ok := node.Command(role)
			if err != nil || !ok {
				return usageErrorf("unknown role %q: want index, placement, storage or gateway", args[0])
			}
			return daemon.RunMain(cmd.Context(), "cellctl daemon "+string(role), command, args[1:], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
}
