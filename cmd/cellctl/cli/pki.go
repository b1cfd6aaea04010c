package cli

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/pki"
	"github.com/cellarsim/cellar/localcluster"
)

func newPKICommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pki",
		Short: "Make the certificates and the gossip key of a cluster",
		Long: `The nodes of a cellar cluster trust one another through mutual TLS with a CA of the
cluster's own: every node has a certificate that names its role and cell, and a node
checks the role of whoever calls it, per method. The gossip between them is encrypted
with a key of the cluster's own. 'cellctl up' makes all of it in DATA_DIR/pki; 'pki
init' makes it for a cluster in containers (docker compose, Kubernetes).`,
		Args: noArgs,
	}
	cmd.AddCommand(newPKIInitCommand())
	return cmd
}

// pkiInitReport is what pki init prints, with --output json as it is.
type pkiInitReport struct {
	Dir       string   `json:"dir"`
	NewCA     bool     `json:"new_ca"`
	Issued    []string `json:"issued"`
	Kept      []string `json:"kept"`
	NewGossip bool     `json:"new_gossip_key"`
}

func newPKIInitCommand() *cobra.Command {
	var dir, topoPath, output, nodeDirs, owner string
	var hosts []string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Make a CA, a certificate per node of a topology, the operator's, and a gossip key",
		Long: `init writes into --dir (made 0700; every file 0600):

  ca.pem, ca.key        the cluster's CA (keep ca.key with whoever issues certificates)
  <node-id>.pem, .key   a certificate for every node of the topology, naming its role
                        and cell (subject OU = role, URI cellar://<role>/<cell>/<node-id>)
  operator.pem, .key    the operator's, for cellctl
  gossip.key            32 random bytes, base64: the key of the encrypted gossip

With --node-dirs DIR, each node also gets a directory of its own, DIR/<node-id>, with
only what it needs: ca.pem, gossip.key and its own certificate and key; DIR/observer
gets ca.pem and gossip.key alone (for a status view). A container that mounts its own
directory then holds neither the CA's key nor any other node's key. The compose file
gives each node such a directory in a volume of its own; the Kubernetes manifests
mount in each node's pod a Secret of its own made from it, cellar-pki-<node-id> (and
give the front routers the gossip key of cellar-pki-observer): see docs/docker.md.

What is there already is kept: the CA and the gossip key always, a node's certificate
while it is the same node's and has more than 30 days left. Running it again after
adding nodes to the topology issues only theirs.

A node is given its files with --tls-cert, --tls-key, --tls-ca and --gossip-key; the
compose and Kubernetes generators ('cellctl compose', deploy/) mount its own directory
read-only. Certificates carry the node's id, localhost and 127.0.0.1 as host names,
and those of --host; cellar's own clients check the CA and the role, not the host.`,
		Example: `  cellctl pki init --dir deploy/pki
  cellctl pki init --dir ./pki --topology my-topology.yaml --host cellar.example.internal
  cellctl pki init --dir cellar-pki --topology deploy/topology.yaml --node-dirs cellar-pki-nodes`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(&output); err != nil {
				return err
			}
			if dir == "" {
				return usageErrorf("--dir is required: where to write the certificates")
			}
			topo := cell.DefaultTopology()
			if topoPath != "" {
				t, err := cell.LoadTopology(topoPath)
				if err != nil {
					return err
				}
				topo = t
			}
			members := localcluster.PKIMembers(topo)
			for i := range members {
				members[i].Hosts = hosts
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			res, err := pki.Init(abs, pki.InitOptions{Cluster: filepath.Base(abs), Members: members})
			if err != nil {
				return err
			}
			if nodeDirs != "" {
				uid, gid, err := parseOwner(owner)
				if err != nil {
					return err
				}
				for _, m := range members {
					if err := pki.Dir(abs).Give(m.Node, filepath.Join(nodeDirs, m.Node), uid, gid); err != nil {
						return err
					}
				}
				if err := pki.Dir(abs).Give("", filepath.Join(nodeDirs, pki.ObserverDir), uid, gid); err != nil {
					return err
				}
			}
			rep := pkiInitReport{Dir: abs, NewCA: res.NewCA, Issued: res.Issued, Kept: res.Kept, NewGossip: res.NewGossip}
			if rep.Issued == nil {
				rep.Issued = []string{}
			}
			if rep.Kept == nil {
				rep.Kept = []string{}
			}
			out := cmd.OutOrStdout()
			if output == outputJSON {
				return printJSON(out, rep)
			}
			ca := "kept the CA"
			if res.NewCA {
				ca = "made a new CA"
			}
			fmt.Fprintf(out, "%s: %s, issued %d certificates, kept %d", abs, ca, len(res.Issued), len(res.Kept))
			if res.NewGossip {
				fmt.Fprint(out, ", made the gossip key")
			}
			fmt.Fprintln(out)
			if len(res.Issued) > 0 {
				fmt.Fprintf(out, "issued: %s\n", strings.Join(res.Issued, ", "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "directory to write the CA, certificates and gossip key into (required)")
	f.StringVar(&topoPath, "topology", "", "topology file whose nodes get certificates (default: the embedded topology)")
	f.StringVar(&nodeDirs, "node-dirs", "", "also give each node a directory of its own under this one, with only its own key (see above)")
	f.StringVar(&owner, "node-dirs-owner", "", "UID:GID to own what --node-dirs writes (default: whoever runs init)")
	f.StringSliceVar(&hosts, "host", nil, "more host names or IPs to put in every node's certificate (comma-separated)")
	outputFlag(cmd, &output)
	return cmd
}

// parseOwner reads --node-dirs-owner: "" (leave it) or UID:GID.
func parseOwner(s string) (uid, gid int, err error) {
	if s == "" {
		return -1, -1, nil
	}
	u, g, ok := strings.Cut(s, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return 0, 0, usageErrorf("--node-dirs-owner %q: want UID:GID, two numbers, e.g. 65532:65532", s)
	}
	return uid, gid, nil
}
