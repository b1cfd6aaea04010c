package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/pki"
)

// The checked-in files are what 'cellctl compose' writes: under deploy/ for
// deploy/topology.yaml, under deploy/sharded/ for deploy/sharded/topology.yaml.
func TestGeneratedFilesUpToDate(t *testing.T) {
	for _, dir := range []string{".", "sharded", "cellmap"} {
		topo, err := cell.LoadTopology(filepath.Join(dir, "topology.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		compose, err := Compose(topo)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]byte{"docker-compose.yml": compose, "prometheus.yml": Prometheus(topo)}
		kube, err := Kubernetes(topo)
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range kube {
			want["kubernetes/"+name] = b
		}
		for name, want := range want {
			path := filepath.Join(dir, name)
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("deploy/%s is out of date: run 'go run ./cmd/cellctl compose --topology deploy/%s/topology.yaml --out deploy/%s' from the repository root",
					path, dir, dir)
			}
		}
	}
}

func TestCompose(t *testing.T) {
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.StorageNodes = 3, 3, 2
	b, err := Compose(topo)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Command     []string          `yaml:"command"`
			Ports       []string          `yaml:"ports"`
			Volumes     []string          `yaml:"volumes"`
			Profiles    []string          `yaml:"profiles"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, b)
	}
	nodes := topo.Nodes()
	if len(f.Services) != len(nodes)+4 {
		t.Errorf("%d services, want %d nodes, the certificate maker, the status page, prometheus and grafana", len(f.Services), len(nodes))
	}
	for _, n := range nodes {
		s, ok := f.Services[n.ID]
		if !ok {
			t.Errorf("no service %s", n.ID)
			continue
		}
		// A node mounts its own share of the PKI and nothing of the others': not the
		// volume that holds the CA's key, not another node's.
		pkiMount := NodePKIVolume(n.ID) + ":" + PKIDir + ":ro"
		if _, ok := f.Volumes[NodePKIVolume(n.ID)]; !ok || !slices.Contains(s.Volumes, pkiMount) {
			t.Errorf("%s: volumes %v, want its own share of the PKI, %s", n.ID, s.Volumes, pkiMount)
		}
		for _, v := range s.Volumes {
			if name, _, _ := strings.Cut(v, ":"); name == PKIVolume || (strings.HasPrefix(name, "pki-") && name != NodePKIVolume(n.ID)) {
				t.Errorf("%s mounts %s, which holds keys that are not its own", n.ID, v)
			}
		}
		cmd := strings.Join(s.Command, " ")
		if !strings.HasPrefix(cmd, "daemon "+string(n.Role)+" --id="+n.ID) || !strings.Contains(cmd, "--advertise-host="+FrontHost(n.ID)) {
			t.Errorf("%s: command %q", n.ID, cmd)
		}
		if n.Role == cell.RoleIndex || n.Role == cell.RoleStorage {
			if _, ok := f.Volumes[n.ID]; !ok || len(s.Volumes) != 2 || s.Volumes[0] != n.ID+":"+DataDir || s.Volumes[1] != pkiMount {
				t.Errorf("%s: volumes %v, want its own named volume on %s and the certificates read-only", n.ID, s.Volumes, DataDir)
			}
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %q beyond 127.0.0.1", n.ID, p)
			}
		}
		// The status view runs in a container of the network: it reads /status.
		if !strings.Contains(cmd, "--status-remote") {
			t.Errorf("%s: command %q does not open /status to the network", n.ID, cmd)
		}
		// The credentials come from compose's environment, written nowhere here.
		env := s.Environment
		if n.Role == cell.RoleGateway && (env[cell.EnvAccessKey] != "${CELLAR_ACCESS_KEY:-}" || env[cell.EnvSecretKey] != "${CELLAR_SECRET_KEY:-}") {
			t.Errorf("%s: environment %v, want the credentials from compose's", n.ID, env)
		}
	}
	if strings.Contains(string(b), "secret_key") {
		t.Errorf("the compose file holds a secret key:\n%s", b)
	}
	if p := f.Services["prometheus"].Profiles; strings.Join(p, ",") != "monitoring,prometheus" {
		t.Errorf("prometheus profiles %v", p)
	}
	if p := f.Services["grafana"].Profiles; strings.Join(p, ",") != "monitoring" {
		t.Errorf("grafana profiles %v", p)
	}
	// The status page runs without a profile: it is the view that outlives the outage.
	st := f.Services[StatusService]
	if want := NodePKIVolume(pki.ObserverDir) + ":" + PKIDir + ":ro"; !slices.Equal(st.Volumes[1:], []string{want}) {
		t.Errorf("status service volumes %v, want the topology and %s only", st.Volumes, want)
	}
	// The one-shot service makes every node's share, and only it holds the CA's key.
	mk := f.Services[PKIService]
	if cmd := strings.Join(mk.Command, " "); !strings.Contains(cmd, "--node-dirs="+PKINodeDirs) {
		t.Errorf("pki service: command %q does not give each node its own directory", cmd)
	}
	for _, n := range nodes {
		if want := NodePKIVolume(n.ID) + ":" + PKINodeDirs + "/" + n.ID; !slices.Contains(mk.Volumes, want) {
			t.Errorf("pki service volumes %v: no %s", mk.Volumes, want)
		}
	}
	if len(st.Profiles) != 0 || !strings.HasPrefix(strings.Join(st.Command, " "), "status --serve=") ||
		!strings.Contains(strings.Join(st.Command, " "), "--topology="+TopologyPath) {
		t.Errorf("status service: profiles %v, command %v", st.Profiles, st.Command)
	}
	for _, p := range append(st.Ports, f.Services["grafana"].Ports...) {
		if !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("publishes %q beyond 127.0.0.1", p)
		}
	}
}

// Prometheus scrapes the status page too, and Grafana finds its data source and the
// dashboard where the compose file mounts them.
func TestMonitoringIsWired(t *testing.T) {
	topo := cell.DefaultTopology()
	if !strings.Contains(string(Prometheus(topo)), `targets: ["status:8080"]`) {
		t.Errorf("prometheus.yml does not scrape the status page:\n%s", Prometheus(topo))
	}
	compose, err := Compose(topo)
	if err != nil {
		t.Fatal(err)
	}
	for _, mount := range []string{"./grafana/provisioning:/etc/grafana/provisioning:ro", "./grafana/cellar-dashboard.json:/var/lib/grafana/dashboards/cellar-dashboard.json:ro"} {
		if !strings.Contains(string(compose), mount) {
			t.Errorf("grafana does not mount %s", mount)
		}
	}
	var ds struct {
		Datasources []struct{ Type, URL string } `yaml:"datasources"`
	}
	b, err := os.ReadFile("grafana/provisioning/datasources/prometheus.yml")
	if err == nil {
		err = yaml.Unmarshal(b, &ds)
	}
	if err != nil || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("data source: %+v, %v", ds, err)
	}
	var dash struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	b, err = os.ReadFile("grafana/provisioning/dashboards/cellar.yml")
	if err == nil {
		err = yaml.Unmarshal(b, &dash)
	}
	if err != nil || len(dash.Providers) != 1 || dash.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("dashboard provider: %+v, %v", dash, err)
	}
}

func TestIndexGroupFlags(t *testing.T) {
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes = 2, 3
	want := "--peers=cell-1-index-0=cell-1-index-0.cell-1:7100,cell-1-index-1=cell-1-index-1.cell-1:7100,cell-1-index-2=cell-1-index-2.cell-1:7100"
	n := 0
	for _, node := range Plan(topo) {
		if node.Role != cell.RoleIndex || node.Cell != "cell-1" {
			continue
		}
		n++
		args := strings.Join(node.Args, " ")
		if !strings.Contains(args, want) || !strings.Contains(args, "--raft-advertise="+node.ID+".cell-1:7100") {
			t.Errorf("%s: %s", node.ID, args)
		}
	}
	if n != 3 {
		t.Errorf("%d index nodes in cell-1, want 3", n)
	}
}

// TestNetworkPolicyFollowsCallers: each tier's NetworkPolicy admits on its gRPC port
// exactly the node roles the servers' own table lets call it — placement reaches its
// cell's index and storage (repair), only gateways reach placement — so a policy cannot
// refuse what the data path needs, nor admit a role no server would answer.
func TestNetworkPolicyFollowsCallers(t *testing.T) {
	for _, tc := range []struct {
		tier cell.Role
		want []cell.Role
	}{
		{cell.RoleIndex, []cell.Role{cell.RoleGateway, cell.RolePlacement}},
		{cell.RolePlacement, []cell.Role{cell.RoleGateway}},
		{cell.RoleStorage, []cell.Role{cell.RoleGateway, cell.RolePlacement}},
	} {
		if got := GRPCCallers(tc.tier); !slices.Equal(got, tc.want) {
			t.Errorf("%s: callers %v, want %v", tc.tier, got, tc.want)
		}
	}
	files, err := Kubernetes(cell.DefaultTopology())
	if err != nil {
		t.Fatal(err)
	}
	cell0 := string(files["cell-0.yaml"])
	if !strings.Contains(cell0, "app.kubernetes.io/component: placement\n              cellar.dev/cell: cell-0\n") {
		t.Errorf("cell-0.yaml admits no placement pod of cell-0 on a gRPC port:\n%s", cell0)
	}
	if strings.Contains(cell0, "cellar.dev/cell: cell-1") {
		t.Errorf("cell-0.yaml admits a pod of cell-1")
	}
}

// A topology with tenants and a front router: the router is a service of its own that
// forwards to every gateway by its name on the front network, in the fleet's order,
// and the host's S3 port is the router's, not a gateway's.
func TestComposeRouter(t *testing.T) {
	topo := cell.DefaultTopology()
	topo.Cells, topo.Gateways, topo.ShardSize, topo.Routers = 1, 4, 2, 1
	topo.Tenants = []cell.Tenant{{Name: "tenant-000", AccessKey: "AKTENANT0", SecretKey: "secret0"}}
	b, err := Compose(topo)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
			Ports   []string `yaml:"ports"`
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, b)
	}
	rt, ok := f.Services["router-0"]
	if !ok {
		t.Fatalf("no router-0 service among %d", len(f.Services))
	}
	cmd := strings.Join(rt.Command, " ")
	want := "--backends=gateway-0.cellar:9000,gateway-1.cellar:9000,gateway-2.cellar:9000,gateway-3.cellar:9000"
	if !strings.HasPrefix(cmd, "daemon router --id=router-0") || !strings.Contains(cmd, want) ||
		!strings.Contains(cmd, "--topology="+TopologyPath) || strings.Contains(cmd, "--tls-cert") {
		t.Errorf("router command %q: want %s, the topology, and no certificate of the internal plane", cmd, want)
	}
	if topo.TLS && !strings.Contains(cmd, "--gossip-key=") {
		t.Errorf("router command %q: no gossip key", cmd)
	}
	if len(rt.Ports) != 1 || !strings.Contains(rt.Ports[0], "CELLAR_S3_PORT") {
		t.Errorf("router ports %v, want the host's S3 port", rt.Ports)
	}
	if p := f.Services["gateway-0"].Ports; len(p) != 0 {
		t.Errorf("gateway-0 publishes %v beside the router", p)
	}
	if !slices.Contains(rt.Volumes, "./topology.yaml:"+TopologyPath+":ro") {
		t.Errorf("router volumes %v: no topology", rt.Volumes)
	}
}

// A topology with front routers runs them in Kubernetes too: each gateway is a
// StatefulSet under a headless Service of its name (gateway-0, ...), and
// every router forwards to those names in the fleet's order, the order its shards are
// computed over; the S3 Service is the routers'; the routers and the gateways read
// the tenants from their Secret and the sharding from the topology; a router holds
// the gossip key but no certificate; no role may call a router over gRPC, and behind
// routers only the routers and operator pods reach the gateways' S3 port.
func TestKubernetesRouter(t *testing.T) {
	topo := cell.DefaultTopology()
	topo.Cells, topo.Gateways, topo.ShardSize, topo.Routers, topo.TLS = 1, 4, 2, 2, true
	if got := GRPCCallers(cell.RoleRouter); len(got) != 0 {
		t.Errorf("roles that may call a router over gRPC: %v, want none", got)
	}
	files, err := Kubernetes(topo)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]map[string]any{}
	for _, doc := range strings.Split(string(files["cellar.yaml"]), "\n---\n") {
		var d map[string]any
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		md, _ := d["metadata"].(map[string]any)
		docs[fmt.Sprint(d["kind"], "/", md["name"])] = d
	}
	get := func(v any, path ...any) any {
		for _, p := range path {
			switch k := p.(type) {
			case string:
				m, _ := v.(map[string]any)
				v = m[k]
			case int:
				l, _ := v.([]any)
				if k >= len(l) {
					return nil
				}
				v = l[k]
			}
		}
		return v
	}
	for i := range topo.Gateways {
		name := cell.NodeID("", cell.RoleGateway, i)
		gw := docs["StatefulSet/"+name]
		if gw == nil || get(gw, "spec", "serviceName") != name || get(gw, "spec", "replicas") != 1 {
			t.Fatalf("gateways: %v, want a StatefulSet of 1 under the Service %s", gw, name)
		}
		if svc := docs["Service/"+name]; get(svc, "spec", "clusterIP") != "None" {
			t.Errorf("Service %s %v, want headless", name, svc)
		}
	}
	rt := docs["Deployment/router"]
	if rt == nil || get(rt, "spec", "replicas") != 2 {
		t.Fatalf("routers: %v, want a Deployment of 2", rt)
	}
	var args []string
	for _, a := range get(rt, "spec", "template", "spec", "containers", 0, "args").([]any) {
		args = append(args, a.(string))
	}
	cmd := strings.Join(args, " ")
	want := "--backends=gateway-0:9000,gateway-1:9000,gateway-2:9000,gateway-3:9000"
	if !strings.HasPrefix(cmd, "daemon router --id=$(POD_NAME)") || !strings.Contains(cmd, want) ||
		!strings.Contains(cmd, "--topology="+TopologyPath) || !strings.Contains(cmd, "--gossip-key="+PKIDir+"/gossip.key") ||
		strings.Contains(cmd, "--tls-cert") || !strings.Contains(cmd, "--s3-addr=0.0.0.0:9000") {
		t.Errorf("router command %q: want %s, the topology, the gossip key and no certificate", cmd, want)
	}
	if got := get(docs["Service/cellar-s3"], "spec", "selector", "app.kubernetes.io/component"); got != "router" {
		t.Errorf("the S3 Service selects %v, want the routers", got)
	}
	topoYAML, _ := get(docs["ConfigMap/cellar-topology"], "data", "topology.yaml").(string)
	if !strings.Contains(topoYAML, "routers: 2\nsharding: shuffle\nshard_size: 2") || strings.Contains(topoYAML, "tenants") {
		t.Errorf("topology the routers read:\n%s\nwant the routers and the sharding, no tenants", topoYAML)
	}
	cellar := string(files["cellar.yaml"])
	for _, who := range []string{"gateway", "router"} {
		env := fmt.Sprint(get(docs[map[string]string{"gateway": "StatefulSet/gateway-0", "router": "Deployment/router"}[who]],
			"spec", "template", "spec", "containers", 0, "env"))
		if !strings.Contains(env, "name:CELLAR_TENANTS") || !strings.Contains(env, "key:tenants.json name:cellar-tenants") {
			t.Errorf("%s environment %s: want CELLAR_TENANTS from the Secret cellar-tenants", who, env)
		}
	}
	if vols := fmt.Sprint(get(rt, "spec", "template", "spec", "volumes")); !strings.Contains(vols, "items:[map[key:gossip.key path:gossip.key]]") {
		t.Errorf("router volumes %s: want the gossip key alone from the Secret %s", vols, PKISecret(pki.ObserverDir))
	}
	// The gateways' S3 port answers the routers and operator pods only; the routers'
	// answers anyone.
	gwPolicy := fmt.Sprint(get(docs["NetworkPolicy/gateway"], "spec", "ingress"))
	if !strings.Contains(gwPolicy, "app.kubernetes.io/component:router") || !strings.Contains(gwPolicy, "cellar.dev/operator:true") {
		t.Errorf("gateway ingress %s: want S3 from the routers and operator pods", gwPolicy)
	}
	rtIngress, _ := get(docs["NetworkPolicy/router"], "spec", "ingress").([]any)
	if len(rtIngress) != 3 || get(rtIngress[2], "from") != nil || fmt.Sprint(get(rtIngress[2], "ports", 0, "port")) != "9000" {
		t.Errorf("router ingress %v: want gossip, admin, and S3 from anyone, no gRPC", rtIngress)
	}
	if !strings.Contains(cellar, "kubectl -n cellar create secret generic cellar-tenants") {
		t.Errorf("cellar.yaml does not say how to make the Secret cellar-tenants")
	}

	// Without routers, the gateways are the S3 Service's and anyone's.
	plain, err := Kubernetes(cell.DefaultTopology())
	if err != nil {
		t.Fatal(err)
	}
	if s := string(plain["cellar.yaml"]); strings.Contains(s, "kind: Deployment") || strings.Contains(s, "CELLAR_TENANTS") ||
		!strings.Contains(s, "component: gateway\n  ports:\n    - {name: s3, port: 9000, targetPort: s3}") {
		t.Errorf("cellar.yaml without routers has a router, the tenants, or an S3 Service that is not the gateways':\n%s", s)
	}
}
