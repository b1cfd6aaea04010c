package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// testCommand is a daemon whose run logs its --name flag and returns fail.
func testCommand(fail error) Command {
	return Command{
		About: "Runs nothing, for tests.",
		Flags: func(fs *pflag.FlagSet) RunFunc {
			name := fs.String("name", "anon", "a name to log")
			return func(ctx context.Context, log *slog.Logger) error {
				log.Info("ran", "name", *name)
				return fail
			}
		},
	}
}

func TestRunMain(t *testing.T) {
	defer slog.SetDefault(slog.Default()) // RunMain sets the default logger
	boom := errors.New("boom\nsecond line")
	tests := []struct {
		name       string
		fail       error
		args       []string
		wantCode   int
		wantStdout string // contained in stdout
		wantStderr string // the one line report prints, contained
	}{
		{"clean run", nil, []string{"--name", "x"}, ExitOK, "", ""},
		{"help", nil, []string{"--help"}, ExitOK, "Runs nothing, for tests.\n\nUsage:\n  testd [flags]", ""},
		{"daemon fails", boom, nil, ExitError, "", "testd: boom; second line\n"},
		{"unknown flag", nil, []string{"--no-such-flag"}, ExitUsage, "", "testd: unknown flag: --no-such-flag (see 'testd --help')\n"},
		{"extra argument", nil, []string{"extra"}, ExitUsage, "", `testd: unexpected argument "extra"`},
		{"bad log level", nil, []string{"--log-level", "loud"}, ExitUsage, "", `testd: --log-level "loud": want debug, info, warn or error`},
		{"bad log format", nil, []string{"--log-format", "xml"}, ExitUsage, "", `testd: --log-format "xml": want text or json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, logs, stderr bytes.Buffer
			err := RunMain(context.Background(), "testd", testCommand(tt.fail), tt.args, &stdout, &logs)
			if code := Report("testd", err, &stderr); code != tt.wantCode {
				t.Errorf("exit code %d, want %d (err %v)", code, tt.wantCode, err)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tt.wantStdout)
			}
			if tt.wantStderr == "" && stderr.Len() > 0 || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.wantStderr)
			}
			if strings.Count(stderr.String(), "\n") > 1 {
				t.Errorf("stderr is more than one line: %q", stderr.String())
			}
		})
	}
}

func TestRunMainHelpListsEveryFlag(t *testing.T) {
	var stdout bytes.Buffer
	if err := RunMain(context.Background(), "testd", testCommand(nil), []string{"-h"}, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--name", "--log-format", "--log-level"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %s:\n%s", want, stdout.String())
		}
	}
}

func TestRunMainLogsAsAsked(t *testing.T) {
	var logs bytes.Buffer
	defer slog.SetDefault(slog.Default()) // RunMain sets the default logger
	err := RunMain(context.Background(), "testd", testCommand(nil), []string{"--log-format=json", "--name=y"}, &bytes.Buffer{}, &logs)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(logs.Bytes(), &rec); err != nil {
		t.Fatalf("log is not one JSON record: %v\n%s", err, logs.String())
	}
	if rec["msg"] != "ran" || rec["name"] != "y" {
		t.Errorf("log record %v, want msg ran and name y", rec)
	}

	logs.Reset()
	err = RunMain(context.Background(), "testd", testCommand(nil), []string{"--log-level=warn"}, &bytes.Buffer{}, &logs)
	if err != nil || logs.Len() > 0 {
		t.Errorf("at level warn an info record was logged: %q (err %v)", logs.String(), err)
	}
}

func TestCheckArgs(t *testing.T) {
	cmd := testCommand(errors.New("must not run"))
	if err := CheckArgs(cmd, []string{"--name=z", "--log-format=json"}); err != nil {
		t.Errorf("CheckArgs of a good command line: %v", err)
	}
	for _, args := range [][]string{{"--nope"}, {"extra"}, {"--log-format=xml"}} {
		err := CheckArgs(cmd, args)
		var ce interface{ ExitCode() int }
		if !errors.As(err, &ce) || ce.ExitCode() != ExitUsage {
			t.Errorf("CheckArgs(%q) = %v, want a usage error", args, err)
		}
	}
}
