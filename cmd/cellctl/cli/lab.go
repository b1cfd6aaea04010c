package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/localcluster"
	"github.com/cellarsim/cellar/workshop"
)

func newLabCommand() *cobra.Command {
	var list bool
	cmd := &cobra.Command{
		Use:   "lab N",
		Short: "Start what a workshop lab needs and say what to look at",
		Long: `lab starts what lab N of the workshop (docs/workshop) needs, prints what to look at
and the first commands, and keeps the cluster running until Ctrl-C, like 'cellctl up'.
A lab that needs no cluster (3, 5 and 7 start their own) only prints its commands. A
lab whose cluster is described by a topology file (lab 8: ./cellar-lab8.yaml) writes
that file first, unless it is there already: then it is used as it is. Each
lab keeps its data in ./cellar-labN; every lab serves S3 on 127.0.0.1:9000, so stop one
lab (Ctrl-C) before starting the next. The pages work with plain commands as well:
'cellctl lab N' is a shortcut for the 'cellctl up' line at the top of each page.`,
		Example: `  cellctl lab 1
  cellctl lab 2        # one cell, guardrails off
  cellctl lab --list`,
		Args: func(cmd *cobra.Command, args []string) error {
			if list {
				return noArgs(cmd, args)
			}
			if len(args) != 1 {
				return usageErrorf("want one lab number, 1 to %d (see 'cellctl lab --list')", len(workshop.Labs))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if list {
				for _, l := range workshop.Labs {
					state := fmt.Sprintf("%d min", l.Minutes)
					if l.Coming {
						state = "coming"
					}
					fmt.Fprintf(out, "%d  %-40s %-7s docs/workshop/%s\n", l.N, l.Title, state, l.Page)
				}
				return nil
			}
			n, err := strconv.Atoi(args[0])
			if err != nil {
				return usageErrorf("%q is not a lab number: want 1 to %d (see 'cellctl lab --list')", args[0], len(workshop.Labs))
			}
			lab, err := workshop.Find(n)
			if err != nil {
				return usageErrorf("%v", err)
			}
			if lab.Coming {
				return fmt.Errorf("lab %d (%s) is coming: docs/workshop/%s says what it will be", lab.N, lab.Title, lab.Page)
			}
			fmt.Fprintf(out, "Lab %d: %s (about %d minutes) — docs/workshop/%s\n\n%s\n\n", lab.N, lab.Title, lab.Minutes, lab.Page, lab.LookAt)
			if len(lab.Up) == 0 {
				return nil
			}
			if lab.TopologyFile != "" {
				if err := writeLabTopology(out, lab); err != nil {
					return err
				}
			}
			fmt.Fprintf(out, "Starting: cellctl up %s\n", strings.Join(lab.Up, " "))
			up := newUpCommand()
			up.SetArgs(lab.Up)
			up.SetOut(cmd.OutOrStdout())
			up.SetErr(cmd.ErrOrStderr())
			up.SilenceErrors, up.SilenceUsage = true, true
			err = up.ExecuteContext(cmd.Context())
			if errors.Is(err, localcluster.ErrDirInUse) {
				return fmt.Errorf("lab %d is already running (its cluster in %s is up): use it, or stop it with Ctrl-C where it runs", lab.N, lab.DataDir)
			}
			if err != nil && strings.Contains(err.Error(), "is in use") {
				return fmt.Errorf("another cluster serves S3 on 127.0.0.1:9000 (another lab, or 'cellctl up'): stop it with Ctrl-C where it runs, then start lab %d again", lab.N)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&list, "list", false, "list the labs")
	return cmd
}

// writeLabTopology writes lab's topology file unless one is there, and says which it
// uses.
func writeLabTopology(out io.Writer, lab workshop.Lab) error {
	have, err := os.ReadFile(lab.TopologyFile)
	switch {
	case err == nil && string(have) == lab.Topology:
		fmt.Fprintf(out, "Topology: %s (the lab's)\n", lab.TopologyFile)
		return nil
	case err == nil:
		fmt.Fprintf(out, "Topology: %s, as you left it (remove it to get the lab's again)\n", lab.TopologyFile)
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("lab %d's topology file: %w", lab.N, err)
	}
	if err := os.WriteFile(lab.TopologyFile, []byte(lab.Topology), 0o644); err != nil {
		return fmt.Errorf("write lab %d's topology file: %w", lab.N, err)
	}
	fmt.Fprintf(out, "Topology: wrote %s\n", lab.TopologyFile)
	return nil
}
