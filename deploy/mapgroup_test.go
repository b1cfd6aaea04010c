package deploy

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/cellarsim/cellar/cell"
)

// A topology with a map group runs it in compose and in Kubernetes: each member keeps
// its raft log on a volume of its own and reaches its peers by name, each gateway keeps
// the last cell map it had on a volume of its own (--state-dir), and every one of them
// mounts only its own share of the PKI. Without a map group, no gateway keeps a map.
func TestMapGroupDeploys(t *testing.T) {
	topo := cell.DefaultTopology()
	topo.Cells, topo.MapNodes, topo.Gateways, topo.TLS = 2, 3, 2, true
	b, err := Compose(topo)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, b)
	}
	for _, id := range []string{"map-0", "map-1", "map-2", "gateway-0", "gateway-1"} {
		s, ok := f.Services[id]
		if !ok {
			t.Fatalf("no service %s", id)
		}
		cmd := strings.Join(s.Command, " ")
		data := id + ":" + DataDir
		if _, ok := f.Volumes[id]; !ok || !slices.Contains(s.Volumes, data) || !slices.Contains(s.Volumes, NodePKIVolume(id)+":"+PKIDir+":ro") {
			t.Errorf("%s: volumes %v, want its own %s and its own share of the PKI", id, s.Volumes, data)
		}
		if strings.HasPrefix(id, "map-") && (!strings.Contains(cmd, "--data-dir="+DataDir) ||
			!strings.Contains(cmd, "--peers=map-0=map-0.cellar:7100,map-1=map-1.cellar:7100,map-2=map-2.cellar:7100")) {
			t.Errorf("%s: command %q", id, cmd)
		}
		if strings.HasPrefix(id, "gateway-") && !strings.Contains(cmd, "--state-dir="+DataDir) {
			t.Errorf("%s: command %q keeps no cell map", id, cmd)
		}
	}

	files, err := Kubernetes(topo)
	if err != nil {
		t.Fatal(err)
	}
	if names := KubernetesFiles(topo); !slices.Equal(names, []string{"cellar.yaml", "cell-0.yaml", "cell-1.yaml", mapFile}) {
		t.Errorf("Kubernetes files %v", names)
	}
	m := string(files[mapFile])
	for _, want := range []string{
		"kind: StatefulSet\nmetadata:\n  name: map-2\n",
		`"--peers=map-0=map-0:7100,map-1=map-1:7100,map-2=map-2:7100"`,
		`"--raft-advertise=map-1:7100"`,
		"secret: {secretName: cellar-pki-map-1, defaultMode: 0440}",
		"kind: PodDisruptionBudget\nmetadata:\n  name: map\n  namespace: cellar\nspec:\n  minAvailable: 2\n",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("map.yaml has no %q:\n%s", want, m)
		}
	}
	if c := string(files["cellar.yaml"]); !strings.Contains(c, `"--state-dir=/data"`) || !strings.Contains(c, "map_nodes: 3\n") {
		t.Errorf("cellar.yaml: the gateways keep no cell map, or their topology has no map group")
	}

	plain, err := Kubernetes(cell.DefaultTopology())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := plain[mapFile]; ok || strings.Contains(string(plain["cellar.yaml"]), "--state-dir") {
		t.Errorf("without a map group: a map.yaml, or gateways that keep a map")
	}
}
