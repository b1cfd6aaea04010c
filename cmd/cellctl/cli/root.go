// Package cli holds cellctl's command line: up, status, version, and the hidden daemon
// command that up re-executes for every node. cellctl's main is one line that calls
// Main. (The daemon binaries do not link this package: their mains call
// internal/daemon.Main, and 'cellctl daemon' runs the same code.)
//
// Every command reports a failure as one plain line on stderr and a non-zero exit code
// (ExitError, or ExitUsage for a command line that does not parse).
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes of cellctl and of the daemons.
const (
	ExitOK    = 0 // success
	ExitError = 1 // the command failed
	ExitUsage = 2 // the command line is wrong: unknown command or flag, bad value
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

// report prints err as one line, "name: message", and returns the exit code for it.
func report(name string, err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(err.Error()))
	var ue *usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	var ce interface{ ExitCode() int }
	if errors.As(err, &ce) {
		return ce.ExitCode()
	}
	return ExitError
}

// oneLine joins the lines of a message (errors.Join makes several) with "; ".
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// usageError is a command line that does not parse: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

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
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%v (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(newUpCommand(), newStatusCommand(), newVersionCommand(), newDaemonCommand())
	root.AddCommand(drillCommands()...)
	root.AddCommand(newBenchCommand())
	root.AddCommand(newProbeCommand(), newComposeCommand())
	return root
}
