// Package localcluster runs a cellar topology on one machine as child processes of one
// supervisor: it is what `cellctl up` runs, and what drills and tests drive to stop,
// kill and restart single nodes of a real multi-process cluster.
//
// Every node is a child process (by default the supervisor's own binary, re-executed as
// `daemon <role> ...`) with fixed addresses picked at start, its data in DIR/<node-id>
// and its output in DIR/logs/<node-id>.log. The supervisor starts the tiers in
// dependency order, each gated on the nodes' /readyz, and stops them in the reverse
// order of use; it writes DIR/cluster.json so that other commands can find the cluster.
//
//	sup, err := localcluster.Start(ctx, cell.DefaultTopology(), "./cellar-data", localcluster.Options{Progress: os.Stdout})
//	if err != nil { ... }
//	defer sup.Stop(context.Background())
//	err = sup.StopNode(ctx, "cell-1-index-0") // a drill takes one node down ...
//	err = sup.StartNode(ctx, "cell-1-index-0") // ... and brings it back, ready
//
// Starting again on the same directory brings the same nodes (same ids, same data
// directories and, when they are still free, the same ports) back, with the same S3
// credentials: a new cluster given none gets its own (DIR/credentials.json, 0600, in
// a 0700 directory).
//
// Other processes act on a running cluster through the supervisor's control endpoint
// (ServeControl): it takes every drain, restart and undrain through the guardrail
// workflow of drill/guard itself, and judges every per-node stop and kill as a drain of
// that node, so that the guardrails hold whoever asks. Control is its client; Attached
// is a running cluster as another process sees it, acting through the endpoint.
package localcluster
