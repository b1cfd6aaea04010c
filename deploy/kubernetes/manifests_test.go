// Package kubernetes holds cellar's Kubernetes manifests (written by 'cellctl compose'
// from deploy/topology.yaml) and the check that they are valid, and those of the
// sharded example (deploy/sharded/kubernetes: front routers before the gateways):
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
// deploy/topology.yaml, and the sharded example's.
var manifestSets = []struct{ name, dir string }{{"default", "."}, {"sharded", "../sharded/kubernetes"}}

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

// Every StatefulSet is governed by a headless Service, its selector matches its pods,
// its pods run as a non-root user, and a PodDisruptionBudget covers it and keeps its
// floor: a majority of an index group, at least one of any other tier. A cell's tier
// publishes its pods before they are ready (gossip and raft need their peers' names
// while they start); the gateways' Service lists a gateway only once it is ready, so
// that a router sends no tenant's request to one that is not.
func TestStatefulSets(t *testing.T) { forEachSet(t, testStatefulSets) }

func testStatefulSets(t *testing.T, m manifests) {
	services := map[string]*corev1.Service{}
	for _, s := range m.services {
		services[s.Name] = s
	}
	for _, s := range m.statefulSets {
		svc := services[s.Spec.ServiceName]
		switch {
		case svc == nil:
			t.Errorf("StatefulSet %s: no Service %q", s.Name, s.Spec.ServiceName)
		case svc.Spec.ClusterIP != corev1.ClusterIPNone:
			t.Errorf("Service %s: want headless", svc.Name)
		case svc.Spec.PublishNotReadyAddresses != (s.Spec.Template.Labels["app.kubernetes.io/component"] != "gateway"):
			t.Errorf("Service %s: publishes pods that are not ready: %v; want it for a cell's tier only", svc.Name, svc.Spec.PublishNotReadyAddresses)
		case !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(s.Spec.Template.Labels)):
			t.Errorf("Service %s does not select the pods of StatefulSet %s", svc.Name, s.Name)
		}
		sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(s.Spec.Template.Labels)) {
			t.Errorf("StatefulSet %s: selector does not match its pod template (%v)", s.Name, err)
		}
		checkPod(t, "StatefulSet "+s.Name, s.Spec.Template.Spec)
		replicas := int32(1)
		if s.Spec.Replicas != nil {
			replicas = *s.Spec.Replicas
		}
		floor := int32(1)
		if s.Spec.Template.Labels["app.kubernetes.io/component"] == "index" {
			floor = replicas/2 + 1
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
// every gateway of the gateway StatefulSet by its stable name (gateway-N.SERVICE), in
// order: the order the tenants' shards are computed over, as many as the topology the
// routers read says, each gateway reading the tenants from the same Secret.
func TestRoutersForwardToEveryGatewayInOrder(t *testing.T) {
	m := load(t, "../sharded/kubernetes")
	var router *appsv1.Deployment
	for _, d := range m.deployments {
		if d.Spec.Template.Labels["app.kubernetes.io/component"] == "router" {
			router = d
		}
	}
	var gateways *appsv1.StatefulSet
	for _, s := range m.statefulSets {
		if s.Spec.Template.Labels["app.kubernetes.io/component"] == "gateway" {
			gateways = s
		}
	}
	if router == nil || gateways == nil || gateways.Spec.Replicas == nil {
		t.Fatalf("want a router Deployment and a gateway StatefulSet: %v, %v", router, gateways)
	}
	var backends []string
	for _, a := range router.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--backends="); ok {
			backends = strings.Split(v, ",")
		}
	}
	n := int(*gateways.Spec.Replicas)
	if len(backends) != n {
		t.Fatalf("router backends %v, want the %d gateways", backends, n)
	}
	for i, b := range backends {
		if want := "gateway-" + strconv.Itoa(i) + "." + gateways.Spec.ServiceName + ":9000"; b != want {
			t.Errorf("backend %d is %s, want %s: the gateway of that place in the fleet", i, b, want)
		}
	}
	for _, svc := range m.services {
		if svc.Name != "cellar-s3" {
			continue
		}
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(router.Spec.Template.Labels)) ||
			labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(gateways.Spec.Template.Labels)) {
			t.Errorf("Service cellar-s3 selects %v: want the routers, not the gateways", svc.Spec.Selector)
		}
	}
	var topo struct {
		Gateways int    `json:"gateways"`
		Routers  int    `json:"routers"`
		Sharding string `json:"sharding"`
	}
	for _, cm := range m.configMaps {
		if cm.Name == "cellar-topology" {
			if err := yaml.Unmarshal([]byte(cm.Data["topology.yaml"]), &topo); err != nil {
				t.Fatal(err)
			}
		}
	}
	if topo.Gateways != n || topo.Routers != int(*router.Spec.Replicas) || topo.Sharding == "" {
		t.Errorf("topology the routers read: %+v, want %d gateways, %d routers and the sharding", topo, n, *router.Spec.Replicas)
	}
	for _, e := range gateways.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "CELLAR_TENANTS" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == "cellar-tenants" {
			return
		}
	}
	t.Errorf("the gateways do not read the tenants from the Secret cellar-tenants")
}
