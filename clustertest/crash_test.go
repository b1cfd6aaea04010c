package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/repair"
	"github.com/cellarsim/cellar/internal/linearkv"
	"github.com/cellarsim/cellar/internal/testwait"
)

// The crash test crashes every tier of a cell under a small client load, at random,
// and checks what the clients saw and what is left:
//
//   - the history of PUTs, DELETEs and GETs is linearizable (internal/linearkv); a
//     request that failed may or may not have taken effect, a GET that failed says
//     nothing, and a GET that succeeded returned exactly the bytes of one PUT;
//   - once every node is back and the repair loop has made its passes, every object
//     is read whole from each of its two storage nodes alone;
//   - after garbage collection no storage node holds a blob that no index record names.
//
// The faults: stop and restart of the index leader and of a follower, of the placement
// node, of either storage node and of the gateway, and one storage node wiped (its
// data directory deleted while it is down). In one process a stop is the nearest thing
// to kill -9. The seed is logged; CELLAR_CRASH_SEED=<seed> replays the same choices
// (the timing still varies with the machine).
//
// TestCrashesKeepEveryAcknowledgedObject runs a few faults and is part of every test
// run; TestCrashesKeepEveryAcknowledgedObjectLong runs a dozen, with more load, on
// purpose (CELLAR_CRASH_TEST=1).

// crashRun is the size of one crash test.
type crashRun struct {
	clients, keys int
	ops           int           // bound on the operations the clients issue
	faults        int           // bound on the faults, the wipe included
	chaos         time.Duration // no fault starts after this
}

func TestCrashesKeepEveryAcknowledgedObject(t *testing.T) {
	if testing.Short() {
		t.Skip("a crash test of a whole cell")
	}
	runCrashes(t, crashRun{clients: 3, keys: 48, ops: 400, faults: 4, chaos: 20 * time.Second})
}

func TestCrashesKeepEveryAcknowledgedObjectLong(t *testing.T) {
	if testing.Short() {
		t.Skip("a crash test of a whole cell")
	}
	if os.Getenv("CELLAR_CRASH_TEST") != "1" {
		t.Skip("the long crash test (12 faults in a row; about 35 s under -race on 2 idle cores, minutes on a busy machine) runs with CELLAR_CRASH_TEST=1; its short form, TestCrashesKeepEveryAcknowledgedObject, runs always")
	}
	runCrashes(t, crashRun{clients: 4, keys: 96, ops: 1500, faults: 12, chaos: 60 * time.Second})
}

// crashCheckTimeout bounds porcupine's search; running out of it fails the test.
const crashCheckTimeout = 60 * time.Second

func runCrashes(t *testing.T, run crashRun) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("CELLAR_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("CELLAR_CRASH_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (replay with CELLAR_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	began := time.Now()

	topo := topology(1)
	topo.IndexNodes = 3
	cl := Start(t, topo, fastRepair)
	cellID := cell.ID(0)
	s0, s1 := cell.NodeID(cellID, cell.RoleStorage, 0), cell.NodeID(cellID, cell.RoleStorage, 1)
	waitStorage(t, cl, cellID, map[string]cell.State{s0: cell.StateReady, s1: cell.StateReady})
	c := cl.S3()
	mustCreateBucket(t, c, "crash")
	t.Logf("cluster up in %v", time.Since(began).Round(time.Millisecond))

	keys := make([]string, run.keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	h := linearkv.NewHistory()
	var stop atomic.Bool
	ctx := context.Background()
	var wg sync.WaitGroup
	var issued, failedReads atomic.Int64
	for id := range run.clients {
		crng := rand.New(rand.NewPCG(uint64(seed), uint64(id+1)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load() && issued.Add(1) <= int64(run.ops); n++ {
				key := keys[crng.IntN(len(keys))]
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				call := h.Now()
				switch p := crng.IntN(10); {
				case p < 4:
					in := linearkv.Input{Op: linearkv.Put, Key: key, Value: fmt.Sprintf("c%d-%d", id, n)}
					crashWrite(h, id, in, put(rctx, c, "crash", key, crashBody(in.Value)), call)
				case p < 5:
					_, err := c.DeleteObject(rctx, &s3.DeleteObjectInput{Bucket: aws.String("crash"), Key: aws.String(key)})
					crashWrite(h, id, linearkv.Input{Op: linearkv.Delete, Key: key}, err, call)
				default:
					got, err := get(rctx, c, "crash", key)
					ret := h.Now()
					in := linearkv.Input{Op: linearkv.Get, Key: key}
					switch status, _ := code(err); {
					case err == nil:
						v, ok := crashValue(got)
						if !ok {
							t.Errorf("seed %d: GET %s returned %d bytes that no PUT wrote", seed, key, len(got))
						}
						h.Add(id, in, linearkv.Output{Value: v}, call, ret)
					case status == 404:
						h.Add(id, in, linearkv.Output{}, call, ret)
					default:
						failedReads.Add(1) // says nothing
					}
				}
				cancel()
				hold(time.Duration(crng.IntN(40)) * time.Millisecond) // so that the bounded load spans the faults
			}
		}()
	}

	// The faults, one at a time, each node back before the next.
	leaderOf := func() string {
		view, err := cl.GatewayView()
		if err != nil {
			return ""
		}
		return cl.Leader(view, cellID)
	}
	wiped := false
	var faults []string
	chaosStart := time.Now()
	for len(faults) < run.faults && time.Since(chaosStart) < run.chaos {
		var victim string
		wipe := false
		switch k := rng.IntN(6); {
		case len(faults) == run.faults-1 && !wiped: // the last fault wipes, if none did
			victim, wipe = []string{s0, s1}[rng.IntN(2)], true
		case k == 0:
			victim = leaderOf()
		case k == 1:
			leader := leaderOf()
			for i := range topo.IndexNodes {
				if id := cell.NodeID(cellID, cell.RoleIndex, (i+rng.IntN(3))%3); id != leader {
					victim = id
					break
				}
			}
		case k == 2:
			victim = cell.NodeID(cellID, cell.RolePlacement, 0)
		case k == 3:
			victim = []string{s0, s1}[rng.IntN(2)]
			wipe = !wiped && rng.IntN(2) == 0
		case k == 4:
			victim = cl.Gateway().Spec.ID
		default:
			victim = []string{s0, s1}[rng.IntN(2)]
		}
		if victim == "" {
			continue // no leader in view yet: draw again
		}
		t0 := time.Now()
		cl.StopNode(victim)
		what := "stop " + victim
		if wipe {
			if err := os.RemoveAll(cl.DataDir(victim)); err != nil {
				t.Fatal(err)
			}
			wiped, what = true, "wipe "+victim
		}
		hold(time.Duration(300+rng.IntN(1200)) * time.Millisecond) // down a while, under load
		cl.StartNode(victim)
		cl.WaitReady(victim)
		faults = append(faults, fmt.Sprintf("%s (back in %v)", what, time.Since(t0).Round(time.Millisecond)))
		hold(time.Duration(300+rng.IntN(1200)) * time.Millisecond) // the load on a whole cell, before the next
	}
	if !wiped {
		t0 := time.Now()
		cl.WipeNode(s1)
		cl.WaitReady(s1)
		faults = append(faults, fmt.Sprintf("wipe %s (back in %v)", s1, time.Since(t0).Round(time.Millisecond)))
	}
	stop.Store(true)
	wg.Wait()
	quiet := time.Now() // no write after this
	t.Logf("%d faults in %v: %s", len(faults), time.Since(chaosStart).Round(time.Millisecond), strings.Join(faults, "; "))

	// Every node up.
	cl.WaitReady(cl.order...)
	waitStorage(t, cl, cellID, map[string]cell.State{s0: cell.StateReady, s1: cell.StateReady})

	// Final reads join the history: what is there now must be what it says. A 503 (a
	// busy machine: the index answered late) is asked again; it says nothing.
	final := map[string][]byte{}
	readNow := func(key string) ([]byte, error) {
		var got []byte
		var err error
		testwait.Until(t, 60*time.Second, "GET "+key+" answers other than 503", func() bool {
			got, err = get(ctx, c, "crash", key)
			status, _ := code(err)
			return status != 503
		})
		return got, err
	}
	for _, key := range keys {
		call := h.Now()
		got, err := readNow(key)
		in := linearkv.Input{Op: linearkv.Get, Key: key}
		switch status, _ := code(err); {
		case err == nil:
			v, ok := crashValue(got)
			if !ok {
				t.Errorf("seed %d: final GET %s returned %d bytes that no PUT wrote", seed, key, len(got))
			}
			final[key] = got
			h.Add(run.clients, in, linearkv.Output{Value: v}, call, h.Now())
		case status == 404:
			h.Add(run.clients, in, linearkv.Output{}, call, h.Now())
		default:
			t.Fatalf("seed %d: final GET %s: %v", seed, key, err)
		}
	}
	ops := h.Ops()
	st := linearkv.Count(ops)
	checkStart := time.Now()
	res := linearkv.Check(ops, crashCheckTimeout)
	t.Logf("history: %s; %d failed reads left out; porcupine: %v in %v", st, failedReads.Load(), res, time.Since(checkStart).Round(time.Millisecond))
	switch res {
	case porcupine.Illegal:
		t.Fatalf("seed %d: the history is not linearizable; %s", seed, linearkv.Save(os.Getenv("CELLAR_ARTIFACTS"), fmt.Sprintf("crash-%d", seed), ops, crashCheckTimeout))
	case porcupine.Unknown:
		t.Fatalf("seed %d: porcupine gave no answer within %v; %s", seed, crashCheckTimeout, linearkv.Save(os.Getenv("CELLAR_ARTIFACTS"), fmt.Sprintf("crash-%d", seed), ops, crashCheckTimeout))
	}
	if st.Acked == 0 || st.Reads == 0 {
		t.Fatalf("seed %d: too little got through to check anything: %s", seed, st)
	}

	// The repair gives every object back its copies.
	status := func() *cellarv1.RepairStatusResponse {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := cl.Repair(cellID).Status(rctx, &cellarv1.RepairStatusRequest{})
		if err != nil {
			return &cellarv1.RepairStatusResponse{UnderReplicated: -1}
		}
		return st
	}
	// A pass judges only objects written repair.RecentMargin before it began; and a
	// node it could not list counts as neither holding nor missing a copy, so the
	// blob files are counted too (orphans may add to them, never take away).
	judged := quiet.Add(repair.RecentMargin + time.Second).UnixNano()
	testwait.Until(t, 90*time.Second, "a repair pass after the faults finds every object at its copies", func() bool {
		st := status()
		return st.LastPassUnixNano > judged && st.UnderReplicated == 0 && st.Lost == 0 &&
			len(blobFiles(t, cl, s0)) >= len(final) && len(blobFiles(t, cl, s1)) >= len(final)
	})

	// Each object whole on each storage node alone.
	for _, alone := range [][2]string{{s0, s1}, {s1, s0}} {
		cl.StopNode(alone[1])
		waitStorage(t, cl, cellID, map[string]cell.State{alone[0]: cell.StateReady, alone[1]: ""})
		for key, want := range final {
			if got, err := readNow(key); err != nil || !bytes.Equal(got, want) {
				t.Errorf("seed %d: with only %s up, GET %s: %d bytes (want %d), %v", seed, alone[0], key, len(got), len(want), err)
			}
		}
		cl.StartNode(alone[1])
		waitStorage(t, cl, cellID, map[string]cell.State{s0: cell.StateReady, s1: cell.StateReady})
	}

	// No orphan left once garbage collection has had its grace.
	testwait.Until(t, 60*time.Second, "garbage collection leaves no orphan blob", func() bool {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		resp, err := cl.Repair(cellID).CollectGarbage(rctx, &cellarv1.CollectGarbageRequest{Apply: true})
		if err != nil {
			return false
		}
		for _, n := range resp.Nodes {
			if n.Error != "" || n.EligibleBlobs+n.PendingBlobs-n.DeletedBlobs != 0 {
				return false
			}
		}
		return true
	})
	for _, id := range []string{s0, s1} {
		if n := len(blobFiles(t, cl, id)); n != len(final) {
			t.Errorf("seed %d: %s holds %d blobs for %d objects", seed, id, n, len(final))
		}
	}
	t.Logf("%d objects at the end, each whole on each storage node; total %v", len(final), time.Since(began).Round(time.Millisecond))
}

// hold lets the load run on for d: the time a node stays down, or the cell runs whole
// between two faults.
func hold(d time.Duration) {
	tm := time.NewTimer(d)
	<-tm.C
}

// crashWrite records a write: acknowledged, never sent (it reached no gateway, which
// was down: it cannot have taken effect, and it stays out of the history, where it
// would only widen porcupine's search), or of unknown outcome.
func crashWrite(h *linearkv.History, client int, in linearkv.Input, err error, call int64) {
	switch {
	case err == nil:
		h.Add(client, in, linearkv.Output{}, call, h.Now())
	case strings.Contains(err.Error(), "connection refused"):
	default:
		h.AddUnknown(client, in, call)
	}
}

// crashBody is the body a PUT of value v writes: v and a separator, repeated to a
// size of a few KiB.
func crashBody(v string) []byte { return bytes.Repeat([]byte(v+"|"), 1+len(v)*97%4000) }

// crashValue is the value a PUT of the crash test wrote, from the body a GET read; ok
// is false when the body is not exactly what that PUT wrote.
func crashValue(body []byte) (string, bool) {
	v, _, ok := bytes.Cut(body, []byte("|"))
	if !ok || !bytes.Equal(body, crashBody(string(v))) {
		return "", false
	}
	return string(v), true
}
