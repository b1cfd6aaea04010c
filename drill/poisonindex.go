package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/loadgen"
)

// The kinds of pill a poison step sends.
const (
	PillGateway = "gateway"
	PillIndex   = "index"
)

// IndexPoisoner is a cluster whose index pill the drill tooling can arm: as for the
// poison pill (Poisoner), the supervisor's control endpoint allows it only on a cluster
// started with faults on, audits it and honours the kill switch.
type IndexPoisoner interface {
	PoisonIndex(ctx context.Context, bucket, key string, disarm bool, reason string) error
}

// poisonIndex runs a poison step of kind index: it arms the index pill on an object of
// a bucket of the cell, and one tenant (or the cluster's access key) writes that
// object once. The write reaches the cell's index group, whose log hands the same
// entry to every replica, and every replica that applies it crashes: replication
// inside a cell copies a deterministic bug, and only the cell boundary bounds it. The
// step waits for the cell's index nodes to end, holds for Hold (the other cells keep
// serving), disarms the pill and starts the crashed index nodes again; with the pill
// disarmed they replay the entry and serve, and the rest of the cell, which depends
// on its index, follows.
//
//   - poison: {kind: index, hold: 10s}
func (r *runner) poisonIndex(ctx context.Context, p *PoisonStep) error {
	pz, ok := r.env.Cluster.(IndexPoisoner)
	if !ok {
		return errors.New("this cluster cannot arm faults: the index pill needs a cluster run by 'cellctl up --faults'")
	}
	topo := r.env.Topology
	if topo.Partition == cell.PartitionByKey {
		return errors.New("the index pill needs buckets that live in one cell, not a cluster partitioned by object key")
	}
	target, err := r.cell(p.Cell)
	if err != nil {
		return err
	}
	access, secret, sender := r.env.Load.AccessKey, r.env.Load.SecretKey, "a client"
	if len(topo.Tenants) > 0 {
		i := 0
		if p.Tenant != "" {
			i = slices.IndexFunc(topo.Tenants, func(t cell.Tenant) bool { return t.Name == p.Tenant })
			if i < 0 {
				return fmt.Errorf("no tenant %q in this cluster", p.Tenant)
			}
		}
		access, secret, sender = topo.Tenants[i].AccessKey, topo.Tenants[i].SecretKey, "tenant "+topo.Tenants[i].Name
	} else if p.Tenant != "" {
		return fmt.Errorf("no tenant %q in this cluster: it has no tenants", p.Tenant)
	}
	hold := time.Duration(p.Hold)
	if hold <= 0 {
		hold = 5 * time.Second
	}
	bucket := p.Bucket
	if bucket == "" {
		names, home := loadgen.Buckets(topo, "index-pill", 1)
		for _, n := range names {
			if home[n] == target {
				bucket = n
			}
		}
	}
	if bucket == "" {
		return fmt.Errorf("no bucket name found that lives in %s", target)
	}
	var kb [6]byte
	rand.Read(kb[:])
	key := "index-pill-" + hex.EncodeToString(kb[:])

	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: time.Second}).DialContext}
	defer tr.CloseIdleConnections()
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(r.env.Load.Endpoint), UsePathStyle: true, Region: r.env.Load.Region,
		Credentials: credentials.NewStaticCredentialsProvider(access, secret, ""),
		HTTPClient:  &http.Client{Transport: tr, Timeout: 10 * time.Second}, RetryMaxAttempts: 1,
	})
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil && !alreadyOwned(err) {
		return fmt.Errorf("create bucket %s for the index pill: %w", bucket, err)
	}
	reason := "drill " + r.sc.Name + ": index pill"
	if err := pz.PoisonIndex(ctx, bucket, key, false, reason); err != nil {
		return fmt.Errorf("arm the index pill: %w", err)
	}
	disarmed := false
	disarm := func() error {
		if disarmed {
			return nil
		}
		disarmed = true
		return pz.PoisonIndex(context.WithoutCancel(ctx), "", "", true, reason)
	}
	defer disarm()
	// The report's section, kept whatever happens next.
	ip := &IndexPillReport{Cell: target, Bucket: bucket, Key: key, Sender: sender, ArmedAt: r.since()}
	defer func() {
		r.mu.Lock()
		r.rep.IndexPill = append(r.rep.IndexPill, *ip)
		r.mu.Unlock()
	}()
	r.event("POISON", target, fmt.Sprintf("index pill armed: a write of %s/%s crashes every index node of %s that applies it", bucket, key, target))
	_, err = client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("index pill\n")})
	ip.WriteOutcome = outcomeOf(err)
	r.event("POISON", target, fmt.Sprintf("%s wrote %s/%s: %s", sender, bucket, key, ip.WriteOutcome))

	// Wait for the cell's index group to go down: every replica applies the entry.
	var index []string
	for _, n := range topo.Nodes() {
		if n.Cell == target && n.Role == cell.RoleIndex {
			index = append(index, n.ID)
		}
	}
	ip.IndexNodes = index
	crashed := func() ([]string, error) {
		nodes, err := r.env.Cluster.Nodes(ctx)
		if err != nil {
			return nil, err
		}
		var down []string
		for _, n := range nodes {
			if slices.Contains(index, n.ID) && !n.Running {
				down = append(down, n.ID)
			}
		}
		return down, nil
	}
	// A replica crashes once it learns that the entry is committed; one that never
	// learns it (its leader crashed first, and no quorum is left to tell it) stays up,
	// alone. So wait for all of them, and for a quorum at most a little longer.
	t0 := time.Now()
	var down []string
	var quorumLost time.Time
	for {
		if down, err = crashed(); err != nil {
			return err
		}
		for _, id := range down {
			if !slices.Contains(ip.Crashed, id) {
				ip.Crashed = append(ip.Crashed, id)
			}
		}
		if len(down) >= cell.Majority(len(index)) && quorumLost.IsZero() {
			quorumLost = time.Now()
			ip.DownAt = r.since()
		}
		if len(down) == len(index) || time.Since(t0) > r.env.HealthTimeout ||
			(!quorumLost.IsZero() && time.Since(quorumLost) > 10*time.Second) {
			break
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	if len(down) < cell.Majority(len(index)) {
		return fmt.Errorf("the index pill crashed %d of the %d index nodes of %s in %s: the cell's index group kept its quorum",
			len(down), len(index), target, r.env.HealthTimeout)
	}
	what := "replicas and all"
	if len(down) < len(index) {
		what = "the rest never learned the entry was committed and has no quorum"
	}
	r.event("CRASHED", target, fmt.Sprintf("%d of %d index nodes of %s crashed applying the pill (%s): its index group is down, %s",
		len(down), len(index), target, strings.Join(down, ","), what))
	if err := sleep(ctx, hold); err != nil {
		return err
	}

	// Recover: disarm, then start the index first; the rest of the cell follows it.
	if err := disarm(); err != nil {
		return fmt.Errorf("disarm the index pill: %w", err)
	}
	t1 := time.Now()
	ip.DisarmedAt = r.since()
	if err := r.startAll(ctx, down); err != nil {
		return err
	}
	hctx, cancel := context.WithTimeout(ctx, r.env.HealthTimeout)
	defer cancel()
	if err := cell.WaitSettled(hctx, r.env.Cluster, target); err != nil {
		return fmt.Errorf("%s not settled %s after its index nodes were started again: %w", target, r.env.HealthTimeout, err)
	}
	ip.RestoredAt, ip.Restored = r.since(), true
	r.event("RESTORED", target, fmt.Sprintf("index pill disarmed, %d index node%s started again (the pill's write replayed and applied), %s settled in %s",
		len(down), plural(len(down)), target, time.Since(t1).Round(time.Millisecond)))
	return nil
}

// startAll starts the nodes ids at once: the members of a replication group come up
// together, as none is ready to serve without a quorum of the others.
func (r *runner) startAll(ctx context.Context, ids []string) error {
	errc := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.env.Cluster.StartNode(ctx, id); err != nil {
				errc[i] = fmt.Errorf("start %s again: %w", id, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errc...)
}

// alreadyOwned reports whether a CreateBucket failed only because the bucket exists.
func alreadyOwned(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "BucketAlreadyOwnedByYou" || ae.ErrorCode() == "BucketAlreadyExists")
}
