package composecluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/linearkv"
	"github.com/cellarsim/cellar/router"
)

// The partition-tolerance test: on the cluster of deploy/docker-compose.yml in Docker,
// clients write, overwrite, delete and read a few keys of one cell through the gateway
// while a nemesis cuts that cell's index leader off its cell, splits its index group
// into a minority and a majority, pauses a node, and kills a node with SIGKILL and
// starts it again (index, storage and placement nodes alike), one fault at a time for
// a bounded time. The history is checked for linearizability with porcupine; then,
// with every fault healed, every key is read back and must hold the last acknowledged
// write (porcupine checks these reads too).
//
// It runs when a Docker engine answers and CELLAR_DOCKER_TEST=1, or CI=true and
// CELLAR_DOCKER_TEST is not 0. CELLAR_PARTITION_SEED=<seed> replays a schedule of
// faults and client choices (the seed is logged); CELLAR_IMAGE names an image built
// already (else deploy/build-images.sh builds one).
func TestPartitionTolerance(t *testing.T) {
	switch v := os.Getenv("CELLAR_DOCKER_TEST"); {
	case v == "0":
		t.Skip("CELLAR_DOCKER_TEST=0")
	case v != "1" && os.Getenv("CI") != "true":
		t.Skip("set CELLAR_DOCKER_TEST=1 (or CI=true) to run the partition-tolerance test in Docker")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skipf("no Docker engine: docker info: %v", err)
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CELLAR_PARTITION_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CELLAR_PARTITION_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with CELLAR_PARTITION_SEED=%d)", seed, seed)
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	topo, err := cell.LoadTopology("../deploy/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if topo.AccessKey, topo.SecretKey, err = cell.NewCredentials(); err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("cellarpart%d", time.Now().UnixNano()%1_000_000_000)
	image := os.Getenv("CELLAR_IMAGE")
	if image == "" {
		image = "cellar:" + project
		build := exec.CommandContext(ctx, "../deploy/build-images.sh")
		build.Env = append(os.Environ(), "CELLAR_IMAGE="+image)
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build-images.sh: %v\n%s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "-f", image).Run() })
	}
	env := []string{"CELLAR_IMAGE=" + image, "CELLAR_S3_PORT=0", "CELLAR_STATUS_PORT=0", "COMPOSE_HTTP_TIMEOUT=300",
		cell.EnvAccessKey + "=" + topo.AccessKey, cell.EnvSecretKey + "=" + topo.SecretKey}
	compose := func(ctx context.Context, args ...string) error {
		cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"--file", composeFile, "--project-name", project}, args...)...)
		if exec.Command("docker", "compose", "version").Run() == nil {
			cmd = exec.CommandContext(ctx, "docker", append([]string{"compose", "--file", composeFile, "--project-name", project}, args...)...)
		}
		cmd.Env = append(os.Environ(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("compose %s: %w: %s", strings.Join(args, " "), err, out.String())
		}
		return nil
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := compose(dctx, "down", "--volumes", "--remove-orphans", "--timeout", "5"); err != nil {
			t.Errorf("down: %v", err)
		}
		for _, c := range topo.CellIDs() { // the network of nodes cut off together, if one is left
			_ = exec.Command("docker", "network", "rm", project+"_"+c+"-cut").Run()
		}
	})
	if err := compose(ctx, "up", "--detach"); err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, composeFile, Options{Project: project})
	if err != nil {
		t.Fatal(err)
	}
	waitSettled(t, ctx, c, topo.CellIDs(), 4*time.Minute)
	t.Logf("%v: cluster up and settled", time.Since(begin).Round(time.Second))
	acc, err := c.Access(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cl := s3.NewFromConfig(aws.Config{Region: acc.Region,
		Credentials: credentials.NewStaticCredentialsProvider(acc.AccessKey, acc.SecretKey, ""),
		HTTPClient:  &http.Client{Timeout: 8 * time.Second}},
		func(o *s3.Options) {
			o.BaseEndpoint, o.UsePathStyle, o.RetryMaxAttempts = aws.String(acc.Endpoint), true, 1
		})

	// A bucket of the cell under test.
	victim := topo.CellIDs()[len(topo.CellIDs())-1]
	table := router.NewSlotTable(topo.Slots, topo.CellIDs())
	bucket := ""
	for i := 0; bucket == ""; i++ {
		if b := fmt.Sprintf("jepsen-%d", i); table.Cell(b) == victim {
			bucket = b
		}
	}
	until(t, ctx, time.Minute, "create bucket "+bucket, func() error {
		_, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
		var ae interface{ ErrorCode() string }
		if errors.As(err, &ae) && ae.ErrorCode() == "BucketAlreadyOwnedByYou" {
			return nil
		}
		return err
	})

	// Clients and the nemesis, for a bounded time.
	h := linearkv.NewHistory()
	// Many keys, so that each key's history (porcupine checks them apart) holds few
	// writes of unknown outcome: each of those may have taken effect at any moment
	// after it was sent, and a few dozen on one key make the search too long.
	var keys []string
	for i := range 32 {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	const clients = 3
	clientCtx, stopClients := context.WithTimeout(ctx, 110*time.Second)
	defer stopClients()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runClient(clientCtx, cl, bucket, keys, i, rand.New(rand.NewPCG(seed, uint64(i+1))), h)
		}()
	}
	faults := nemesis(t, ctx, c, victim, rand.New(rand.NewPCG(seed, 0)), 75*time.Second)
	t.Logf("%v: faults done: %s", time.Since(begin).Round(time.Second), strings.Join(faults, "; "))
	heal(t, ctx, c, victim)
	waitSettled(t, ctx, c, []string{victim}, 2*time.Minute)
	stopClients()
	wg.Wait()

	// Every key read back, in the history, after every other operation returned.
	final := map[string]string{}
	for _, k := range keys {
		until(t, ctx, time.Minute, "final read of "+k, func() error {
			call := h.Now()
			v, err := get(ctx, cl, bucket, k)
			if err != nil {
				return err
			}
			h.Add(clients, linearkv.Input{Op: linearkv.Get, Key: k}, linearkv.Output{Value: v}, call, h.Now())
			final[k] = v
			return nil
		})
	}
	ops := h.Ops()
	st := linearkv.Count(ops)
	const checkTimeout = 2 * time.Minute
	res := linearkv.Check(ops, checkTimeout)
	t.Logf("%v: %d faults injected; %s; porcupine: %v", time.Since(begin).Round(time.Second), len(faults), st, res)
	switch res {
	case porcupine.Illegal:
		t.Fatalf("seed %d: the history is not linearizable (%s); final values %v", seed,
			linearkv.Save(t.TempDir(), fmt.Sprintf("partition-%d", seed), ops, checkTimeout), final)
	case porcupine.Unknown:
		t.Fatalf("seed %d: porcupine gave no answer in %v", seed, checkTimeout)
	}
	if st.Acked == 0 || st.Reads == 0 {
		t.Fatalf("seed %d: too little got through to check anything: %s", seed, st)
	}
}

// nemesis injects one fault at a time into cell c until d has passed: each is held a
// few seconds, healed, and followed by a pause for the cell to recover.
func nemesis(t *testing.T, ctx context.Context, c *Cluster, cellID string, rnd *rand.Rand, d time.Duration) []string {
	var done []string
	end := time.Now().Add(d)
	nodesOf := func(role cell.Role) []string {
		var out []string
		for _, n := range c.Topology().Nodes() {
			if n.Cell == cellID && n.Role == role {
				out = append(out, n.ID)
			}
		}
		return out
	}
	index := nodesOf(cell.RoleIndex)
	any := append(append(append([]string{}, index...), nodesOf(cell.RoleStorage)...), nodesOf(cell.RolePlacement)...)
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		var what string
		var err error
		hold := time.Duration(3+rnd.IntN(4)) * time.Second
		switch kind := rnd.IntN(4); kind {
		case 0: // the leader cut off its cell
			leader := leaderOf(ctx, c, cellID)
			if leader == "" {
				leader = index[rnd.IntN(len(index))]
			}
			what = "isolate leader " + leader
			if err = c.Partition(ctx, []string{leader}); err == nil {
				sleep(ctx, hold)
				err = c.Heal(ctx, nil)
			}
		case 1: // a minority and a majority
			perm := rnd.Perm(len(index))
			side := []string{index[perm[0]], index[perm[1]]}
			what = "split " + strings.Join(side, ",") + " from the rest"
			if err = c.Partition(ctx, side); err == nil {
				sleep(ctx, hold)
				err = c.Heal(ctx, nil)
			}
		case 2:
			n := any[rnd.IntN(len(any))]
			what = "pause " + n
			if err = c.PauseNode(ctx, n); err == nil {
				sleep(ctx, hold)
				err = c.UnpauseNode(ctx, n)
			}
		case 3:
			n := any[rnd.IntN(len(any))]
			what = "kill -9 " + n
			if err = c.KillNode(ctx, n); err == nil {
				sleep(ctx, hold)
				sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
				err = c.StartNode(sctx, n)
				cancel()
			}
		}
		if err != nil {
			t.Errorf("fault %d (%s): %v", i, what, err)
			return done
		}
		done = append(done, fmt.Sprintf("%s for %s", what, hold))
		sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
		_ = cell.WaitSettled(sctx, c, cellID)
		cancel()
	}
	return done
}

// heal undoes every fault the nemesis may have left: cut nodes joined, paused ones
// thawed, stopped ones started.
func heal(t *testing.T, ctx context.Context, c *Cluster, cellID string) {
	if err := c.Heal(ctx, nil); err != nil {
		t.Errorf("heal: %v", err)
	}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Cell == cellID && !n.Running {
			_ = c.UnpauseNode(ctx, n.ID)
			sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			if err := c.StartNode(sctx, n.ID); err != nil {
				t.Logf("start %s: %v", n.ID, err)
			}
			cancel()
		}
	}
}

func leaderOf(ctx context.Context, c *Cluster, cellID string) string {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return ""
	}
	return cell.JudgeCell(c.Topology(), cellID, nodes).Index.Leader
}

func waitSettled(t *testing.T, ctx context.Context, c *Cluster, cells []string, within time.Duration) {
	t.Helper()
	for _, id := range cells {
		wctx, cancel := context.WithTimeout(ctx, within)
		err := cell.WaitSettled(wctx, c, id)
		cancel()
		if err != nil {
			t.Fatalf("%s not settled within %v: %v", id, within, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// until retries f until it succeeds, failing the test after within.
func until(t *testing.T, ctx context.Context, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

// runClient writes, overwrites, deletes and reads keys until ctx ends, recording
// every operation whose outcome it knows, and every write whose outcome it does not
// (a timeout, a 5xx) as one that may take effect at any time after its call.
func runClient(ctx context.Context, cl *s3.Client, bucket string, keys []string, id int, rnd *rand.Rand, h *linearkv.History) {
	for n := 0; ctx.Err() == nil && n < 600; n++ {
		k := keys[rnd.IntN(len(keys))]
		octx, cancel := context.WithTimeout(ctx, 6*time.Second)
		call := h.Now()
		switch r := rnd.IntN(10); {
		case r < 5:
			v, err := get(octx, cl, bucket, k)
			if err == nil {
				h.Add(id, linearkv.Input{Op: linearkv.Get, Key: k}, linearkv.Output{Value: v}, call, h.Now())
			}
		case r < 9:
			v := fmt.Sprintf("c%d-%d", id, n)
			_, err := cl.PutObject(octx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(v)})
			record(h, id, linearkv.Input{Op: linearkv.Put, Key: k, Value: v}, err, call)
		default:
			_, err := cl.DeleteObject(octx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
			record(h, id, linearkv.Input{Op: linearkv.Delete, Key: k}, err, call)
		}
		cancel()
		sleep(ctx, 100*time.Millisecond) // a bounded history: porcupine's search grows fast with it

	}
}

// get reads a key: its body, or "" when there is no such key.
func get(ctx context.Context, cl *s3.Client, bucket, key string) (string, error) {
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

// record records a write: acknowledged (2xx), refused for sure (4xx: not applied, not
// recorded), or of unknown outcome (anything else), which may apply at any later time.
func record(h *linearkv.History, client int, in linearkv.Input, err error, call int64) {
	var re *awshttp.ResponseError
	switch {
	case err == nil:
		h.Add(client, in, linearkv.Output{}, call, h.Now())
	case errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500:
	default:
		h.AddUnknown(client, in, call)
	}
}
