package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
)

// DaemonMain is the whole main of a daemon binary: it reads args into the role's Config,
// logs with log/slog to stderr, runs the daemon until SIGINT or SIGTERM, and returns the
// exit code: 0 after a clean stop, 1 if the daemon failed, 2 for a bad command line.
// name is the program's name in messages ("indexd").
func DaemonMain(name string, role cell.Role, args []string) int {
	return report(name, RunDaemon(context.Background(), name, role, args, os.Stdout, os.Stderr), os.Stderr)
}

var daemonAbout = map[cell.Role]string{
	cell.RoleIndex:     "Runs one index node: the key-to-location map of its cell, kept in Pebble and rebuilt in memory at start.",
	cell.RolePlacement: "Runs one placement node: it chooses the storage nodes of its cell that receive each new object.",
	cell.RoleStorage:   "Runs one storage node: it keeps object bytes in its data directory.",
	cell.RoleGateway:   "Runs one gateway: the S3 HTTP API and the router that sends each request to the cell that holds it.",
}

// RunDaemon runs one daemon of role in this process with command-line args until ctx
// ends or SIGINT or SIGTERM arrives. --help prints the flags to stdout. A command line
// that does not parse gives an error that Main and DaemonMain report with exit code 2.
func RunDaemon(ctx context.Context, name string, role cell.Role, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	run := daemonFlags(role, fs)
	if run == nil {
		return usageErrorf("unknown role %q (want index, placement, storage or gateway)", role)
	}
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "lowest level logged: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(stdout, "%s\n\nUsage:\n  %s [flags]\n\nFlags:\n%s", daemonAbout[role], name, fs.FlagUsages())
			return nil
		}
		return usageErrorf("%v (see '%s --help')", err, name)
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q (see '%s --help')", fs.Arg(0), name)
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, log)
}

// newLogger builds the slog logger a daemon writes to w.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErrorf("--log-format %q: want text or json", format)
}

// topologyFlag registers --topology and returns what reads it: the YAML file over the
// embedded defaults, or the defaults alone.
func topologyFlag(fs *pflag.FlagSet) func() (cell.Topology, error) {
	path := fs.String("topology", "", "YAML topology file over the embedded defaults (cells, slots, partition, credentials)")
	return func() (cell.Topology, error) {
		if *path == "" {
			return cell.DefaultTopology(), nil
		}
		return cell.LoadTopology(*path)
	}
}

// defaultID names a node that was given no --id: cell-0-index-0, or gateway-0.
func defaultID(o *daemon.Options) {
	if o.NodeID == "" {
		o.NodeID = cell.NodeID(o.Cell, o.Role, 0)
	}
}

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
			if err != nil || role == cell.RoleObserver {
				return usageErrorf("unknown role %q: want index, placement, storage or gateway", args[0])
			}
			return RunDaemon(cmd.Context(), "cellctl daemon "+string(role), role, args[1:], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
}
