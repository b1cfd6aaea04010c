// Package kubernetes holds cellar's Kubernetes manifests (written by 'cellctl compose'
// from deploy/topology.yaml) and the check that they are valid, and those of the
// sharded example (deploy/sharded/kubernetes: front routers before the gateways) and
// of the map group's (deploy/cellmap/kubernetes):
// every document is decoded strictly into the Kubernetes API types, so a misspelt or
// misplaced field fails here, with no cluster needed. It is a module of its own so that the Kubernetes
// API packages stay out of cellar's.
package kubernetes

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// manifestSets are the sets of manifests checked here, by name: deploy/kubernetes for
// deploy/topology.yaml, the sharded example's and the map group's.
var manifestSets = []struct{ name, dir string }{{"default", "."}, {"sharded", "../sharded/kubernetes"}, {"cellmap", "../cellmap/kubernetes"}}

// forEachSet runs f on every set of manifests, as a subtest.
func forEachSet(t *testing.T, f func(t *testing.T, m manifests)) {
	for _, set := range manifestSets {
		t.Run(set.name, func(t *testing.T) { f(t, load(t, set.dir)) })
	}
}

type manifests struct {
	statefulSets []*appsv1.StatefulSet
	deployments  []*appsv1.Deployment
	services     []*corev1.Service
	pdbs         []*policyv1.PodDisruptionBudget
	configMaps   []*corev1.ConfigMap
	namespaces   []*corev1.Namespace
	policies     []*networkingv1.NetworkPolicy
}

// load decodes every document of every .yaml file in dir strictly into its API type.
func load(t *testing.T, dir string) manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var m manifests
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			where := fmt.Sprintf("%s document %d", f, i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			var obj any
			switch tm.APIVersion + "/" + tm.Kind {
			case "apps/v1/StatefulSet":
				o := &appsv1.StatefulSet{}
				m.statefulSets, obj = append(m.statefulSets, o), o
			case "apps/v1/Deployment":
				o := &appsv1.Deployment{}
				m.deployments, obj = append(m.deployments, o), o
			case "v1/Service":
				o := &corev1.Service{}
				m.services, obj = append(m.services, o), o
			case "policy/v1/PodDisruptionBudget":
				o := &policyv1.PodDisruptionBudget{}
				m.pdbs, obj = append(m.pdbs, o), o
			case "v1/ConfigMap":
				o := &corev1.ConfigMap{}
				m.configMaps, obj = append(m.configMaps, o), o
			case "v1/Namespace":
				o := &corev1.Namespace{}
				m.namespaces, obj = append(m.namespaces, o), o
			case "networking.k8s.io/v1/NetworkPolicy":
				o := &networkingv1.NetworkPolicy{}
				m.policies, obj = append(m.policies, o), o
			default:
				t.Errorf("%s: unexpected kind %s/%s", where, tm.APIVersion, tm.Kind)
				continue
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Errorf("%s (%s): %v", where, tm.Kind, err)
			}
		}
	}
	return m
}

func stripComments(doc string) string {
	var out []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestManifestsDecodeStrictly(t *testing.T) { forEachSet(t, testManifestsDecodeStrictly) }

func testManifestsDecodeStrictly(t *testing.T, m manifests) {
	if len(m.statefulSets) == 0 || len(m.pdbs) == 0 || len(m.policies) == 0 {
		t.Fatalf("found %d StatefulSets, %d PodDisruptionBudgets, %d NetworkPolicies", len(m.statefulSets), len(m.pdbs), len(m.policies))
	}
	for _, s := range m.services {
		checkName(t, "Service", s.Name, true)
	}
	for _, s := range m.statefulSets {
		checkName(t, "StatefulSet", s.Name, true)
	}
}

func checkName(t *testing.T, kind, name string, label bool) {
	t.Helper()
	errs := validation.IsDNS1123Subdomain(name)
	if label {
		errs = append(errs, validation.IsDNS1035Label(name)...)
	}
	if len(errs) > 0 {
		t.Errorf("%s %q: %v", kind, name, errs)
	}
}

// Every node is a StatefulSet of one pod of its own, named by its node id, governed by
// a headless Service of the same name that selects its pod and no other; its pods run
// as a non-root user, and one PodDisruptionBudget covers its group (a tier of a cell,
// the gateways, the map group) and keeps its floor: a majority of a raft group (index,
// map), at least one of any other. A cell's tier and the map group publish their pods
// before they are ready (gossip and raft need their peers' names while they start); a
// gateway's Service lists it only once it is ready, so that a router sends no tenant's
// request to one that is not.
func TestStatefulSets(t *testing.T) { forEachSet(t, testStatefulSets) }

func testStatefulSets(t *testing.T, m manifests) {
	services := map[string]*corev1.Service{}
	for _, s := range m.services {
		services[s.Name] = s
	}
	group := func(l map[string]string) string {
		return l["app.kubernetes.io/component"] + "/" + l["cellar.dev/cell"]
	}
	groupSize := map[string]int32{}
	for _, s := range m.statefulSets {
		groupSize[group(s.Spec.Template.Labels)]++
	}
	for _, s := range m.statefulSets {
		component := s.Spec.Template.Labels["app.kubernetes.io/component"]
		svc := services[s.Spec.ServiceName]
		switch {
		case s.Spec.ServiceName != s.Name:
			t.Errorf("StatefulSet %s: governed by Service %q, want its own name", s.Name, s.Spec.ServiceName)
		case svc == nil:
			t.Errorf("StatefulSet %s: no Service %q", s.Name, s.Spec.ServiceName)
		case svc.Spec.ClusterIP != corev1.ClusterIPNone:
			t.Errorf("Service %s: want headless", svc.Name)
		case svc.Spec.PublishNotReadyAddresses != (component != "gateway"):
			t.Errorf("Service %s: publishes pods that are not ready: %v; want it for a cell's tier and the map group only", svc.Name, svc.Spec.PublishNotReadyAddresses)
		case !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(s.Spec.Template.Labels)):
			t.Errorf("Service %s does not select the pods of StatefulSet %s", svc.Name, s.Name)
		}
		if svc != nil {
			for _, o := range m.statefulSets {
				if o != s && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(o.Spec.Template.Labels)) {
					t.Errorf("Service %s selects the pods of StatefulSet %s too", svc.Name, o.Name)
				}
			}
		}
		if r := s.Spec.Replicas; r != nil && *r != 1 {
			t.Errorf("StatefulSet %s: replicas %d, want 1: one node, one pod", s.Name, *r)
		}
		sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(s.Spec.Template.Labels)) {
			t.Errorf("StatefulSet %s: selector does not match its pod template (%v)", s.Name, err)
		}
		checkPod(t, "StatefulSet "+s.Name, s.Spec.Template.Spec)
		floor := int32(1)
		if component == "index" || component == "map" {
			floor = groupSize[group(s.Spec.Template.Labels)]/2 + 1
		}
		checkPDB(t, m.pdbs, "StatefulSet "+s.Name, s.Spec.Template.Labels, floor)
	}
	for _, d := range m.deployments {
		checkPod(t, "Deployment "+d.Name, d.Spec.Template.Spec)
		checkPDB(t, m.pdbs, "Deployment "+d.Name, d.Spec.Template.Labels, 1)
	}
}

func checkPod(t *testing.T, what string, spec corev1.PodSpec) {
	t.Helper()
	sc := spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("%s: pods must run as a non-root user", what)
	}
	for _, c := range spec.Containers {
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("%s: container %s has no readiness probe on /readyz", what, c.Name)
		}
		ports := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
		}
		if p := c.ReadinessProbe; p != nil && p.HTTPGet != nil && !ports[p.HTTPGet.Port.String()] {
			t.Errorf("%s: probe port %s is not a named port of %s", what, p.HTTPGet.Port.String(), c.Name)
		}
		mounts := map[string]bool{}
		for _, v := range spec.Volumes {
			mounts[v.Name] = true
		}
		for _, vm := range c.VolumeMounts {
			if !mounts[vm.Name] && vm.Name != "data" {
				t.Errorf("%s: mount %s has no volume", what, vm.Name)
			}
		}
	}
}

func checkPDB(t *testing.T, pdbs []*policyv1.PodDisruptionBudget, what string, podLabels map[string]string, floor int32) {
	t.Helper()
	n := 0
	for _, p := range pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(podLabels)) {
			continue
		}
		n++
		if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.IntValue() != int(floor) {
			t.Errorf("%s: PodDisruptionBudget %s minAvailable %v, want %d", what, p.Name, p.Spec.MinAvailable, floor)
		}
	}
	if n != 1 {
		t.Errorf("%s: %d PodDisruptionBudgets cover its pods, want 1", what, n)
	}
}

// pods is every pod template of the manifests, by what runs it.
func (m manifests) pods() map[string]corev1.PodTemplateSpec {
	out := map[string]corev1.PodTemplateSpec{}
	for _, s := range m.statefulSets {
		out["StatefulSet "+s.Name] = s.Spec.Template
	}
	for _, d := range m.deployments {
		out["Deployment "+d.Name] = d.Spec.Template
	}
	return out
}

// admits reports whether policy p lets a pod with labels from reach port/protocol.
func admits(t *testing.T, p *networkingv1.NetworkPolicy, from map[string]string, port int, protocol corev1.Protocol) bool {
	t.Helper()
	for _, rule := range p.Spec.Ingress {
		portOK := false
		for _, rp := range rule.Ports {
			proto := corev1.ProtocolTCP
			if rp.Protocol != nil {
				proto = *rp.Protocol
			}
			if rp.Port != nil && rp.Port.IntValue() == port && proto == protocol {
				portOK = true
			}
		}
		if !portOK {
			continue
		}
		if len(rule.From) == 0 {
			return true
		}
		for _, peer := range rule.From {
			if peer.PodSelector == nil || peer.NamespaceSelector != nil {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
			if err != nil {
				t.Fatalf("NetworkPolicy %s: %v", p.Name, err)
			}
			if sel.Matches(labels.Set(from)) {
				return true
			}
		}
	}
	return false
}

// Every pod is covered by exactly one NetworkPolicy, which admits what its tier must
// receive and nothing else: gossip from every cellar pod, gRPC from the roles that may
// call the tier (none for gateways and routers), raft from its own cell's index group
// only, S3 from anyone at the front (the routers when there are, else the gateways),
// and behind routers the gateways' S3 from the routers and operator pods only.
func TestNetworkPolicies(t *testing.T) { forEachSet(t, testNetworkPolicies) }

func testNetworkPolicies(t *testing.T, m manifests) {
	pods := m.pods()
	routers := len(m.deployments) > 0 && slices.ContainsFunc(m.deployments, func(d *appsv1.Deployment) bool {
		return d.Spec.Template.Labels["app.kubernetes.io/component"] == "router"
	})
	front := "gateway"
	if routers {
		front = "router"
	}
	operator := map[string]string{"cellar.dev/operator": "true"}
	labelsOf := func(component, cellID string) map[string]string {
		l := map[string]string{"app.kubernetes.io/part-of": "cellar", "app.kubernetes.io/component": component}
		if cellID != "" {
			l["cellar.dev/cell"] = cellID
		}
		return l
	}
	for what, pod := range pods {
		var covering []*networkingv1.NetworkPolicy
		for _, p := range m.policies {
			sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
			if err != nil {
				t.Fatalf("NetworkPolicy %s: %v", p.Name, err)
			}
			if sel.Matches(labels.Set(pod.Labels)) {
				covering = append(covering, p)
			}
		}
		if len(covering) != 1 {
			t.Errorf("%s: %d NetworkPolicies cover its pods, want 1", what, len(covering))
			continue
		}
		p := covering[0]
		tier, cellID := pod.Labels["app.kubernetes.io/component"], pod.Labels["cellar.dev/cell"]
		other := "cell-x"
		for _, c := range []string{"cell-0", "cell-1"} {
			if c != cellID {
				other = c
			}
		}
		for _, tc := range []struct {
			from     map[string]string
			port     int
			protocol corev1.Protocol
			want     bool
		}{
			{labelsOf("storage", other), 7946, corev1.ProtocolUDP, true},
			{labelsOf("index", other), 7946, corev1.ProtocolTCP, true},
			{labelsOf("storage", cellID), 7001, corev1.ProtocolTCP, true},
			{labelsOf("gateway", ""), 7000, corev1.ProtocolTCP, tier != "gateway" && tier != "router"},
			{labelsOf("router", ""), 7000, corev1.ProtocolTCP, false},
			{labelsOf("router", ""), 9000, corev1.ProtocolTCP, tier == "router" || tier == "gateway"},
			{operator, 9000, corev1.ProtocolTCP, tier == "router" || tier == "gateway"},
			// Placement waits for its cell's index and repairs its cell's storage.
			{labelsOf("placement", cellID), 7000, corev1.ProtocolTCP, tier == "index" || tier == "storage"},
			{labelsOf("placement", other), 7000, corev1.ProtocolTCP, false},
			{labelsOf("storage", cellID), 7000, corev1.ProtocolTCP, false},
			{operator, 7000, corev1.ProtocolTCP, tier != "gateway" && tier != "router"},
			{labelsOf("index", cellID), 7100, corev1.ProtocolTCP, tier == "index"},
			{labelsOf("index", other), 7100, corev1.ProtocolTCP, false},
			// The map group: raft among its members, gRPC (the cell map) from the
			// gateways; it calls no cell, and no cell's node calls it.
			{labelsOf("map", ""), 7100, corev1.ProtocolTCP, tier == "map"},
			{labelsOf("map", ""), 7000, corev1.ProtocolTCP, false},
			{labelsOf("index", cellID), 7000, corev1.ProtocolTCP, false},
			{map[string]string{"app": "anything"}, 9000, corev1.ProtocolTCP, tier == front},
			{map[string]string{"app": "anything"}, 7000, corev1.ProtocolTCP, false},
			{map[string]string{"app": "anything"}, 7946, corev1.ProtocolTCP, false},
		} {
			if got := admits(t, p, tc.from, tc.port, tc.protocol); got != tc.want {
				t.Errorf("%s: NetworkPolicy %s admits %v to port %d/%s: %v, want %v", what, p.Name, tc.from, tc.port, tc.protocol, got, tc.want)
			}
		}
	}
}

// The S3 credentials are in no manifest: the gateways (and the routers) read them from
// a Secret, and behind routers the tenants' keys from another.
func TestCredentialsComeFromASecret(t *testing.T) { forEachSet(t, testCredentialsComeFromASecret) }

func testCredentialsComeFromASecret(t *testing.T, m manifests) {
	for _, cm := range m.configMaps {
		for k, v := range cm.Data {
			if strings.Contains(v, "access_key") || strings.Contains(v, "secret_key") {
				t.Errorf("ConfigMap %s holds credentials in %s", cm.Name, k)
			}
		}
	}
	for what, pod := range m.pods() {
		for _, c := range pod.Spec.Containers {
			refs := map[string]string{}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					refs[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
				}
				if strings.Contains(e.Name, "KEY") && e.Value != "" {
					t.Errorf("%s: %s is written in the manifest", what, e.Name)
				}
			}
			if c.Name != "gateway" && c.Name != "router" {
				continue
			}
			if refs["CELLAR_ACCESS_KEY"] != "cellar-credentials/access_key" || refs["CELLAR_SECRET_KEY"] != "cellar-credentials/secret_key" {
				t.Errorf("%s: %s credentials from %v, want the Secret cellar-credentials", what, c.Name, refs)
			}
			if c.Name == "router" && refs["CELLAR_TENANTS"] != "cellar-tenants/tenants.json" {
				t.Errorf("%s: router tenants from %q, want the Secret cellar-tenants", what, refs["CELLAR_TENANTS"])
			}
		}
	}
}

// Behind front routers, the S3 Service is the routers', and every router forwards to
// every gateway by its stable name (the Service gateway-N of the StatefulSet
// gateway-N), in order: the order the tenants' shards are computed over, as many as the
// topology the routers read says, each gateway reading the tenants from the same
// Secret.
func TestRoutersForwardToEveryGatewayInOrder(t *testing.T) {
	m := load(t, "../sharded/kubernetes")
	var router *appsv1.Deployment
	for _, d := range m.deployments {
		if d.Spec.Template.Labels["app.kubernetes.io/component"] == "router" {
			router = d
		}
	}
	gateways := map[string]*appsv1.StatefulSet{}
	for _, s := range m.statefulSets {
		if s.Spec.Template.Labels["app.kubernetes.io/component"] == "gateway" {
			gateways[s.Name] = s
		}
	}
	if router == nil || len(gateways) == 0 {
		t.Fatalf("want a router Deployment and gateway StatefulSets: %v, %d", router, len(gateways))
	}
	var backends []string
	for _, a := range router.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--backends="); ok {
			backends = strings.Split(v, ",")
		}
	}
	n := len(gateways)
	if len(backends) != n {
		t.Fatalf("router backends %v, want the %d gateways", backends, n)
	}
	services := map[string]*corev1.Service{}
	for _, svc := range m.services {
		services[svc.Name] = svc
	}
	for i, b := range backends {
		name := "gateway-" + strconv.Itoa(i)
		if want := name + ":9000"; b != want {
			t.Errorf("backend %d is %s, want %s: the gateway of that place in the fleet", i, b, want)
		}
		gw, svc := gateways[name], services[name]
		if gw == nil || svc == nil || gw.Spec.ServiceName != name ||
			!labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(gw.Spec.Template.Labels)) ||
			!slices.Contains(gw.Spec.Template.Spec.Containers[0].Args, "--id="+name) {
			t.Errorf("backend %d: want the StatefulSet %s of the gateway %s under the Service %s", i, name, name, name)
		}
	}
	for _, svc := range m.services {
		if svc.Name != "cellar-s3" {
			continue
		}
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(router.Spec.Template.Labels)) ||
			labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(gateways["gateway-0"].Spec.Template.Labels)) {
			t.Errorf("Service cellar-s3 selects %v: want the routers, not the gateways", svc.Spec.Selector)
		}
	}
	topo := topologyOf(t, m)
	if topo.Gateways != n || topo.Routers != int(*router.Spec.Replicas) || topo.Sharding == "" {
		t.Errorf("topology the routers read: %+v, want %d gateways, %d routers and the sharding", topo, n, *router.Spec.Replicas)
	}
	for _, gw := range gateways {
		found := false
		for _, e := range gw.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "CELLAR_TENANTS" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == "cellar-tenants" {
				found = true
			}
		}
		if !found {
			t.Errorf("gateway %s does not read the tenants from the Secret cellar-tenants", gw.Name)
		}
	}
}

// topology is what the manifests' ConfigMap cellar-topology says of the cluster.
type topology struct {
	Cells          int    `json:"cells"`
	IndexNodes     int    `json:"index_nodes"`
	PlacementNodes int    `json:"placement_nodes"`
	StorageNodes   int    `json:"storage_nodes"`
	Gateways       int    `json:"gateways"`
	MapNodes       int    `json:"map_nodes"`
	Routers        int    `json:"routers"`
	Sharding       string `json:"sharding"`
}

func topologyOf(t *testing.T, m manifests) topology {
	t.Helper()
	var topo topology
	for _, cm := range m.configMaps {
		if cm.Name == "cellar-topology" {
			if err := yaml.UnmarshalStrict([]byte(cm.Data["topology.yaml"]), &topo); err != nil {
				// Fields this test does not read are no fault of the manifests.
				if err := yaml.Unmarshal([]byte(cm.Data["topology.yaml"]), &topo); err != nil {
					t.Fatal(err)
				}
			}
			return topo
		}
	}
	t.Fatal("no ConfigMap cellar-topology")
	return topo
}

// identity is who a node's certificate names, as 'cellctl pki init' issues it from
// the topology: its role, its cell ("" for the gateways and the map group) and its id.
type identity struct{ role, cell, id string }

// nodes lists the identities of every node of topo, named as cellar names them
// (cell-N-<role>-I, gateway-I, map-I).
func (topo topology) nodes() []identity {
	var out []identity
	for c := range topo.Cells {
		cellID := "cell-" + strconv.Itoa(c)
		for _, tier := range []struct {
			role string
			n    int
		}{{"index", topo.IndexNodes}, {"placement", topo.PlacementNodes}, {"storage", topo.StorageNodes}} {
			for i := range tier.n {
				out = append(out, identity{tier.role, cellID, cellID + "-" + tier.role + "-" + strconv.Itoa(i)})
			}
		}
	}
	for i := range topo.MapNodes {
		out = append(out, identity{"map", "", "map-" + strconv.Itoa(i)})
	}
	for i := range topo.Gateways {
		out = append(out, identity{"gateway", "", "gateway-" + strconv.Itoa(i)})
	}
	return out
}

// flagValue is the value of --name=... in args, and whether it is there.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

const pkiDir = "/etc/cellar/pki"

// Every node of the topology runs in exactly one pod template, its own, as the identity
// its certificate names (role, cell, id), and can get that certificate: its pod mounts
// the Secret cellar-pki-<id>, which 'cellctl pki init --node-dirs' fills with its own
// certificate and key, and its command line reads them from there.
func TestEveryNodeGetsItsOwnIdentity(t *testing.T) { forEachSet(t, testEveryNodeGetsItsOwnIdentity) }

func testEveryNodeGetsItsOwnIdentity(t *testing.T, m manifests) {
	topo := topologyOf(t, m)
	want := topo.nodes()
	if len(want) != len(m.statefulSets) {
		t.Errorf("%d StatefulSets for the %d nodes of the topology", len(m.statefulSets), len(want))
	}
	for _, n := range want {
		var found []*appsv1.StatefulSet
		for _, s := range m.statefulSets {
			if id, _ := flagValue(s.Spec.Template.Spec.Containers[0].Args, "id"); id == n.id {
				found = append(found, s)
			}
		}
		if len(found) != 1 {
			t.Errorf("%s: %d StatefulSets run it, want 1", n.id, len(found))
			continue
		}
		s := found[0]
		pod := s.Spec.Template
		c := pod.Spec.Containers[0]
		cellFlag, _ := flagValue(c.Args, "cell")
		if s.Name != n.id || len(c.Args) < 2 || c.Args[0] != "daemon" || c.Args[1] != n.role || cellFlag != n.cell ||
			pod.Labels["app.kubernetes.io/component"] != n.role || pod.Labels["cellar.dev/cell"] != n.cell {
			t.Errorf("%s: StatefulSet %s runs %v with labels %v, want the %s of cell %q", n.id, s.Name, c.Args, pod.Labels, n.role, n.cell)
		}
		for flag, file := range map[string]string{"tls-cert": n.id + ".pem", "tls-key": n.id + ".key", "tls-ca": "ca.pem", "gossip-key": "gossip.key"} {
			if v, _ := flagValue(c.Args, flag); v != pkiDir+"/"+file {
				t.Errorf("%s: --%s=%s, want %s/%s", n.id, flag, v, pkiDir, file)
			}
		}
		if got := mountedSecret(pod.Spec, c, pkiDir); got != "cellar-pki-"+n.id {
			t.Errorf("%s: %s is the Secret %q, want its own, cellar-pki-%s", n.id, pkiDir, got, n.id)
		}
	}
}

// mountedSecret is the Secret whose volume c mounts at path ("" if none).
func mountedSecret(spec corev1.PodSpec, c corev1.Container, path string) string {
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != path {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == vm.Name && v.Secret != nil {
				return v.Secret.SecretName
			}
		}
	}
	return ""
}

// No container of any pod (init containers included) can read another node's key or
// the CA's: every Secret a pod mounts is its own node's PKI Secret, or for a front
// router the gossip key alone; no volume projects a Secret or lists the CA's key; no
// pod gets a token of the Kubernetes API that could read the namespace's Secrets.
func TestNoPodHoldsAnotherNodesKey(t *testing.T) { forEachSet(t, testNoPodHoldsAnotherNodesKey) }

func testNoPodHoldsAnotherNodesKey(t *testing.T, m manifests) {
	for what, pod := range m.pods() {
		spec := pod.Spec
		id, _ := flagValue(spec.Containers[0].Args, "id")
		router := pod.Labels["app.kubernetes.io/component"] == "router"
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s: the pod gets a Kubernetes API token; want automountServiceAccountToken: false", what)
		}
		for _, v := range spec.Volumes {
			switch {
			case v.Projected != nil:
				t.Errorf("%s: volume %s is projected; want no Secret but the node's own", what, v.Name)
			case v.Secret == nil:
			case router:
				if v.Secret.SecretName != "cellar-pki-observer" || len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != "gossip.key" {
					t.Errorf("%s: volume %s is %+v, want the gossip key alone", what, v.Name, v.Secret)
				}
			case v.Secret.SecretName != "cellar-pki-"+id:
				t.Errorf("%s (node %s): volume %s is the Secret %s, not its own", what, id, v.Name, v.Secret.SecretName)
			}
			if v.Secret != nil {
				for _, it := range v.Secret.Items {
					if it.Key == "ca.key" || it.Key == "operator.key" {
						t.Errorf("%s: volume %s holds %s", what, v.Name, it.Key)
					}
				}
			}
		}
		for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil {
					t.Errorf("%s: container %s takes its environment from the Secret %s", what, c.Name, e.SecretRef.Name)
				}
			}
			for _, e := range c.Env {
				if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil && r.SecretKeyRef.Name != "cellar-credentials" && r.SecretKeyRef.Name != "cellar-tenants" {
					t.Errorf("%s: container %s reads %s from the Secret %s", what, c.Name, e.Name, r.SecretKeyRef.Name)
				}
			}
		}
	}
}

// A topology with a map group runs it: a StatefulSet per member under a Service of its
// name, each member given the same initial group by those names and its raft port, its
// data on a volume of its own; a PodDisruptionBudget at a majority; raft among the
// members only (TestNetworkPolicies); and each gateway keeps the last map it had in
// a state directory on a volume of its own. The cellmap example has one, so this test
// does not pass by having nothing to check.
func TestMapGroup(t *testing.T) {
	checked := 0
	forEachSet(t, func(t *testing.T, m manifests) {
		topo := topologyOf(t, m)
		var members []*appsv1.StatefulSet
		var gateways []*appsv1.StatefulSet
		for _, s := range m.statefulSets {
			switch s.Spec.Template.Labels["app.kubernetes.io/component"] {
			case "map":
				members = append(members, s)
			case "gateway":
				gateways = append(gateways, s)
			}
		}
		if len(members) != topo.MapNodes {
			t.Fatalf("%d map StatefulSets, want the topology's %d", len(members), topo.MapNodes)
		}
		if topo.MapNodes == 0 {
			for _, g := range gateways {
				if _, ok := flagValue(g.Spec.Template.Spec.Containers[0].Args, "state-dir"); ok {
					t.Errorf("gateway %s keeps a cell map with no map group", g.Name)
				}
			}
			return
		}
		checked++
		var peers []string
		for i := range topo.MapNodes {
			id := "map-" + strconv.Itoa(i)
			peers = append(peers, id+"="+id+":7100")
		}
		for _, s := range members {
			args := s.Spec.Template.Spec.Containers[0].Args
			id, _ := flagValue(args, "id")
			got, _ := flagValue(args, "peers")
			adv, _ := flagValue(args, "raft-advertise")
			dir, _ := flagValue(args, "data-dir")
			if got != strings.Join(peers, ",") || adv != id+":7100" {
				t.Errorf("%s: --peers=%s --raft-advertise=%s, want %s and its own", s.Name, got, adv, strings.Join(peers, ","))
			}
			if !hasClaim(s, "data", dir) {
				t.Errorf("%s: its data directory %q is on no volume of its own", s.Name, dir)
			}
		}
		checkPDB(t, m.pdbs, "the map group", members[0].Spec.Template.Labels, int32(topo.MapNodes/2+1))
		for _, g := range gateways {
			dir, ok := flagValue(g.Spec.Template.Spec.Containers[0].Args, "state-dir")
			if !ok || !hasClaim(g, "data", dir) {
				t.Errorf("gateway %s: --state-dir=%q, want a directory on a volume of its own", g.Name, dir)
			}
		}
	})
	if checked == 0 {
		t.Error("no set of manifests has a map group")
	}
}

// hasClaim reports whether s mounts a volume of its volumeClaimTemplate name at path.
func hasClaim(s *appsv1.StatefulSet, name, path string) bool {
	claimed := slices.ContainsFunc(s.Spec.VolumeClaimTemplates, func(c corev1.PersistentVolumeClaim) bool { return c.Name == name })
	mounted := slices.ContainsFunc(s.Spec.Template.Spec.Containers[0].VolumeMounts, func(vm corev1.VolumeMount) bool {
		return vm.Name == name && vm.MountPath == path
	})
	return path != "" && claimed && mounted
}
