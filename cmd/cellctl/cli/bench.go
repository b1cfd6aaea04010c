package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/index"
	"github.com/cellarsim/cellar/cell/index/seed"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks of a cellar tier",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newBenchRebuildCommand(), newBenchCatchUpCommand())
	return cmd
}

type benchRebuildOptions struct {
	objects  []int
	cells    []int
	output   string
	dir      string
	reseed   bool
	together bool
	pending  string
	timeout  time.Duration
	runs     int
}

func newBenchRebuildCommand() *cobra.Command {
	var o benchRebuildOptions
	cmd := &cobra.Command{
		Use:   "rebuild",
		Short: "Measure index restarts against object count and cell count",
		Long: `rebuild measures how long an index node takes to come back, against the number of
objects it holds, with the raw Pebble scan of the same data as the reference.

For each combination of --objects and --cells it spreads that many synthetic objects
evenly over the cells' index databases in DIR (written as sstables and ingested into
Pebble, not through the API; kept for later runs with the same numbers), then restarts
the cells' index nodes as real processes (cellctl daemon index, standalone), one cell
at a time, and measures for each:

  first serve   from process start to the first answered Lookup of a key in the
                first key range (polled over gRPC)
  rebuilt       from process start to the complete in-memory map (the node's /status)
  rebuild rate  objects / the node's own rebuild time (Pebble open to complete map)
  scan rate     objects / a raw single-threaded scan of the same databases, opened
                read-only by this process in the same run: the reference
  ratio         rebuild rate / scan rate; cpu_ratio is the same per CPU-second
                (the node's CPU time against this process's), steadier on a busy machine
  heap/object   the node's Go heap after the rebuild and a collection, per object

It does all of that --runs times (3 by default) and reports the median of each
measure, and of each run's ratios: on a shared machine a single restart or scan
can be off by 2x.

With several cells it also restarts all of them at once (all_cells_ms). It prints a
table (or JSON rows with --output json) and writes DIR/rebuild.csv and DIR/rebuild.svg
(rebuild time against objects, one line per cell count).`,
		Example: `  cellctl bench rebuild --objects 1000000 --cells 1,4
  cellctl bench rebuild --objects 100000,1000000,10000000 --cells 1,4,16 --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.output != "table" && o.output != "json" {
				return usageErrorf("--output %q: want table or json", o.output)
			}
			if o.runs < 1 || o.runs > 100 {
				return usageErrorf("--runs: %d is not between 1 and 100", o.runs)
			}
			if o.pending != "pebble" && o.pending != "slowdown" {
				return usageErrorf("--pending %q: want pebble or slowdown", o.pending)
			}
			for _, n := range o.objects {
				if n <= 0 {
					return usageErrorf("--objects: %d is not a positive count", n)
				}
			}
			for _, c := range o.cells {
				if c <= 0 || c > 256 {
					return usageErrorf("--cells: %d is not between 1 and 256", c)
				}
			}
			return runBenchRebuild(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&o.objects, "objects", []int{100_000, 1_000_000}, "object counts, comma-separated")
	f.IntSliceVar(&o.cells, "cells", []int{1, 4}, "cell counts, comma-separated; the objects are spread over the cells")
	f.StringVar(&o.output, "output", "table", "table or json")
	f.StringVar(&o.dir, "dir", filepath.Join(defaultDataDir, "bench"), "directory for the seeded databases, logs, CSV and SVG")
	f.BoolVar(&o.reseed, "reseed", false, "seed again even if DIR holds databases with these numbers")
	f.BoolVar(&o.together, "together", true, "with several cells, also restart all of them at once")
	f.StringVar(&o.pending, "pending", "pebble", "the nodes' --rebuild-pending: pebble or slowdown")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "longest one node may take to rebuild")
	f.IntVar(&o.runs, "runs", 3, "restarts and scans per combination; the median of each measure is reported")
	return cmd
}

// benchRow is one line of the result.
type benchRow struct {
	Objects               int     `json:"objects"`
	Cells                 int     `json:"cells"`
	ObjectsPerCell        int     `json:"objects_per_cell"`
	Runs                  int     `json:"runs"`
	FirstServeMS          float64 `json:"first_serve_ms"`
	RebuildMS             float64 `json:"rebuild_ms"`
	AllCellsRebuildMS     float64 `json:"all_cells_rebuild_ms,omitempty"`
	RebuildObjectsPerS    float64 `json:"rebuild_objects_per_s"`
	ScanObjectsPerS       float64 `json:"scan_objects_per_s"`
	Ratio                 float64 `json:"ratio"`
	RebuildObjectsPerCPUS float64 `json:"rebuild_objects_per_cpu_s"`
	ScanObjectsPerCPUS    float64 `json:"scan_objects_per_cpu_s"`
	CPURatio              float64 `json:"cpu_ratio"`
	HeapBytesPerObject    float64 `json:"heap_bytes_per_object"`
	MapBytesPerObject     float64 `json:"map_bytes_per_object"`
	LoadAvg               float64 `json:"load_avg_1m"`
}

func runBenchRebuild(ctx context.Context, o benchRebuildOptions, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "machine: %d CPUs, load average %.2f\n", runtime.NumCPU(), loadAvg())
	var rows []benchRow
	for _, n := range o.objects {
		for _, c := range o.cells {
			row, err := benchOne(ctx, o, exe, n, c, stderr)
			if err != nil {
				return fmt.Errorf("%d objects, %d cells: %w", n, c, err)
			}
			rows = append(rows, row)
			fmt.Fprintf(stderr, "  %d objects in %d cells: first serve %.0f ms, rebuilt in %.0f ms per cell, ratio %.2f (cpu %.2f), %.0f B/object\n",
				n, c, row.FirstServeMS, row.RebuildMS, row.Ratio, row.CPURatio, row.HeapBytesPerObject)
		}
	}
	if err := writeBenchCSV(filepath.Join(o.dir, "rebuild.csv"), rows); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.dir, "rebuild.svg"), []byte(rebuildSVG(rows)), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s and %s\n", filepath.Join(o.dir, "rebuild.csv"), filepath.Join(o.dir, "rebuild.svg"))
	if o.output == "json" {
		return printJSON(stdout, rows)
	}
	printBenchTable(stdout, rows)
	return nil
}

// benchOne seeds (if needed) and measures one combination.
func benchOne(ctx context.Context, o benchRebuildOptions, exe string, n, cells int, stderr io.Writer) (benchRow, error) {
	base := filepath.Join(o.dir, fmt.Sprintf("objects-%d-cells-%d", n, cells))
	dirs := make([]string, cells)
	counts := make([]int, cells)
	for i := range cells {
		dirs[i] = filepath.Join(base, cell.NodeID(cell.ID(i), cell.RoleIndex, 0))
		counts[i] = n / cells
		if i < n%cells {
			counts[i]++
		}
	}
	if err := seedCells(base, dirs, counts, o.reseed, stderr); err != nil {
		return benchRow{}, err
	}
	row := benchRow{Objects: n, Cells: cells, ObjectsPerCell: n / cells, Runs: o.runs}

	tty := isTerminal(stderr)
	clearLine := func() {
		if tty {
			fmt.Fprintf(stderr, "\r%70s\r", "")
		}
	}

	// Each measure is taken o.runs times and the median kept: on a shared machine
	// single restarts and single scans vary by up to 2x.
	var firstServe, rebuilt, all, rebuildSec, cpuSec, heapPer, mapPer, scanWall, scanCPU, ratio, cpuRatio []float64
	for run := range o.runs {
		runNote := ""
		if o.runs > 1 {
			runNote = fmt.Sprintf(", run %d of %d", run+1, o.runs)
		}
		// One cell at a time: the restart of one cell. On a terminal the
		// status line is redrawn per node; in a log it is one line per run.
		if !tty {
			fmt.Fprintf(stderr, "restarting %d index node%s one at a time%s\n", cells, plural(cells), runNote)
		}
		var fs, rb, rs, cs, hp, mp float64
		for i := range cells {
			if tty {
				fmt.Fprintf(stderr, "\rrestarting %s (%d of %d%s) ...", cell.NodeID(cell.ID(i), cell.RoleIndex, 0), i+1, cells, runNote)
			}
			m, err := restartIndexes(ctx, exe, base, o, []int{i}, dirs, stderr)
			if err != nil {
				return row, err
			}
			r := m[0]
			fs, rb = max(fs, ms(r.firstServe)), max(rb, ms(r.rebuilt))
			rs += r.rebuildSec
			cs += r.cpuSec
			hp += r.heapBytes / float64(counts[i]) / float64(cells)
			mp += r.mapBytes / float64(counts[i]) / float64(cells)
		}
		firstServe, rebuilt = append(firstServe, fs), append(rebuilt, rb)
		rebuildSec, cpuSec = append(rebuildSec, rs), append(cpuSec, cs)
		heapPer, mapPer = append(heapPer, hp), append(mapPer, mp)
		clearLine()
		if o.together && cells > 1 {
			every := make([]int, cells)
			for i := range every {
				every[i] = i
			}
			fmt.Fprintf(stderr, "restarting all %d index nodes at once%s ...", cells, runNote)
			if !tty {
				fmt.Fprintln(stderr)
			}
			m, err := restartIndexes(ctx, exe, base, o, every, dirs, stderr)
			if err != nil {
				return row, err
			}
			slowest := 0.0
			for _, r := range m {
				slowest = max(slowest, ms(r.rebuilt))
			}
			all = append(all, slowest)
			clearLine()
		}

		// The reference, in the same run: a raw scan of the same databases.
		scanned, w, c, err := scanCells(dirs)
		if err != nil {
			return row, err
		}
		if scanned != n {
			return row, fmt.Errorf("the scan saw %d objects, %d were seeded", scanned, n)
		}
		scanWall, scanCPU = append(scanWall, w.Seconds()), append(scanCPU, c.Seconds())
		// The ratios pair each run's restarts with that run's scan.
		ratio = append(ratio, per(w.Seconds(), rs))
		cpuRatio = append(cpuRatio, per(c.Seconds(), cs))
	}
	row.FirstServeMS, row.RebuildMS, row.AllCellsRebuildMS = median(firstServe), median(rebuilt), median(all)
	row.RebuildObjectsPerS = per(float64(n), median(rebuildSec))
	row.ScanObjectsPerS = per(float64(n), median(scanWall))
	row.Ratio = median(ratio)
	row.RebuildObjectsPerCPUS = per(float64(n), median(cpuSec))
	row.ScanObjectsPerCPUS = per(float64(n), median(scanCPU))
	row.CPURatio = median(cpuRatio)
	row.HeapBytesPerObject = median(heapPer)
	row.MapBytesPerObject = median(mapPer)
	row.LoadAvg = loadAvg()
	return row, nil
}

// median returns the median of xs (the mean of the middle two for an even
// count), 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// seedCells seeds every cell's database unless base already holds these numbers.
func seedCells(base string, dirs []string, counts []int, reseed bool, stderr io.Writer) error {
	marker := filepath.Join(base, "seeded.json")
	want, _ := json.Marshal(struct {
		Counts []int `json:"objects_per_cell"`
		Format int   `json:"format"`
	}{counts, seed.Format})
	if got, err := os.ReadFile(marker); err == nil && string(got) == string(want) && !reseed {
		fmt.Fprintf(stderr, "using the databases seeded in %s\n", base)
		return nil
	}
	if err := os.RemoveAll(base); err != nil {
		return err
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	bar := newProgressBar(stderr, fmt.Sprintf("seeding %d objects into %d cell%s", total, len(dirs), plural(len(dirs))), total)
	start := time.Now()
	done := 0
	for i, dir := range dirs {
		err := seed.Seed(dir, seed.Options{Bucket: seed.Bucket(i), Objects: counts[i], Progress: func(d int) { bar.set(done + d) }})
		if err != nil {
			return err
		}
		done += counts[i]
	}
	bar.finish(time.Since(start))
	return os.WriteFile(marker, want, 0o644)
}

// progressBar draws "label [#####.....] 42% 420000/1000000" on one line of a
// terminal, redrawn as the work goes on; to a file or pipe it writes the same
// line at every quarter, so that a log gets a few lines rather than a hundred
// carriage returns.
type progressBar struct {
	w     io.Writer
	tty   bool
	label string
	total int
	last  int
}

func newProgressBar(w io.Writer, label string, total int) *progressBar {
	b := &progressBar{w: w, tty: isTerminal(w), label: label, total: total, last: -1}
	b.set(0)
	return b
}

func (b *progressBar) set(done int) {
	pct := 100 * done / max(b.total, 1)
	if !b.tty {
		if done >= b.total {
			return // finish says it
		}
		pct -= pct % 25
	}
	if pct == b.last {
		return
	}
	b.last = pct
	if b.tty {
		fmt.Fprint(b.w, "\r"+b.line(done))
	} else {
		fmt.Fprintln(b.w, b.line(done))
	}
}

func (b *progressBar) line(done int) string {
	const width = 30
	fill := width * done / max(b.total, 1)
	return fmt.Sprintf("%s [%s%s] %3d%% %d/%d", b.label, strings.Repeat("#", fill), strings.Repeat(".", width-fill),
		100*done/max(b.total, 1), done, b.total)
}

func (b *progressBar) finish(took time.Duration) {
	if b.tty {
		fmt.Fprint(b.w, "\r")
	}
	fmt.Fprintf(b.w, "%s in %s\n", b.line(b.total), took.Round(time.Millisecond))
}

// isTerminal reports whether w is a terminal, where a status line can be
// redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
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
// until all are rebuilt, and stops them.
func restartIndexes(ctx context.Context, exe, base string, o benchRebuildOptions, which []int, dirs []string, stderr io.Writer) ([]nodeRun, error) {
	type node struct {
		cmd        *exec.Cmd
		start      time.Time
		addrs      chan [2]string // gRPC and admin addresses, from the node's log
		run        nodeRun
		err        error
		done       chan struct{}
		exited     chan error
		cellNumber int
	}
	if err := os.MkdirAll(filepath.Join(base, "logs"), 0o755); err != nil {
		return nil, err
	}
	nodes := make([]*node, len(which))
	defer func() {
		for _, nd := range nodes {
			if nd != nil && nd.cmd != nil && nd.cmd.Process != nil {
				stopProcess(nd.cmd, nd.exited)
			}
		}
	}()
	for k, i := range which {
		id := cell.NodeID(cell.ID(i), cell.RoleIndex, 0)
		logf, err := os.OpenFile(filepath.Join(base, "logs", id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		// The node picks its own ports (no race between nodes started together)
		// and says which in its first log lines.
		c := exec.Command(exe, "daemon", "index", "--id", id, "--cell", cell.ID(i),
			"--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0",
			"--data-dir", dirs[i], "--rebuild-pending", o.pending, "--log-format", "json")
		logr, logw, err := os.Pipe()
		if err != nil {
			logf.Close()
			return nil, err
		}
		c.Stdout, c.Stderr = logf, logw
		nd := &node{cmd: c, addrs: make(chan [2]string, 1), done: make(chan struct{}), exited: make(chan error, 1), cellNumber: i}
		nd.start = time.Now()
		err = c.Start()
		logw.Close()
		if err != nil {
			logr.Close()
			logf.Close()
			return nil, fmt.Errorf("start %s: %w", id, err)
		}
		go copyLog(logr, logf, nd.addrs)
		go func() { nd.exited <- c.Wait() }()
		nodes[k] = nd
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	for _, nd := range nodes {
		go func() {
			defer close(nd.done)
			nd.run, nd.err = measureNode(ctx, nd.start, nd.addrs, nd.cmd.Process.Pid, seed.Bucket(nd.cellNumber), nd.exited)
		}()
	}
	out := make([]nodeRun, len(nodes))
	for k, nd := range nodes {
		<-nd.done
		if nd.err != nil {
			return nil, fmt.Errorf("%s: %w (see %s)", cell.NodeID(cell.ID(nd.cellNumber), cell.RoleIndex, 0), nd.err,
				filepath.Join(base, "logs", cell.NodeID(cell.ID(nd.cellNumber), cell.RoleIndex, 0)+".log"))
		}
		out[k] = nd.run
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
		return r, err
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

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

type benchStatus struct {
	State           string             `json:"state"`
	StartedUnixNano int64              `json:"started_unix_nano"`
	Gauges          map[string]float64 `json:"gauges"`
}

func nodeStatus(ctx context.Context, adminAddr string) (*benchStatus, error) {
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
	var st benchStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// per is a/b, or 0 when b is too small to have been measured (CPU time is counted
// in clock ticks, so a small run can show none).
func per(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
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

// scanCells reads every object record of the databases, in order, on one goroutine.
func scanCells(dirs []string) (n int, wall, cpu time.Duration, err error) {
	w0, c0 := time.Now(), selfCPU()
	for _, dir := range dirs {
		opts := index.PebbleOptions(seed.Quiet)
		opts.ReadOnly = true
		db, err := pebble.Open(dir, opts)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("scan %s: %w", dir, err)
		}
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{'o'}, UpperBound: []byte{'o' + 1}})
		if err != nil {
			db.Close()
			return 0, 0, 0, err
		}
		for it.First(); it.Valid(); it.Next() {
			_, _ = it.Key(), it.Value()
			n++
		}
		err = errors.Join(it.Close(), db.Close())
		if err != nil {
			return 0, 0, 0, err
		}
	}
	return n, time.Since(w0), selfCPU() - c0, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg is the 1-minute load average, 0 where /proc/loadavg is missing.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

var benchColumns = []string{"objects", "cells", "objects_per_cell", "runs", "first_serve_ms", "rebuild_ms", "all_cells_rebuild_ms",
	"rebuild_objects_per_s", "scan_objects_per_s", "ratio", "rebuild_objects_per_cpu_s", "scan_objects_per_cpu_s", "cpu_ratio",
	"heap_bytes_per_object", "map_bytes_per_object", "load_avg_1m"}

func (r benchRow) fields() []string {
	f := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	return []string{strconv.Itoa(r.Objects), strconv.Itoa(r.Cells), strconv.Itoa(r.ObjectsPerCell), strconv.Itoa(r.Runs),
		f(r.FirstServeMS, 1), f(r.RebuildMS, 1), f(r.AllCellsRebuildMS, 1),
		f(r.RebuildObjectsPerS, 0), f(r.ScanObjectsPerS, 0), f(r.Ratio, 3),
		f(r.RebuildObjectsPerCPUS, 0), f(r.ScanObjectsPerCPUS, 0), f(r.CPURatio, 3),
		f(r.HeapBytesPerObject, 1), f(r.MapBytesPerObject, 1), f(r.LoadAvg, 2)}
}

func writeBenchCSV(path string, rows []benchRow) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write(benchColumns)
	for _, r := range rows {
		w.Write(r.fields())
	}
	w.Flush()
	return errors.Join(w.Error(), f.Close())
}

func printBenchTable(w io.Writer, rows []benchRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "objects\tcells\tfirst serve ms\trebuilt ms/cell\tall cells ms\trebuild obj/s\tscan obj/s\tratio\tcpu ratio\theap B/obj\tmap B/obj\tload\t")
	for _, r := range rows {
		all := "-"
		if r.AllCellsRebuildMS > 0 {
			all = fmt.Sprintf("%.0f", r.AllCellsRebuildMS)
		}
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.0f\t%s\t%.0f\t%.0f\t%.2f\t%.2f\t%.0f\t%.0f\t%.1f\t\n",
			r.Objects, r.Cells, r.FirstServeMS, r.RebuildMS, all, r.RebuildObjectsPerS, r.ScanObjectsPerS,
			r.Ratio, r.CPURatio, r.HeapBytesPerObject, r.MapBytesPerObject, r.LoadAvg)
	}
	tw.Flush()
}
