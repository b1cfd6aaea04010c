package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/router"
)

// The cluster of docker-compose.yml on a real Docker engine: images built here, every
// node in its own container on a private network. It runs when a Docker engine answers
// and CELLAR_DOCKER_TEST=1, or CI=true and CELLAR_DOCKER_TEST is not 0; otherwise it is
// skipped (it takes a few minutes).
//
// It puts and gets objects in every cell through the gateway with aws-sdk-go-v2; kills
// enough index containers of one cell to take its index down, and checks that the cell
// answers 503 while the others serve everything; cuts one storage node off the network
// and checks that its cell's objects are still read, from the other copy; brings
// everything back and reads all the data; and tears down, checking that no container,
// network or volume is left.
func TestComposeCluster(t *testing.T) {
	switch v := os.Getenv("CELLAR_DOCKER_TEST"); {
	case v == "0":
		t.Skip("CELLAR_DOCKER_TEST=0")
	case v != "1" && os.Getenv("CI") != "true":
		t.Skip("set CELLAR_DOCKER_TEST=1 (or CI=true) to run the cluster in Docker")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skipf("no Docker engine: docker info: %v", err)
	}
	begin := time.Now()
	step := func(format string, args ...any) {
		t.Logf("%5.0fs "+format, append([]any{time.Since(begin).Seconds()}, args...)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()

	topo, err := cell.LoadTopology("topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The cluster's credentials: new ones, given to compose in its environment.
	if topo.AccessKey, topo.SecretKey, err = cell.NewCredentials(); err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("cellartest%d", time.Now().UnixNano()%1_000_000_000)
	image := "cellar:" + project
	dc := &dockerCompose{t: t, project: project, cmd: composeCommand(),
		env: []string{"CELLAR_IMAGE=" + image, "CELLAR_S3_PORT=0", "CELLAR_STATUS_PORT=0",
			cell.EnvAccessKey + "=" + topo.AccessKey, cell.EnvSecretKey + "=" + topo.SecretKey}}
	t.Logf("compose command %q, project %s", dc.cmd, project)

	// Build the image.
	build := exec.CommandContext(ctx, "./build-images.sh")
	build.Env = append(os.Environ(), "CELLAR_IMAGE="+image)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build-images.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "-f", image).Run() })
	step("image %s built in %v", image, time.Since(begin).Round(time.Second))

	// Bring the cluster up; tear it down and check nothing is left, whatever happens.
	t.Cleanup(func() {
		if t.Failed() {
			dc.logs()
		}
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, err := dc.run(dctx, "down", "--volumes", "--remove-orphans", "--timeout", "5"); err != nil {
			// Checked below by what is left: a busy engine can refuse to remove a
			// network for an endpoint it has not released yet, and down then stops
			// before the volumes.
			t.Logf("down: %v", err)
		}
		left := func(kind string) []string {
			args := []string{kind, "ls", "--quiet", "--filter", "label=com.docker.compose.project=" + project}
			if kind == "container" {
				args = []string{"ps", "--all", "--quiet", "--filter", "label=com.docker.compose.project=" + project}
			}
			out, err := exec.CommandContext(dctx, "docker", args...).Output()
			if err != nil {
				t.Errorf("after down: docker %v: %v", args, err)
			}
			return strings.Fields(string(out))
		}
		if ids := left("container"); len(ids) > 0 {
			t.Errorf("after down: containers of project %s left: %v", project, ids)
		}
		for _, kind := range []string{"network", "volume"} {
			for _, id := range left(kind) {
				out, err := exec.CommandContext(dctx, "docker", kind, "rm", id).CombinedOutput()
				if err == nil {
					continue
				}
				if kind == "network" {
					// A network no container is attached to that the engine still will
					// not remove holds an endpoint the engine leaked ("has active
					// endpoints"): the engine's fault, not the compose file's.
					attached, ierr := exec.CommandContext(dctx, "docker", "network", "inspect", "--format", "{{len .Containers}}", id).Output()
					if ierr == nil && strings.TrimSpace(string(attached)) == "0" {
						t.Logf("after down: the Docker engine will not remove network %s of project %s, which no container uses (%s); it goes with a restart of the engine", id, project, strings.TrimSpace(string(out)))
						continue
					}
				}
				t.Errorf("after down: %s %s of project %s left and cannot be removed: %s", kind, id, project, strings.TrimSpace(string(out)))
			}
		}
	})
	up := time.Now()
	dc.mustRun(ctx, "up", "--detach")
	step("up took %v", time.Since(up).Round(time.Second))
	var services []string
	for _, n := range Plan(topo) {
		services = append(services, n.ID)
	}
	dc.waitReady(ctx, len(services), 3*time.Minute)
	step("%d nodes ready %v after up", len(services), time.Since(up).Round(time.Second))

	endpoint := "http://" + strings.TrimSpace(dc.mustRun(ctx, "port", "gateway-0", fmt.Sprint(S3Port)))
	c := newClient(endpoint, topo)

	// A bucket in every cell, objects in each.
	table := router.NewSlotTable(topo.Slots, topo.CellIDs())
	buckets := map[string]string{} // cell → bucket
	for i := 0; len(buckets) < topo.Cells; i++ {
		b := fmt.Sprintf("drill-%d", i)
		if _, ok := buckets[table.Cell(b)]; !ok {
			buckets[table.Cell(b)] = b
		}
	}
	objects := map[string]string{} // bucket/key → body
	eventually(t, ctx, 60*time.Second, "create a bucket in every cell", func() error {
		for _, b := range buckets {
			if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil && !isCode(err, "BucketAlreadyOwnedByYou") {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	})
	putAll := func(round string) {
		for _, cellID := range topo.CellIDs() {
			for i := range 5 {
				b, k := buckets[cellID], fmt.Sprintf("%s/obj-%d", round, i)
				body := fmt.Sprintf("%s %s %s %d %s", cellID, b, k, i, strings.Repeat("x", i*1000))
				if err := put(ctx, c, b, k, body); err != nil {
					t.Fatalf("put %s/%s in %s: %v", b, k, cellID, err)
				}
				objects[b+"/"+k] = body
			}
		}
	}
	putAll("before")
	checkAll(t, ctx, c, objects, nil)
	step("%d objects put and read in %d cells", len(objects), topo.Cells)

	// Before any fault, the status page in its own container shows every cell serving.
	statusURL := "http://" + strings.TrimSpace(dc.mustRun(ctx, "port", StatusService, fmt.Sprint(StatusPort))) + "/api/status"
	eventually(t, ctx, 60*time.Second, "the status page shows every cell serving", func() error {
		return statusShows(ctx, statusURL, "")
	})
	step("the status page shows every cell serving")

	// Kill enough index nodes of one cell to take its index down (a majority of a
	// replicated group; the only one otherwise).
	victim := topo.CellIDs()[1]
	down := topo.IndexNodes/2 + 1
	var killed []string
	for i := range down {
		killed = append(killed, cell.NodeID(victim, cell.RoleIndex, i))
	}
	for _, s := range killed {
		dc.docker(ctx, "kill", dc.container(ctx, s))
	}
	step("killed %v", killed)
	eventually(t, ctx, 30*time.Second, victim+" answers 503", func() error {
		_, err := get(ctx, c, buckets[victim], "before/obj-0")
		if status(err) != http.StatusServiceUnavailable {
			return fmt.Errorf("GET in %s: %v, want 503", victim, err)
		}
		return nil
	})
	for _, op := range []func() error{
		func() error { _, err := get(ctx, c, buckets[victim], "before/obj-1"); return err },
		func() error { return put(ctx, c, buckets[victim], "during/x", "x") },
		func() error {
			_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(buckets[victim])})
			return err
		},
	} {
		if err := op(); status(err) != http.StatusServiceUnavailable || cellOf(err) != victim {
			t.Errorf("request to %s with its index down: %v (cell %q), want 503 from %s", victim, err, cellOf(err), victim)
		}
	}
	checkAll(t, ctx, c, objects, func(bucketKey string) bool { return strings.HasPrefix(bucketKey, buckets[victim]+"/") })
	for _, cellID := range topo.CellIDs() {
		if cellID != victim {
			if err := put(ctx, c, buckets[cellID], "during/x", "x"); err != nil {
				t.Errorf("PUT in %s while %s is down: %v", cellID, victim, err)
			}
			list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(buckets[cellID]), Prefix: aws.String("before/")})
			if err != nil || len(list.Contents) != 5 {
				t.Errorf("LIST in %s while %s is down: %v", cellID, victim, err)
			}
			objects[buckets[cellID]+"/during/x"] = "x"
		}
	}

	step("%s answers 503, the other cells serve", victim)

	// The status page, in its own container, says so: the victim down, the rest serving.
	eventually(t, ctx, 60*time.Second, "the status page shows "+victim+" down", func() error {
		return statusShows(ctx, statusURL, victim)
	})
	step("the status page shows %s down and the other cells serving", victim)

	// Bring the index back.
	dc.mustRun(ctx, append([]string{"start"}, killed...)...)
	dc.waitReady(ctx, len(services), 2*time.Minute)
	eventually(t, ctx, 30*time.Second, victim+" serves again", func() error {
		_, err := get(ctx, c, buckets[victim], "before/obj-0")
		return err
	})
	checkAll(t, ctx, c, objects, nil)
	step("%s back", victim)

	// Cut one storage node off the network: its cell's objects are read from the other
	// copy.
	cutCell := topo.CellIDs()[2]
	cut := cell.NodeID(cutCell, cell.RoleStorage, 0)
	cutID := dc.container(ctx, cut)
	network := project + "_cellar"
	oldIP := strings.TrimSpace(dc.docker(ctx, "inspect", "--format", "{{(index .NetworkSettings.Networks \""+network+"\").IPAddress}}", cutID))
	dc.docker(ctx, "network", "disconnect", network, cutID)
	step("disconnected %s (%s)", cut, oldIP)
	inCut := func(bucketKey string) bool { return strings.HasPrefix(bucketKey, buckets[cutCell]+"/") }
	eventually(t, ctx, 30*time.Second, "read every object of "+cutCell+" with "+cut+" cut off", func() error {
		return readAll(ctx, c, objects, inCut)
	})
	for range 2 {
		if err := readAll(ctx, c, objects, inCut); err != nil {
			t.Errorf("with %s cut off: %v", cut, err)
		}
	}

	step("%s objects read from the other copy", cutCell)

	// Connect it again, with its service name. If the engine gave it another address,
	// restart it: its gossip is bound to the old one.
	dc.docker(ctx, "network", "connect", "--alias", cut, "--alias", FrontHost(cut), network, cutID)
	newIP := strings.TrimSpace(dc.docker(ctx, "inspect", "--format", "{{(index .NetworkSettings.Networks \""+network+"\").IPAddress}}", cutID))
	if newIP != oldIP {
		step("%s came back on %s, not %s: restarting it", cut, newIP, oldIP)
		dc.mustRun(ctx, "restart", "--timeout", "5", cut)
	}
	dc.waitReady(ctx, len(services), 2*time.Minute)
	step("%s connected again", cut)
	putAll("after")
	checkAll(t, ctx, c, objects, nil)
	step("%d objects readable after the drills", len(objects))

	// The containers' healthchecks (cellctl probe on /readyz; the status page's on
	// /api/status) agree.
	dc.waitHealthy(ctx, append(services, StatusService), 2*time.Minute)
	step("every container healthy")
}

// statusShows returns nil once the status page at url shows victim down and every
// other cell serving.
func statusShows(ctx context.Context, url, victim string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var snap struct {
		Cells []struct {
			ID, Health, Reason string
		} `json:"cells"`
		Source struct {
			Observer string `json:"observer"`
		} `json:"source"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	if len(snap.Cells) == 0 {
		return fmt.Errorf("the status page shows no cell yet")
	}
	// The view's own gossip address is what the members dial back (acks of indirect
	// probes, state pushes). Bound to 0.0.0.0 in its container, it must advertise an
	// address they can reach; advertising 0.0.0.0 made members declare it dead and
	// the view, deaf to their refutations, showed healthy index nodes lost and their
	// cell down for a push-pull interval or more.
	if host, _, err := net.SplitHostPort(snap.Source.Observer); err != nil {
		return fmt.Errorf("the status view's gossip address %q: %v", snap.Source.Observer, err)
	} else if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() || ip.IsLoopback() {
		return fmt.Errorf("the status view advertises gossip address %q, which the members cannot dial back", snap.Source.Observer)
	}
	for _, c := range snap.Cells {
		want := "serving"
		if c.ID == victim {
			want = "down"
		}
		if c.Health != want {
			return fmt.Errorf("%s is %s on the status page, want %s (%s)", c.ID, c.Health, want, c.Reason)
		}
	}
	return nil
}

// composeCommand is the compose tool: $CELLAR_COMPOSE, else the docker compose plugin
// if it is installed, else docker-compose.
func composeCommand() []string {
	if s := os.Getenv("CELLAR_COMPOSE"); s != "" {
		return strings.Fields(s)
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	return []string{"docker-compose"}
}

type dockerCompose struct {
	t       *testing.T
	project string
	cmd     []string
	env     []string
	ids     map[string]string // service → container id, once up
}

func (d *dockerCompose) run(ctx context.Context, args ...string) (string, error) {
	full := append(append(slices.Clone(d.cmd[1:]), "--file", "docker-compose.yml", "--project-name", d.project), args...)
	cmd := exec.CommandContext(ctx, d.cmd[0], full...)
	cmd.Env = append(os.Environ(), d.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", d.cmd[0], strings.Join(full, " "), err, lastLines(stderr.String(), 20))
	}
	return stdout.String(), nil
}

func (d *dockerCompose) mustRun(ctx context.Context, args ...string) string {
	d.t.Helper()
	out, err := d.run(ctx, args...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

func (d *dockerCompose) docker(ctx context.Context, args ...string) string {
	d.t.Helper()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		d.t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// container returns the id of a service's container.
func (d *dockerCompose) container(ctx context.Context, service string) string {
	d.t.Helper()
	if d.ids == nil {
		out := d.docker(ctx, "ps", "--all", "--filter", "label=com.docker.compose.project="+d.project,
			"--format", `{{.Label "com.docker.compose.service"}} {{.ID}}`)
		d.ids = map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if svc, id, ok := strings.Cut(line, " "); ok {
				d.ids[svc] = id
			}
		}
	}
	id, ok := d.ids[service]
	if !ok {
		d.t.Fatalf("no container for service %s", service)
	}
	return id
}

// waitHealthy waits for the healthcheck (/readyz) of every service to pass.
func (d *dockerCompose) waitHealthy(ctx context.Context, services []string, within time.Duration) {
	d.t.Helper()
	args := []string{"inspect", "--format", "{{.State.Status}}/{{.State.Health.Status}}"}
	for _, s := range services {
		args = append(args, d.container(ctx, s))
	}
	eventually(d.t, ctx, within, fmt.Sprintf("%d services healthy", len(services)), func() error {
		out, err := exec.CommandContext(ctx, "docker", args...).Output()
		if err != nil {
			return fmt.Errorf("docker inspect: %w", err)
		}
		var unhealthy []string
		for i, st := range strings.Fields(string(out)) {
			if st != "running/healthy" && i < len(services) {
				unhealthy = append(unhealthy, services[i]+"="+st)
			}
		}
		if len(unhealthy) > 0 {
			return fmt.Errorf("not healthy: %v", unhealthy)
		}
		return nil
	})
}

// waitReady waits until 'cellctl status', run in the gateway's container, shows want
// nodes in the gossip, all ready.
func (d *dockerCompose) waitReady(ctx context.Context, want int, within time.Duration) {
	d.t.Helper()
	gw := d.container(ctx, "gateway-0")
	eventually(d.t, ctx, within, fmt.Sprintf("%d nodes ready", want), func() error {
		out, err := exec.CommandContext(ctx, "docker", "exec", gw, "/cellctl", "status",
			"--join", fmt.Sprintf("gateway-0:%d", GossipPort), "--bind", "0.0.0.0:0",
			"--gossip-key", PKIDir+"/gossip.key").CombinedOutput()
		if err != nil {
			return fmt.Errorf("cellctl status: %w: %s", err, out)
		}
		if !strings.Contains(string(out), fmt.Sprintf("%d of %d nodes ready", want, want)) {
			return fmt.Errorf("status:\n%s", out)
		}
		return nil
	})
}

func (d *dockerCompose) logs() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := d.run(ctx, "logs", "--no-color", "--tail", "30")
	d.t.Logf("logs:\n%s", out)
}

func newClient(endpoint string, topo cell.Topology) *s3.Client {
	return s3.NewFromConfig(aws.Config{
		Region:      topo.Region,
		Credentials: credentials.NewStaticCredentialsProvider(topo.AccessKey, topo.SecretKey, ""),
		HTTPClient:  &http.Client{Timeout: 10 * time.Second},
	}, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		o.RetryMaxAttempts = 1 // the test retries where it means to
	})
}

func put(ctx context.Context, c *s3.Client, bucket, key, body string) error {
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
	return err
}

func get(ctx context.Context, c *s3.Client, bucket, key string) (string, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

// readAll reads every object (those skip says no to) and compares its body.
func readAll(ctx context.Context, c *s3.Client, objects map[string]string, only func(string) bool) error {
	for bk, want := range objects {
		if only != nil && !only(bk) {
			continue
		}
		b, k, _ := strings.Cut(bk, "/")
		got, err := get(ctx, c, b, k)
		if err != nil {
			return fmt.Errorf("get %s: %w", bk, err)
		}
		if got != want {
			return fmt.Errorf("get %s: %d bytes, not the %d put", bk, len(got), len(want))
		}
	}
	return nil
}

// checkAll reads every object except those skip names.
func checkAll(t *testing.T, ctx context.Context, c *s3.Client, objects map[string]string, skip func(string) bool) {
	t.Helper()
	if err := readAll(ctx, c, objects, func(bk string) bool { return skip == nil || !skip(bk) }); err != nil {
		t.Fatal(err)
	}
}

// eventually retries f until it succeeds, failing the test after within.
func eventually(t *testing.T, ctx context.Context, within time.Duration, what string, f func() error) {
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
		time.Sleep(500 * time.Millisecond)
	}
}

func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func cellOf(err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.Header.Get("x-cellar-cell")
	}
	return ""
}

func isCode(err error, code string) bool {
	var ae interface{ ErrorCode() string }
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
