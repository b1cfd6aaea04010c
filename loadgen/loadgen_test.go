package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/router"
)

func TestParseMix(t *testing.T) {
	m, err := ParseMix("get=3, PUT=1,head=0")
	if err != nil {
		t.Fatal(err)
	}
	if m[OpGet] != 3 || m[OpPut] != 1 || m.String() != "GET=3,PUT=1" {
		t.Errorf("mix %v (%s)", m, m)
	}
	for _, bad := range []string{"", "GET", "FETCH=1", "GET=-1", "GET=0"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
}

func TestParseSizes(t *testing.T) {
	s, err := ParseSizes("1KiB=70, 2MiB=5,100")
	if err != nil {
		t.Fatal(err)
	}
	want := Sizes{{1024, 70}, {2 << 20, 5}, {100, 1}}
	if fmt.Sprint(s) != fmt.Sprint(want) {
		t.Errorf("sizes %v, want %v", s, want)
	}
	for _, bad := range []string{"", "1GiB", "x=1", "1KiB=0"} {
		if _, err := ParseSizes(bad); err == nil {
			t.Errorf("ParseSizes(%q) accepted", bad)
		}
	}
}

func TestConfigBounds(t *testing.T) {
	ok := Config{Endpoint: "http://127.0.0.1:1", Rate: 10, Duration: time.Second, Buckets: []string{"b"}}
	if _, err := ok.withDefaults(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"rate":     func(c *Config) { c.Rate = MaxRate + 1 },
		"zero":     func(c *Config) { c.Rate = 0 },
		"duration": func(c *Config) { c.Duration = 2 * MaxDuration },
		"buckets":  func(c *Config) { c.Buckets = nil },
		"dist":     func(c *Config) { c.KeyDist = "pareto" },
		"inflight": func(c *Config) { c.MaxInFlight = MaxInFlight + 1 },
	} {
		c := ok
		mut(&c)
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%s: accepted %+v", name, c)
		}
	}
}

func TestPlannerFollowsMixAndIsRepeatable(t *testing.T) {
	cfg, err := Config{Endpoint: "x", Rate: 1, Duration: time.Second, Buckets: []string{"a", "b"}, Keys: 50,
		KeyDist: KeysZipf, Seed: 7}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := newPlanner(cfg), newPlanner(cfg)
	counts := map[string]int{}
	keys := map[string]int{}
	const n = 20000
	for i := range n {
		r1, r2 := p1.next(0), p2.next(0)
		if r1 != r2 {
			t.Fatalf("request %d differs with the same seed: %+v, %+v", i, r1, r2)
		}
		counts[r1.op]++
		if r1.op == OpGet {
			keys[r1.key]++
		}
		if (r1.op == OpPut || r1.op == OpDelete) && !strings.HasPrefix(r1.key, "churn-") {
			t.Fatalf("%s on %s: writes must stay off the seeded keys", r1.op, r1.key)
		}
	}
	for op, w := range cfg.Mix {
		want := float64(w) / 100
		if got := float64(counts[op]) / n; got < want-0.02 || got > want+0.02 {
			t.Errorf("%s share %.3f, want about %.2f", op, got, want)
		}
	}
	// Zipf: the first key is far hotter than the median one.
	if keys[seedKey(0)] < 10*keys[seedKey(25)] {
		t.Errorf("zipf keys not skewed: key 0 %d, key 25 %d", keys[seedKey(0)], keys[seedKey(25)])
	}
}

func TestBucketsSpreadOverCells(t *testing.T) {
	topo := cell.DefaultTopology()
	topo.Cells = 4
	names, home := Buckets(topo, "load", 3)
	if len(names) != 12 {
		t.Fatalf("%d buckets, want 12", len(names))
	}
	table := router.NewSlotTable(topo.Slots, topo.CellIDs())
	per := map[string]int{}
	for _, n := range names {
		if home[n] != table.Cell(n) {
			t.Errorf("%s: home %s, table says %s", n, home[n], table.Cell(n))
		}
		per[home[n]]++
	}
	for _, c := range topo.CellIDs() {
		if per[c] != 3 {
			t.Errorf("%s has %d buckets, want 3", c, per[c])
		}
	}
}

// fakeGateway answers every request as cell-N from the bucket name "cN-...": cells in
// fail fail with 503 ServiceUnavailable; every answer takes delay.
func fakeGateway(t *testing.T, delay time.Duration, fail map[string]bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		bucket := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]
		c := "cell-" + strings.TrimPrefix(strings.SplitN(bucket, "-", 2)[0], "c")
		w.Header().Set(HeaderCell, c)
		if fail[c] {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>no quorum</Message></Error>`)
			return
		}
		if r.Method == http.MethodGet && r.URL.Query().Has("list-type") {
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><KeyCount>0</KeyCount></ListBucketResult>`)
			return
		}
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("ETag", `"x"`)
		w.Header().Set("Content-Length", "0")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAttributionAndErrorCodesAgainstAFakeGateway(t *testing.T) {
	srv := fakeGateway(t, 0, map[string]bool{"cell-1": true})
	res, err := Run(context.Background(), Config{
		Endpoint: srv.URL, AccessKey: "a", SecretKey: "s", Rate: 200, Duration: time.Second,
		Buckets: []string{"c0-a", "c0-b", "c1-a", "c1-b"}, Sizes: Sizes{{1024, 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Scheduled != 200 || res.Overall.Requests != 200 {
		t.Fatalf("scheduled %d, recorded %d, want 200", res.Scheduled, res.Overall.Requests)
	}
	c0, c1 := res.Cells["cell-0"], res.Cells["cell-1"]
	if c0.Errors != 0 || c0.OK == 0 {
		t.Errorf("cell-0: %+v, want only successes", c0.Summary)
	}
	if c1.OK != 0 || c1.ErrorCodes["ServiceUnavailable"] != c1.Requests || c1.Requests == 0 {
		t.Errorf("cell-1: %+v, want every request ServiceUnavailable", c1.Summary)
	}
	if len(res.Cells) != 2 {
		t.Errorf("cells %v, want cell-0 and cell-1 only", res.CellNames())
	}
	if len(c1.Series) != 1 || c1.Series[0].Errors != c1.Errors {
		t.Errorf("cell-1 series %+v, want one second holding every error", c1.Series)
	}
	for op, s := range c1.Ops {
		if s.Errors != s.Requests {
			t.Errorf("cell-1 %s: %+v", op, s)
		}
	}
}

// With one request in flight and a server slower than the arrival interval, requests
// queue; their latency counts from when they were due, so it grows far beyond the
// server's own time instead of hiding the queue.
func TestLatencyCountsFromWhenDue(t *testing.T) {
	srv := fakeGateway(t, 20*time.Millisecond, nil)
	res, err := Run(context.Background(), Config{
		Endpoint: srv.URL, AccessKey: "a", SecretKey: "s", Rate: 100, Duration: 500 * time.Millisecond,
		Buckets: []string{"c0-a"}, MaxInFlight: 1, Mix: Mix{OpHead: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	// 50 requests at 10ms intervals served one at a time in 20ms+: the last one is
	// due at 490ms and done at 1000ms or later.
	if lat := res.Overall.Latency; lat == nil || lat.MaxMS < 400 {
		t.Errorf("latency %+v, want a max of 400ms or more", lat)
	}
	if res.MaxLagMS < 300 {
		t.Errorf("send lag %.0fms, want 300ms or more", res.MaxLagMS)
	}
}

func TestUnansweredRequestsGoToTheBucketsCell(t *testing.T) {
	res, err := Run(context.Background(), Config{
		Endpoint: "http://127.0.0.1:1", Rate: 20, Duration: 250 * time.Millisecond, Timeout: time.Second,
		Buckets: []string{"x", "y"}, BucketCell: map[string]string{"x": "cell-3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Overall.OK != 0 || res.Overall.ErrorCodes["ConnectionError"] != res.Overall.Requests {
		t.Errorf("overall %+v, want only connection errors", res.Overall)
	}
	if res.Cells["cell-3"].Requests == 0 || res.Cells[CellUnknown].Requests == 0 ||
		res.Cells["cell-3"].Requests+res.Cells[CellUnknown].Requests != res.Overall.Requests {
		t.Errorf("cells %+v", res.Cells)
	}
}

func TestProgressLine(t *testing.T) {
	line := progressLine(3*time.Second, 30, 100, 2, Summary{OK: 25, Errors: 5, Latency: &Latency{P99MS: 12.5}},
		map[string]Summary{"cell-1": {Errors: 5}, "cell-0": {OK: 25}})
	for _, want := range []string{"3.0s", "sent 30/100", "in flight 2", "errors 5", "p99 12.5ms", "cell-1:5 err"} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, "cell-0") {
		t.Errorf("progress line %q names a cell without errors", line)
	}
}
