package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"math"
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
	"github.com/cellarsim/cellar/internal/testwait"
)

// TestCrashesKeepEveryAcknowledgedObject crashes every tier of a cell under a small
// client load, at random, and checks what the clients saw and what is left:
//
//   - the history of PUTs, DELETEs and GETs on a few keys is linearizable (porcupine);
//     a request that failed may or may not have taken effect, a GET that failed says
//     nothing;
//   - once every node is back and the repair loop has made its passes, every object
//     is read whole from each of its two storage nodes alone;
//   - after garbage collection no storage node holds a blob that no index record names.
//
// The faults: stop and restart of the index leader and of a follower, of the placement
// node, of either storage node and of the gateway, and one storage node wiped (its
// data directory deleted while it is down). In one process a stop is the nearest thing
// to kill -9. The seed is logged; CELLAR_CRASH_SEED=<seed> replays the same choices
// (the timing still varies with the machine).
func TestCrashesKeepEveryAcknowledgedObject(t *testing.T) {
	if testing.Short() {
		t.Skip("a crash test of a whole cell")
	}
	if os.Getenv("CELLAR_CRASH_TEST") != "1" {
		// Not yet reliable on a busy 2-core machine (porcupine can run out of time on
		// histories with many writes of unknown outcome); run it on purpose.
		t.Skip("set CELLAR_CRASH_TEST=1 to run the crash test")
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("CELLAR_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("CELLAR_CRASH_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (replay with CELLAR_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	topo := topology(1)
	topo.IndexNodes = 3
	cl := Start(t, topo, fastRepair)
	cellID := cell.ID(0)
	s0, s1 := cell.NodeID(cellID, cell.RoleStorage, 0), cell.NodeID(cellID, cell.RoleStorage, 1)
	waitStorage(t, cl, cellID, map[string]cell.State{s0: cell.StateReady, s1: cell.StateReady})
	c := cl.S3()
	mustCreateBucket(t, c, "crash")

	const (
		clients  = 3
		keys     = 4
		opsLimit = 600
		chaosFor = 25 * time.Second
	)
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		start   = time.Now()
		stop    atomic.Bool
	)
	now := func() int64 { return int64(time.Since(start)) }
	record := func(op porcupine.Operation) {
		mu.Lock()
		history = append(history, op)
		mu.Unlock()
	}
	ctx := context.Background()
	bodyOf := func(v string) []byte { return bytes.Repeat([]byte(v+"|"), 1+len(v)*97%4000) }

	var wg sync.WaitGroup
	var issued atomic.Int64
	for id := range clients {
		crng := rand.New(rand.NewPCG(uint64(seed), uint64(id+1)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load() && issued.Add(1) <= opsLimit; n++ {
				key := fmt.Sprintf("k%d", crng.IntN(keys))
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				call := now()
				switch p := crng.IntN(10); {
				case p < 4:
					v := fmt.Sprintf("c%d-%d", id, n)
					err := put(rctx, c, "crash", key, bodyOf(v))
					out, ret := crashOutput{}, now()
					if neverSent(err) {
						cancel()
						continue
					}
					if err != nil {
						out.Unknown, ret = true, math.MaxInt64
					}
					record(porcupine.Operation{ClientId: id, Input: crashInput{Op: "put", Key: key, Value: v}, Call: call, Output: out, Return: ret})
				case p < 5:
					_, err := c.DeleteObject(rctx, &s3.DeleteObjectInput{Bucket: aws.String("crash"), Key: aws.String(key)})
					out, ret := crashOutput{}, now()
					if neverSent(err) {
						cancel()
						continue
					}
					if err != nil {
						out.Unknown, ret = true, math.MaxInt64
					}
					record(porcupine.Operation{ClientId: id, Input: crashInput{Op: "delete", Key: key}, Call: call, Output: out, Return: ret})
				default:
					got, err := get(rctx, c, "crash", key)
					ret := now()
					switch status, _ := code(err); {
					case err == nil:
						v, ok := valueOf(got)
						if !ok {
							t.Errorf("GET %s returned %d bytes that no PUT wrote", key, len(got))
						}
						record(porcupine.Operation{ClientId: id, Input: crashInput{Op: "get", Key: key}, Call: call, Output: crashOutput{Value: v}, Return: ret})
					case status == 404:
						record(porcupine.Operation{ClientId: id, Input: crashInput{Op: "get", Key: key}, Call: call, Output: crashOutput{}, Return: ret})
					}
				}
				cancel()
			}
		}()
	}

	// The faults, one at a time, each node restarted before the next.
	leaderOf := func() string {
		view, err := cl.GatewayView()
		if err != nil {
			return ""
		}
		return cl.Leader(view, cellID)
	}
	wiped := false
	var faults []string
	for time.Since(start) < chaosFor {
		var victim string
		wipe := false
		switch k := rng.IntN(6); k {
		case 0:
			victim = leaderOf()
		case 1:
			leader := leaderOf()
			for i := range topo.IndexNodes {
				if id := cell.NodeID(cellID, cell.RoleIndex, (i+rng.IntN(3))%3); id != leader {
					victim = id
					break
				}
			}
		case 2:
			victim = cell.NodeID(cellID, cell.RolePlacement, 0)
		case 3:
			victim = []string{s0, s1}[rng.IntN(2)]
			wipe = !wiped && rng.IntN(2) == 0
		case 4:
			victim = cl.Gateway().Spec.ID
		default:
			victim = []string{s0, s1}[rng.IntN(2)]
		}
		if victim == "" {
			continue
		}
		cl.StopNode(victim)
		if wipe {
			if err := os.RemoveAll(cl.DataDir(victim)); err != nil {
				t.Fatal(err)
			}
			wiped = true
			faults = append(faults, "wipe "+victim)
		} else {
			faults = append(faults, "stop "+victim)
		}
		down := time.Duration(300+rng.IntN(1200)) * time.Millisecond
		t0 := time.Now()
		testwait.Until(t, down+time.Second, "the node stays down a while", func() bool { return time.Since(t0) >= down })
		cl.StartNode(victim)
		cl.WaitReady(victim)
	}
	if !wiped {
		cl.StopNode(s1)
		if err := os.RemoveAll(cl.DataDir(s1)); err != nil {
			t.Fatal(err)
		}
		cl.StartNode(s1)
		faults = append(faults, "wipe "+s1)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("faults: %v; %d operations", faults, len(history))

	// Every node up; the repair gives every object back its copies.
	cl.WaitReady(cl.order...)
	waitStorage(t, cl, cellID, map[string]cell.State{s0: cell.StateReady, s1: cell.StateReady})
	status := func() *cellarv1.RepairStatusResponse {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := cl.Repair(cellID).Status(rctx, &cellarv1.RepairStatusRequest{})
		if err != nil {
			return &cellarv1.RepairStatusResponse{UnderReplicated: -1}
		}
		return st
	}
	first := status().Passes
	testwait.Until(t, 60*time.Second, "a repair pass after the faults finds every object at its copies", func() bool {
		st := status()
		return st.Passes > first+1 && st.UnderReplicated == 0 && st.Lost == 0
	})

	// Final reads join the history: what is there now must be what it says.
	final := map[string][]byte{}
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		call := now()
		got, err := get(ctx, c, "crash", key)
		ret := now()
		switch status, _ := code(err); {
		case err == nil:
			v, _ := valueOf(got)
			final[key] = got
			history = append(history, porcupine.Operation{ClientId: clients, Input: crashInput{Op: "get", Key: key}, Call: call, Output: crashOutput{Value: v}, Return: ret})
		case status == 404:
			history = append(history, porcupine.Operation{ClientId: clients, Input: crashInput{Op: "get", Key: key}, Call: call, Output: crashOutput{}, Return: ret})
		default:
			t.Fatalf("final GET %s: %v", key, err)
		}
	}
	res := porcupine.CheckOperationsTimeout(crashModel, history, 60*time.Second)
	t.Logf("porcupine: %v over %d operations", res, len(history))
	if res != porcupine.Ok {
		t.Fatalf("seed %d: the history is not linearizable (%v)", seed, res)
	}

	// Each object whole on each storage node alone.
	for _, alone := range [][2]string{{s0, s1}, {s1, s0}} {
		cl.StopNode(alone[1])
		waitStorage(t, cl, cellID, map[string]cell.State{alone[0]: cell.StateReady, alone[1]: ""})
		for key, want := range final {
			got, err := get(ctx, c, "crash", key)
			if err != nil || !bytes.Equal(got, want) {
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
}

// neverSent reports a request that reached no gateway (it was down): it cannot have
// taken effect, and it stays out of the history, where an unknown outcome would only
// widen porcupine's search.
func neverSent(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection refused")
}

// valueOf is the value a PUT of the crash test wrote, from the body it wrote.
func valueOf(body []byte) (string, bool) {
	v, _, ok := bytes.Cut(body, []byte("|"))
	if !ok {
		return "", false
	}
	return string(v), true
}

type crashInput struct {
	Op    string // put, delete, get
	Key   string
	Value string
}

// crashOutput is what a GET read ("" for 404); Unknown marks a write that failed, whose
// effect the client cannot know (its return time is infinite).
type crashOutput struct {
	Value   string
	Unknown bool
}

// crashModel is one register per key, "" when the key does not exist.
var crashModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range history {
			k := op.Input.(crashInput).Key
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range order {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(string), input.(crashInput), output.(crashOutput)
		switch in.Op {
		case "put":
			return true, in.Value
		case "delete":
			return true, ""
		}
		return out.Value == st, st
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(crashInput), output.(crashOutput)
		switch in.Op {
		case "put":
			return fmt.Sprintf("put(%s, %s) unknown=%v", in.Key, in.Value, out.Unknown)
		case "delete":
			return fmt.Sprintf("delete(%s) unknown=%v", in.Key, out.Unknown)
		}
		return fmt.Sprintf("get(%s) → %q", in.Key, out.Value)
	},
}
