// Package cli holds cellctl's command line: up, status, credentials, version,
// completion, and the hidden daemon command that up re-executes for every node.
// cellctl's main is one line that calls Main. (The daemon binaries do not link this package: their mains call
// internal/daemon.Main, and 'cellctl daemon' runs the same code.)
//
// Every command reports a failure as one plain line on stderr and a non-zero exit code
// (ExitError, or ExitUsage for a command line that does not parse). Every command that
// prints a result takes --output text|json (-o): outputFlag adds the flag, checkOutput
// checks its value before the command does anything.
package cli

import (
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/internal/daemon"
)

// Exit codes of cellctl; the first three are the daemons' too.
const (
	ExitOK    = daemon.ExitOK    // success
	ExitError = daemon.ExitError // the command failed
	ExitUsage = daemon.ExitUsage // the command line is wrong: unknown command or flag, bad value
	// ExitRefused: a guardrail refused the drill (or its confirmation no longer matches
	// the plan); nothing was done.
	ExitRefused = 3
	ExitHalted  = 4 // drills are halted by the kill switch; nothing was done
)

// Main runs cellctl with args (without the program name) and returns its exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return ExitOK
	}
	name := "cellctl"
	if cmd != nil {
		name = cmd.CommandPath()
	}
	return report(name, err, stderr)
}

// report prints err as one line, "name: message", and returns the exit code for it,
// as a daemon does.
func report(name string, err error, stderr io.Writer) int {
	return daemon.Report(name, err, stderr)
}

// usageError is a command line that does not parse: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// ExitCode makes report exit with ExitUsage.
func (e *usageError) ExitCode() int { return ExitUsage }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unexpected argument %q (see '%s --help')", args[0], cmd.CommandPath())
	}
	return nil
}

const rootLong = `cellctl starts, inspects and drives a cellar cluster: a cell-partitioned,
S3-compatible object store whose index, placement, storage and gateway daemons run as
real processes, so that an operator can take parts of it down and watch the blast radius.

Start a local cluster with 'cellctl up' (Ctrl-C stops it) and, from another terminal,
look at it with 'cellctl status'. Any S3 client works against the endpoint up prints.

Exit codes:
  0  success
  1  the command failed; the reason is one line on stderr
  2  usage error: unknown command or flag, bad flag value, unexpected argument
  3  refused by a guardrail (drain, restart); nothing was done
  4  drills are halted ('cellctl drill resume' clears it); nothing was done`

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "cellctl",
		Short:         "Run and inspect a cellar cluster",
		Long:          rootLong,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q (see 'cellctl --help')", args[0])
			}
			return cmd.Help()
		},
	}
	// cellctl has a completion command of its own (newCompletionCommand), with
	// examples and usage errors like every other command.
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%v (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(newUpCommand(), newStatusCommand(), newCredentialsCommand(), newVersionCommand(), newDaemonCommand())
	root.AddCommand(drillCommands()...)
	root.AddCommand(newBenchCommand())
	root.AddCommand(newLabCommand())
	root.AddCommand(newGCCommand())
	root.AddCommand(newMoveCommand())
	root.AddCommand(newShardsCommand())
	root.AddCommand(newProbeCommand(), newComposeCommand(), newCompletionCommand(), newPKICommand())
	return root
}

// completionShells are the shells 'cellctl completion' writes a script for.
var completionShells = []string{"bash", "zsh", "fish", "powershell"}

func newCompletionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print the shell completion script of cellctl",
		Long: `completion prints a script that makes the shell complete cellctl's commands, flags
and flag values (such as --output text|json) on Tab. Load it into the shell you are
in, or save it where the shell loads completions from when it starts.

bash needs the bash-completion package (version 2). zsh needs completion turned on
('autoload -U compinit; compinit' in ~/.zshrc).`,
		Example: `  # bash, this shell only; then every new shell:
  source <(cellctl completion bash)
  cellctl completion bash > ~/.local/share/bash-completion/completions/cellctl

  # zsh, this shell only; then every new shell:
  source <(cellctl completion zsh)
  cellctl completion zsh > "${fpath[1]}/_cellctl"

  # fish:
  cellctl completion fish > ~/.config/fish/completions/cellctl.fish

  # PowerShell, this shell only (add the line to $PROFILE for every new one):
  cellctl completion powershell | Out-String | Invoke-Expression`,
		ValidArgs: completionShells,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || !slices.Contains(completionShells, args[0]) {
				return usageErrorf("want one shell: bash, zsh, fish or powershell (see '%s --help')", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root, out := cmd.Root(), cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			default:
				return root.GenPowerShellCompletionWithDesc(out)
			}
		},
	}
}
