package frontrouter_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/clustertest"
	"github.com/cellarsim/cellar/frontrouter"
)

// BenchmarkRouterOverhead measures 4 KiB GETs and PUTs through the front router against
// the same requests straight to the gateway, with the same client in the same run, in
// alternating rounds so that both see the same machine. It reports the throughput
// ratio (router/direct; 1 means no cost) and the p50 and p99 latency the router adds,
// for one client and for 16 at once. A third path, the same router with every request
// forwarded by net/http's Transport, gives what the router's own transport buys
// (net/http-throughput-ratio).
//
//	go test -run '^$' -bench RouterOverhead -benchtime 2000x ./frontrouter/
func BenchmarkRouterOverhead(b *testing.B) {
	tenants, err := cell.NewTenants(1)
	if err != nil {
		b.Fatal(err)
	}
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.StorageNodes, topo.Gateways, topo.Slots, topo.Copies = 1, 1, 1, 1, 16, 1
	topo.Tenants = tenants
	c := clustertest.Start(b, topo)
	rtEP, _ := c.StartRouter("127.0.0.1:0", c.Topology)
	direct := "http://" + c.Node(cell.NodeID("", cell.RoleGateway, 0)).S3Addr
	// The same router forwarding every request by net/http's Transport, as it did
	// before bodiless requests went the short way: what that way buys, in the same run.
	netRT, err := frontrouter.New(frontrouter.Options{Topology: c.Topology, Backends: []string{direct[len("http://"):]},
		Transport: frontrouter.NewTransport()})
	if err != nil {
		b.Fatal(err)
	}
	netLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	netSrv := &http.Server{Handler: netRT}
	go netSrv.Serve(netLn)
	defer netSrv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	mk := func(ep string) *s3.Client {
		cl := client(ep, tenants[0])
		return s3.New(cl.Options(), func(o *s3.Options) { o.HTTPClient = &http.Client{Transport: tr} })
	}
	clients := map[string]*s3.Client{"direct": mk(direct), "router": mk(rtEP), "router-net/http": mk("http://" + netLn.Addr().String())}
	paths := []string{"direct", "router", "router-net/http"}
	ctx := context.Background()
	if _, err := clients["direct"].CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bench")}); err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 4<<10)
	// The objects the GETs read, so that any sub-benchmark can run on its own.
	for i := range 64 {
		if _, err := clients["direct"].PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String(fmt.Sprintf("obj-%d", i)), Body: bytes.NewReader(body)}); err != nil {
			b.Fatal(err)
		}
	}
	// Each operation runs twice: by one client in series, where the throughput ratio
	// is the latency ratio and shows every microsecond of the extra hop, and by 16
	// clients at once, as a fleet of clients sees the router, where the machine's two
	// cores are the limit and the ratio is the router's share of the work.
	for _, op := range []string{"PUT", "GET"} {
		for _, conc := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/clients=%d", op, conc), func(b *testing.B) {
				var mu sync.Mutex
				lat := map[string][]time.Duration{}
				took := map[string]time.Duration{}
				one := func(path string, i int) {
					cl := clients[path]
					key := aws.String(fmt.Sprintf("obj-%d", i%64))
					start := time.Now()
					var err error
					if op == "PUT" {
						_, err = cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bench"), Key: key, Body: bytes.NewReader(body)})
					} else {
						var out *s3.GetObjectOutput
						if out, err = cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bench"), Key: key}); err == nil {
							_, err = io.Copy(io.Discard, out.Body)
							out.Body.Close()
						}
					}
					if err != nil {
						b.Errorf("%s %s: %v", op, path, err)
						return
					}
					d := time.Since(start)
					mu.Lock()
					lat[path] = append(lat[path], d)
					mu.Unlock()
				}
				// round runs requests [i, j) on path with conc clients and adds the
				// wall time it took to the path's total.
				round := func(path string, i, j int) {
					start := time.Now()
					var wg sync.WaitGroup
					next := make(chan int)
					for range conc {
						wg.Go(func() {
							for k := range next {
								one(path, k)
							}
						})
					}
					for k := i; k < j; k++ {
						next <- k
					}
					close(next)
					wg.Wait()
					took[path] += time.Since(start)
				}
				// A first round on each path, not counted: connections, caches.
				for _, path := range paths {
					round(path, 0, 64)
				}
				lat, took = map[string][]time.Duration{}, map[string]time.Duration{}
				b.ResetTimer()
				const size = 50
				for i := 0; i < b.N && !b.Failed(); i += size {
					for _, path := range paths {
						round(path, i, min(i+size, b.N))
					}
				}
				b.StopTimer()
				if b.Failed() {
					return
				}
				q := func(path string, f float64) time.Duration {
					l := slices.Clone(lat[path])
					slices.Sort(l)
					return l[int(f*float64(len(l)-1))]
				}
				ratio := took["direct"].Seconds() / took["router"].Seconds()
				b.ReportMetric(ratio, "throughput-ratio")
				b.ReportMetric(float64(q("router", .5)-q("direct", .5))/1e6, "added-p50-ms")
				b.ReportMetric(float64(q("router", .99)-q("direct", .99))/1e6, "added-p99-ms")
				netRatio := took["direct"].Seconds() / took["router-net/http"].Seconds()
				b.ReportMetric(netRatio, "net/http-throughput-ratio")
				b.Logf("%s 4KiB x%d, %d client(s): direct p50 %v p99 %v; router p50 %v p99 %v; throughput router/direct %.3f"+
					"; all by net/http's Transport: p50 %v p99 %v, %.3f",
					op, b.N, conc, q("direct", .5), q("direct", .99), q("router", .5), q("router", .99), ratio,
					q("router-net/http", .5), q("router-net/http", .99), netRatio)
			})
		}
	}
}
