package gateway

import (
	"context"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/gateway/s3"
	"github.com/cellarsim/cellar/internal/errs"
)

// Bucket configurations (tags, CORS, lifecycle) live in the bucket's record, in its
// home cell's index; object tags in the object's record, in the object's cell. The
// cell's repair loop (cell/repair) reads the lifecycle rules of the buckets its index
// holds and expires their objects, so lifecycle rules are taken only where every
// object of a bucket is in the bucket's cell (buckets are the partition key).

var _ s3.ConfigBackend = (*cells)(nil)

// BucketConfig reads a bucket's configuration from its cell.
func (c *cells) BucketConfig(ctx context.Context, bucket string) (string, s3.BucketConfig, error) {
	cellID := c.r.BucketCell(bucket)
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, s3.BucketConfig{}, err
	}
	resp, err := ix.GetBucket(ctx, &cellarv1.GetBucketRequest{Name: bucket})
	if err != nil {
		return cellID, s3.BucketConfig{}, err
	}
	b := resp.GetBucket()
	return cellID, s3.BucketConfig{Tags: tagsOf(b.GetTags()), CORS: corsOf(b.GetCors()), Lifecycle: lifecycleOf(b.GetLifecycle())}, nil
}

// PutBucketConfig changes a bucket's configuration in its cell.
func (c *cells) PutBucketConfig(ctx context.Context, bucket string, ch s3.BucketConfigChange) (string, error) {
	cellID := c.r.BucketCell(bucket)
	if ch.SetLifecycle && len(ch.Lifecycle) > 0 && !c.r.ObjectsInBucketCell() {
		return cellID, errs.New(errs.NotImplemented, "cellar does not implement lifecycle rules in a cluster partitioned by object key: a bucket's objects span cells there, and each cell expires only the objects of the buckets it holds.")
	}
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, err
	}
	req := &cellarv1.PutBucketConfigRequest{Name: bucket,
		SetTags: ch.SetTags, Tags: tagsToProto(ch.Tags),
		SetCors: ch.SetCORS, Cors: corsToProto(ch.CORS),
		SetLifecycle: ch.SetLifecycle, Lifecycle: lifecycleToProto(ch.Lifecycle),
	}
	_, err = ix.PutBucketConfig(ctx, req)
	return cellID, err
}

// PutObjectTags replaces the tags of the key's current object in its cell.
func (c *cells) PutObjectTags(ctx context.Context, bucket, key string, tags []s3.Tag) (string, error) {
	cellID := c.r.ObjectCell(bucket, key)
	ix, err := c.index(cellID)
	if err != nil {
		return cellID, err
	}
	_, err = ix.PutObjectTags(ctx, &cellarv1.PutObjectTagsRequest{Bucket: bucket, Key: key, Tags: tagsToProto(tags)})
	if errs.Is(err, errs.NoSuchKey) {
		// S3 says NoSuchBucket when the bucket itself is missing.
		if _, berr := c.HeadBucket(ctx, bucket); errs.Is(berr, errs.NoSuchBucket) {
			return cellID, berr
		}
	}
	return cellID, err
}

func tagsToProto(tags []s3.Tag) []*cellarv1.Tag {
	if len(tags) == 0 {
		return nil
	}
	out := make([]*cellarv1.Tag, len(tags))
	for i, t := range tags {
		out[i] = &cellarv1.Tag{Key: t.Key, Value: t.Value}
	}
	return out
}

func tagsOf(tags []*cellarv1.Tag) []s3.Tag {
	if len(tags) == 0 {
		return nil
	}
	out := make([]s3.Tag, len(tags))
	for i, t := range tags {
		out[i] = s3.Tag{Key: t.GetKey(), Value: t.GetValue()}
	}
	return out
}

func corsToProto(rules []s3.CORSRule) *cellarv1.CorsConfiguration {
	if len(rules) == 0 {
		return nil
	}
	out := &cellarv1.CorsConfiguration{}
	for _, r := range rules {
		out.Rules = append(out.Rules, &cellarv1.CorsRule{Id: r.ID, AllowedOrigins: r.AllowedOrigins,
			AllowedMethods: r.AllowedMethods, AllowedHeaders: r.AllowedHeaders, ExposeHeaders: r.ExposeHeaders,
			MaxAgeSeconds: int32(r.MaxAgeSeconds)})
	}
	return out
}

func corsOf(c *cellarv1.CorsConfiguration) []s3.CORSRule {
	var out []s3.CORSRule
	for _, r := range c.GetRules() {
		out = append(out, s3.CORSRule{ID: r.GetId(), AllowedOrigins: r.GetAllowedOrigins(), AllowedMethods: r.GetAllowedMethods(),
			AllowedHeaders: r.GetAllowedHeaders(), ExposeHeaders: r.GetExposeHeaders(), MaxAgeSeconds: int(r.GetMaxAgeSeconds())})
	}
	return out
}

func lifecycleToProto(rules []s3.LifecycleRule) *cellarv1.LifecycleConfiguration {
	if len(rules) == 0 {
		return nil
	}
	out := &cellarv1.LifecycleConfiguration{}
	for _, r := range rules {
		pr := &cellarv1.LifecycleRule{Id: r.ID, Enabled: r.Enabled, Prefix: r.Prefix, Tags: tagsToProto(r.Tags),
			SizeGreaterThan: r.SizeGreaterThan, SizeLessThan: r.SizeLessThan,
			Form: cellarv1.LifecycleFilterForm(r.Form), ExpirationDays: int32(r.ExpirationDays)}
		if !r.ExpirationDate.IsZero() {
			pr.ExpirationDateUnixNano = r.ExpirationDate.UnixNano()
		}
		out.Rules = append(out.Rules, pr)
	}
	return out
}

func lifecycleOf(c *cellarv1.LifecycleConfiguration) []s3.LifecycleRule {
	var out []s3.LifecycleRule
	for _, r := range c.GetRules() {
		lr := s3.LifecycleRule{ID: r.GetId(), Enabled: r.GetEnabled(), Prefix: r.GetPrefix(), Tags: tagsOf(r.GetTags()),
			SizeGreaterThan: r.GetSizeGreaterThan(), SizeLessThan: r.GetSizeLessThan(),
			Form: s3.LifecycleFilterForm(r.GetForm()), ExpirationDays: int(r.GetExpirationDays())}
		if n := r.GetExpirationDateUnixNano(); n != 0 {
			lr.ExpirationDate = time.Unix(0, n).UTC()
		}
		out = append(out, lr)
	}
	return out
}
