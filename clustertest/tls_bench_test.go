package clustertest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

var errUnavailable = errors.New("503 Service Unavailable")

// BenchmarkTLSCost measures what mutual TLS on the internal plane costs on the S3 data
// path: two clusters of the same shape in this process, one with TLS (certificates,
// role checks, encrypted gossip) and one without, driven by the same HTTP client in
// the same run, in alternating rounds so that both see the same machine. Each round
// PUTs then GETs a batch of objects of one size with a few requests in flight. It
// prints, per size and operation, each cluster's throughput and TLS's as a share of
// plain's (1.00: free; 0.90: a 10% cost), and reports them as metrics.
//
// S3 authentication is off in both, so that the client's and the gateway's signature
// work (SHA-256 of every body) does not hide the internal plane's cost; the S3
// listener itself is plain HTTP in both.
//
// The last column is the median of the rounds' own ratios, the figure reported as
// the benchmark's metrics. CELLAR_TLS_BENCH_ROUNDS sets the rounds (default 3; 15
// for a figure to quote).
//
//	go test ./clustertest -run XXX -bench TLSCost -benchtime 1x
//	CELLAR_TLS_BENCH_ROUNDS=15 go test ./clustertest -run XXX -bench TLSCost -benchtime 1x
func BenchmarkTLSCost(b *testing.B) {
	topo := topology(1)
	topo.IndexNodes, topo.StorageNodes, topo.Auth = 1, 2, false
	plainTopo := topo
	plainTopo.TLS = false
	topo.TLS = true
	clusters := []struct {
		name string
		c    *Cluster
	}{{"tls", Start(b, topo)}, {"plain", Start(b, plainTopo)}}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var doOnce func(method, url string, body []byte) error
	// do makes one request; a 503 (a cell briefly unavailable on a starved machine) is
	// tried again, up to five times, and the time it costs counts against its cluster.
	do := func(method, url string, body []byte) error {
		var err error
		for range 5 {
			if err = doOnce(method, url, body); err == nil || !errors.Is(err, errUnavailable) {
				return err
			}
		}
		return err
	}
	doOnce = func(method, url string, body []byte) error {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		if body == nil {
			req.Body = nil
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusServiceUnavailable {
			err = fmt.Errorf("%s %s: %w", method, url, errUnavailable)
		} else if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s %s: %s", method, url, resp.Status)
		}
		return err
	}
	for _, cl := range clusters {
		if err := do(http.MethodPut, cl.c.S3Endpoint()+"/bench", nil); err != nil {
			b.Fatal(err)
		}
	}

	const inFlight = 4
	sizes := []struct {
		name  string
		size  int
		count int // objects per round
	}{{"4KiB", 4 << 10, 400}, {"1MiB", 1 << 20, 40}}
	rounds := envInt(b, "CELLAR_TLS_BENCH_ROUNDS", 3)
	type key struct{ size, op, cluster string }
	elapsed := map[key]time.Duration{}
	bytesMoved := map[key]int64{}
	// roundRatios[size+op] holds each round's tls/plain ratio: one round is two
	// batches a moment apart, so their ratio is less disturbed by the machine's
	// swings than the totals; the median of them is the figure reported.
	roundRatios := map[string][]float64{}

	// batch runs count requests of op with inFlight at a time and returns the time taken.
	batch := func(cl *Cluster, op string, body []byte, count, round int) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, inFlight)
		next := make(chan int)
		for range inFlight {
			wg.Go(func() {
				for i := range next {
					url := fmt.Sprintf("%s/bench/%d/%d-%d", cl.S3Endpoint(), len(body), round, i)
					var err error
					if op == "PUT" {
						err = do(http.MethodPut, url, body)
					} else {
						err = do(http.MethodGet, url, nil)
					}
					if err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				}
			})
		}
		for i := range count {
			next <- i
		}
		close(next)
		wg.Wait()
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
		return time.Since(start)
	}

	for b.Loop() {
		for _, sz := range sizes {
			body := bytes.Repeat([]byte("c"), sz.size)
			for r := range rounds {
				// Alternate which cluster goes first, so that neither always runs
				// on a warmer (or busier) machine.
				order := []int{0, 1}
				if r%2 == 1 {
					order = []int{1, 0}
				}
				for _, op := range []string{"PUT", "GET"} {
					took := map[string]time.Duration{}
					for _, i := range order {
						cl := clusters[i]
						k := key{sz.name, op, cl.name}
						took[cl.name] = batch(cl.c, op, body, sz.count, r)
						elapsed[k] += took[cl.name]
						bytesMoved[k] += int64(sz.size * sz.count)
					}
					roundRatios[sz.name+op] = append(roundRatios[sz.name+op], took["plain"].Seconds()/took["tls"].Seconds())
				}
			}
		}
	}

	fmt.Fprintf(os.Stdout, "\nTLS cost on the S3 data path (%d rounds each, %d requests in flight)\n", rounds, inFlight)
	fmt.Fprintf(os.Stdout, "%-6s %-4s %14s %14s %10s %14s\n", "size", "op", "plain MB/s", "tls MB/s", "tls/plain", "round median")
	for _, sz := range sizes {
		for _, op := range []string{"PUT", "GET"} {
			mbps := func(c string) float64 {
				k := key{sz.name, op, c}
				return float64(bytesMoved[k]) / 1e6 / elapsed[k].Seconds()
			}
			plain, tls := mbps("plain"), mbps("tls")
			rr := slices.Clone(roundRatios[sz.name+op])
			slices.Sort(rr)
			median := rr[len(rr)/2]
			fmt.Fprintf(os.Stdout, "%-6s %-4s %14.1f %14.1f %10.2f %14.2f\n", sz.name, op, plain, tls, tls/plain, median)
			b.ReportMetric(median, "tls/plain-"+op+"-"+sz.name)
		}
	}
}
