package repair

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// fakeExpireIndex is an index of a few buckets for expiration.
type fakeExpireIndex struct {
	buckets []*cellarv1.Bucket
	objects map[string][]*cellarv1.Location // by bucket, in key order
	deleted []string                        // bucket/key, in order
	// beforeDelete, when set, runs before a delete is applied (a write that races it).
	beforeDelete func(bucket, key string)
}

func (f *fakeExpireIndex) ListBuckets(context.Context) ([]*cellarv1.Bucket, error) {
	return f.buckets, nil
}

func (f *fakeExpireIndex) List(_ context.Context, r *cellarv1.ListRequest) (*cellarv1.ListResponse, error) {
	resp := &cellarv1.ListResponse{}
	for _, loc := range f.objects[r.Bucket] {
		if strings.HasPrefix(loc.Key, r.Prefix) && loc.Key > r.StartAfter {
			if len(resp.Entries) == 2 { // small pages, to walk the paging
				resp.Truncated, resp.Next = true, resp.Entries[1].Key
				break
			}
			resp.Entries = append(resp.Entries, loc)
		}
	}
	return resp, nil
}

func (f *fakeExpireIndex) Delete(_ context.Context, r *cellarv1.DeleteRequest) error {
	if f.beforeDelete != nil {
		f.beforeDelete(r.Bucket, r.Key)
	}
	objs := f.objects[r.Bucket]
	i := slices.IndexFunc(objs, func(l *cellarv1.Location) bool { return l.Key == r.Key })
	if i < 0 {
		return errs.New(errs.NoSuchKey, "no such key")
	}
	if !bytes.Equal(versionID(objs[i]), r.IfObjectId) {
		return errs.New(errs.PreconditionFailed, "replaced")
	}
	f.objects[r.Bucket] = slices.Delete(objs, i, i+1)
	f.deleted = append(f.deleted, r.Bucket+"/"+r.Key)
	return nil
}

// TestLifecycleExpiration runs expiration passes on a fake index with a clock that the
// test moves, so that days pass without waiting for them.
func TestLifecycleExpiration(t *testing.T) {
	day := 24 * time.Hour
	written := time.Date(2026, 3, 10, 15, 30, 0, 0, time.UTC)
	obj := func(key string, size int64, id byte, tags ...string) *cellarv1.Location {
		loc := &cellarv1.Location{Key: key, Size: size, ObjectId: []byte{id}, ModifiedUnixNano: written.UnixNano()}
		for i := 0; i+1 < len(tags); i += 2 {
			loc.Tags = append(loc.Tags, &cellarv1.Tag{Key: tags[i], Value: tags[i+1]})
		}
		return loc
	}
	rules := &cellarv1.LifecycleConfiguration{Rules: []*cellarv1.LifecycleRule{
		{Id: "logs-7d", Enabled: true, Prefix: "logs/", ExpirationDays: 7},
		{Id: "tmp-tagged", Enabled: true, Prefix: "logs/tmp", Tags: []*cellarv1.Tag{{Key: "kind", Value: "scratch"}}, ExpirationDays: 1},
		{Id: "big", Enabled: true, Prefix: "logs/", SizeGreaterThan: 1000, ExpirationDays: 2},
		{Id: "off", Enabled: false, Prefix: "", ExpirationDays: 1},
	}}
	ix := &fakeExpireIndex{
		buckets: []*cellarv1.Bucket{
			{Name: "app", Lifecycle: rules},
			{Name: "moving", Lifecycle: rules, Fence: cellarv1.BucketFence_BUCKET_FENCE_WRITES},
			{Name: "plain"},
		},
		objects: map[string][]*cellarv1.Location{
			"app": {
				obj("data/keep", 10, 1),
				obj("logs/a", 10, 2),
				obj("logs/big", 5000, 3),
				obj("logs/tmp1", 10, 4, "kind", "scratch"),
				obj("logs/tmp2", 10, 5, "kind", "other"),
			},
			"moving": {obj("logs/a", 10, 6)},
			"plain":  {obj("logs/a", 10, 7)},
		},
	}
	r, err := New(Options{Cell: "cell-0", Self: "p"}, fakeMembers{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pass := func(at time.Time, want ...string) {
		t.Helper()
		before := len(ix.deleted)
		res, err := r.expire(ctx, ix, at)
		if err != nil {
			t.Fatal(err)
		}
		got := ix.deleted[before:]
		if !slices.Equal(got, want) {
			t.Errorf("at %s: expired %v, want %v (%+v)", at, got, want, res)
		}
	}
	// Written 15:30 on day 0: a 1-day rule is due at midnight after 15:30 on day 1.
	pass(written.Add(day))
	pass(time.Date(2026, 3, 12, 0, 0, 0, 0, time.UTC), "app/logs/tmp1")
	pass(time.Date(2026, 3, 13, 0, 0, 0, 0, time.UTC).Add(-time.Nanosecond))
	pass(time.Date(2026, 3, 13, 0, 0, 0, 0, time.UTC), "app/logs/big")
	pass(time.Date(2026, 3, 18, 0, 0, 0, 0, time.UTC), "app/logs/a", "app/logs/tmp2")
	pass(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) // data/keep matches no enabled rule; moving is fenced; plain has no rules
	if got := counterValue(r.m.expired); got != 4 {
		t.Errorf("cellar_lifecycle_expired_total = %v, want 4", got)
	}

	// A date rule: everything under the prefix from that midnight on; and an object
	// written again between the listing and the delete is left alone.
	ix.buckets[0].Lifecycle = &cellarv1.LifecycleConfiguration{Rules: []*cellarv1.LifecycleRule{
		{Id: "date", Enabled: true, Prefix: "data/", ExpirationDateUnixNano: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()},
	}}
	ix.objects["app"] = append(ix.objects["app"], obj("data/raced", 10, 8))
	ix.beforeDelete = func(bucket, key string) {
		if key == "data/raced" {
			for _, l := range ix.objects[bucket] {
				if l.Key == key {
					l.ObjectId = []byte{99} // overwritten
				}
			}
		}
	}
	pass(time.Date(2030, 12, 31, 23, 0, 0, 0, time.UTC))
	pass(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), "app/data/keep")
	if left := ix.objects["app"]; len(left) != 1 || left[0].Key != "data/raced" {
		t.Errorf("left in app: %v; want only data/raced, overwritten during the pass", left)
	}
}

func TestDueAtRoundsUpToMidnight(t *testing.T) {
	for _, tc := range []struct {
		written time.Time
		days    int32
		want    time.Time
	}{
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 1, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC), 1, time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 1, 31, 23, 59, 0, 0, time.UTC), 30, time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)},
	} {
		if got := dueAt(&cellarv1.LifecycleRule{ExpirationDays: tc.days}, tc.written); !got.Equal(tc.want) {
			t.Errorf("dueAt(%s + %d days) = %s, want %s", tc.written, tc.days, got, tc.want)
		}
	}
}
