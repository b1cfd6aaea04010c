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

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/frontrouter"
)

// PoisonStep arms the poison pill and has one tenant send it, as a client whose SDK
// retries would: every gateway that handles the request crashes, and the router,
// which parses nothing but the access key, passes it on to the next gateway of the
// tenant's shard. For Hold every tenant probes the cluster; then the pill is disarmed
// and the crashed gateways started again.
//
//   - poison: {tenant: tenant-000, hold: 5s}
//
// The measurement (PoisonReport) is the share of tenants fully down (every probe
// failed), partly affected and untouched, beside the formula for the cluster's
// sharding; the gateways crashed; and the time from disarming to every tenant served.
type PoisonStep struct {
	// Kind is the pill: "gateway" (the default) or "index" (see poisonIndex).
	Kind string `yaml:"kind" json:"kind,omitempty"`
	// Cell is the cell whose index the index pill is sent to (default: the
	// scenario's target).
	Cell string `yaml:"cell" json:"cell,omitempty"`
	// Tenant sends the pill (default: the first tenant).
	Tenant string `yaml:"tenant" json:"tenant,omitempty"`
	// Attempts is how often the tenant's client sends it (default 3, as AWS SDKs do).
	Attempts int `yaml:"attempts" json:"attempts,omitempty"`
	// Hold is how long the tenants are probed with the gateways crashed (default 5s).
	Hold Duration `yaml:"hold" json:"hold,omitempty"`
	// Bucket the pill's object key is asked of (default "poison").
	Bucket string `yaml:"bucket" json:"bucket,omitempty"`
}

// Poisons reports whether the scenario has a poison step: its cluster needs tenants,
// a front router and faults on.
func (s *Scenario) Poisons() bool {
	return slices.ContainsFunc(s.Steps, func(st Step) bool { return st.Poison != nil })
}

// Poisoner is a cluster whose faults the drill tooling can arm: the supervisor's
// control endpoint, which allows it only on a cluster started with faults on, audits
// it and honours the kill switch.
type Poisoner interface {
	Poison(ctx context.Context, key string, disarm bool, reason string) error
	// Gateways lists the ids of the gateways whose processes run and of those that do not.
	Gateways(ctx context.Context) (up, down []string, err error)
}

// PoisonReport is what a poison step measured.
type PoisonReport struct {
	Sharding  string   `json:"sharding"`
	Gateways  int      `json:"gateways"`
	ShardSize int      `json:"shard_size"`
	Tenants   int      `json:"tenants"`
	Sender    string   `json:"sender"`
	Shard     []string `json:"sender_shard"`
	Crashed   []string `json:"gateways_crashed"`
	// Measured shares of tenants over the hold: every probe failed, some failed, none.
	FullyDown      float64  `json:"fully_down"`
	PartlyAffected float64  `json:"partly_affected"`
	Untouched      float64  `json:"untouched"`
	DownTenants    []string `json:"down_tenants,omitempty"`
	// Formula is the expected share fully down; Computed the share the assignment
	// itself gives for this sender's shard.
	Formula     float64 `json:"formula"`
	FormulaText string  `json:"formula_text"`
	Computed    float64 `json:"computed"`
	// RecoverMS is from disarming the pill to every tenant served again.
	RecoverMS int64 `json:"recover_ms"`
	Probes    int64 `json:"probes"`
}

func (r *runner) poison(ctx context.Context, p *PoisonStep) error {
	switch p.Kind {
	case "", PillGateway:
	case PillIndex:
		return r.poisonIndex(ctx, p)
	default:
		return fmt.Errorf("no pill kind %q (kinds: %s, %s)", p.Kind, PillGateway, PillIndex)
	}
	pz, ok := r.env.Cluster.(Poisoner)
	if !ok {
		return errors.New("this cluster cannot arm faults: the poison pill needs a cluster run by 'cellctl up --faults'")
	}
	topo := r.env.Topology
	if len(topo.Tenants) == 0 {
		return errors.New("the poison pill needs tenants: start the cluster with 'cellctl up --tenants N --faults'")
	}
	sender := 0
	if p.Tenant != "" {
		sender = slices.IndexFunc(topo.Tenants, func(t cell.Tenant) bool { return t.Name == p.Tenant })
		if sender < 0 {
			return fmt.Errorf("no tenant %q in this cluster", p.Tenant)
		}
	}
	attempts, hold, bucket := p.Attempts, time.Duration(p.Hold), p.Bucket
	if attempts <= 0 {
		attempts = 3
	}
	if hold <= 0 {
		hold = 5 * time.Second
	}
	if bucket == "" {
		bucket = "poison"
	}
	mode, k := topo.ShardingMode(), topo.TenantShardSize()
	shards, err := frontrouter.Shards(mode, len(topo.Tenants), topo.Gateways, k)
	if err != nil {
		return err
	}
	rep := &PoisonReport{Sharding: mode, Gateways: topo.Gateways, ShardSize: k, Tenants: len(topo.Tenants), Sender: topo.Tenants[sender].Name}
	for _, g := range shards[sender] {
		rep.Shard = append(rep.Shard, cell.NodeID("", cell.RoleGateway, g))
	}
	b := frontrouter.Blast(mode, shards, topo.Gateways, k)
	rep.Formula, rep.FormulaText = b.Formula, b.FormulaText
	same := 0
	for _, s := range shards {
		if slices.Equal(s, shards[sender]) || mode == cell.ShardingAll {
			same++
		}
	}
	rep.Computed = float64(same) / float64(len(shards))

	var kb [6]byte
	rand.Read(kb[:])
	key := "poison-pill-" + hex.EncodeToString(kb[:])
	reason := "drill " + r.sc.Name + ": poison pill"
	if err := pz.Poison(ctx, key, false, reason); err != nil {
		return fmt.Errorf("arm the poison pill: %w", err)
	}
	disarmed := false
	disarm := func() error {
		if disarmed {
			return nil
		}
		disarmed = true
		return pz.Poison(context.WithoutCancel(ctx), "", true, reason)
	}
	defer disarm()
	// The gateways look at the faults file every 100ms.
	if err := sleep(ctx, 500*time.Millisecond); err != nil {
		return err
	}
	r.event("POISON", "", fmt.Sprintf("poison pill armed (object key %s); %s sends it, %d attempts, shard %s",
		key, rep.Sender, attempts, strings.Join(rep.Shard, ",")))

	clients := make([]*s3.Client, len(topo.Tenants))
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: time.Second}).DialContext, MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	for i, t := range topo.Tenants {
		clients[i] = s3.New(s3.Options{
			BaseEndpoint: aws.String(r.env.Load.Endpoint), UsePathStyle: true, Region: r.env.Load.Region,
			Credentials: credentials.NewStaticCredentialsProvider(t.AccessKey, t.SecretKey, ""),
			HTTPClient:  &http.Client{Transport: tr, Timeout: 3 * time.Second}, RetryMaxAttempts: 1,
		})
	}
	// The sender's client retries, as an SDK's would.
	for a := range attempts {
		_, err := clients[sender].GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		r.event("POISON", "", fmt.Sprintf("%s sent the pill (attempt %d of %d): %s", rep.Sender, a+1, attempts, outcomeOf(err)))
		if err := sleep(ctx, time.Duration(100<<a)*time.Millisecond); err != nil {
			return err
		}
	}
	// Probe every tenant for the hold: a tenant is down when no gateway of its shard
	// answers (any answer from a gateway, even an S3 error, is service).
	fails := make([]int, len(topo.Tenants))
	sent := make([]int, len(topo.Tenants))
	probe := func(i int) bool {
		_, err := clients[i].HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
		return served(err)
	}
	end := time.Now().Add(hold)
	for time.Now().Before(end) && ctx.Err() == nil {
		var wg sync.WaitGroup
		var mu sync.Mutex
		sem := make(chan struct{}, 16)
		for i := range topo.Tenants {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ok := probe(i)
				mu.Lock()
				sent[i]++
				if !ok {
					fails[i]++
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		rep.Probes += int64(len(topo.Tenants))
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	var down, partly int
	for i, t := range topo.Tenants {
		switch {
		case sent[i] > 0 && fails[i] == sent[i]:
			down++
			rep.DownTenants = append(rep.DownTenants, t.Name)
		case fails[i] > 0:
			partly++
		}
	}
	n := float64(len(topo.Tenants))
	rep.FullyDown, rep.PartlyAffected = float64(down)/n, float64(partly)/n
	rep.Untouched = 1 - rep.FullyDown - rep.PartlyAffected
	_, crashed, err := pz.Gateways(ctx)
	if err != nil {
		return err
	}
	rep.Crashed = crashed
	r.event("BLAST", "", fmt.Sprintf("%d of %d gateways crashed (%s); tenants fully down %.1f%% (formula %s = %.1f%%, this shard %.1f%%), partly affected %.1f%%, untouched %.1f%%",
		len(crashed), topo.Gateways, strings.Join(crashed, ","), 100*rep.FullyDown, rep.FormulaText, 100*rep.Formula, 100*rep.Computed,
		100*rep.PartlyAffected, 100*rep.Untouched))

	// Recover: disarm, start the crashed gateways, wait for every tenant to be served.
	if err := disarm(); err != nil {
		return fmt.Errorf("disarm the poison pill: %w", err)
	}
	t0 := time.Now()
	for _, id := range crashed {
		if err := r.env.Cluster.StartNode(ctx, id); err != nil {
			return fmt.Errorf("start %s again: %w", id, err)
		}
	}
	for i := range topo.Tenants {
		for !probe(i) {
			if time.Since(t0) > r.env.HealthTimeout {
				return fmt.Errorf("tenant %s not served %s after the gateways were started again", topo.Tenants[i].Name, r.env.HealthTimeout)
			}
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
	}
	rep.RecoverMS = time.Since(t0).Milliseconds()
	r.event("RESTORED", "", fmt.Sprintf("pill disarmed, %d gateway%s started again, every tenant served in %s",
		len(crashed), plural(len(crashed)), time.Duration(rep.RecoverMS)*time.Millisecond))
	r.mu.Lock()
	r.rep.Poison = append(r.rep.Poison, *rep)
	r.mu.Unlock()
	return nil
}

// served reports whether a request got an answer from a gateway: success, or an S3
// error other than the router's ServiceUnavailable.
func served(err error) bool {
	if err == nil {
		return true
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode() < 500
	}
	return false
}

func outcomeOf(err error) string {
	if err == nil {
		return "answered"
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return fmt.Sprintf("HTTP %d", re.HTTPStatusCode())
	}
	return "no answer"
}
