package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/localcluster"
	"github.com/spf13/cobra"
)

// attachedCluster is a running cluster as the drill commands act on it.
type attachedCluster interface {
	cell.Cluster
	Close()
}

// attachCluster attaches to the cluster of a cluster.json; tests replace it.
var attachCluster = func(ctx context.Context, file *localcluster.ClusterFile) (attachedCluster, error) {
	return localcluster.Attach(ctx, file)
}

// runningCluster reads the cluster.json of a running cluster, or says how to start one.
func runningCluster(dataDir string) (*localcluster.ClusterFile, error) {
	return localcluster.Running(dataDir)
}

// guardError gives an error of the guardrail workflow the exit code that says what
// happened: refused by a guardrail or a stale confirmation, halted by the kill
// switch, or a usage error for a request that names nothing sensible.
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
	case errors.Is(err, guard.ErrRefused):
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

// guardedRun takes one capacity command through the guardrail workflow on the running
// cluster of file: it attaches to the cluster only to plan (a kill switch that is set
// stops the command before that), prints each step in text mode, and leaves the
// cluster's gossip when done. plan decides the plan from the cluster as it is now.
func guardedRun(cmd *cobra.Command, file *localcluster.ClusterFile, output string, x *guard.Executor, op guard.Op,
	plan func(ctx context.Context, cl cell.Cluster) (*guard.Plan, error)) (*guard.Result, error) {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	x.Dir, x.Audit = file.DataDir, guard.OpenAudit(file.DataDir)
	if output == "text" {
		x.Progress = cmd.OutOrStdout()
	}
	op.Command = "cellctl " + strings.Join(os.Args[1:], " ")
	var cl attachedCluster
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	op.Plan = func(ctx context.Context) (*guard.Plan, error) {
		var err error
		if cl, err = attachCluster(ctx, file); err != nil {
			return nil, err
		}
		x.Cluster = cl
		return plan(ctx, cl)
	}
	return x.Run(ctx, op)
}
