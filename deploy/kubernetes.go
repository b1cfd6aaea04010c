package deploy

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/pki"
	"github.com/cellarsim/cellar/node"
)

// pkiGossipKeyFile is the gossip key's file name in the PKI directory (and its key in
// every PKI Secret).
var pkiGossipKeyFile = filepath.Base(pki.Dir(PKIDir).GossipKey())

// Namespace is the Kubernetes namespace of the manifests.
const Namespace = "cellar"

// gossipService is the headless Service over every cellar pod, ready or not: its name
// resolves to all of them, so it is the one gossip seed every node joins.
const gossipService = "cellar-gossip"

// credentialsSecret is the Secret the gateways read the S3 credentials from, under the
// keys access_key and secret_key.
const credentialsSecret = "cellar-credentials"

// tenantsSecret is the Secret the gateways and the front routers read the tenants
// from, under the key tenants.json: a list of {name, access_key, secret_key} (see
// cell.EnvTenants). Only a topology with front routers uses it.
const tenantsSecret = "cellar-tenants"

// nodeLabel names the node a pod runs (its node id): each node is a StatefulSet of
// its own, and its headless Service selects its pod by this label.
const nodeLabel = "cellar.dev/node"

// scrapeLabel marks a namespace whose pods may read the nodes' admin port (Prometheus,
// a status view): kubectl label namespace monitoring cellar.dev/scrape=true.
const scrapeLabel = "cellar.dev/scrape"

// operatorLabel marks the pods of the namespace that run cellctl against the cluster
// (a drill, `cellctl gc`): they may reach every node's gRPC port, where mTLS and the
// operator certificate decide the rest.
const operatorLabel = "cellar.dev/operator"

// tierServices are the gRPC services each tier serves besides NodeAdmin and health.
var tierServices = map[cell.Role][]string{
	cell.RoleIndex:     {"/cellar.v1.Index/"},
	cell.RolePlacement: {"/cellar.v1.Placement/", "/cellar.v1.Repair/"},
	cell.RoleStorage:   {"/cellar.v1.Storage/", "/cellar.v1.Blobs/"},
	cell.RoleMap:       {"/cellar.v1.CellMap/"},
}

// GRPCCallers are the node roles whose pods a tier's NetworkPolicy admits on its gRPC
// port: those that daemon.Callers lets call one of the tier's services, so that the
// policy and the servers' own checks cannot drift apart. The operator and the status
// view are not node pods and are admitted by label.
func GRPCCallers(tier cell.Role) []cell.Role {
	var out []cell.Role
	for _, role := range []cell.Role{cell.RoleGateway, cell.RoleIndex, cell.RolePlacement, cell.RoleStorage} {
		for method, roles := range daemon.Callers {
			if slices.Contains(roles, string(role)) && servedBy(tier, method) && !slices.Contains(out, role) {
				out = append(out, role)
			}
		}
	}
	return out
}

// servedBy reports whether a Callers key (a service or a method) is one of tier's.
func servedBy(tier cell.Role, method string) bool {
	for _, svc := range tierServices[tier] {
		if strings.HasPrefix(method, svc) {
			return true
		}
	}
	return false
}

// Kubernetes returns the manifests that run topology t on a Kubernetes cluster, by file
// name: cellar.yaml (namespace, topology, gossip seed service, gateways, front
// routers), one cell-N.yaml per cell (its index, placement and storage nodes) and, when
// t has a map group, map.yaml.
//
// Every node is a StatefulSet of one replica of its own, named by its node id, under a
// headless Service of the same name: the name raft peers, front routers and the
// certificate name check reach it by. A pod template is shared by every pod of a
// StatefulSet and Kubernetes cannot name a Secret after the pod, so this is what lets
// each pod mount only its own Secret, PKISecret(id): its certificate and key, the CA
// certificate and the gossip key, never the CA's key or another node's (see
// docs/security.md). The front routers (a Deployment: they hold no state and no
// certificate) mount the gossip key alone.
//
// The nodes of a group (a tier of a cell, the gateways, the map group, the routers)
// share one PodDisruptionBudget, which keeps the group at the floor the drill
// guardrails keep: a majority of a raft group (index, map), one placement node, one
// storage node, one gateway, one router; and one NetworkPolicy, which admits only what
// the group must receive. No key is in any manifest: the gateways and the routers read
// the S3 credentials from the Secret credentialsSecret and the tenants' from
// tenantsSecret, which the operator makes (see docs/docker.md and docs/sharding.md).
func Kubernetes(t cell.Topology) (map[string][]byte, error) {
	if err := t.ValidateShape(); err != nil {
		return nil, err
	}
	files := map[string][]byte{"cellar.yaml": kubeCommon(t)}
	for _, c := range t.CellIDs() {
		var b bytes.Buffer
		fmt.Fprintf(&b, "# %s: its index group, placement and storage nodes, each a StatefulSet of its own.\n", c)
		b.WriteString(generatedBy)
		if t.TLS {
			b.WriteString("# Each node mounts its own Secret, cellar-pki-<node id>: see cellar.yaml.\n")
		}
		for _, tier := range cell.Tiers {
			kubeGroup(&b, t, c, tier)
		}
		files[c+".yaml"] = b.Bytes()
	}
	if t.MapNodes > 0 {
		files[mapFile] = kubeMap(t)
	}
	return files, nil
}

const generatedBy = "# Generated by 'cellctl compose' from ../topology.yaml; see docs/docker.md.\n"

// mapFile is the manifest file of the map group.
const mapFile = "map.yaml"

// KubernetesFiles lists the file names Kubernetes returns for t, in order.
func KubernetesFiles(t cell.Topology) []string {
	names := []string{"cellar.yaml"}
	for _, c := range t.CellIDs() {
		names = append(names, c+".yaml")
	}
	if t.MapNodes > 0 {
		names = append(names, mapFile)
	}
	return names
}

// PKISecret is the Kubernetes Secret of node id's share of the cluster's PKI: what
// 'cellctl pki init --node-dirs DIR' writes in DIR/<id> (its certificate and key, the
// CA certificate, the gossip key). PKISecret(pki.ObserverDir) holds the CA certificate
// and the gossip key alone; the front routers read the gossip key from it.
func PKISecret(id string) string { return "cellar-pki-" + id }

func kubeCommon(t cell.Topology) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	if t.Routers > 0 {
		p("# The cluster-wide parts of cellar: namespace, topology, gossip seeds, S3 gateways and")
		p("# the front routers before them.")
	} else {
		p("# The cluster-wide parts of cellar: namespace, topology, gossip seeds, S3 gateways.")
	}
	b.WriteString(generatedBy)
	p("#")
	p("# The gateways read the S3 credentials from the Secret %s, which no file here", credentialsSecret)
	p("# holds; make it once, with a new pair, before the gateways start:")
	p("#   eval \"$(cellctl credentials --new --output env)\"")
	p("#   kubectl -n %s create secret generic %s \\", Namespace, credentialsSecret)
	p("#     --from-literal=access_key=\"$AWS_ACCESS_KEY_ID\" --from-literal=secret_key=\"$AWS_SECRET_ACCESS_KEY\"")
	if t.Routers > 0 {
		p("#")
		p("# The gateways and the front routers read the tenants' keys from the Secret %s", tenantsSecret)
		p("# (key tenants.json, a list of {name, access_key, secret_key}), which no file here holds")
		p("# either; for instance the tenants 'cellctl up --tenants N' made in its data directory:")
		p("#   kubectl -n %s create secret generic %s --from-file=tenants.json=DATA_DIR/tenants.json", Namespace, tenantsSecret)
	}
	if t.TLS {
		p("#")
		p("# Every node shows a certificate of the cluster's own CA and the gossip is encrypted.")
		p("# Each node is a StatefulSet of its own so that its pod mounts its own Secret,")
		p("# %s: its certificate and key, the CA certificate and the gossip key. No", PKISecret("<node id>"))
		p("# pod holds another node's key, the operator's or the CA's, which stay with whoever")
		p("# issues certificates; the routers mount the gossip key alone, from %s.", PKISecret(pki.ObserverDir))
		p("# (Why not one Secret for all, or the CA's key in an init container: docs/security.md.)")
		p("# Make the Secrets from the directories 'cellctl pki init --node-dirs' gives each node:")
		p("#   cellctl pki init --dir cellar-pki --topology ../topology.yaml --node-dirs cellar-pki-nodes")
		p("#   for d in cellar-pki-nodes/*/; do")
		p("#     kubectl -n %s create secret generic \"%s$(basename \"$d\")\" --from-file=\"$d\"", Namespace, PKISecret(""))
		p("#   done")
	}
	p("apiVersion: v1")
	p("kind: Namespace")
	p("metadata:")
	p("  name: %s", Namespace)
	p("---")
	p("apiVersion: v1")
	p("kind: ConfigMap")
	p("metadata:")
	p("  name: cellar-topology")
	p("  namespace: %s", Namespace)
	p("data:")
	p("  topology.yaml: |")
	for _, l := range strings.Split(strings.TrimSpace(topologyYAML(t)), "\n") {
		p("    %s", l)
	}
	p("---")
	p("# Every cellar pod, ready or not: the gossip seed every node joins.")
	p("apiVersion: v1")
	p("kind: Service")
	p("metadata:")
	p("  name: %s", gossipService)
	p("  namespace: %s", Namespace)
	p("spec:")
	p("  clusterIP: None")
	p("  publishNotReadyAddresses: true")
	p("  selector:")
	p("    app.kubernetes.io/part-of: cellar")
	p("  ports:")
	p("    - {name: gossip-tcp, port: %d, protocol: TCP}", GossipPort)
	p("    - {name: gossip-udp, port: %d, protocol: UDP}", GossipPort)
	front := cell.RoleGateway
	if t.Routers > 0 {
		front = cell.RoleRouter
	}
	p("---")
	if t.Routers > 0 {
		p("# The S3 endpoint clients use: the front routers, which send each request to a")
		p("# gateway of its tenant's shard.")
	}
	p("apiVersion: v1")
	p("kind: Service")
	p("metadata:")
	p("  name: cellar-s3")
	p("  namespace: %s", Namespace)
	p("spec:")
	p("  selector:")
	p("    app.kubernetes.io/part-of: cellar")
	p("    app.kubernetes.io/component: %s", front)
	p("  ports:")
	p("    - {name: s3, port: %d, targetPort: s3}", S3Port)
	intro := []string{
		"The gateways, in the fleet's order: each its own StatefulSet and Service, gateway-N,",
		"the name its certificate is issued to and the routers reach it by. A gateway's name",
		"resolves once it is ready: a router does not send a tenant's request to one that is not.",
	}
	if t.MapNodes > 0 {
		intro = append(intro, "Each keeps the last cell map it had in its volume, to serve with it across restarts",
			"while the map group is away.")
	}
	kubeGroup(&b, t, "", cell.RoleGateway, intro...)
	if t.Routers > 0 {
		kubeRouters(&b, t)
	}
	return b.Bytes()
}

// kubeMap is map.yaml: the members of the map group, their PodDisruptionBudget and
// their NetworkPolicy.
func kubeMap(t cell.Topology) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# The map group: %d members of a raft group of its own that holds the cell map (slot and", t.MapNodes)
	p("# bucket to cell) and serves it to the gateways. It belongs to no cell and calls none.")
	b.WriteString(generatedBy)
	if t.TLS {
		p("# Each member mounts its own Secret, cellar-pki-<node id>: see cellar.yaml.")
	}
	kubeGroup(&b, t, "", cell.RoleMap)
	return b.Bytes()
}

// kubeRouters writes the front routers: a Deployment (they hold no state and need no
// name of their own), its PodDisruptionBudget and its NetworkPolicy.
func kubeRouters(b *bytes.Buffer, t cell.Topology) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	p("---")
	p("# The front routers: each reads a request's access key and nothing else of it, and")
	p("# forwards it unchanged to a gateway of the tenant's shard (%s sharding, %d of the", t.ShardingMode(), t.TenantShardSize())
	p("# %d gateways per tenant), by the gateways' names in the fleet's order.", t.Gateways)
	p("apiVersion: apps/v1")
	p("kind: Deployment")
	p("metadata:")
	p("  name: router")
	p("  namespace: %s", Namespace)
	p("spec:")
	p("  replicas: %d", t.Routers)
	p("  selector:")
	p("    matchLabels:")
	p("      app.kubernetes.io/part-of: cellar")
	p("      app.kubernetes.io/component: router")
	p("  template:")
	p("    metadata:")
	p("      labels:")
	p("        app.kubernetes.io/part-of: cellar")
	p("        app.kubernetes.io/component: router")
	p("    spec:")
	kubePodSpec(b, t, "", cell.RoleRouter, "")
	p("---")
	kubePDB(b, "router", cell.RoleRouter, "", 1)
	p("---")
	kubeNetworkPolicy(b, t, "router", "", cell.RoleRouter)
}

// kubeBackends are the gateways' S3 addresses as a router in the namespace reaches
// them: by their Services' names, in the fleet's order.
func kubeBackends(t cell.Topology) []string {
	var out []string
	for i := range t.Gateways {
		out = append(out, hostPort(cell.NodeID("", cell.RoleGateway, i), S3Port))
	}
	return out
}

// topologyYAML is t as the gateway reads it, without credentials: the gateway reads
// them from its environment, set from the Secret.
func topologyYAML(t cell.Topology) string {
	y := fmt.Sprintf(`cells: %d
index_nodes: %d
placement_nodes: %d
storage_nodes: %d
gateways: %d
`, t.Cells, t.IndexNodes, t.PlacementNodes, t.StorageNodes, t.Gateways)
	if t.MapNodes > 0 {
		y += fmt.Sprintf("map_nodes: %d\n", t.MapNodes)
	}
	return y + fmt.Sprintf(`partition: %s
slots: %d
region: %s
auth: %t
sigv2: %t
`, t.Partition, t.Slots, t.Region, t.Auth, t.SigV2) + routersYAML(t)
}

// routersYAML is what the front routers read of t beside the gateways: how many
// routers, and the sharding. The tenants come from their Secret.
func routersYAML(t cell.Topology) string {
	if t.Routers == 0 {
		return ""
	}
	y := fmt.Sprintf("routers: %d\nsharding: %s\n", t.Routers, t.ShardingMode())
	if t.ShardingMode() != cell.ShardingAll {
		y += fmt.Sprintf("shard_size: %d\n", t.TenantShardSize())
	}
	return y
}

// groupSize and groupFloor are the nodes of a group (a tier of a cell, the gateways,
// the map group) and the fewest it keeps up: a majority of a raft group, one of any
// other.
func groupSize(t cell.Topology, role cell.Role) int {
	switch role {
	case cell.RoleIndex:
		return t.IndexNodes
	case cell.RolePlacement:
		return t.PlacementNodes
	case cell.RoleStorage:
		return t.StorageNodes
	case cell.RoleMap:
		return t.MapNodes
	}
	return t.Gateways
}

func groupFloor(t cell.Topology, role cell.Role) int {
	if role == cell.RoleIndex || role == cell.RoleMap {
		return cell.Majority(groupSize(t, role))
	}
	return 1
}

// groupName is the name of a group's PodDisruptionBudget and NetworkPolicy:
// "cell-0-index", "gateway", "map".
func groupName(c string, role cell.Role) string {
	if c == "" {
		return string(role)
	}
	return c + "-" + string(role)
}

// kubeGroup writes one group (a tier of cell c, or with c "" the gateways or the map
// group): a headless Service and a StatefulSet per node, the first preceded by the
// comment lines intro, then the group's PodDisruptionBudget and NetworkPolicy.
func kubeGroup(b *bytes.Buffer, t cell.Topology, c string, role cell.Role, intro ...string) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	for i := range groupSize(t, role) {
		p("---")
		if i == 0 {
			for _, l := range intro {
				p("# %s", l)
			}
		}
		kubeNode(b, t, c, role, cell.NodeID(c, role, i))
	}
	name := groupName(c, role)
	p("---")
	kubePDB(b, name, role, c, groupFloor(t, role))
	p("---")
	kubeNetworkPolicy(b, t, name, c, role)
}

// kubeNode writes node id: its headless Service, which gives it its stable name (the
// node id: raft peers, routers and the certificate name check use it), and its
// StatefulSet of one pod, whose template is its own so that it mounts its own Secret.
// The nodes of a cell's tier and of the map group are published before they are
// ready (gossip and raft need their peers' names while they start); a gateway only
// once it is ready, so that no router sends it a request before.
func kubeNode(b *bytes.Buffer, t cell.Topology, c string, role cell.Role, id string) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	labels := func(indent string) {
		p("%sapp.kubernetes.io/part-of: cellar", indent)
		p("%sapp.kubernetes.io/component: %s", indent, role)
		if c != "" {
			p("%scellar.dev/cell: %s", indent, c)
		}
		p("%s%s: %s", indent, nodeLabel, id)
	}
	p("apiVersion: v1")
	p("kind: Service")
	p("metadata:")
	p("  name: %s", id)
	p("  namespace: %s", Namespace)
	p("spec:")
	p("  clusterIP: None")
	if role != cell.RoleGateway {
		p("  publishNotReadyAddresses: true")
	}
	p("  selector:")
	labels("    ")
	p("  ports:")
	if role == cell.RoleGateway {
		p("    - {name: s3, port: %d}", S3Port)
	} else {
		p("    - {name: grpc, port: %d}", GRPCPort)
	}
	p("    - {name: admin, port: %d}", AdminPort)
	if role == cell.RoleIndex || role == cell.RoleMap {
		p("    - {name: raft, port: %d}", RaftPort)
	}
	p("---")
	p("apiVersion: apps/v1")
	p("kind: StatefulSet")
	p("metadata:")
	p("  name: %s", id)
	p("  namespace: %s", Namespace)
	p("spec:")
	p("  serviceName: %s", id)
	p("  replicas: 1")
	p("  selector:")
	p("    matchLabels:")
	labels("      ")
	p("  template:")
	p("    metadata:")
	p("      labels:")
	labels("        ")
	p("    spec:")
	kubePodSpec(b, t, c, role, id)
	if kubeData(t, role) {
		size := "1Gi"
		if role == cell.RoleGateway || role == cell.RoleMap {
			size = "256Mi"
		}
		p("  volumeClaimTemplates:")
		p("    - metadata:")
		p("        name: data")
		p("      spec:")
		p("        accessModes: [ReadWriteOnce]")
		p("        resources:")
		p("          requests:")
		p("            storage: %s", size)
	}
}

// kubeData reports whether a node of role keeps a volume at DataDir: an index or
// storage node's data, a map member's raft log, a gateway's last cell map.
func kubeData(t cell.Topology, role cell.Role) bool {
	switch role {
	case cell.RoleIndex, cell.RoleStorage, cell.RoleMap:
		return true
	case cell.RoleGateway:
		return t.MapNodes > 0
	}
	return false
}

// kubeNetworkPolicy writes the NetworkPolicy of one group: its pods receive only what
// the group must. Every cellar pod gossips with every other; the admin port (/metrics,
// /readyz, /status) answers cellar pods and namespaces labelled scrapeLabel (the
// kubelet's probes are not subject to NetworkPolicy); the gRPC port of a tier answers
// the roles daemon.Callers lets call it (GRPCCallers; of the same cell but the
// gateways: nothing in one cell calls another cell), and a group no role may call (the
// gateways, the routers) has no gRPC rule; raft answers the members of the same group
// (an index group's of its cell, the map group's). S3 answers anyone at the front: the
// routers when t has them, else the gateways; behind routers, the gateways' S3 port
// answers the routers and operator pods only, so that no client steps around its
// shard.
func kubeNetworkPolicy(b *bytes.Buffer, t cell.Topology, name, c string, tier cell.Role) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	from := func(component, cellID string) {
		p("        - podSelector:")
		p("            matchLabels:")
		p("              app.kubernetes.io/part-of: cellar")
		if component != "" {
			p("              app.kubernetes.io/component: %s", component)
		}
		if cellID != "" {
			p("              cellar.dev/cell: %s", cellID)
		}
	}
	if c != "" {
		p("# What the %s pods of %s receive, and nothing else.", tier, c)
	} else {
		p("# What the %s pods receive, and nothing else.", tier)
	}
	p("apiVersion: networking.k8s.io/v1")
	p("kind: NetworkPolicy")
	p("metadata:")
	p("  name: %s", name)
	p("  namespace: %s", Namespace)
	p("spec:")
	p("  podSelector:")
	p("    matchLabels:")
	p("      app.kubernetes.io/part-of: cellar")
	p("      app.kubernetes.io/component: %s", tier)
	if c != "" {
		p("      cellar.dev/cell: %s", c)
	}
	p("  policyTypes: [Ingress]")
	p("  ingress:")
	p("    # Gossip, from every cellar pod.")
	p("    - ports: [{port: %d, protocol: TCP}, {port: %d, protocol: UDP}]", GossipPort, GossipPort)
	p("      from:")
	from("", "")
	p("    # The admin port, from cellar pods and from namespaces labelled %s=true.", scrapeLabel)
	p("    - ports: [{port: %d, protocol: TCP}]", AdminPort)
	p("      from:")
	from("", "")
	p("        - namespaceSelector:")
	p("            matchLabels:")
	p("              %s: \"true\"", scrapeLabel)
	switch {
	case tier == cell.RoleRouter || (tier == cell.RoleGateway && t.Routers == 0):
		p("    # S3, from anyone.")
		p("    - ports: [{port: %d, protocol: TCP}]", S3Port)
	case tier == cell.RoleGateway:
		p("    # S3, from the front routers and from operator pods (%s=true): a client reaches", operatorLabel)
		p("    # the gateways of its shard through a router, never around it.")
		p("    - ports: [{port: %d, protocol: TCP}]", S3Port)
		p("      from:")
		from(string(cell.RoleRouter), "")
		p("        - podSelector:")
		p("            matchLabels:")
		p("              %s: \"true\"", operatorLabel)
	}
	switch callers := GRPCCallers(tier); {
	case len(callers) == 0:
		p("    # No gRPC: no role may call a %s (daemon.Callers).", tier)
	default:
		names := make([]string, len(callers))
		for i, r := range callers {
			names[i] = string(r)
		}
		if c != "" {
			p("    # gRPC, from the roles that may call this tier (%s; of this cell but the", strings.Join(names, ", "))
			p("    # gateways), and from operator pods (%s=true); the certificates decide the rest.", operatorLabel)
		} else {
			p("    # gRPC, from the roles that may call the %s group (%s), and from operator pods", tier, strings.Join(names, ", "))
			p("    # (%s=true); the certificates decide the rest.", operatorLabel)
		}
		p("    - ports: [{port: %d, protocol: TCP}]", GRPCPort)
		p("      from:")
		for _, r := range callers {
			if r == cell.RoleGateway {
				from(string(r), "")
			} else {
				from(string(r), c)
			}
		}
		p("        - podSelector:")
		p("            matchLabels:")
		p("              %s: \"true\"", operatorLabel)
	}
	switch tier {
	case cell.RoleIndex:
		p("    # Raft, from the index group of the same cell.")
		p("    - ports: [{port: %d, protocol: TCP}]", RaftPort)
		p("      from:")
		from(string(cell.RoleIndex), c)
	case cell.RoleMap:
		p("    # Raft, from the map group.")
		p("    - ports: [{port: %d, protocol: TCP}]", RaftPort)
		p("      from:")
		from(string(cell.RoleMap), "")
	}
}

func kubePDB(b *bytes.Buffer, name string, role cell.Role, c string, minAvailable int) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	p("# Voluntary evictions (node drains, upgrades) keep at least %d up: the group's floor.", minAvailable)
	p("apiVersion: policy/v1")
	p("kind: PodDisruptionBudget")
	p("metadata:")
	p("  name: %s", name)
	p("  namespace: %s", Namespace)
	p("spec:")
	p("  minAvailable: %d", minAvailable)
	p("  selector:")
	p("    matchLabels:")
	p("      app.kubernetes.io/part-of: cellar")
	p("      app.kubernetes.io/component: %s", role)
	if c != "" {
		p("      cellar.dev/cell: %s", c)
	}
}

// kubeSpec is node id (of role, in cell c) as it runs in its pod: its own id, its
// peers reached by their Services' names, advertising the pod's IP. A router (id "")
// is any pod of its Deployment: its id is the pod's name.
func kubeSpec(t cell.Topology, c string, role cell.Role, id string) node.Spec {
	if role == cell.RoleRouter {
		spec := containerSpec(t, "$(POD_NAME)", role, "", nil)
		spec.S3Addr = hostPort("0.0.0.0", S3Port)
		spec.TopologyFile = TopologyPath
		spec.Backends = kubeBackends(t)
		if t.TLS {
			// It calls no node of the internal plane: no certificate of it, the
			// gossip's key only.
			spec.GossipKey = pki.Dir(PKIDir).GossipKey()
		}
		spec.AdvertiseHost = "$(POD_IP)"
		spec.Join = []string{hostPort(gossipService, GossipPort)}
		return spec
	}
	raftHost := func(peer string) string { return hostPort(peer, RaftPort) }
	spec := containerSpec(t, id, role, c, func(peer string) string { return peer })
	if role == cell.RoleMap {
		spec.RaftAdvertise = raftHost(id)
		spec.Peers = node.MapPeers(t, raftHost)
	}
	spec.AdvertiseHost = "$(POD_IP)"
	spec.Join = []string{hostPort(gossipService, GossipPort)}
	return withPKI(t, spec)
}

// kubePodSpec writes the pod spec of node id (or of any router), indented for a
// template (6 spaces).
func kubePodSpec(b *bytes.Buffer, t cell.Topology, c string, tier cell.Role, id string) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	args := daemonArgs(kubeSpec(t, c, tier, id))
	p("      securityContext:")
	p("        runAsNonRoot: true")
	p("        runAsUser: 65532")
	p("        runAsGroup: 65532")
	p("        fsGroup: 65532")
	p("      # No node calls the Kubernetes API: no token of it in the pod.")
	p("      automountServiceAccountToken: false")
	p("      # Nodes find one another by name, not by the environment variables Kubernetes")
	p("      # would set for every Service of the namespace (one per node).")
	p("      enableServiceLinks: false")
	p("      terminationGracePeriodSeconds: 15")
	p("      # Spread the group's nodes over machines, so that losing one takes one of them.")
	p("      affinity:")
	p("        podAntiAffinity:")
	p("          preferredDuringSchedulingIgnoredDuringExecution:")
	p("            - weight: 100")
	p("              podAffinityTerm:")
	p("                topologyKey: kubernetes.io/hostname")
	p("                labelSelector:")
	p("                  matchLabels:")
	p("                    app.kubernetes.io/part-of: cellar")
	p("                    app.kubernetes.io/component: %s", tier)
	if c != "" {
		p("                    cellar.dev/cell: %s", c)
	}
	p("      containers:")
	p("        - name: %s", tier)
	p("          image: cellar:latest")
	p("          imagePullPolicy: IfNotPresent")
	p("          args:")
	for _, a := range args {
		p("            - %s", strconv.Quote(a))
	}
	p("          env:")
	if tier == cell.RoleRouter {
		p("            - name: POD_NAME")
		p("              valueFrom: {fieldRef: {fieldPath: metadata.name}}")
	}
	p("            - name: POD_IP")
	p("              valueFrom: {fieldRef: {fieldPath: status.podIP}}")
	if tier == cell.RoleGateway || tier == cell.RoleRouter {
		// A router lets the cluster's own key reach every gateway: it needs to know it.
		p("            - name: %s", cell.EnvAccessKey)
		p("              valueFrom: {secretKeyRef: {name: %s, key: access_key}}", credentialsSecret)
		p("            - name: %s", cell.EnvSecretKey)
		p("              valueFrom: {secretKeyRef: {name: %s, key: secret_key}}", credentialsSecret)
		if t.Routers > 0 {
			p("            - name: %s", cell.EnvTenants)
			p("              valueFrom: {secretKeyRef: {name: %s, key: tenants.json}}", tenantsSecret)
		}
	}
	p("          ports:")
	p("            - {name: grpc, containerPort: %d}", GRPCPort)
	p("            - {name: admin, containerPort: %d}", AdminPort)
	p("            - {name: gossip-tcp, containerPort: %d, protocol: TCP}", GossipPort)
	p("            - {name: gossip-udp, containerPort: %d, protocol: UDP}", GossipPort)
	switch tier {
	case cell.RoleIndex, cell.RoleMap:
		p("            - {name: raft, containerPort: %d}", RaftPort)
	case cell.RoleGateway, cell.RoleRouter:
		p("            - {name: s3, containerPort: %d}", S3Port)
	}
	p("          readinessProbe:")
	p("            httpGet: {path: /readyz, port: admin}")
	p("            periodSeconds: 5")
	p("          livenessProbe:")
	p("            httpGet: {path: /healthz, port: admin}")
	p("            periodSeconds: 10")
	p("            failureThreshold: 6")
	p("          securityContext:")
	p("            allowPrivilegeEscalation: false")
	p("            readOnlyRootFilesystem: true")
	p("            capabilities: {drop: [ALL]}")
	var mounts, volumes []string
	if kubeData(t, tier) {
		mounts = append(mounts, fmt.Sprintf("{name: data, mountPath: %s}", DataDir))
	}
	if tier == cell.RoleGateway || tier == cell.RoleRouter {
		mounts = append(mounts, fmt.Sprintf("{name: topology, mountPath: %s, subPath: topology.yaml, readOnly: true}", TopologyPath))
		volumes = append(volumes, "name: topology\n          configMap: {name: cellar-topology}")
	}
	switch {
	case t.TLS && tier == cell.RoleRouter:
		// The gossip key alone: no node's certificate or key.
		mounts = append(mounts, fmt.Sprintf("{name: pki, mountPath: %s, readOnly: true}", PKIDir))
		volumes = append(volumes, fmt.Sprintf("name: pki\n          secret: {secretName: %s, defaultMode: 0440, items: [{key: %s, path: %s}]}",
			PKISecret(pki.ObserverDir), pkiGossipKeyFile, pkiGossipKeyFile))
	case t.TLS:
		// Its own certificate and key, the CA certificate and the gossip key, from its
		// own Secret (see kubeCommon).
		mounts = append(mounts, fmt.Sprintf("{name: pki, mountPath: %s, readOnly: true}", PKIDir))
		volumes = append(volumes, fmt.Sprintf("name: pki\n          secret: {secretName: %s, defaultMode: 0440}", PKISecret(id)))
	}
	if len(mounts) > 0 {
		p("          volumeMounts:")
		for _, m := range mounts {
			p("            - %s", m)
		}
	}
	if len(volumes) > 0 {
		p("      volumes:")
		for _, v := range volumes {
			p("        - %s", v)
		}
	}
}
