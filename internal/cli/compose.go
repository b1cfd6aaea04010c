package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/deploy"
)

func newComposeCommand() *cobra.Command {
	var topoPath, outDir string
	cmd := &cobra.Command{
		Use:   "compose",
		Short: "Write the docker-compose.yml and prometheus.yml of a cluster in containers",
		Long: `compose writes, from a topology file, what runs that cluster in containers:
OUT/docker-compose.yml (one service per node, each with its own volume, and a
Prometheus service under the profile 'prometheus') and OUT/prometheus.yml (every node
as a scrape target). The gateway container reads the same topology file, so keep it in
OUT as topology.yaml. See docs/docker.md.`,
		Example: `  cellctl compose --topology deploy/topology.yaml --out deploy`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := cell.LoadTopology(topoPath)
			if err != nil {
				return err
			}
			compose, err := deploy.Compose(t)
			if err != nil {
				return err
			}
			files := map[string][]byte{"docker-compose.yml": compose, "prometheus.yml": deploy.Prometheus(t)}
			for _, name := range []string{"docker-compose.yml", "prometheus.yml"} {
				path := filepath.Join(outDir, name)
				if err := os.WriteFile(path, files[name], 0o644); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", path)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&topoPath, "topology", "deploy/topology.yaml", "YAML topology file over the embedded defaults")
	cmd.Flags().StringVar(&outDir, "out", "deploy", "directory to write the files to")
	return cmd
}
