package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/composecluster"
	"github.com/cellarsim/cellar/localcluster"
)

// clusterFlagName is the flag that says which cluster a command acts on.
const clusterFlagName = "cluster"

// composePrefix starts a --cluster value that names a compose file.
const composePrefix = "compose:"

// clusterFlag adds --cluster to a command that acts on a running cluster.
func clusterFlag(cmd *cobra.Command) {
	cmd.Flags().String(clusterFlagName, "", `the cluster: "compose:FILE" for the Docker Compose project of FILE (e.g. compose:deploy/docker-compose.yml; its audit log and kill switch are in ~/.cellar/compose-PROJECT); default the 'cellctl up' cluster of --data-dir`)
}

// composeFile is FILE of --cluster compose:FILE, or "" for the cellctl up cluster of
// --data-dir.
func composeFile(cmd *cobra.Command) (string, error) {
	f := cmd.Flags().Lookup(clusterFlagName)
	if f == nil || f.Value.String() == "" {
		return "", nil
	}
	v := f.Value.String()
	file, ok := strings.CutPrefix(v, composePrefix)
	if !ok || file == "" {
		return "", usageErrorf("--cluster %q: want compose:FILE (a docker-compose.yml), or leave it out for the 'cellctl up' cluster of --data-dir", v)
	}
	if cmd.Flags().Changed("data-dir") {
		return "", usageErrorf("give --cluster or --data-dir, not both")
	}
	return file, nil
}

// composeOptions are how cellctl finds Docker and the compose project; tests replace
// them (a fake docker command).
var composeOptions = composecluster.Options{}

// composeOpened holds the compose clusters runningCluster opened, by the cluster file
// it made for each, for attachCluster.
var composeOpened sync.Map // *localcluster.ClusterFile → *composecluster.Cluster

// openCompose opens the running compose project of file and describes it as a
// cluster.json would: its S3 endpoint and credentials (from the gateway's container),
// its topology, its nodes, and a control endpoint served by this process on 127.0.0.1
// over the containers, with its audit log and kill switch in the project's audit
// directory. The drain, restart and undrain commands then take their plans through
// the same guardrail workflow, with the same output, as on a 'cellctl up' cluster.
func openCompose(ctx context.Context, file string) (*composecluster.Cluster, *localcluster.ClusterFile, error) {
	c, err := composecluster.Open(ctx, file, composeOptions)
	if err != nil {
		return nil, nil, err
	}
	dir, err := c.AuditDir()
	if err != nil {
		return nil, nil, err
	}
	acc, err := c.Access(ctx)
	if err != nil {
		return nil, nil, err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, nil, err
	}
	token := hex.EncodeToString(b)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("control endpoint: %w", err)
	}
	h := localcluster.NewControlHandler(localcluster.ControlConfig{Dir: dir, Cluster: c, Procs: c.Procs, Token: token})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	f := &localcluster.ClusterFile{Running: true, Updated: time.Now(), DataDir: dir, S3Endpoint: acc.Endpoint,
		AccessKey: acc.AccessKey, SecretKey: acc.SecretKey, Region: acc.Region, FastGossip: true,
		Topology: localcluster.Topology{Topology: c.Topology()}, Nodes: c.Procs(),
		ControlAddr: l.Addr().String(), ControlToken: token}
	composeOpened.Store(f, c)
	return c, f, nil
}

// composeAttached is a compose cluster as a drill acts on it: directly, the drill's
// own guardrail workflow having judged every step.
type composeAttached struct{ *composecluster.Cluster }

func (composeAttached) Close() {}

// auditDirOf is the directory of the audit log and the kill switch: --data-dir's, or
// the compose project's of --cluster compose:FILE.
func auditDirOf(cmd *cobra.Command, dataDir string) (string, error) {
	file, err := composeFile(cmd)
	if err != nil || file == "" {
		return dataDir, err
	}
	return composecluster.AuditDirOf(cmd.Context(), file, composeOptions)
}

// clusterOf is how a printed command names the cluster: --cluster compose:FILE, or
// --data-dir DIR when compose is "".
func clusterOf(compose, dataDir string) string {
	if compose != "" {
		return "--cluster " + composePrefix + compose
	}
	return "--data-dir " + dataDir
}

// runComposeStatus is 'cellctl status --cluster compose:FILE': every node with its
// container's state, and the gossip as a running node of the project serves it at
// /members, judged against the topology beside FILE.
func runComposeStatus(cmd *cobra.Command, o statusOptions, file string, err error) error {
	if err != nil {
		return err
	}
	if o.serve != "" {
		return usageErrorf("a compose cluster serves its own status page: the service 'status', on http://127.0.0.1:8080 unless CELLAR_STATUS_PORT says otherwise")
	}
	c, err := composecluster.Open(cmd.Context(), file, composeOptions)
	if err != nil {
		return err
	}
	seen, procs, err := c.Members(cmd.Context())
	if err != nil {
		return err
	}
	topo := c.Topology()
	rep := buildReport(seen, &localcluster.ClusterFile{Running: true, Nodes: procs, Topology: localcluster.Topology{Topology: topo}}, &topo)
	out := cmd.OutOrStdout()
	if o.output == outputJSON {
		return printJSON(out, rep)
	}
	printStatusTable(out, rep)
	return nil
}
