package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/pki"
	"github.com/cellarsim/cellar/localcluster"
)

// What the manifests' header says to do gives every pod its own identity: 'cellctl pki
// init --node-dirs' (pki.Init and Give over the topology's members, as the command runs
// them) makes one directory per node, each the content of that node's Secret. For every
// StatefulSet of the manifests, the Secret its pod mounts holds exactly the files its
// command line names, and nothing else (no CA key, no other node's key); they load, chain
// to the CA, and name the role, cell and id the pod runs as. A router's Secret item, the
// gossip key, is in the observer's directory.
func TestKubernetesPodsGetTheirOwnIdentity(t *testing.T) {
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.StorageNodes, topo.MapNodes = 2, 3, 2, 3
	topo.Gateways, topo.Routers, topo.ShardSize, topo.TLS = 3, 1, 2, true
	root := t.TempDir()
	src, nodeDirs := filepath.Join(root, "cellar-pki"), filepath.Join(root, "cellar-pki-nodes")
	members := localcluster.PKIMembers(topo)
	if _, err := pki.Init(src, pki.InitOptions{Cluster: "test", Members: members}); err != nil {
		t.Fatal(err)
	}
	for _, m := range append(members, pki.Member{}) {
		name := m.Node
		if name == "" {
			name = pki.ObserverDir
		}
		if err := pki.Dir(src).Give(m.Node, filepath.Join(nodeDirs, name), -1, -1); err != nil {
			t.Fatal(err)
		}
	}
	// secretDir is the directory a Secret is made from: cellar-pki-<dir>.
	secretDir := func(secret string) string {
		dir, ok := strings.CutPrefix(secret, PKISecret(""))
		if !ok {
			t.Fatalf("Secret %s is no node's", secret)
		}
		return filepath.Join(nodeDirs, dir)
	}

	files, err := Kubernetes(topo)
	if err != nil {
		t.Fatal(err)
	}
	nodes := 0
	for _, name := range KubernetesFiles(topo) {
		for _, doc := range strings.Split(string(files[name]), "\n---\n") {
			var d struct {
				Kind     string
				Metadata struct{ Name string }
				Spec     struct {
					Template struct {
						Spec struct {
							Containers []struct{ Args []string }
							Volumes    []struct {
								Name   string
								Secret struct {
									SecretName string `yaml:"secretName"`
									Items      []struct{ Key string }
								}
							}
						}
					}
				}
			}
			if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
				t.Fatalf("%s: not YAML: %v", name, err)
			}
			if d.Kind != "StatefulSet" && d.Kind != "Deployment" {
				continue
			}
			pod := d.Spec.Template.Spec
			args := pod.Containers[0].Args
			flags := map[string]string{}
			for _, a := range args[2:] {
				k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
				flags[k] = v
			}
			var secret string
			for _, v := range pod.Volumes {
				if v.Name == "pki" {
					secret = v.Secret.SecretName
				}
			}
			dir := secretDir(secret)
			inSecret := func(path string) string {
				rest, ok := strings.CutPrefix(path, PKIDir+"/")
				if !ok {
					t.Errorf("%s: %s is not in %s", d.Metadata.Name, path, PKIDir)
				}
				return filepath.Join(dir, rest)
			}
			if d.Kind == "Deployment" {
				if _, err := pki.LoadGossipKey(inSecret(flags["gossip-key"])); err != nil || len(pod.Volumes[1].Secret.Items) != 1 {
					t.Errorf("router: gossip key from %s: %v", secret, err)
				}
				continue
			}
			nodes++
			want := []string{"ca.pem", "gossip.key", flags["id"] + ".key", flags["id"] + ".pem"}
			slices.Sort(want)
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range ents {
				got = append(got, e.Name())
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: its Secret %s holds %v, want %v", d.Metadata.Name, secret, got, want)
			}
			creds, err := pki.Load(pki.Files{Cert: inSecret(flags["tls-cert"]), Key: inSecret(flags["tls-key"]), CA: inSecret(flags["tls-ca"])})
			if err != nil {
				t.Errorf("%s: %v", d.Metadata.Name, err)
				continue
			}
			if id := (pki.Identity{Role: args[1], Cell: flags["cell"], Node: flags["id"]}); creds.ID != id || d.Metadata.Name != id.Node {
				t.Errorf("StatefulSet %s runs as %v, its certificate names %v", d.Metadata.Name, id, creds.ID)
			}
			if _, err := pki.LoadGossipKey(inSecret(flags["gossip-key"])); err != nil {
				t.Errorf("%s: %v", d.Metadata.Name, err)
			}
		}
	}
	if nodes != len(topo.Nodes()) {
		t.Errorf("%d StatefulSets checked, want the %d nodes of the topology", nodes, len(topo.Nodes()))
	}
}
