package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// HeaderCell is the response header that names the cell that served a request.
const HeaderCell = "x-cellar-cell"

// cellBox receives the x-cellar-cell header of the request whose context carries it.
type cellBox struct{ cell string }

type cellBoxKey struct{}

// cellTransport records the x-cellar-cell header of every response in the request's
// cellBox.
type cellTransport struct{ next http.RoundTripper }

func (t cellTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if resp != nil {
		if box, ok := req.Context().Value(cellBoxKey{}).(*cellBox); ok {
			box.cell = resp.Header.Get(HeaderCell)
		}
	}
	return resp, err
}

// NewClient returns an S3 client for cfg's endpoint: path-style, no retries, and a
// transport that reads x-cellar-cell; close closes its idle connections.
func NewClient(cfg Config) (client *s3.Client, close func()) {
	tr := newTransport()
	return newClientOn(cfg, tr, cfg.AccessKey, cfg.SecretKey), tr.CloseIdleConnections
}

func newTransport() *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:        MaxInFlight,
		MaxIdleConnsPerHost: MaxInFlight,
		IdleConnTimeout:     30 * time.Second,
	}
}

func newClientOn(cfg Config, tr *http.Transport, accessKey, secretKey string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(cfg.Endpoint),
		UsePathStyle: true,
		Region:       cfg.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   &http.Client{Transport: cellTransport{tr}},
	})
}

// tenantClients are one client per tenant of cfg, on one transport.
func tenantClients(cfg Config) ([]*s3.Client, func()) {
	tr := newTransport()
	out := make([]*s3.Client, len(cfg.Tenants))
	for i, t := range cfg.Tenants {
		out[i] = newClientOn(cfg, tr, t.AccessKey, t.SecretKey)
	}
	return out, tr.CloseIdleConnections
}

// request is one scheduled operation.
type request struct {
	op     string
	bucket string
	key    string
	size   int
	due    time.Duration
	tenant int // index in Config.Tenants; -1 without tenants
}

// planner picks the operations, buckets, keys and sizes of a run from its seed.
type planner struct {
	cfg    Config
	rng    *rand.Rand
	zipf   *rand.Zipf
	ops    []string
	opCum  []int
	sizeCu []int
}

func newPlanner(cfg Config) *planner {
	p := &planner{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x63656c6c6172))}
	if cfg.KeyDist == KeysZipf && cfg.Keys > 1 {
		p.zipf = rand.NewZipf(p.rng, 1.1, 1, uint64(cfg.Keys-1))
	}
	sum := 0
	for _, op := range Ops {
		if w := cfg.Mix[op]; w > 0 {
			sum += w
			p.ops = append(p.ops, op)
			p.opCum = append(p.opCum, sum)
		}
	}
	sum = 0
	for _, s := range cfg.Sizes {
		sum += s.Weight
		p.sizeCu = append(p.sizeCu, sum)
	}
	return p
}

func pick(rng *rand.Rand, cum []int) int {
	x := rng.IntN(cum[len(cum)-1])
	return sort.SearchInts(cum, x+1)
}

func (p *planner) key() int {
	if p.zipf != nil {
		return int(p.zipf.Uint64())
	}
	return p.rng.IntN(p.cfg.Keys)
}

func (p *planner) size() int { return p.cfg.Sizes[pick(p.rng, p.sizeCu)].Bytes }

func (p *planner) next(due time.Duration) request {
	r := request{op: p.ops[pick(p.rng, p.opCum)], bucket: p.cfg.Buckets[p.rng.IntN(len(p.cfg.Buckets))], due: due, tenant: -1}
	switch r.op {
	case OpGet, OpHead:
		r.key = seedKey(p.key())
	case OpPut, OpDelete:
		r.key = churnKey(p.key())
		r.size = p.size()
	}
	if len(p.cfg.Tenants) > 0 {
		r.tenant = p.rng.IntN(len(p.cfg.Tenants))
	}
	return r
}

func seedKey(i int) string  { return fmt.Sprintf("obj-%06d", i) }
func churnKey(i int) string { return fmt.Sprintf("churn-%06d", i) }

// seedTries is how often seeding tries one write before it gives up.
const seedTries = 4

// Seed creates the buckets (where missing) and writes the objects GET and HEAD read,
// eight at a time, trying each write up to four times (seeding is set-up, not
// measurement). It stops at the first write that still fails.
func Seed(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	c, closeIdle := NewClient(cfg)
	defer closeIdle()
	for _, b := range cfg.Buckets {
		var err error
		for try := range seedTries {
			if try > 0 {
				time.Sleep(time.Duration(try) * 200 * time.Millisecond)
			}
			if _, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err == nil || ctx.Err() != nil {
				break
			}
			var ae smithy.APIError
			if errors.As(err, &ae) && (ae.ErrorCode() == "BucketAlreadyOwnedByYou" || ae.ErrorCode() == "BucketAlreadyExists") {
				break
			}
		}
		var ae smithy.APIError
		if err != nil && !(errors.As(err, &ae) && (ae.ErrorCode() == "BucketAlreadyOwnedByYou" || ae.ErrorCode() == "BucketAlreadyExists")) {
			return fmt.Errorf("create bucket %s: %s", b, errorText(err))
		}
	}
	p := newPlanner(cfg)
	body := payload(cfg.Sizes.max())
	type job struct {
		bucket, key string
		size        int
	}
	jobs := make(chan job)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				var err error
				for try := range seedTries {
					if try > 0 {
						time.Sleep(time.Duration(try) * 200 * time.Millisecond)
					}
					rctx, done := context.WithTimeout(ctx, cfg.Timeout)
					_, err = c.PutObject(rctx, &s3.PutObjectInput{
						Bucket: aws.String(j.bucket), Key: aws.String(j.key), Body: bytes.NewReader(body[:j.size]),
					})
					done()
					if err == nil || ctx.Err() != nil {
						break
					}
				}
				if err != nil {
					select {
					case errc <- fmt.Errorf("seed %s/%s: %s", j.bucket, j.key, errorText(err)):
					default:
					}
					cancel()
				}
			}
		}()
	}
send:
	for _, b := range cfg.Buckets {
		for i := range cfg.Keys {
			select {
			case jobs <- job{b, seedKey(i), p.size()}:
			case <-ctx.Done():
				break send
			}
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	return ctx.Err()
}

// payload is the bytes object bodies are cut from.
func payload(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Run sends cfg.Rate requests per second for cfg.Duration and returns what they did.
// It does not seed: call Seed first. Cancelling ctx ends the run early; the result
// then covers the requests sent so far.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c, closeIdle := NewClient(cfg)
	defer closeIdle()
	tcs, closeTenants := tenantClients(cfg)
	defer closeTenants()
	rec := newRecorder()
	p := newPlanner(cfg)
	body := payload(cfg.Sizes.max())
	total := cfg.Total()
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	slots := make(chan struct{}, cfg.MaxInFlight)
	var wg sync.WaitGroup
	var sent, inFlight atomic.Int64
	var maxLag atomic.Int64

	start := time.Now()
	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	go func() {
		defer close(progressDone)
		if cfg.Progress == nil && cfg.Observe == nil {
			return
		}
		t := time.NewTicker(cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				all, cells := rec.snapshot()
				if cfg.Observe != nil {
					cfg.Observe(all, cells)
				}
				if cfg.Progress != nil {
					fmt.Fprintln(cfg.Progress, progressLine(time.Since(start), sent.Load(), int64(total), inFlight.Load(), all, cells))
				}
			}
		}
	}()

	timer := time.NewTimer(0)
	defer timer.Stop()
	scheduled := 0
loop:
	for i := 0; i < total; i++ {
		due := time.Duration(i) * interval
		if wait := time.Until(start.Add(due)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break loop
			}
		}
		r := p.next(due)
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		if lag := time.Since(start.Add(due)); lag > time.Duration(maxLag.Load()) {
			maxLag.Store(int64(lag))
		}
		scheduled++
		sent.Add(1)
		inFlight.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots; inFlight.Add(-1) }()
			// A request sent finishes (within its timeout) even when the run is cancelled:
			// ending a run early must not fail the requests already in flight.
			client := c
			if r.tenant >= 0 {
				client = tcs[r.tenant]
			}
			s := do(context.WithoutCancel(ctx), client, cfg, r, start, body)
			if r.tenant >= 0 {
				s.tenant = cfg.Tenants[r.tenant].Name
			}
			rec.add(s)
			if cfg.OnRequest != nil {
				cfg.OnRequest(Outcome{Op: s.op, Bucket: r.bucket, Cell: s.cell, Due: start.Add(s.due), Took: s.latency, Code: s.code})
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	<-progressDone

	res := &Result{Config: cfg, Started: start, Elapsed: time.Since(start), Scheduled: scheduled,
		MaxLagMS: float64(maxLag.Load()) / float64(time.Millisecond)}
	secs := int((cfg.Duration + time.Second - 1) / time.Second)
	res.Overall, res.Ops, res.Cells = rec.result(secs)
	res.Tenants = rec.tenantResult(secs)
	return res, nil
}

// do performs one request and measures it from when it was due.
func do(ctx context.Context, c *s3.Client, cfg Config, r request, start time.Time, body []byte) sample {
	box := &cellBox{}
	rctx, cancel := context.WithTimeout(context.WithValue(ctx, cellBoxKey{}, box), cfg.Timeout)
	defer cancel()
	b, k := aws.String(r.bucket), aws.String(r.key)
	var err error
	switch r.op {
	case OpGet:
		var out *s3.GetObjectOutput
		if out, err = c.GetObject(rctx, &s3.GetObjectInput{Bucket: b, Key: k}); err == nil {
			_, err = bytes.NewBuffer(nil).ReadFrom(out.Body)
			out.Body.Close()
		}
	case OpHead:
		_, err = c.HeadObject(rctx, &s3.HeadObjectInput{Bucket: b, Key: k})
	case OpPut:
		_, err = c.PutObject(rctx, &s3.PutObjectInput{Bucket: b, Key: k, Body: bytes.NewReader(body[:r.size])})
	case OpDelete:
		_, err = c.DeleteObject(rctx, &s3.DeleteObjectInput{Bucket: b, Key: k})
	case OpList:
		_, err = c.ListObjectsV2(rctx, &s3.ListObjectsV2Input{Bucket: b, MaxKeys: aws.Int32(100)})
	}
	s := sample{op: r.op, due: r.due, latency: time.Since(start.Add(r.due)), cell: box.cell}
	if s.cell == "" || s.cell == "none" {
		s.cell = CellUnknown
		if c, ok := cfg.BucketCell[r.bucket]; ok {
			s.cell = c
		}
	}
	if err != nil {
		s.code = ErrorCode(err)
	}
	return s
}

// ErrorCode names what went wrong with a request: the S3 error code when the gateway
// answered with one, "HTTP<status>" when it answered an error status without one,
// else "Timeout", "BrokenResponse" (a success status whose body was cut short or did
// not decode) or "ConnectionError". A success status never names an error: such a
// request failed after its status line, reading the body.
func ErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() != "" {
		return ae.ErrorCode()
	}
	var re interface{ HTTPStatusCode() int }
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	if status >= 300 {
		return fmt.Sprintf("HTTP%d", status)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "Timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "Timeout"
	}
	if status != 0 {
		return "BrokenResponse"
	}
	return "ConnectionError"
}

// errorText is an error's message without the SDK's request-id noise.
func errorText(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return err.Error()
}

// progressLine is one line of progress: elapsed, sent of total, in flight, errors and
// p99 overall, then errors per cell that has any.
func progressLine(elapsed time.Duration, sent, total, inFlight int64, all Summary, cells map[string]Summary) string {
	var b strings.Builder
	p99 := 0.0
	if all.Latency != nil {
		p99 = all.Latency.P99MS
	}
	fmt.Fprintf(&b, "%5.1fs  sent %d/%d  in flight %d  ok %d  errors %d  p99 %.1fms",
		elapsed.Seconds(), sent, total, inFlight, all.OK, all.Errors, p99)
	names := make([]string, 0, len(cells))
	for n := range cells {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if s := cells[n]; s.Errors > 0 {
			fmt.Fprintf(&b, "  %s:%d err", n, s.Errors)
		}
	}
	return b.String()
}
