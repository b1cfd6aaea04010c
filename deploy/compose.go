// Package deploy writes the files that run a cellar cluster in containers: the
// docker-compose.yml, the Prometheus configuration that scrapes every node, and the
// topology file the gateway reads, all from one cell.Topology so that the nodes, their
// flags and their scrape targets stay in one place; and the Kubernetes manifests. A
// node's command line is its node.Spec rendered by Args, as for a local cluster.
//
// The checked-in files under deploy/ are its output for deploy/topology.yaml, those
// under deploy/sharded/ for deploy/sharded/topology.yaml (front routers before the
// gateways, shuffle sharding), and those under deploy/cellmap/ for
// deploy/cellmap/topology.yaml (a map group); 'cellctl compose' writes them again
// after the topology changes (a test fails when they are out of date).
package deploy

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/pki"
	"github.com/cellarsim/cellar/node"
)

// Ports every node listens on inside its container (each container has its own
// address, so all nodes use the same ones).
const (
	GRPCPort   = 7000
	AdminPort  = 7001
	RaftPort   = 7100
	GossipPort = 7946
	S3Port     = 9000
)

// DataDir is the data volume's mount point in the image, owned by the image's user.
const DataDir = "/data"

// TopologyPath is where the gateway container finds the topology file.
const TopologyPath = "/etc/cellar/topology.yaml"

// maxSeeds bounds the gossip seeds every node joins: the gateways and the first index
// node of the first cells.
const maxSeeds = 4

// Node is one container of the cluster.
type Node struct {
	cell.NodeSpec
	// Args is the command line after the binary: "daemon <role> --flag=value ...".
	Args []string
}

// Plan lists the nodes of topology t with their command lines, in start order. The
// nodes serve /status and /members to the other containers of the private network:
// the status view runs in one of them (see docs/docker.md). An index group's members
// reach one another by their names on the cell's network (CellHost), so that a node
// cut off that network is cut off its group.
func Plan(t cell.Topology) []Node {
	seeds := Seeds(t)
	var out []Node
	for _, ns := range t.Nodes() {
		spec := containerSpec(t, ns.ID, ns.Role, ns.Cell, func(id string) string { return CellHost(id, ns.Cell) })
		spec.AdvertiseHost = FrontHost(ns.ID)
		spec.Join = seeds
		spec.FastGossip = true
		spec = withPKI(t, spec)
		out = append(out, Node{NodeSpec: ns, Args: append(daemonArgs(spec), "--status-remote")})
	}
	for _, ns := range t.RouterNodes() {
		spec := routerSpec(t, ns.ID)
		spec.AdvertiseHost = FrontHost(ns.ID)
		spec.Join = seeds
		spec.FastGossip = true
		out = append(out, Node{NodeSpec: ns, Args: append(daemonArgs(spec), "--status-remote")})
	}
	return out
}

// routerSpec is a front router in a container of its own: its S3 endpoint on S3Port,
// forwarding to the gateways by their names on the front network, in the fleet's
// order, with the tenants and the sharding from the topology at TopologyPath. It
// calls no node of the internal plane, so it holds no certificate of it; with TLS on
// it holds the gossip's key only.
func routerSpec(t cell.Topology, id string) node.Spec {
	spec := containerSpec(t, id, cell.RoleRouter, "", nil)
	spec.S3Addr = hostPort("0.0.0.0", S3Port)
	spec.TopologyFile = TopologyPath
	for i := range t.Gateways {
		spec.Backends = append(spec.Backends, hostPort(FrontHost(cell.NodeID("", cell.RoleGateway, i)), S3Port))
	}
	if t.TLS {
		spec.GossipKey = pki.Dir(PKIDir).GossipKey()
	}
	return spec
}

// s3Front is the node whose S3 port the host reaches (CELLAR_S3_PORT): the first
// front router when the topology has routers, else the first gateway.
func s3Front(t cell.Topology) string {
	if t.Routers > 0 {
		return cell.NodeID("", cell.RoleRouter, 0)
	}
	return cell.NodeID("", cell.RoleGateway, 0)
}

// FrontNetwork is the compose network every container is on: the gateways reach the
// nodes on it, the gossip runs on it, and the status page probes on it.
const FrontNetwork = "cellar"

// CellNetwork is the compose network of one cell, which only that cell's nodes are
// on: the traffic between them that names a peer by CellHost (the index group's raft)
// goes over it, so cutting a node off it (docker network disconnect) cuts the node off
// the rest of its cell while the gateways, the gossip and the status page still reach
// it on FrontNetwork.
func CellNetwork(cellID string) string { return cellID }

// FrontHost is the name node id has on FrontNetwork only (a network alias):
// "cell-1-index-0.cellar". A node advertises it (its gossip, gRPC and admin addresses),
// so that what the other nodes reach it by is on the front network whatever other
// network the container is on: the container's own host name may resolve to either.
func FrontHost(id string) string { return id + "." + FrontNetwork }

// CellHost is the name node id has on its cell's network only (a network alias):
// "cell-1-index-0.cell-1".
func CellHost(id, cellID string) string { return id + "." + cellID }

// Labels every node container carries, for the tools that act on a compose cluster
// (the container backend of cellctl): its node id, role and cell.
const (
	LabelNode = "io.cellar.node"
	LabelRole = "io.cellar.role"
	LabelCell = "io.cellar.cell"
)

// containerSpec is a node as it runs in a container of its own: every port on all
// interfaces at its fixed number, its data on the volume at DataDir, a gateway's
// topology at TopologyPath. An index node is a member of its cell's index group;
// raftHost(id) is the host name the group's members reach node id by.
func containerSpec(t cell.Topology, id string, role cell.Role, cellID string, raftHost func(id string) string) node.Spec {
	spec := node.Spec{
		ID: id, Role: role, Cell: cellID,
		GRPCAddr:   hostPort("0.0.0.0", GRPCPort),
		AdminAddr:  hostPort("0.0.0.0", AdminPort),
		GossipAddr: hostPort("0.0.0.0", GossipPort),
	}
	switch role {
	case cell.RoleIndex:
		spec.DataDir = DataDir
		spec.RaftAddr = hostPort("0.0.0.0", RaftPort)
		spec.RaftAdvertise = hostPort(raftHost(id), RaftPort)
		spec.Peers = node.IndexPeers(t, cellID, func(peer string) string { return hostPort(raftHost(peer), RaftPort) })
	case cell.RoleStorage:
		spec.DataDir = DataDir
	case cell.RolePlacement:
		spec.Repair = t.Repair
	case cell.RoleMap:
		// The map group belongs to no cell: its members reach one another on the
		// front network.
		spec.DataDir = DataDir
		spec.RaftAddr = hostPort("0.0.0.0", RaftPort)
		spec.RaftAdvertise = hostPort(FrontHost(id), RaftPort)
		spec.Peers = node.MapPeers(t, func(peer string) string { return hostPort(FrontHost(peer), RaftPort) })
	case cell.RoleGateway:
		spec.S3Addr = hostPort("0.0.0.0", S3Port)
		spec.TopologyFile = TopologyPath
		if t.MapNodes > 0 {
			// The last cell map it had, kept on its volume: it serves with it across
			// restarts while the map group is away.
			spec.StateDir = DataDir
		}
	}
	return spec
}

// daemonArgs is a container's command line after the binary: "daemon <role> --flag=value ...".
func daemonArgs(spec node.Spec) []string {
	return append([]string{"daemon", string(spec.Role)}, spec.Args()...)
}

// Seeds are the gossip addresses every node joins: the gateways, then the first index
// node of each cell, maxSeeds in all.
func Seeds(t cell.Topology) []string {
	var seeds []string
	for i := 0; i < t.Gateways && len(seeds) < maxSeeds; i++ {
		seeds = append(seeds, hostPort(FrontHost(cell.NodeID("", cell.RoleGateway, i)), GossipPort))
	}
	for _, c := range t.CellIDs() {
		if len(seeds) == maxSeeds {
			break
		}
		seeds = append(seeds, hostPort(FrontHost(cell.NodeID(c, cell.RoleIndex, 0)), GossipPort))
	}
	return seeds
}

func hostPort(host string, port int) string { return host + ":" + strconv.Itoa(port) }

// Compose returns the docker-compose.yml for topology t. It works with the compose
// plugin (docker compose) and with docker-compose 1.29: no features newer than both.
//
// Environment variables it reads when run: CELLAR_ACCESS_KEY and CELLAR_SECRET_KEY (the
// S3 credentials, passed to the gateways and the routers; none are built in),
// CELLAR_TENANTS (with routers: the tenants, when topology.yaml lists none; see
// cell.EnvTenants), CELLAR_IMAGE (default
// cellar:latest), CELLAR_S3_PORT (the gateway's port on 127.0.0.1; default 9000, 0
// picks a free one), CELLAR_STATUS_PORT (the status page on 127.0.0.1; default 8080),
// CELLAR_PROMETHEUS_PORT (default 9090) and CELLAR_GRAFANA_PORT (default 3000): the last
// two with the monitoring profile only.
func Compose(t cell.Topology) ([]byte, error) {
	if err := t.ValidateShape(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# A cellar cluster in containers: %d cells of %d index, %d placement and %d storage",
		t.Cells, t.IndexNodes, t.PlacementNodes, t.StorageNodes)
	if t.Routers > 0 {
		p("# nodes, and %d gateway(s) behind %d front router(s) (%s sharding, %d tenants), the first", t.Gateways, t.Routers, t.ShardingMode(), len(t.Tenants))
		p("# router with the S3 API on 127.0.0.1:${CELLAR_S3_PORT:-9000}.")
	} else {
		p("# nodes, and %d gateway(s) with the S3 API on 127.0.0.1:${CELLAR_S3_PORT:-9000}.", t.Gateways)
	}
	p("#")
	p("# Generated by 'cellctl compose' from the topology.yaml beside it; edit that and run it again.")
	p("# Build the image first (make images). The gateways take the S3 credentials from")
	p("# %s and %s, set in the environment or in deploy/.env (mode 0600):", cell.EnvAccessKey, cell.EnvSecretKey)
	p("#   eval \"$(cellctl credentials --new --output env)\"")
	p("#   (umask 077; printf '%s=%%s\\n%s=%%s\\n' \"$AWS_ACCESS_KEY_ID\" \"$AWS_SECRET_ACCESS_KEY\" > deploy/.env)", cell.EnvAccessKey, cell.EnvSecretKey)
	p("# then: docker-compose -f deploy/docker-compose.yml up -d. See docs/docker.md.")
	p("")
	p("x-node: &node")
	p("  image: ${CELLAR_IMAGE:-cellar:latest}")
	p("  networks: [%s]", FrontNetwork)
	p("  stop_grace_period: 10s")
	p("  healthcheck:")
	p("    test: [\"CMD\", \"/cellctl\", \"probe\", \"--timeout=2s\", \"http://127.0.0.1:%d/readyz\"]", AdminPort)
	p("    interval: 10s")
	p("    timeout: 10s")
	p("    retries: 3")
	p("    start_period: 60s")
	p("")
	p("services:")
	nodes := Plan(t)
	for i, n := range nodes {
		if i > 0 {
			p("")
		}
		p("  %s:", n.ID)
		p("    <<: *node")
		p("    hostname: %s", n.ID)
		p("    labels:")
		p("      %s: %s", LabelNode, n.ID)
		p("      %s: %s", LabelRole, n.Role)
		if n.Cell != "" {
			p("      %s: %s", LabelCell, n.Cell)
		}
		// The front network, with the name the node advertises; a cell's node is on
		// its cell's network too, with the name its peers there reach it by.
		p("    networks:")
		p("      %s:", FrontNetwork)
		p("        aliases: [%s]", FrontHost(n.ID))
		if n.Cell != "" {
			p("      %s:", CellNetwork(n.Cell))
			p("        aliases: [%s]", CellHost(n.ID, n.Cell))
		}
		p("    command:")
		for _, a := range n.Args {
			p("      - %s", strconv.Quote(a))
		}
		if t.TLS {
			p("    depends_on:")
			p("      %s:", PKIService)
			p("        condition: service_completed_successfully")
		}
		pkiMount := func() {
			if t.TLS {
				p("      - %s:%s:ro", NodePKIVolume(n.ID), PKIDir)
			}
		}
		// The credentials, and behind routers the tenants, from compose's environment:
		// a router lets the cluster's own key reach every gateway, so it knows it too.
		env := func() {
			p("    environment:")
			p("      %s: ${%s:-}", cell.EnvAccessKey, cell.EnvAccessKey)
			p("      %s: ${%s:-}", cell.EnvSecretKey, cell.EnvSecretKey)
			if t.Routers > 0 {
				p("      %s: ${%s:-}", cell.EnvTenants, cell.EnvTenants)
			}
		}
		switch n.Role {
		case cell.RoleGateway:
			env()
			p("    volumes:")
			p("      - ./topology.yaml:%s:ro", TopologyPath)
			if t.MapNodes > 0 {
				p("      - %s:%s", n.ID, DataDir)
			}
			pkiMount()
			if n.ID == s3Front(t) {
				p("    ports:")
				p("      - \"127.0.0.1:${CELLAR_S3_PORT:-9000}:%d\"", S3Port)
			}
		case cell.RoleRouter:
			env()
			p("    volumes:")
			p("      - ./topology.yaml:%s:ro", TopologyPath)
			pkiMount()
			if n.ID == s3Front(t) {
				p("    ports:")
				p("      - \"127.0.0.1:${CELLAR_S3_PORT:-9000}:%d\"", S3Port)
			}
		case cell.RoleIndex, cell.RoleStorage, cell.RoleMap:
			p("    volumes:")
			p("      - %s:%s", n.ID, DataDir)
			pkiMount()
		default:
			if t.TLS {
				p("    volumes:")
				pkiMount()
			}
		}
	}
	if t.TLS {
		p("")
		p("  # Makes the cluster's CA, a certificate per node and the gossip key in the volume")
		p("  # %s (once; kept on later starts), and gives each node a copy of only its own", PKIVolume)
		p("  # certificate and key, the CA certificate and the gossip key in a volume of its")
		p("  # own (%s), which it alone mounts, read-only: no container but this", NodePKIVolume("<node>"))
		p("  # one holds the CA's key or another node's key.")
		p("  %s:", PKIService)
		p("    image: ${CELLAR_IMAGE:-cellar:latest}")
		p("    # root, for this one-shot job only: each node's volume is made root's by")
		p("    # Docker, and the files it writes there are handed to the image's user.")
		p("    user: \"0:0\"")
		p("    network_mode: none")
		p("    restart: \"no\"")
		p("    command:")
		for _, a := range pkiArgs() {
			p("      - %s", strconv.Quote(a))
		}
		p("    volumes:")
		p("      - ./topology.yaml:%s:ro", TopologyPath)
		p("      - %s:%s", PKIVolume, PKIDir)
		for _, n := range nodes {
			p("      - %s:%s/%s", NodePKIVolume(n.ID), PKINodeDirs, n.ID)
		}
		p("      - %s:%s/%s", NodePKIVolume(pki.ObserverDir), PKINodeDirs, pki.ObserverDir)
	}
	p("")
	p("  # The status page, out of band: it joins the gossip as an observer and probes every")
	p("  # node itself, so it keeps working when every cell is down (see docs/docker.md).")
	p("  %s:", StatusService)
	p("    <<: *node")
	p("    hostname: %s", StatusService)
	p("    command:")
	for _, a := range statusArgs(t) {
		p("      - %s", strconv.Quote(a))
	}
	if t.TLS {
		p("    depends_on:")
		p("      %s:", PKIService)
		p("        condition: service_completed_successfully")
	}
	p("    volumes:")
	p("      - ./topology.yaml:%s:ro", TopologyPath)
	if t.TLS {
		p("      - %s:%s:ro", NodePKIVolume(pki.ObserverDir), PKIDir)
	}
	p("    healthcheck:")
	p("      test: [\"CMD\", \"/cellctl\", \"probe\", \"--timeout=2s\", \"http://127.0.0.1:%d/api/status\"]", StatusPort)
	p("      interval: 10s")
	p("      timeout: 10s")
	p("      retries: 3")
	p("    ports:")
	p("      - \"127.0.0.1:${CELLAR_STATUS_PORT:-8080}:%d\"", StatusPort)
	p("")
	p("  # Prometheus scraping every node and the status page, and Grafana with the cellar")
	p("  # dashboard, for Docker engines that can pull their images:")
	p("  # docker-compose -f deploy/docker-compose.yml --profile monitoring up -d")
	p("  prometheus:")
	p("    image: prom/prometheus:v2.53.0")
	p("    profiles: [monitoring, prometheus]")
	p("    networks: [cellar]")
	p("    command: [\"--config.file=/etc/prometheus/prometheus.yml\"]")
	p("    volumes:")
	p("      - ./prometheus.yml:/etc/prometheus/prometheus.yml:ro")
	p("    ports:")
	p("      - \"127.0.0.1:${CELLAR_PROMETHEUS_PORT:-9090}:9090\"")
	p("")
	p("  grafana:")
	p("    image: grafana/grafana:11.1.0")
	p("    profiles: [monitoring]")
	p("    networks: [cellar]")
	p("    depends_on: [prometheus]")
	p("    environment:")
	p("      GF_AUTH_ANONYMOUS_ENABLED: \"true\"")
	p("      GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer")
	p("      GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: /var/lib/grafana/dashboards/cellar-dashboard.json")
	p("    volumes:")
	p("      - ./grafana/provisioning:/etc/grafana/provisioning:ro")
	p("      - ./grafana/cellar-dashboard.json:/var/lib/grafana/dashboards/cellar-dashboard.json:ro")
	p("    ports:")
	p("      - \"127.0.0.1:${CELLAR_GRAFANA_PORT:-3000}:3000\"")
	p("")
	p("networks:")
	p("  %s: {}", FrontNetwork)
	for _, c := range t.CellIDs() {
		p("  %s: {}", CellNetwork(c))
	}
	p("")
	p("volumes:")
	if t.TLS {
		p("  %s: {}", PKIVolume)
		for _, n := range nodes {
			p("  %s: {}", NodePKIVolume(n.ID))
		}
		p("  %s: {}", NodePKIVolume(pki.ObserverDir))
	}
	for _, n := range nodes {
		if n.Role == cell.RoleIndex || n.Role == cell.RoleStorage || n.Role == cell.RoleMap || (n.Role == cell.RoleGateway && t.MapNodes > 0) {
			p("  %s: {}", n.ID)
		}
	}
	return b.Bytes(), nil
}

// Prometheus returns a prometheus.yml that scrapes every node of topology t by its
// service name, labelled with its cell, tier and node id.
func Prometheus(t cell.Topology) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Scrapes every node of the cluster in deploy/docker-compose.yml on its admin port.")
	p("# Generated by 'cellctl compose' from the topology.yaml beside it.")
	p("global:")
	p("  scrape_interval: 5s")
	p("  evaluation_interval: 5s")
	p("scrape_configs:")
	p("  - job_name: cellar")
	p("    honor_labels: true")
	p("    metrics_path: /metrics")
	p("    static_configs:")
	for _, n := range Plan(t) {
		p("      - targets: [\"%s\"]", hostPort(n.ID, AdminPort))
		p("        labels: {node: %q, tier: %q%s}", n.ID, n.Role, cellLabel(n.Cell))
	}
	p("  # The status page's own view (cellar_status_*): node up and ready as probed from")
	p("  # outside, restart times, index quorum and health per cell.")
	p("  - job_name: cellar-status")
	p("    metrics_path: /metrics")
	p("    static_configs:")
	p("      - targets: [\"%s\"]", hostPort(StatusService, StatusPort))
	return b.Bytes()
}

// StatusService is the compose service of the status page, and StatusPort its port.
const (
	StatusService = "status"
	StatusPort    = 8080
)

// statusArgs is the status page's command line: it joins the gossip through the
// cluster's seeds and judges every cell against the topology the gateways read.
func statusArgs(t cell.Topology) []string {
	args := []string{"status",
		"--serve=" + hostPort("0.0.0.0", StatusPort),
		"--join=" + strings.Join(Seeds(t), ","),
		"--bind=0.0.0.0:0",
		"--topology=" + TopologyPath,
	}
	if t.TLS {
		args = append(args, "--gossip-key="+PKIDir+"/"+"gossip.key")
	}
	return args
}

func cellLabel(c string) string {
	if c == "" {
		return ""
	}
	return fmt.Sprintf(", cell: %q", c)
}
