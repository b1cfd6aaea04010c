package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/localcluster"
)

// defaultDataDir is where up keeps a cluster and where status looks for one.
const defaultDataDir = "./cellar-data"

type upOptions struct {
	dataDir      string
	topology     string
	cells        int
	index        int
	placement    int
	storage      int
	gateways     int
	partition    string
	s3Addr       string
	auth         bool
	tls          bool
	guardrails   string
	accessKey    string
	secretKey    string
	fastGossip   bool
	logFormat    string
	readyTimeout time.Duration
	stopTimeout  time.Duration
	output       string
	tenancy      tenantFlags
	mapNodes     int
}

// UpMapNodes is the map group a new cluster of up gets when neither a topology file
// nor --map-nodes says: three members, so that the cell map (and ListBuckets, and
// moving buckets) survives the loss of one.
const UpMapNodes = 3

func newUpCommand() *cobra.Command {
	var o upOptions
	// Every default below is the embedded topology's, so that the help says what up
	// starts.
	def := cell.DefaultTopology()
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a local cluster as child processes; Ctrl-C stops it",
		Long: `up starts a whole cellar cluster on this machine, one child process per node, and
keeps it running until Ctrl-C (SIGINT) or SIGTERM.

The cluster is the embedded default topology, or --topology FILE over it; a flag that
is given overrides both, one that is not keeps the file's value. The defaults:

  ` + topologySummary(def) + `, and a map group of 3
  nodes (the cell map: ListBuckets whichever cell is down, and 'cellctl move'); S3 on
  ` + def.S3Addr + `

Index nodes start first, then storage, placement and the gateways, each tier once the
one before it is ready. Every node keeps its data in DATA_DIR/<node-id> and writes its
log to DATA_DIR/logs/<node-id>.log; DATA_DIR/cluster.json says what runs where, for
'cellctl status' and drills. Running up again on the same data directory brings the
same nodes and their data back.

A new cluster gets credentials of its own, made from crypto/rand and kept in
DATA_DIR/credentials.json, readable by you only (the data directory is 0700); up prints
the secret key once, when it makes them, and 'cellctl credentials' shows them again.
--access-key and --secret-key (or access_key and secret_key in the topology file) give
fixed ones instead, for a workshop that hands them out.

Once the cluster is ready, up prints the S3 endpoint, the credentials and where the
data and logs are; with --output json, that is one line of JSON on stdout, and the
progress goes to stderr.

A node that dies is reported and the others keep running. On Ctrl-C, up stops the
gateways, then storage, placement and index nodes; a second Ctrl-C kills what is left.`,
		Example: `  cellctl up
  cellctl up --cells 2 --data-dir /tmp/cellar --s3-addr 127.0.0.1:9100 --fast-gossip
  cellctl up --output json >up.json 2>up.log &    # up.json: one line once it is ready`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUp(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir, "directory for the nodes' data, logs and cluster.json")
	f.StringVar(&o.topology, "topology", "", "YAML topology file over the embedded defaults")
	f.IntVar(&o.cells, "cells", def.Cells, "number of cells")
	f.IntVar(&o.index, "index-nodes", def.IndexNodes, "index nodes per cell (a group that needs a majority up)")
	f.IntVar(&o.placement, "placement-nodes", def.PlacementNodes, "placement nodes per cell")
	f.IntVar(&o.storage, "storage-nodes", def.StorageNodes, "storage nodes per cell")
	f.IntVar(&o.gateways, "gateways", def.Gateways, "number of gateways")
	f.IntVar(&o.mapNodes, "map-nodes", UpMapNodes, "members of the map group, the raft group holding the cell map (ListBuckets whichever cell is down, bucket moves); 0: none. Unset: the topology file's map_nodes, else the cluster's in --data-dir, else 3 for a new cluster without a topology file. A cluster's map group cannot change size")
	f.StringVar(&o.partition, "partition", def.Partition,
		fmt.Sprintf("what picks a key's cell: %q or %q", cell.PartitionByBucket, cell.PartitionByKey))
	f.StringVar(&o.s3Addr, "s3-addr", def.S3Addr, "address of the first gateway's S3 API")
	f.StringVar(&o.guardrails, "guardrails", "on", "on, or off for teaching only: drains and restarts the guardrails would refuse go through (still planned and audited)")
	f.BoolVar(&o.auth, "auth", def.Auth, "require signed requests (--auth=false: anyone may read and write; workshops only)")
	f.BoolVar(&o.tls, "tls", def.TLS, "mutual TLS between the nodes with the cluster's own CA (DATA_DIR/pki) and encrypted gossip (--tls=false: plain TCP; teaching and benchmarks only)")
	f.StringVar(&o.accessKey, "access-key", "", "a fixed access key instead of the cluster's own (with --secret-key)")
	f.StringVar(&o.secretKey, "secret-key", "", "a fixed secret key instead of the cluster's own (with --access-key)")
	f.BoolVar(&o.fastGossip, "fast-gossip", false, "short gossip timers, for one machine: a killed node is noticed in a few seconds")
	f.StringVar(&o.logFormat, "log-format", "text", "format of the nodes' logs: text or json")
	f.DurationVar(&o.readyTimeout, "ready-timeout", 2*time.Minute, "how long one node may take to become ready")
	f.DurationVar(&o.stopTimeout, "stop-timeout", 10*time.Second, "how long a node may take to stop before it is killed")
	addTenantFlags(f, &o.tenancy)
	outputFlag(cmd, &o.output)
	return cmd
}

// topologySummary describes the shape of t: "4 cells of 3 index, 1 placement and 2
// storage nodes, 1 gateway".
func topologySummary(t cell.Topology) string {
	return fmt.Sprintf("%d cell%s of %d index, %d placement and %d storage node%s, %d gateway%s",
		t.Cells, plural(t.Cells), t.IndexNodes, t.PlacementNodes, t.StorageNodes, plural(t.StorageNodes),
		t.Gateways, plural(t.Gateways))
}

// upTopology is the topology file (or the defaults) with the flags that were set over it.
func upTopology(cmd *cobra.Command, o upOptions) (cell.Topology, error) {
	topo := cell.DefaultTopology()
	if o.topology != "" {
		t, err := cell.LoadTopology(o.topology)
		if err != nil {
			return t, err
		}
		topo = t
	}
	set := cmd.Flags().Changed
	if set("cells") {
		topo.Cells = o.cells
	}
	if set("index-nodes") {
		topo.IndexNodes = o.index
	}
	if set("placement-nodes") {
		topo.PlacementNodes = o.placement
	}
	if set("storage-nodes") {
		topo.StorageNodes = o.storage
	}
	if set("gateways") {
		topo.Gateways = o.gateways
	}
	// The map group: the flag's; else the topology file's, when it says; else the
	// one of the cluster already in the data directory (the supervisor refuses a
	// change); else, for a new cluster, UpMapNodes.
	switch {
	case set("map-nodes"):
		topo.MapNodes = o.mapNodes
	case o.topology != "" && topologyFileSets(o.topology, "map_nodes"):
	default:
		if f, err := localcluster.ReadClusterFile(o.dataDir); err == nil {
			topo.MapNodes = f.Topology.MapNodes
		} else if o.topology == "" {
			topo.MapNodes = UpMapNodes
		}
	}
	if set("partition") {
		topo.Partition = o.partition
	}
	if set("s3-addr") {
		topo.S3Addr = o.s3Addr
	}
	if set("auth") {
		topo.Auth = o.auth
	}
	if set("guardrails") {
		topo.Guardrails = o.guardrails
	}
	if set("tls") {
		topo.TLS = o.tls
	}
	if err := applyTenantFlags(set, o.tenancy, &topo); err != nil {
		return topo, err
	}
	if set("access-key") != set("secret-key") || (set("access-key") && (o.accessKey == "" || o.secretKey == "")) {
		return topo, usageErrorf("--access-key and --secret-key go together: give both, or neither for the cluster's own")
	}
	if set("access-key") {
		topo.AccessKey, topo.SecretKey = o.accessKey, o.secretKey
	}
	// The credentials, when neither the flags nor the file give them, are the
	// cluster's own: the supervisor reads or makes them.
	if err := topo.ValidateShape(); err != nil {
		// Validate's messages start with the setting's YAML key; a flag set over it
		// is named as the flag.
		msg := err.Error()
		for key, flag := range upTopologyFlags {
			if rest, ok := strings.CutPrefix(msg, key+" "); ok && set(flag) {
				msg = "--" + flag + " " + rest
			}
		}
		return topo, usageErrorf("%s", msg)
	}
	return topo, nil
}

// topologyFileSets reports whether the topology file at path gives key itself (the
// file was read once already; a file that cannot be read again says nothing).
func topologyFileSets(path, key string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var m map[string]any
	if yaml.Unmarshal(b, &m) != nil {
		return false
	}
	_, ok := m[key]
	return ok
}

// upTopologyFlags names the flag of up that sets each topology setting, by its key in
// a topology file.
var upTopologyFlags = map[string]string{
	"cells": "cells", "index_nodes": "index-nodes", "placement_nodes": "placement-nodes",
	"storage_nodes": "storage-nodes", "gateways": "gateways", "map_nodes": "map-nodes", "partition": "partition", "auth": "auth",
	"guardrails": "guardrails", "sharding": "sharding", "shard_size": "shard-size", "routers": "routers",
}

func runUp(cmd *cobra.Command, o upOptions) error {
	if err := checkOutput(&o.output); err != nil {
		return err
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return usageErrorf("--log-format %q: want text or json", o.logFormat)
	}
	topo, err := upTopology(cmd, o)
	if err != nil {
		return err
	}
	// With --output json, stdout carries only the JSON line; what a person watching
	// wants to see goes to stderr.
	out, progress := cmd.OutOrStdout(), cmd.OutOrStdout()
	if o.output == outputJSON {
		progress = cmd.ErrOrStderr()
	}

	// The first SIGINT or SIGTERM ends the run (or the start); a second one kills
	// whatever is still stopping.
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc)
	runCtx, endRun := context.WithCancel(cmd.Context())
	defer endRun()
	stopCtx, forceStop := context.WithCancel(context.Background())
	defer forceStop()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		var first time.Time
		for {
			select {
			case <-sigc:
				switch {
				case first.IsZero():
					first = time.Now()
					endRun()
				case time.Since(first) > 500*time.Millisecond:
					// Not the same signal delivered twice (as by timeout(1) or a
					// process-group kill), but a person asking again.
					forceStop()
				}
			case <-finished:
				return
			}
		}
	}()

	if topo.GuardrailsOff() {
		printGuardrailsOff(progress)
	}
	fmt.Fprintf(progress, "cellar: %s; data in %s\n", topologySummary(topo), o.dataDir)
	sup, err := localcluster.Start(runCtx, topo, o.dataDir, localcluster.Options{
		FastGossip:   o.fastGossip,
		LogFormat:    o.logFormat,
		ReadyTimeout: o.readyTimeout,
		StopTimeout:  o.stopTimeout,
		Progress:     progress,
		Tenants:      o.tenancy.tenants,
	})
	if err != nil {
		if runCtx.Err() != nil {
			return errors.New("interrupted while starting; every node was stopped")
		}
		return err
	}
	if topo.GuardrailsOff() {
		if err := guard.OpenAudit(sup.Dir()).Append(guard.Entry{Command: commandLine(), Decision: guard.DecisionGuardrailsOff,
			Outcome: guard.GuardrailsOffBanner}); err != nil {
			fmt.Fprintf(progress, "warning: %v\n", err)
		}
	}
	// Other cellctl commands (drain, undrain, restart) act on the nodes through this.
	_, stopControl, err := sup.ServeControl()
	if err != nil {
		fmt.Fprintf(progress, "warning: %v; drills cannot act on this cluster\n", err)
		stopControl = func() {}
	}
	ready := readyInfo(sup)
	if o.output == outputJSON {
		if err := json.NewEncoder(out).Encode(ready); err != nil {
			return err
		}
		if !ready.Auth {
			printAuthWarning(progress, ready.S3Endpoint)
		}
	} else {
		printReady(out, ready, o.dataDir)
		printTenancy(out, sup.Topology(), sup, o.dataDir)
	}

	<-runCtx.Done()
	stopControl()
	fmt.Fprintln(progress, "\nstopping the cluster (Ctrl-C again to kill what is left)")
	start := time.Now()
	if err := sup.Stop(stopCtx); err != nil {
		return err
	}
	fmt.Fprintf(progress, "cluster stopped in %s; data kept in %s\n", time.Since(start).Round(time.Millisecond), o.dataDir)
	return nil
}

// upReady is what up prints once the cluster is ready: with --output json, as one
// line of JSON.
type upReady struct {
	S3Endpoint string `json:"s3_endpoint"`
	AccessKey  string `json:"access_key"`
	// SecretKey is shown once, when up made the cluster's credentials (NewCredentials);
	// 'cellctl credentials' shows it again.
	SecretKey       string `json:"secret_key,omitempty"`
	NewCredentials  bool   `json:"new_credentials"`
	CredentialsFile string `json:"credentials_file"`
	Region          string `json:"region"`
	// Auth is false when the gateways serve unsigned requests (--auth=false).
	Auth bool `json:"auth"`
	// DataDir, ClusterFile and LogDir are absolute paths.
	DataDir     string `json:"data_dir"`
	ClusterFile string `json:"cluster_file"`
	LogDir      string `json:"log_dir"`
	Nodes       int    `json:"nodes"`
	// SupervisorPID is up's own process: SIGINT or SIGTERM to it stops the cluster.
	SupervisorPID int `json:"supervisor_pid"`
	// GuardrailsOff: drains and restarts are not refused (--guardrails=off, teaching).
	GuardrailsOff bool `json:"guardrails_off,omitempty"`
}

func readyInfo(sup *localcluster.Supervisor) upReady {
	t := sup.Topology()
	r := upReady{
		S3Endpoint: sup.S3Endpoint(), AccessKey: t.AccessKey, Region: t.Region, Auth: t.Auth,
		NewCredentials: sup.MadeCredentials(), CredentialsFile: filepath.Join(sup.Dir(), localcluster.CredentialsFileName),
		DataDir:       sup.Dir(),
		ClusterFile:   filepath.Join(sup.Dir(), localcluster.ClusterFileName),
		LogDir:        filepath.Join(sup.Dir(), "logs"),
		Nodes:         len(sup.Nodes()),
		SupervisorPID: os.Getpid(),
		GuardrailsOff: t.GuardrailsOff(),
	}
	if r.NewCredentials {
		r.SecretKey = t.SecretKey
	}
	return r
}

// printReady prints r for a person; dataDir is --data-dir as given.
func printReady(out io.Writer, r upReady, dataDir string) {
	ep := r.S3Endpoint
	secret := fmt.Sprintf("in %s ('cellctl credentials' shows it)", r.CredentialsFile)
	if r.NewCredentials {
		secret = r.SecretKey + "\n             (new: shown this once; 'cellctl credentials' shows it again)"
	}
	fmt.Fprintf(out, `
S3 endpoint: %s
Access key:  %s
Secret key:  %s
Region:      %s

Try it from another terminal:
  eval "$(cellctl credentials --data-dir %s --output env)"
  aws --endpoint-url %s s3 mb s3://demo
  aws --endpoint-url %s s3 ls

Cluster status: cellctl status --data-dir %s
Node logs:      %s/logs/
Press Ctrl-C to stop the cluster.
`, ep, r.AccessKey, secret, r.Region, dataDir, ep, ep, dataDir, dataDir)
	if !r.Auth {
		printAuthWarning(out, ep)
	}
	if r.GuardrailsOff {
		printGuardrailsOff(out)
	}
}

func printAuthWarning(out io.Writer, endpoint string) {
	fmt.Fprintf(out, `
WARNING: AUTHENTICATION IS OFF. The gateway does not check signatures: anyone who can
reach %s can read, write and delete every object. Use this for workshops only.
`, endpoint)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
