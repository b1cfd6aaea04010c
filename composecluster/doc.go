// Package composecluster is a cluster run by Docker Compose (deploy/docker-compose.yml)
// as a cell.Cluster: the compose project's containers are the nodes, and stopping,
// killing, starting, pausing and cutting a node off the network are done by the Docker
// engine. It is what 'cellctl --cluster compose:FILE' drives, and what the
// partition-tolerance test drives.
//
//	c, err := composecluster.Open(ctx, "deploy/docker-compose.yml", composecluster.Options{})
//	if err != nil { ... } // Docker not answering, the project not up: one sentence
//	nodes, err := c.Nodes(ctx)                           // role, cell, state, leader
//	err = c.Partition(ctx, []string{"cell-2-index-0"})   // cut it off the rest of cell-2
//	err = c.Heal(ctx, nil)                               // every cut node back
//
// It talks to Docker through the docker command line (no client library), found on
// PATH or given in Options.Docker. A node's state and leadership come from the gossip,
// as a running node serves it at /members on its admin port: the host reaches the
// containers' addresses on the project's private network (on Linux, where the bridge
// networks are routed to the host).
//
// Networks. The compose file puts every container on the network "cellar", where the
// gateways reach the nodes, the gossip runs and the status page probes; and every node
// of a cell also on that cell's network ("cell-1"), where the index group's members
// reach one another under the names deploy.CellHost gives them ("cell-1-index-0.cell-1").
// Partition disconnects nodes from their cell's network; when it cuts off more than
// one node, it connects them to a network of their own with the same names, so the
// nodes cut off still reach one another (a minority/majority split). A cut node keeps
// its address on "cellar": the gateways and the gossip still see it, which is how an
// isolated index leader is seen to step down and refuse to serve. Heal connects the
// nodes to their cell's network again. Docker may give a node another address on the
// cell's network when it comes back: its peers reach it by name, so nothing depends on
// the old one.
//
// Guardrails. The docker commands themselves act without any: what keeps the floors
// on a compose cluster is that cellctl takes every drain, restart and undrain through
// the one guardrail workflow (drill/guard) before it calls this package, and keeps the
// audit log and the kill switch in AuditDir.
package composecluster
