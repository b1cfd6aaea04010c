package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/localcluster"
)

// CatchUpOptions say what RunCatchUp measures. The zero value of a field is its
// default.
type CatchUpOptions struct {
	// Writes are the numbers of writes the stopped node misses, 1 to 10000000
	// each, one measurement per number (default 1000 and 10000).
	Writes []int
	// Timeout is how long one catch-up may take (default 5m).
	Timeout time.Duration
	// Progress receives one line per measurement. Nil discards it.
	Progress io.Writer
}

// EnsureDefaults fills in the fields left at their zero value.
func (o *CatchUpOptions) EnsureDefaults() {
	if o.Writes == nil {
		o.Writes = []int{1000, 10000}
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Validate reports the first option out of range. The message starts with the
// option's name in lower case, as the command line's flags are named.
func (o *CatchUpOptions) Validate() error {
	if len(o.Writes) == 0 {
		return fmt.Errorf("writes needs at least one count")
	}
	for _, n := range o.Writes {
		if n < 1 || n > 10_000_000 {
			return fmt.Errorf("writes %d: want 1 to 10000000", n)
		}
	}
	return nil
}

// CatchUpRow is one catch-up of a node that missed Writes writes.
type CatchUpRow struct {
	Writes int `json:"writes"`
	// WritesPerS is the rate the group took the writes at while the node was down.
	WritesPerS float64 `json:"writes_per_s"`
	// ReadyMS is from the node's restart until it was ready (its own rebuild);
	// CatchUpMS until it had applied everything the leader had committed.
	ReadyMS   float64 `json:"ready_ms"`
	CatchUpMS float64 `json:"catch_up_ms"`
	// Snapshot is true when the node was too far behind for the leader's log and got
	// a snapshot instead.
	Snapshot bool `json:"snapshot"`
}

// RunCatchUp starts a one-cell cluster whose index is a group of 3, as child
// processes of this one (localcluster runs this executable, a cellctl binary,
// as `daemon ROLE`), with its data in a temporary directory, and for each count
// of o.Writes stops a follower, commits that many writes through the leader,
// starts the follower again and measures how long it takes to be ready and then
// to have applied everything the leader committed.
func RunCatchUp(ctx context.Context, o CatchUpOptions) ([]CatchUpRow, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("bench catchup: %w", err)
	}
	dir, err := os.MkdirTemp("", "cellar-bench-catchup-")
	if err != nil {
		return nil, fmt.Errorf("bench catchup: %w", err)
	}
	defer os.RemoveAll(dir)
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.StorageNodes = 1, 3, 1
	topo.S3Addr = "127.0.0.1:0" // no S3 traffic: the bench talks to the index group
	sup, err := localcluster.Start(ctx, topo, dir, localcluster.Options{FastGossip: true, Progress: io.Discard})
	if err != nil {
		return nil, fmt.Errorf("start the cluster: %w", err)
	}
	defer sup.Stop(context.Background())
	conns, err := localcluster.OperatorConns(sup.Dir()) // the index group's calls need the operator's certificate
	if err != nil {
		return nil, err
	}
	defer conns.Close()

	var rows []CatchUpRow
	for round, n := range o.Writes {
		row, err := catchUpOnce(ctx, sup, conns, round, n, o.Timeout)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Progress, "  %d writes missed: ready in %.0f ms, caught up in %.0f ms%s\n",
			n, row.ReadyMS, row.CatchUpMS, map[bool]string{true: " (from a snapshot)", false: ""}[row.Snapshot])
		rows = append(rows, row)
	}
	return rows, nil
}

// WriteCatchUpTable prints rows as a table for a terminal.
func WriteCatchUpTable(w io.Writer, rows []CatchUpRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "writes missed\twrites/s\tready ms\tcaught up ms\tfrom snapshot")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f\t%v\n", r.Writes, r.WritesPerS, r.ReadyMS, r.CatchUpMS, r.Snapshot)
	}
	return tw.Flush()
}

// catchUpOnce stops a follower, writes n records through the leader, restarts the
// follower and times it.
func catchUpOnce(ctx context.Context, sup *localcluster.Supervisor, conns *daemon.Conns, round, n int, timeout time.Duration) (CatchUpRow, error) {
	row := CatchUpRow{Writes: n}
	leader, follower, err := groupRoles(ctx, sup, conns)
	if err != nil {
		return row, err
	}
	if err := sup.StopNode(ctx, follower.ID); err != nil {
		return row, fmt.Errorf("stop %s: %w", follower.ID, err)
	}
	cc, err := conns.Get(leader.GRPCAddr)
	if err != nil {
		return row, fmt.Errorf("connect to the leader: %w", err)
	}
	ix := cellarv1.NewIndexClient(cc)
	bucket := fmt.Sprintf("catchup-%d", round)
	if _, err := ix.CreateBucket(ctx, &cellarv1.CreateBucketRequest{Name: bucket}); err != nil {
		return row, fmt.Errorf("create bucket: %w", err)
	}
	start := time.Now()
	if err := writeMany(ctx, ix, bucket, n); err != nil {
		return row, err
	}
	row.WritesPerS = float64(n) / time.Since(start).Seconds()
	target, err := groupStatus(ctx, conns, leader.GRPCAddr)
	if err != nil {
		return row, fmt.Errorf("the leader's commit index: %w", err)
	}

	restart := time.Now()
	if err := sup.StartNode(ctx, follower.ID); err != nil {
		return row, fmt.Errorf("start %s: %w", follower.ID, err)
	}
	row.ReadyMS = ms(time.Since(restart))
	deadline := restart.Add(timeout)
	for {
		st, err := groupStatus(ctx, conns, follower.GRPCAddr)
		if err == nil && st.AppliedIndex >= target.CommitIndex {
			break
		}
		if time.Now().After(deadline) {
			return row, fmt.Errorf("%s did not catch up within %s", follower.ID, timeout)
		}
		select {
		case <-ctx.Done():
			return row, ctx.Err()
		case <-time.After(20 * time.Millisecond): // polling another process
		}
	}
	row.CatchUpMS = ms(time.Since(restart))
	row.Snapshot = snapshotInstalled(follower.LogFile)
	return row, nil
}

// groupRoles finds the group's leader and one follower, waiting up to 30 seconds
// for the group to have a leader.
func groupRoles(ctx context.Context, sup *localcluster.Supervisor, conns *daemon.Conns) (leader, follower localcluster.Node, err error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		leader, follower = localcluster.Node{}, localcluster.Node{}
		for _, n := range sup.Nodes() {
			if n.Role != cell.RoleIndex {
				continue
			}
			st, err := groupStatus(ctx, conns, n.GRPCAddr)
			if err != nil {
				continue
			}
			if st.RaftState == "leader" {
				leader = n
			} else {
				follower = n
			}
		}
		if leader.ID != "" && follower.ID != "" {
			return leader, follower, nil
		}
		select {
		case <-ctx.Done():
			return leader, follower, ctx.Err()
		case <-time.After(100 * time.Millisecond): // polling other processes
		}
	}
	return leader, follower, fmt.Errorf("the index group has no leader")
}

func groupStatus(ctx context.Context, conns *daemon.Conns, addr string) (*cellarv1.GroupStatusResponse, error) {
	cc, err := conns.Get(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return cellarv1.NewNodeAdminClient(cc).GroupStatus(ctx, &cellarv1.GroupStatusRequest{})
}

// writeMany commits n synthetic objects through the leader, 16 at a time.
func writeMany(ctx context.Context, ix cellarv1.IndexClient, bucket string, n int) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range 16 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				loc := &cellarv1.Location{
					Bucket: bucket, Key: fmt.Sprintf("obj/%09d", i), ObjectId: fmt.Appendf(nil, "%016d", i),
					Size: 1, Replicas: []string{"cell-0-storage-0"}, ModifiedUnixNano: time.Now().UnixNano(),
				}
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := ix.Commit(cctx, &cellarv1.CommitRequest{Location: loc, RequireBucket: true})
				cancel()
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("write %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// snapshotInstalled tells from a node's log whether it caught up from a snapshot.
func snapshotInstalled(logFile string) bool {
	b, err := os.ReadFile(logFile)
	return err == nil && strings.Contains(string(b), "restored from a snapshot")
}
