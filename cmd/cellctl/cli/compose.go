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
	var topoPath, outDir, output string
	cmd := &cobra.Command{
		Use:   "compose",
		Short: "Write the docker-compose.yml, prometheus.yml and Kubernetes manifests of a cluster",
		Long: `compose writes, from a topology file, what runs that cluster in containers:
OUT/docker-compose.yml (one service per node, each with its own volume, and a
the status page, and Prometheus and Grafana under the profile 'monitoring'), OUT/prometheus.yml (every node and the status page as a
scrape target) and OUT/kubernetes/*.yaml (a StatefulSet of one pod and a headless
Service per node, so that each pod mounts only its own key, a PodDisruptionBudget and
a NetworkPolicy per tier of each cell, the gateways, the routers and the map group). The gateway container of
docker-compose.yml reads the same topology file, so keep it in OUT as topology.yaml.
See docs/docker.md. It prints the path of every file it wrote; with --output json, as
{"files": [...]}.`,
		Example: `  cellctl compose --topology deploy/topology.yaml --out deploy
  cellctl compose --topology my-topology.yaml --out /tmp/cellar-deploy --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(&output); err != nil {
				return err
			}
			t, err := cell.LoadTopology(topoPath)
			if err != nil {
				return err
			}
			compose, err := deploy.Compose(t)
			if err != nil {
				return err
			}
			kube, err := deploy.Kubernetes(t)
			if err != nil {
				return err
			}
			files := map[string][]byte{"docker-compose.yml": compose, "prometheus.yml": deploy.Prometheus(t)}
			names := []string{"docker-compose.yml", "prometheus.yml"}
			for _, name := range deploy.KubernetesFiles(t) {
				files["kubernetes/"+name] = kube[name]
				names = append(names, "kubernetes/"+name)
			}
			if err := os.MkdirAll(filepath.Join(outDir, "kubernetes"), 0o755); err != nil {
				return err
			}
			written := []string{}
			for _, name := range names {
				path := filepath.Join(outDir, name)
				if err := os.WriteFile(path, files[name], 0o644); err != nil {
					return err
				}
				written = append(written, path)
				if output == outputText {
					fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", path)
				}
			}
			if output == outputJSON {
				return printJSON(cmd.OutOrStdout(), map[string][]string{"files": written})
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&topoPath, "topology", "deploy/topology.yaml", "YAML topology file over the embedded defaults")
	cmd.Flags().StringVar(&outDir, "out", "deploy", "directory to write the files to")
	outputFlag(cmd, &output)
	return cmd
}
