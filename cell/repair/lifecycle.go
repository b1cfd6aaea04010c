package repair

import (
	"context"
	"encoding/hex"
	"strings"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// Lifecycle expiration. Beside its passes, the loop expires the objects that their
// bucket's lifecycle rules (S3 PutBucketLifecycleConfiguration, kept in the bucket's
// record) say are due, in the buckets its cell's index holds:
//
//   - Every Options.Interval it lists the cell's buckets, and for each bucket with an
//     enabled rule (and no move fence) reads its objects, page by page, under the
//     rules' common key prefix.
//   - An object is due under a rule whose filter it matches (key prefix, every tag of
//     the rule, size bounds) once the rule's Date has come, or its Days have passed
//     since it was written, rounded up to the next midnight UTC, as S3 counts them.
//   - A due object is deleted through the index, on the condition that it is still
//     the version that was judged (DeleteRequest.if_object_id): an object written to
//     the key meanwhile is never removed. In a versioned bucket the delete leaves a
//     delete marker, as S3's expiration does. The blobs of a removed object become
//     orphans that garbage collection deletes after its grace.
//   - Deletes are paced (lifecycleDeletesPerSecond), each is logged (an audit line,
//     "lifecycle: object expired", with bucket, key, rule, size, ETag, when it was
//     written and when it was due) and counted in cellar_lifecycle_expired_total.

// lifecycleDeletesPerSecond paces expiration, so that a rule that suddenly covers
// many objects does not load the index with deletes.
const lifecycleDeletesPerSecond = 100

// lifecycleDay is the length of the Days of a rule.
const lifecycleDay = 24 * time.Hour

// ExpireResult is what one expiration pass did.
type ExpireResult struct {
	Buckets int   // buckets with enabled rules that were read
	Scanned int64 // objects judged
	Expired int64 // objects deleted
	Skipped int64 // due objects that changed before their delete (left as they are)
}

// expireIndex is what expiration needs of the cell's index.
type expireIndex interface {
	ListBuckets(ctx context.Context) ([]*cellarv1.Bucket, error)
	List(ctx context.Context, req *cellarv1.ListRequest) (*cellarv1.ListResponse, error)
	Delete(ctx context.Context, req *cellarv1.DeleteRequest) error
}

// cellIndex is expireIndex over the cell's index nodes (leader first).
type cellIndex struct{ r *Repairer }

func (c cellIndex) ListBuckets(ctx context.Context) ([]*cellarv1.Bucket, error) {
	var out []*cellarv1.Bucket
	err := c.r.indexCall(ctx, func(ctx context.Context, ic cellarv1.IndexClient) error {
		resp, err := ic.ListBuckets(ctx, &cellarv1.ListBucketsRequest{})
		out = resp.GetBuckets()
		return err
	})
	return out, err
}

func (c cellIndex) List(ctx context.Context, req *cellarv1.ListRequest) (*cellarv1.ListResponse, error) {
	var out *cellarv1.ListResponse
	err := c.r.indexCall(ctx, func(ctx context.Context, ic cellarv1.IndexClient) error {
		var err error
		out, err = ic.List(ctx, req)
		return err
	})
	return out, err
}

func (c cellIndex) Delete(ctx context.Context, req *cellarv1.DeleteRequest) error {
	return c.r.indexCall(ctx, func(ctx context.Context, ic cellarv1.IndexClient) error {
		_, err := ic.Delete(ctx, req)
		return err
	})
}

// lifecycleLoop makes an expiration pass every Interval while this host leads its
// cell's loop, until ctx is done.
func (r *Repairer) lifecycleLoop(ctx context.Context) {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !r.Leading() {
			continue
		}
		if _, err := r.ExpirePass(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("lifecycle expiration pass did not complete; next one in an interval", "err", err)
		}
	}
}

// ExpirePass expires, once, every object of the cell that is due under its bucket's
// lifecycle rules.
func (r *Repairer) ExpirePass(ctx context.Context) (ExpireResult, error) {
	return r.expire(ctx, cellIndex{r}, r.o.Now())
}

func (r *Repairer) expire(ctx context.Context, ix expireIndex, now time.Time) (ExpireResult, error) {
	var res ExpireResult
	buckets, err := ix.ListBuckets(ctx)
	if err != nil {
		return res, err
	}
	pace := time.NewTicker(time.Second / lifecycleDeletesPerSecond)
	defer pace.Stop()
	for _, b := range buckets {
		rules := enabledRules(b.GetLifecycle())
		if len(rules) == 0 || b.GetFence() != cellarv1.BucketFence_BUCKET_FENCE_NONE {
			continue
		}
		res.Buckets++
		prefix := commonPrefix(rules)
		after := ""
		for {
			page, err := ix.List(ctx, &cellarv1.ListRequest{Bucket: b.Name, Prefix: prefix, StartAfter: after, Limit: 1000})
			if errs.Is(err, errs.NoSuchBucket) {
				break // deleted meanwhile
			}
			if err != nil {
				return res, err
			}
			for _, loc := range page.GetEntries() {
				res.Scanned++
				rule, due, ok := dueRule(rules, loc, now)
				if !ok {
					continue
				}
				select {
				case <-ctx.Done():
					return res, ctx.Err()
				case <-pace.C:
				}
				err := ix.Delete(ctx, &cellarv1.DeleteRequest{Bucket: b.Name, Key: loc.Key, IfObjectId: versionID(loc)})
				switch {
				case errs.Is(err, errs.PreconditionFailed) || errs.Is(err, errs.NoSuchKey):
					res.Skipped++ // written or deleted since it was listed: judged again next pass
					continue
				case err != nil:
					return res, err
				}
				res.Expired++
				r.m.expired.Inc()
				r.log.Info("lifecycle: object expired", "cell", r.o.Cell, "bucket", b.Name, "key", loc.Key,
					"rule", rule.GetId(), "size", loc.GetSize(), "etag", etagOf(loc),
					"last_modified", time.Unix(0, loc.GetModifiedUnixNano()).UTC(), "due", due)
			}
			if !page.GetTruncated() || page.GetNext() == "" {
				break
			}
			after = page.GetNext()
		}
	}
	if res.Expired > 0 || res.Skipped > 0 {
		r.log.Info("lifecycle expiration pass", "cell", r.o.Cell, "buckets", res.Buckets, "scanned", res.Scanned,
			"expired", res.Expired, "skipped", res.Skipped)
	}
	return res, nil
}

// enabledRules returns a configuration's enabled rules.
func enabledRules(c *cellarv1.LifecycleConfiguration) []*cellarv1.LifecycleRule {
	var out []*cellarv1.LifecycleRule
	for _, r := range c.GetRules() {
		if r.GetEnabled() {
			out = append(out, r)
		}
	}
	return out
}

// commonPrefix is the longest key prefix every rule's filter requires.
func commonPrefix(rules []*cellarv1.LifecycleRule) string {
	p := rules[0].GetPrefix()
	for _, r := range rules[1:] {
		q := r.GetPrefix()
		n := 0
		for n < len(p) && n < len(q) && p[n] == q[n] {
			n++
		}
		p = p[:n]
	}
	return p
}

// dueRule returns the first rule under which loc is due at now, and when it was due.
func dueRule(rules []*cellarv1.LifecycleRule, loc *cellarv1.Location, now time.Time) (*cellarv1.LifecycleRule, time.Time, bool) {
	for _, rule := range rules {
		if !matches(rule, loc) {
			continue
		}
		if due := dueAt(rule, time.Unix(0, loc.GetModifiedUnixNano())); !due.IsZero() && !now.Before(due) {
			return rule, due, true
		}
	}
	return nil, time.Time{}, false
}

// matches reports whether loc passes rule's filter.
func matches(rule *cellarv1.LifecycleRule, loc *cellarv1.Location) bool {
	if !strings.HasPrefix(loc.GetKey(), rule.GetPrefix()) {
		return false
	}
	if gt := rule.GetSizeGreaterThan(); gt > 0 && loc.GetSize() <= gt {
		return false
	}
	if lt := rule.GetSizeLessThan(); lt > 0 && loc.GetSize() >= lt {
		return false
	}
next:
	for _, want := range rule.GetTags() {
		for _, t := range loc.GetTags() {
			if t.GetKey() == want.GetKey() && t.GetValue() == want.GetValue() {
				continue next
			}
		}
		return false
	}
	return true
}

// dueAt is when an object written at written expires under rule: the rule's date, or
// written plus its days rounded up to the next midnight UTC (zero: never).
func dueAt(rule *cellarv1.LifecycleRule, written time.Time) time.Time {
	if d := rule.GetExpirationDateUnixNano(); d != 0 {
		return time.Unix(0, d).UTC()
	}
	days := rule.GetExpirationDays()
	if days <= 0 {
		return time.Time{}
	}
	t := written.UTC().Add(time.Duration(days) * lifecycleDay)
	if day := t.Truncate(lifecycleDay); !day.Equal(t) {
		t = day.Add(lifecycleDay)
	}
	return t
}

// etagOf is an object's S3 ETag, for the audit line.
func etagOf(loc *cellarv1.Location) string {
	if loc.GetEtag() != "" {
		return loc.GetEtag()
	}
	return hex.EncodeToString(loc.GetMd5())
}
