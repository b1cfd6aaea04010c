package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/index/seed"
	"github.com/cellarsim/cellar/node"
)

// indexNodeArgs is the command line, after the executable, of the index node of
// cell number i with its database in dataDir: a cellctl binary's `daemon index`
// with the node's flags as node.Spec renders them. The node is standalone (no
// group, nothing to join), so that what is measured is one node's own start. It
// picks its own ports, so that nodes started together do not race for them, and
// says which in its first log line, in JSON, where copyLog finds them.
// --rebuild-pending, which node.Spec does not describe, follows the spec's flags.
func indexNodeArgs(i int, dataDir, pending string) []string {
	spec := node.Spec{
		ID: indexNodeID(i), Role: cell.RoleIndex, Cell: cell.ID(i),
		GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		LogFormat: "json", DataDir: dataDir,
	}
	args := append([]string{"daemon", string(spec.Role)}, spec.Args()...)
	return append(args, "--rebuild-pending="+pending)
}

// nodeRun is what one restart of one index node measured.
type nodeRun struct {
	firstServe time.Duration // process start → first answered Lookup
	rebuilt    time.Duration // process start → complete map
	rebuildSec float64       // the node's own rebuild time: Pebble open → complete map
	cpuSec     float64       // the node's CPU time until the map was complete
	heapBytes  float64       // Go heap after the rebuild and a collection
	mapBytes   float64       // the map's own accounting
}

// restartIndexes starts the index nodes of the given cells together, measures them
// until all are rebuilt, and stops them. Their logs go to base/logs.
func restartIndexes(ctx context.Context, o RebuildOptions, base string, which []int, dirs []string) ([]nodeRun, error) {
	type proc struct {
		cmd        *exec.Cmd
		start      time.Time
		addrs      chan [2]string // gRPC and admin addresses, from the node's log
		run        nodeRun
		err        error
		done       chan struct{}
		exited     chan error
		cellNumber int
	}
	logDir := filepath.Join(base, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("create the log directory: %w", err)
	}
	procs := make([]*proc, len(which))
	defer func() {
		for _, p := range procs {
			if p != nil {
				stopProcess(p.cmd, p.exited)
			}
		}
	}()
	for k, i := range which {
		id := indexNodeID(i)
		logf, err := os.OpenFile(filepath.Join(logDir, id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open the log of %s: %w", id, err)
		}
		c := exec.Command(o.Executable, indexNodeArgs(i, dirs[i], o.Pending)...)
		logr, logw, err := os.Pipe()
		if err != nil {
			logf.Close()
			return nil, fmt.Errorf("start %s: %w", id, err)
		}
		c.Stdout, c.Stderr = logf, logw
		p := &proc{cmd: c, addrs: make(chan [2]string, 1), done: make(chan struct{}), exited: make(chan error, 1), cellNumber: i}
		p.start = time.Now()
		err = c.Start()
		logw.Close()
		if err != nil {
			logr.Close()
			logf.Close()
			return nil, fmt.Errorf("start %s: %w", id, err)
		}
		go copyLog(logr, logf, p.addrs)
		go func() { p.exited <- c.Wait() }()
		procs[k] = p
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	for _, p := range procs {
		go func() {
			defer close(p.done)
			p.run, p.err = measureNode(ctx, p.start, p.addrs, p.cmd.Process.Pid, seed.Bucket(p.cellNumber), p.exited)
		}()
	}
	out := make([]nodeRun, len(procs))
	for k, p := range procs {
		<-p.done
		if p.err != nil {
			id := indexNodeID(p.cellNumber)
			return nil, fmt.Errorf("%s: %w (see %s)", id, p.err, filepath.Join(logDir, id+".log"))
		}
		out[k] = p.run
	}
	return out, nil
}

// measureNode polls a starting index node: Lookup over gRPC until one is answered,
// then /status until the rebuild is done and the heap after it is known.
func measureNode(ctx context.Context, start time.Time, addrs chan [2]string, pid int, bucket string, exited chan error) (nodeRun, error) {
	var r nodeRun
	var grpcAddr, adminAddr string
	select {
	case a := <-addrs:
		grpcAddr, adminAddr = a[0], a[1]
	case err := <-exited:
		exited <- err
		return r, fmt.Errorf("the node exited: %v", err)
	case <-ctx.Done():
		return r, fmt.Errorf("the node did not start in time: %w", ctx.Err())
	}
	// Retry the connection every few milliseconds while the process starts (gRPC's
	// default backoff would add up to a second).
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 2 * time.Millisecond, Multiplier: 1.2, MaxDelay: 20 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		return r, fmt.Errorf("connect to the node: %w", err)
	}
	defer conn.Close()
	client := cellarv1.NewIndexClient(conn)
	check := func() error {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("the node exited: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("no answer in time: %w", ctx.Err())
		default:
			return nil
		}
	}
	for {
		if err := check(); err != nil {
			return r, err
		}
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := client.Lookup(cctx, &cellarv1.LookupRequest{Bucket: bucket, Key: seed.Key(0)})
		cancel()
		if err == nil {
			r.firstServe = time.Since(start)
			break
		}
		time.Sleep(2 * time.Millisecond) // polling a process from outside: nothing to wait on
	}
	cpuAtDone := -1.0
	for {
		if err := check(); err != nil {
			return r, err
		}
		st, err := nodeStatus(ctx, adminAddr)
		if err == nil && st.Gauges["rebuild_progress"] == 1 {
			if cpuAtDone < 0 {
				cpuAtDone = processCPU(pid)
			}
			if h, ok := st.Gauges["heap_after_rebuild_bytes"]; ok {
				nodeStart := time.Unix(0, st.StartedUnixNano)
				r.rebuilt = nodeStart.Sub(start) + seconds(st.Gauges["since_start_open_seconds"]+st.Gauges["rebuild_seconds"])
				r.rebuildSec = st.Gauges["rebuild_seconds"]
				r.cpuSec = cpuAtDone
				r.heapBytes = h
				r.mapBytes = st.Gauges["map_bytes"]
				return r, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// indexStatus is the part of an index node's /status the bench reads.
type indexStatus struct {
	State           string             `json:"state"`
	StartedUnixNano int64              `json:"started_unix_nano"`
	Gauges          map[string]float64 `json:"gauges"`
}

// nodeStatus reads the /status of the node whose admin server is at adminAddr.
func nodeStatus(ctx context.Context, adminAddr string) (*indexStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st indexStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("read the node's status: %w", err)
	}
	return &st, nil
}

// processCPU returns the CPU seconds (user + system) process pid has used, from
// /proc; -1 where there is no /proc.
func processCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// Fields after the command name (which may hold spaces) start after ") ".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return -1
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks; 100 per second on Linux
}

// stopProcess asks a node to stop, and kills it if it has not within 15 seconds.
func stopProcess(c *exec.Cmd, exited chan error) {
	_ = c.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		_ = c.Process.Kill()
		<-exited
	}
}

// copyLog copies a node's JSON log lines to w and sends the gRPC and admin addresses
// of its "daemon started" line to addrs.
func copyLog(r io.ReadCloser, w io.WriteCloser, addrs chan<- [2]string) {
	defer r.Close()
	defer w.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Bytes()
		w.Write(append(line, '\n'))
		if sent {
			continue
		}
		var l struct{ Msg, GRPC, Admin string }
		if json.Unmarshal(line, &l) == nil && l.Msg == "daemon started" && l.GRPC != "" && l.Admin != "" {
			addrs <- [2]string{l.GRPC, l.Admin}
			sent = true
		}
	}
	io.Copy(io.Discard, r)
}
