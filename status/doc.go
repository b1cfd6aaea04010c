// Package status is cellar's status view: a live page, and the JSON behind it, that
// shows every cell of a cluster, each tier's nodes and their states, whether each
// cell's index group has quorum, each cell's request rate, error rate and p99, recent
// state changes and drill events, and how long each node took to come back after its
// last restart.
//
// It is built to keep working through the outage it reports. A Collector joins the
// gossip as an observer, probes every node's /readyz and /status directly, and scrapes
// the gateways' /metrics; it asks no gateway, index or storage node to do anything for
// it, and the page's HTML, CSS and script are embedded in the binary. A node that
// stops answering is shown down even after it has left the gossip, because the
// collector remembers every node it has seen (and reads DATA_DIR/cluster.json when
// there is one). When the collector itself has heard nothing from the cluster for a
// while, the view says it is stale instead of showing the last good state.
//
// A node is shown down once it has missed three probes in a row (a live node on a
// busy machine can miss one), or at its first missed probe when the gossip no longer
// lists it either. Which node leads its cell's index group is known from the gossip;
// a leader the gossip drops while it still answers its probes keeps leading in the
// view.
//
// Each cell's health is cell.JudgeCell's, against the shape the cluster declares, not
// against the members the view happens to have seen: a view started after two of a
// cell's three index nodes died must still show that cell without quorum. The shape
// (see Declared) comes from a topology the view is given (Config.Topology), else from
// DATA_DIR/cluster.json, else from the group size every index node gossips. Declared
// nodes the view has never seen are listed down, "never seen", and counted; a cell
// the view has seen no node of is down.
//
// Use:
//
//	c, err := status.NewCollector(status.Config{Seeds: gossipAddrs, DataDir: dir})
//	go c.Run(ctx)
//	http.ListenAndServe("127.0.0.1:8080", status.Handler(c))
//
// cellctl status --serve ADDR does exactly that.
package status
