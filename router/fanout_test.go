package router

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/errs"
)

func TestGatherRunsEveryCellAtOnce(t *testing.T) {
	cellIDs := []string{"cell-0", "cell-1", "cell-2"}
	// Every call waits until all have started: calls made one after the other would
	// never return.
	var started sync.WaitGroup
	started.Add(len(cellIDs))
	got, err := gather(cellIDs, func(cellID string) (string, error) {
		started.Done()
		started.Wait()
		return "from " + cellID, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"from cell-0", "from cell-1", "from cell-2"}; !slices.Equal(got, want) {
		t.Errorf("results %q, want %q, in the order of the cells", got, want)
	}
}

func TestGatherFailsWhenACellFails(t *testing.T) {
	failed := errs.New(errs.Unavailable, "cell-1 is down")
	got, err := gather([]string{"cell-0", "cell-1", "cell-2"}, func(cellID string) (int, error) {
		if cellID == "cell-1" {
			return 0, failed
		}
		return 1, nil
	})
	if err != failed || got != nil {
		t.Fatalf("gather = %v, %v; want no results and the error of cell-1", got, err)
	}
}

func TestMergeListings(t *testing.T) {
	entries := func(keys ...string) []*cellarv1.Location {
		var out []*cellarv1.Location
		for _, k := range keys {
			out = append(out, &cellarv1.Location{Key: k})
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		pages    []*cellarv1.ListResponse
		maxKeys  int
		keys     []string
		prefixes []string
		next     string // "" when not truncated
	}{
		{
			name:    "one cell",
			pages:   []*cellarv1.ListResponse{{Entries: entries("a", "b")}},
			maxKeys: 10, keys: []string{"a", "b"},
		},
		{
			name: "keys of several cells interleave",
			pages: []*cellarv1.ListResponse{
				{Entries: entries("a", "d")}, {Entries: entries("b", "e")}, {Entries: entries("c")},
			},
			maxKeys: 10, keys: []string{"a", "b", "c", "d", "e"},
		},
		{
			name: "a common prefix of several cells appears once",
			pages: []*cellarv1.ListResponse{
				{Entries: entries("a"), CommonPrefixes: []string{"dir/"}},
				{Entries: entries("z"), CommonPrefixes: []string{"dir/", "other/"}},
			},
			maxKeys: 10, keys: []string{"a", "z"}, prefixes: []string{"dir/", "other/"},
		},
		{
			name: "more than maxKeys: truncated after the last one kept",
			pages: []*cellarv1.ListResponse{
				{Entries: entries("a", "c")}, {Entries: entries("b"), CommonPrefixes: []string{"d/"}},
			},
			maxKeys: 3, keys: []string{"a", "b", "c"}, next: "c",
		},
		{
			name: "a prefix can be the last one kept",
			pages: []*cellarv1.ListResponse{
				{Entries: entries("a")}, {CommonPrefixes: []string{"b/"}, Entries: entries("c")},
			},
			maxKeys: 2, keys: []string{"a"}, prefixes: []string{"b/"}, next: "b/",
		},
		{
			name: "a truncated cell truncates the page",
			pages: []*cellarv1.ListResponse{
				{Entries: entries("a", "b"), Truncated: true, Next: "b"}, {Entries: entries("x")},
			},
			maxKeys: 2, keys: []string{"a", "b"}, next: "b",
		},
		{
			name:    "maxKeys 0 means 1000",
			pages:   []*cellarv1.ListResponse{{Entries: entries("a")}, {Entries: entries("b")}},
			maxKeys: 0, keys: []string{"a", "b"},
		},
		{
			name:  "no cell has anything",
			pages: []*cellarv1.ListResponse{{}, {}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mergeListings(tc.pages, tc.maxKeys)
			var keys []string
			for _, e := range got.Entries {
				keys = append(keys, e.Key)
			}
			if !slices.Equal(keys, tc.keys) || !slices.Equal(got.CommonPrefixes, tc.prefixes) {
				t.Errorf("keys %q prefixes %q, want %q %q", keys, got.CommonPrefixes, tc.keys, tc.prefixes)
			}
			if got.Truncated != (tc.next != "") || got.Next != tc.next {
				t.Errorf("truncated %v next %q, want next %q", got.Truncated, got.Next, tc.next)
			}
		})
	}
}

// TestMergedListingsContinue lists a keyspace spread over three cells page by page,
// each page merged from the cells' pages after the previous page's Next: every key and
// prefix comes back once, in order, whatever the page size.
func TestMergedListingsContinue(t *testing.T) {
	var all []string
	cellsOf := make([][]string, 3)
	for i := range 40 {
		key := fmt.Sprintf("k%02d", i)
		if i%7 == 0 {
			key = fmt.Sprintf("dir%d/k%02d", i%2, i) // two prefixes, each in several cells
		}
		all = append(all, key)
		cellsOf[(i*5)%3] = append(cellsOf[(i*5)%3], key)
	}
	var want []string
	for _, k := range all {
		if d, _, ok := strings.Cut(k, "/"); ok {
			k = d + "/"
		}
		if !slices.Contains(want, k) {
			want = append(want, k)
		}
	}
	sort.Strings(want)

	for _, maxKeys := range []int{1, 2, 3, 7, 1000} {
		t.Run(fmt.Sprint(maxKeys), func(t *testing.T) {
			var got []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > len(want) {
					t.Fatalf("no end after %d pages: %q", pages, got)
				}
				var cellPages []*cellarv1.ListResponse
				for _, keys := range cellsOf {
					cellPages = append(cellPages, listCell(keys, after, "/", maxKeys))
				}
				page := mergeListings(cellPages, maxKeys)
				if n := len(page.Entries) + len(page.CommonPrefixes); n > maxKeys {
					t.Fatalf("a page of %d entries, more than %d", n, maxKeys)
				}
				for _, e := range page.Entries {
					got = append(got, e.Key)
				}
				got = append(got, page.CommonPrefixes...)
				if !page.Truncated {
					break
				}
				after = page.Next
			}
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Errorf("listed %q, want %q", got, want)
			}
		})
	}
}

// listCell is what one cell's index answers to a List: its sorted keys after
// startAfter, rolled up into common prefixes at the delimiter, at most limit entries.
func listCell(keys []string, startAfter, delimiter string, limit int) *cellarv1.ListResponse {
	keys = slices.Sorted(slices.Values(keys))
	out := &cellarv1.ListResponse{}
	for _, k := range keys {
		name, isPrefix := k, false
		if i := strings.Index(k, delimiter); i >= 0 {
			name, isPrefix = k[:i+len(delimiter)], true
		}
		if name <= startAfter || (isPrefix && slices.Contains(out.CommonPrefixes, name)) {
			continue
		}
		if len(out.Entries)+len(out.CommonPrefixes) == limit {
			out.Truncated = true
			break
		}
		if isPrefix {
			out.CommonPrefixes = append(out.CommonPrefixes, name)
		} else {
			out.Entries = append(out.Entries, &cellarv1.Location{Key: k})
		}
		out.Next = name
	}
	if !out.Truncated {
		out.Next = ""
	}
	return out
}

func TestMergeUploads(t *testing.T) {
	up := func(key, id string) *cellarv1.Upload { return &cellarv1.Upload{Key: key, UploadId: id} }
	pages := []*cellarv1.ListUploadsResponse{
		{Uploads: []*cellarv1.Upload{up("b", "2"), up("c", "1")}},
		{Uploads: []*cellarv1.Upload{up("a", "9"), up("b", "1")}},
	}
	names := func(us []*cellarv1.Upload) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.Key+"#"+u.UploadId)
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		pages     []*cellarv1.ListUploadsResponse
		limit     int
		want      []string
		truncated bool
	}{
		{"in key then upload id order", pages, 0, []string{"a#9", "b#1", "b#2", "c#1"}, false},
		{"cut at the limit", pages, 3, []string{"a#9", "b#1", "b#2"}, true},
		{"a truncated cell truncates the page", append(slices.Clone(pages), &cellarv1.ListUploadsResponse{Truncated: true}), 10,
			[]string{"a#9", "b#1", "b#2", "c#1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mergeUploads(tc.pages, tc.limit)
			if !slices.Equal(names(got.Uploads), tc.want) || got.Truncated != tc.truncated {
				t.Errorf("uploads %q truncated %v, want %q %v", names(got.Uploads), got.Truncated, tc.want, tc.truncated)
			}
		})
	}
}

// fakeIndex is a cell's index that knows some buckets and some keys of one bucket.
type fakeIndex struct {
	cellarv1.UnimplementedIndexServer
	buckets []string
	keys    []string
}

func (f *fakeIndex) ListBuckets(context.Context, *cellarv1.ListBucketsRequest) (*cellarv1.ListBucketsResponse, error) {
	resp := &cellarv1.ListBucketsResponse{}
	for _, b := range f.buckets {
		resp.Buckets = append(resp.Buckets, &cellarv1.Bucket{Name: b})
	}
	return resp, nil
}

func (f *fakeIndex) List(_ context.Context, req *cellarv1.ListRequest) (*cellarv1.ListResponse, error) {
	return listCell(f.keys, req.StartAfter, "/", int(req.Limit)), nil
}

// serveIndexes starts one fake index per cell (nil: the cell has no ready index) and
// returns the router over them.
func serveIndexes(t *testing.T, partition string, indexes []*fakeIndex) *Router {
	t.Helper()
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.Partition = len(indexes), 1, partition
	var nodes members
	for i, ix := range indexes {
		if ix == nil {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		cellarv1.RegisterIndexServer(srv, ix)
		go srv.Serve(ln)
		t.Cleanup(srv.Stop)
		nodes = append(nodes, cell.Node{ID: fmt.Sprintf("cell-%d-index-0", i), Role: cell.RoleIndex, Cell: cell.ID(i),
			State: cell.StateReady, GRPCAddr: ln.Addr().String()})
	}
	conns := daemon.NewConns()
	t.Cleanup(conns.Close)
	return New(topo, nodes, conns)
}

func TestListBucketsOfEveryCell(t *testing.T) {
	r := serveIndexes(t, cell.PartitionByBucket, []*fakeIndex{{buckets: []string{"b", "d"}}, {buckets: []string{"a", "c"}}})
	got, err := r.ListBuckets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range got {
		names = append(names, b.Cell+":"+b.Name)
	}
	if want := []string{cell.ID(1) + ":a", cell.ID(0) + ":b", cell.ID(1) + ":c", cell.ID(0) + ":d"}; !slices.Equal(names, want) {
		t.Errorf("buckets %q, want %q", names, want)
	}
}

func TestListOfABucketThatSpansCells(t *testing.T) {
	r := serveIndexes(t, cell.PartitionByKey, []*fakeIndex{{keys: []string{"a", "d"}}, {keys: []string{"b"}}, {keys: []string{"c", "e"}}})
	asked, page, err := r.List(context.Background(), &cellarv1.ListRequest{Bucket: "bkt", Limit: 4})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(asked, r.Cells()) {
		t.Errorf("asked %q, want every cell %q", asked, r.Cells())
	}
	var keys []string
	for _, e := range page.Entries {
		keys = append(keys, e.Key)
	}
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(keys, want) || !page.Truncated || page.Next != "d" {
		t.Errorf("page %q truncated %v next %q, want %q, truncated after d", keys, page.Truncated, page.Next, want)
	}
}

func TestListFailsWhenACellHasNoIndex(t *testing.T) {
	r := serveIndexes(t, cell.PartitionByKey, []*fakeIndex{{keys: []string{"a"}}, nil})
	_, _, err := r.List(context.Background(), &cellarv1.ListRequest{Bucket: "bkt"})
	if !errs.Is(err, errs.Unavailable) {
		t.Fatalf("List with a cell down: %v, want Unavailable", err)
	}
}
