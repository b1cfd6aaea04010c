package mover

import (
	"fmt"
	"slices"
	"testing"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
)

func page(truncated bool, keys ...string) *cellarv1.ListResponse {
	p := &cellarv1.ListResponse{Truncated: truncated}
	for _, k := range keys {
		p.Entries = append(p.Entries, &cellarv1.Location{Key: k})
	}
	return p
}

func keysOf(locs []*cellarv1.Location) []string {
	var out []string
	for _, l := range locs {
		out = append(out, l.Key)
	}
	return out
}

// A range keeps the keys of a page up to its end, and is listed once a page reaches
// past its end, ends on it, or is the bucket's last.
func TestInRange(t *testing.T) {
	for _, tc := range []struct {
		name     string
		page     *cellarv1.ListResponse
		upTo     string
		last     bool
		want     []string
		wantDone bool
	}{
		{"the page is inside the range", page(true, "a", "b"), "c", false, []string{"a", "b"}, false},
		{"the page ends on the range's end", page(true, "a", "b", "c"), "c", false, []string{"a", "b", "c"}, true},
		{"the page reaches past the range", page(true, "b", "c", "d"), "c", false, []string{"b", "c"}, true},
		{"the page starts past the range", page(true, "d", "e"), "c", false, nil, true},
		{"the bucket's last page", page(false, "a"), "c", false, []string{"a"}, true},
		{"an empty page", page(true), "c", false, nil, true},
		{"the last range takes every key", page(true, "x", "y"), "", true, []string{"x", "y"}, false},
		{"the last range at the bucket's end", page(false, "x", "y"), "", true, []string{"x", "y"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, done := inRange(tc.page, tc.upTo, tc.last)
			if !slices.Equal(keysOf(got), tc.want) || done != tc.wantDone {
				t.Errorf("inRange = %v, %v; want %v, %v", keysOf(got), done, tc.want, tc.wantDone)
			}
		})
	}
}

// The cuts split the pages into listers ranges of about as many pages; a bucket of
// fewer pages is listed whole.
func TestSplitsOf(t *testing.T) {
	var ends []string
	for i := 100; i > 0; i-- { // in any order: the ranges' pages interleave
		ends = append(ends, fmt.Sprintf("k%03d", i))
	}
	if got, want := splitsOf(ends), []string{"k025", "k050", "k075"}; !slices.Equal(got, want) {
		t.Errorf("splits of 100 pages: %v, want %v", got, want)
	}
	if got := splitsOf(ends[:listers-1]); got != nil {
		t.Errorf("splits of %d pages: %v, want none", listers-1, got)
	}
	if got := splitsOf([]string{"a", "a", "a", "a", "b"}); !slices.Equal(got, []string{"a"}) {
		t.Errorf("splits of repeated ends: %v, want [a]", got)
	}
}
