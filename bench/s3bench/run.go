package s3bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The targets of a run.
const (
	TargetReference = "reference"
	TargetCellar    = "cellar"
)

// The operations measured.
const (
	OpPut = "PUT"
	OpGet = "GET"
)

// Run measures both targets, interleaved, Options.Passes times each, and reports the
// medians. It stops early, with what it has, when ctx is done.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Endpoint == "" {
		return nil, errors.New("endpoint: no S3 endpoint to measure")
	}
	if o.Reference == nil {
		return nil, errors.New("no reference server")
	}
	targets := map[string]*target{}
	for name, ep := range map[string]string{TargetReference: o.Reference.Endpoint(), TargetCellar: o.Endpoint} {
		t, err := newTarget(name, ep, o)
		if err != nil {
			return nil, err
		}
		defer t.close()
		if err := t.prepare(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		targets[name] = t
	}
	payloads := map[int64][]byte{}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range o.Sizes {
		p := make([]byte, s)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		payloads[s] = p
	}
	rep := &Report{Concurrency: o.Concurrency, Duration: o.Duration, Passes: o.Passes, Started: time.Now().UTC()}
	results := map[phaseKey][]Measure{}
	order := []string{TargetReference, TargetCellar}
	total := o.Passes * len(order) * len(o.Sizes) * 2
	step := 0
	for pass := 1; pass <= o.Passes; pass++ {
		for _, name := range order {
			t := targets[name]
			for _, size := range o.Sizes {
				for _, op := range []string{OpPut, OpGet} {
					if ctx.Err() != nil {
						break
					}
					step++
					label := fmt.Sprintf("[%d/%d] pass %d %s %s %s", step, total, pass, name, op, FormatSize(size))
					m := t.measure(ctx, op, size, payloads[size], pass, label)
					results[phaseKey{name, op, size}] = append(results[phaseKey{name, op, size}], m)
				}
			}
		}
	}
	rep.Elapsed = time.Since(rep.Started)
	rep.Load = loadAverage()
	// The objects written are of no use after the run: leave the cluster as it was.
	targets[TargetCellar].cleanup(ctx)
	for _, size := range o.Sizes {
		for _, op := range []string{OpPut, OpGet} {
			row := Row{Op: op, Size: size, SizeText: FormatSize(size)}
			row.Reference = median(results[phaseKey{TargetReference, op, size}])
			row.Cellar = median(results[phaseKey{TargetCellar, op, size}])
			row.Passes = map[string][]Measure{
				TargetReference: results[phaseKey{TargetReference, op, size}],
				TargetCellar:    results[phaseKey{TargetCellar, op, size}],
			}
			row.Ratio = ratios(row.Cellar, row.Reference)
			rep.Rows = append(rep.Rows, row)
		}
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("interrupted: %w", err)
	}
	return rep, nil
}

type phaseKey struct {
	target, op string
	size       int64
}

// target is one S3 endpoint and the client that measures it.
type target struct {
	name     string
	endpoint string
	o        Options
	client   *minio.Client
	tr       *http.Transport
	progress io.Writer

	mu   sync.Mutex
	keys map[int64][]string // objects written per size, read by the GETs
	all  []string           // every object written, deleted at the end
}

func newTarget(name, endpoint string, o Options) (*target, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q: want http://HOST:PORT", endpoint)
	}
	// One connection per client, kept between requests, as the reference gets.
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * o.Concurrency,
		MaxIdleConnsPerHost: 2 * o.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	var creds *credentials.Credentials
	if o.AccessKey != "" || o.SecretKey != "" {
		creds = credentials.NewStaticV4(o.AccessKey, o.SecretKey, "")
	} else {
		creds = credentials.New(&credentials.Static{})
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: creds, Secure: false, Region: o.Region,
		Transport: tr, BucketLookup: minio.BucketLookupPath, MaxRetries: 1})
	if err != nil {
		return nil, fmt.Errorf("%s client: %w", name, err)
	}
	return &target{name: name, endpoint: endpoint, o: o, client: c, tr: tr, progress: o.Progress,
		keys: map[int64][]string{}}, nil
}

func (t *target) close() { t.tr.CloseIdleConnections() }

// prepare makes the bucket (or finds it made).
func (t *target) prepare(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := t.client.MakeBucket(cctx, t.o.Bucket, minio.MakeBucketOptions{Region: t.o.Region})
	if err != nil {
		if resp := minio.ToErrorResponse(err); resp.Code == "BucketAlreadyOwnedByYou" || resp.Code == "BucketAlreadyExists" {
			return nil
		}
		return fmt.Errorf("create bucket %s at %s: %w", t.o.Bucket, t.endpoint, err)
	}
	return nil
}

// requestTimeout bounds one request of the bench.
const requestTimeout = 30 * time.Second

// measure runs op on objects of size from o.Concurrency clients for o.Duration.
func (t *target) measure(ctx context.Context, op string, size int64, payload []byte, pass int, label string) Measure {
	hist := hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	var (
		histMu sync.Mutex
		ops    atomic.Int64
		errCnt atomic.Int64
		errMu  sync.Mutex
		codes  = map[string]int64{}
	)
	t.mu.Lock()
	keys := t.keys[size]
	t.mu.Unlock()
	if op == OpGet && len(keys) == 0 {
		return Measure{Errors: 1, ErrorCodes: map[string]int64{"NoObjectsWritten": 1}}
	}
	var written []string
	var writtenMu sync.Mutex

	runCtx, cancel := context.WithTimeout(ctx, t.o.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range t.o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(pass), uint64(w)))
			buf := make([]byte, 256<<10)
			for i := 0; runCtx.Err() == nil; i++ {
				var key string
				if op == OpPut {
					key = fmt.Sprintf("s3bench/%s/p%d-w%d-%d", FormatSize(size), pass, w, i)
				} else {
					key = keys[rng.IntN(len(keys))]
				}
				rctx, rcancel := context.WithTimeout(context.Background(), requestTimeout)
				t0 := time.Now()
				var err error
				if op == OpPut {
					_, err = t.client.PutObject(rctx, t.o.Bucket, key, bytes.NewReader(payload), size,
						minio.PutObjectOptions{ContentType: "application/octet-stream"})
				} else {
					err = t.get(rctx, key, size, buf)
				}
				took := time.Since(t0)
				rcancel()
				if runCtx.Err() != nil && err != nil {
					break // cut short by the end of the phase: not counted
				}
				if err != nil {
					errCnt.Add(1)
					code := minio.ToErrorResponse(err).Code
					if code == "" {
						code = "ClientError"
					}
					errMu.Lock()
					codes[code]++
					errMu.Unlock()
					continue
				}
				ops.Add(1)
				histMu.Lock()
				_ = hist.RecordValue(max(took.Microseconds(), 1))
				histMu.Unlock()
				if op == OpPut {
					writtenMu.Lock()
					written = append(written, key)
					writtenMu.Unlock()
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for loop := true; loop; {
		select {
		case <-done:
			loop = false
		case <-tick.C:
			if t.progress != nil {
				el := time.Since(start).Seconds()
				fmt.Fprintf(t.progress, "%s: %d ops, %.0f/s, %d errors, %.0fs left\n", label, ops.Load(),
					float64(ops.Load())/el, errCnt.Load(), max(0, t.o.Duration.Seconds()-el))
			}
		}
	}
	elapsed := time.Since(start)
	if op == OpPut && len(written) > 0 {
		t.mu.Lock()
		t.keys[size] = written // GETs read what this pass wrote
		t.all = append(t.all, written...)
		t.mu.Unlock()
	}
	m := Measure{Ops: ops.Load(), Errors: errCnt.Load(), Seconds: elapsed.Seconds()}
	if len(codes) > 0 {
		m.ErrorCodes = codes
	}
	if m.Ops > 0 {
		m.OpsPerSec = float64(m.Ops) / elapsed.Seconds()
		m.MiBPerSec = m.OpsPerSec * float64(size) / (1 << 20)
		m.P50MS = float64(hist.ValueAtQuantile(50)) / 1000
		m.P99MS = float64(hist.ValueAtQuantile(99)) / 1000
		m.MaxMS = float64(hist.Max()) / 1000
	}
	if t.progress != nil {
		fmt.Fprintf(t.progress, "%s: %.0f ops/s, %.1f MiB/s, p50 %.1f ms, p99 %.1f ms, %d errors\n",
			label, m.OpsPerSec, m.MiBPerSec, m.P50MS, m.P99MS, m.Errors)
	}
	return m
}

// cleanup deletes the objects the run wrote, as well as it can.
func (t *target) cleanup(ctx context.Context) {
	if len(t.all) == 0 {
		return
	}
	if t.progress != nil {
		fmt.Fprintf(t.progress, "deleting the %d objects written to %s\n", len(t.all), t.name)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	objs := make(chan minio.ObjectInfo)
	go func() {
		defer close(objs)
		for _, k := range t.all {
			select {
			case objs <- minio.ObjectInfo{Key: k}:
			case <-ctx.Done():
				return
			}
		}
	}()
	failed := 0
	for e := range t.client.RemoveObjects(ctx, t.o.Bucket, objs, minio.RemoveObjectsOptions{}) {
		if e.Err != nil {
			failed++
		}
	}
	if failed > 0 && t.progress != nil {
		fmt.Fprintf(t.progress, "%d objects of %s could not be deleted; they stay in bucket %s\n", failed, t.name, t.o.Bucket)
	}
	t.all = nil
}

// loadAverage is the machine's load average (1, 5, 15 minutes), or nil where unknown.
func loadAverage() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	var l [3]float64
	if _, err := fmt.Sscan(string(b), &l[0], &l[1], &l[2]); err != nil {
		return nil
	}
	return l[:]
}

// errShort is a GET whose body was not the object's size.
var errShort = errors.New("GET body of the wrong length")

// get reads key to its end and checks its length.
func (t *target) get(ctx context.Context, key string, size int64, buf []byte) error {
	obj, err := t.client.GetObject(ctx, t.o.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return err
	}
	defer obj.Close()
	var n int64
	for {
		k, err := obj.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if n != size {
		return fmt.Errorf("%w: %d bytes, want %d", errShort, n, size)
	}
	return nil
}

// median is the measure with the median throughput of ms (the lower middle of an even
// count's two middles is averaged with the upper, figure by figure).
func median(ms []Measure) Measure {
	if len(ms) == 0 {
		return Measure{}
	}
	pick := func(f func(Measure) float64) float64 {
		v := make([]float64, len(ms))
		for i, m := range ms {
			v[i] = f(m)
		}
		sort.Float64s(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	out := Measure{
		OpsPerSec: pick(func(m Measure) float64 { return m.OpsPerSec }),
		MiBPerSec: pick(func(m Measure) float64 { return m.MiBPerSec }),
		P50MS:     pick(func(m Measure) float64 { return m.P50MS }),
		P99MS:     pick(func(m Measure) float64 { return m.P99MS }),
		MaxMS:     pick(func(m Measure) float64 { return m.MaxMS }),
		Seconds:   pick(func(m Measure) float64 { return m.Seconds }),
	}
	for _, m := range ms {
		out.Ops += m.Ops
		out.Errors += m.Errors
		for c, n := range m.ErrorCodes {
			if out.ErrorCodes == nil {
				out.ErrorCodes = map[string]int64{}
			}
			out.ErrorCodes[c] += n
		}
	}
	return out
}

func ratios(c, r Measure) Ratio {
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	return Ratio{OpsPerSec: div(c.OpsPerSec, r.OpsPerSec), MiBPerSec: div(c.MiBPerSec, r.MiBPerSec),
		P50: div(c.P50MS, r.P50MS), P99: div(c.P99MS, r.P99MS), Max: div(c.MaxMS, r.MaxMS)}
}
