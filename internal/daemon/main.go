package daemon

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

	"github.com/spf13/pflag"
)

// Exit codes of a daemon binary.
const (
	ExitOK    = 0 // stopped cleanly (SIGINT, SIGTERM) or printed --help
	ExitError = 1 // the daemon failed; the reason is one line on stderr
	ExitUsage = 2 // the command line does not parse
)

// RunFunc runs a daemon whose flags have been parsed, until ctx ends, logging to log.
type RunFunc func(ctx context.Context, log *slog.Logger) error

// Command is a daemon as a program: what its --help says and the flags it takes. Each
// role package has one (index.Command, gateway.Command, ...); the daemon binaries run
// it with Main, and 'cellctl daemon <role>' with RunMain.
type Command struct {
	// About is the first paragraph of --help: what the daemon does.
	About string
	// Flags registers the daemon's flags on fs and returns what runs the daemon with
	// the values they were set to.
	Flags func(fs *pflag.FlagSet) RunFunc
}

// Main is the whole main of a daemon binary: it reads os.Args into cmd's flags, logs
// with log/slog to stderr, runs the daemon until SIGINT or SIGTERM, and returns the
// exit code (ExitOK, ExitError, or ExitUsage for a bad command line). name is the
// program's name in messages ("indexd").
func Main(name string, cmd Command) int {
	err := RunMain(context.Background(), name, cmd, os.Args[1:], os.Stdout, os.Stderr)
	return Report(name, err, os.Stderr)
}

// RunMain runs the daemon of cmd in this process with command-line args until ctx ends
// or SIGINT or SIGTERM arrives. Besides cmd's flags it takes --log-format and
// --log-level; --help prints the flags to stdout and returns nil. A command line that
// does not parse gives an error whose ExitCode is ExitUsage.
func RunMain(ctx context.Context, name string, cmd Command, args []string, stdout, stderr io.Writer) error {
	cl := newCommandLine(name, cmd)
	if err := cl.parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(stdout, "%s\n\nUsage:\n  %s [flags]\n\nFlags:\n%s", cmd.About, name, cl.fs.FlagUsages())
			return nil
		}
		return err
	}
	log, err := newLogger(stderr, *cl.logFormat, *cl.logLevel)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cl.run(ctx, log)
}

// CheckArgs reports whether the daemon of cmd takes args: the usage error RunMain would
// give, or nil. It runs nothing; it is for code that writes daemons' command lines.
func CheckArgs(cmd Command, args []string) error {
	cl := newCommandLine("daemon", cmd)
	if err := cl.parse(args); err != nil {
		return err
	}
	_, err := newLogger(io.Discard, *cl.logFormat, *cl.logLevel)
	return err
}

// commandLine is a daemon's flags: its Command's and the bootstrap's own.
type commandLine struct {
	name                string
	fs                  *pflag.FlagSet
	run                 RunFunc
	logFormat, logLevel *string
}

func newCommandLine(name string, cmd Command) *commandLine {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &commandLine{
		name:      name,
		fs:        fs,
		run:       cmd.Flags(fs),
		logFormat: fs.String("log-format", "text", "log format: text or json"),
		logLevel:  fs.String("log-level", "info", "lowest level logged: debug, info, warn or error"),
	}
}

// parse reads args into the flags; --help gives pflag.ErrHelp, anything else that is
// wrong a usage error.
func (cl *commandLine) parse(args []string) error {
	if err := cl.fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usageErrorf("%v (see '%s --help')", err, cl.name)
	}
	if cl.fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q (see '%s --help')", cl.fs.Arg(0), cl.name)
	}
	return nil
}

// newLogger builds the slog logger a daemon writes to w: format "text" or "json",
// level "debug", "info", "warn" or "error". Other values give a usage error.
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

// Report prints err, if any, as one line on stderr, "name: message", and returns the
// exit code for it: ExitOK for nil, the error's own ExitCode if it has one (ExitUsage
// for a bad command line), ExitError otherwise. cellctl reports its errors with it too.
func Report(name string, err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(err.Error()))
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

// usageError is a command line that does not parse.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// ExitCode makes Main (and cellctl) exit with ExitUsage.
func (e *usageError) ExitCode() int { return ExitUsage }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// RoleConfig is what NewCommand needs of a role's configuration: that it registers its
// flags, and that it embeds Options (which gives it the unexported method).
type RoleConfig interface {
	AddFlags(fs *pflag.FlagSet)
	options() *Options
}

func (o *Options) options() *Options { return o }

// NewCommand is the Command of a role whose configuration C registers its flags with
// AddFlags and embeds Options, and which run runs: daemon.NewCommand(about, index.Run).
// The daemon logs to the logger Main sets up.
func NewCommand[C any, P interface {
	*C
	RoleConfig
}](about string, run func(context.Context, C) error) Command {
	return Command{About: about, Flags: func(fs *pflag.FlagSet) RunFunc {
		var cfg C
		P(&cfg).AddFlags(fs)
		return func(ctx context.Context, log *slog.Logger) error {
			P(&cfg).options().Logger = log
			return run(ctx, cfg)
		}
	}}
}
