package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/composecluster"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/localcluster"
)

// attachedCluster is a running cluster as a drill acts on it.
type attachedCluster interface {
	cell.Cluster
	Close()
}

// attachCluster attaches to the cluster of a cluster.json, acting for who; tests
// replace it.
var attachCluster = func(ctx context.Context, file *localcluster.ClusterFile, who localcluster.Caller) (attachedCluster, error) {
	if c, ok := composeOpened.Load(file); ok {
		return composeAttached{c.(*composecluster.Cluster)}, nil
	}
	return localcluster.Attach(ctx, file, who)
}

// runningCluster reads the cluster.json of a running cluster, or says how to start
// one; with --cluster compose:FILE it describes the running compose project of FILE
// (see openCompose).
func runningCluster(cmd *cobra.Command, dataDir string) (*localcluster.ClusterFile, error) {
	file, err := composeFile(cmd)
	if err != nil {
		return nil, err
	}
	if file != "" {
		_, f, err := openCompose(cmd.Context(), file)
		return f, err
	}
	return localcluster.Running(dataDir)
}

// commandLine is this command as the audit log records it.
func commandLine() string { return "cellctl " + strings.Join(os.Args[1:], " ") }

// guardError gives an error of the guardrail workflow the exit code that says what
// happened: refused by a guardrail, a stale confirmation or another operation that
// runs, halted by the kill switch, or a usage error for a request that names nothing
// sensible.
func guardError(err error) error {
	var stale *guard.StaleError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &stale) && !stale.Previewed:
		return refused("--confirm %s is not the id of a plan a dry run showed (mistyped?); the plan as it stands now is %s: review it above and confirm that id",
			stale.Confirmed, stale.Current)
	case errors.As(err, &stale):
		return refused("--confirm %s does not match the plan as it stands now (%s): the cluster or the request changed since the dry run; review the plan above and confirm it again",
			stale.Confirmed, stale.Current)
	case errors.Is(err, guard.ErrRefused), errors.Is(err, localcluster.ErrBusy):
		return &codeError{ExitRefused, err}
	case errors.Is(err, guard.ErrHalted):
		return halted(err)
	case errors.Is(err, guard.ErrBadRequest):
		return usageErrorf("%s", strings.TrimPrefix(err.Error(), guard.ErrBadRequest.Error()+": "))
	case errors.Is(err, guard.ErrNoReason):
		return usageErrorf("--reason is required to run a plan")
	}
	return err
}

// runPlan asks the supervisor of the running cluster of file to take one capacity
// command through the guardrail workflow: the supervisor plans, checks, audits and
// acts, and this command prints what it streams back. show is given the plan before
// anything is done; in text mode each step is printed as it happens. An interrupt
// (Ctrl-C) ends the request, and the supervisor stops the plan before its next step.
func runPlan(cmd *cobra.Command, file *localcluster.ClusterFile, output string, req localcluster.PlanRequest,
	show func(*guard.Plan)) (*guard.Result, error) {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctl, err := localcluster.NewControl(file)
	if errors.Is(err, localcluster.ErrNoControl) {
		return nil, errors.New("the cluster's supervisor serves no control endpoint: restart the cluster with 'cellctl up'")
	}
	if err != nil {
		return nil, err
	}
	req.Command = commandLine()
	var progress io.Writer
	if output == outputText {
		progress = cmd.OutOrStdout()
	}
	return ctl.RunPlan(ctx, req, show, progress)
}
