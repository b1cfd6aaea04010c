package loadgen

import (
	"context"
	"sync"
	"testing"
	"time"
)

// OnRequest sees every request of a run once, with its bucket, the cell that answered
// and its error code, as the run's totals count them.
func TestOnRequestSeesEveryRequest(t *testing.T) {
	srv := fakeGateway(t, 0, map[string]bool{"cell-1": true})
	var mu sync.Mutex
	var seen []Outcome
	start := time.Now()
	res, err := Run(context.Background(), Config{
		Endpoint: srv.URL, AccessKey: "a", SecretKey: "s", Rate: 100, Duration: time.Second,
		Buckets: []string{"c0-a", "c1-a"}, Sizes: Sizes{{1024, 1}},
		OnRequest: func(o Outcome) { mu.Lock(); seen = append(seen, o); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(seen)) != res.Overall.Requests || len(seen) != 100 {
		t.Fatalf("OnRequest saw %d requests, the run counted %d, want 100", len(seen), res.Overall.Requests)
	}
	var failed int64
	for _, o := range seen {
		want := map[string]string{"c0-a": "cell-0", "c1-a": "cell-1"}[o.Bucket]
		if o.Cell != want || o.Op == "" || o.Due.Before(start) || o.Took <= 0 {
			t.Errorf("outcome %+v, want bucket c0-a or c1-a answered by its cell", o)
		}
		if o.Code != "" {
			failed++
			if o.Cell != "cell-1" || o.Code != "ServiceUnavailable" {
				t.Errorf("failed outcome %+v, want ServiceUnavailable from cell-1", o)
			}
		}
	}
	if failed != res.Overall.Errors || failed == 0 {
		t.Errorf("OnRequest saw %d failures, the run counted %d", failed, res.Overall.Errors)
	}
}
