package index

import (
	"context"

	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// A bucket's configuration (tags, CORS rules, lifecycle rules) lives in its bucket
// record, and an object's tags in its object record: both are checksummed, replicated
// and rebuilt with the rest. Changing one rewrites the record, as every write does.

// PutBucketConfig sets the parts of a bucket's configuration that r names, and leaves
// the others as they are. It returns the bucket as it is now.
func (s *Store) PutBucketConfig(r *cellarv1.PutBucketConfigRequest) (*cellarv1.Bucket, error) {
	s.bucketMu.Lock()
	defer s.bucketMu.Unlock()
	old, ok := s.buckets[r.GetName()]
	if !ok {
		return nil, errs.New(errs.NoSuchBucket, "The specified bucket does not exist.")
	}
	if err := s.fenceErr(r.GetName(), true); err != nil {
		return nil, err
	}
	bk := proto.Clone(old).(*cellarv1.Bucket)
	if r.SetTags {
		bk.Tags = r.Tags
	}
	if r.SetCors {
		bk.Cors = r.Cors
		if len(r.Cors.GetRules()) == 0 {
			bk.Cors = nil
		}
	}
	if r.SetLifecycle {
		bk.Lifecycle = r.Lifecycle
		if len(r.Lifecycle.GetRules()) == 0 {
			bk.Lifecycle = nil
		}
	}
	if err := s.putBucket(bk); err != nil {
		return nil, err
	}
	return bk, nil
}

// PutObjectTags replaces the tags of a key's current version and leaves the rest of
// its record (data, metadata, ETag, time, older versions) as it is. The key must
// exist (its current version not a delete marker); with r.IfObjectId, its current
// version must be that one. It returns the current version as it is now.
func (s *Store) PutObjectTags(r *cellarv1.PutObjectTagsRequest) (*cellarv1.Location, error) {
	s.bucketMu.RLock()
	defer s.bucketMu.RUnlock()
	if err := s.fenceErr(r.GetBucket(), true); err != nil {
		return nil, err
	}
	mk := mapKey(r.GetBucket(), r.GetKey())
	l := s.keyLock(mk)
	l.Lock()
	defer l.Unlock()
	payload, ok := s.objects.Get(mk)
	if !ok {
		return nil, errs.New(errs.NoSuchKey, "The specified key does not exist.")
	}
	rec, err := decodeLocation(mk, payload)
	if err != nil {
		return nil, err
	}
	if rec.GetDeleteMarker() {
		return nil, errs.New(errs.NoSuchKey, "The specified key does not exist.")
	}
	if err := s.checkVersion(mk, r.GetIfObjectId()); err != nil {
		return nil, err
	}
	rec.Tags = r.GetTags()
	if payload, err = encodeLocation(rec); err != nil {
		return nil, errs.Wrap(errs.Internal, err, "encode location")
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(objectKey(mk), seal(payload), nil); err != nil {
		return nil, errs.Wrap(errs.Internal, err, "index batch")
	}
	done, err := s.logChange(b, r.GetBucket(), r.GetKey())
	if err != nil {
		return nil, err
	}
	defer done()
	if _, err := s.applyCommit(b, mk, payload); err != nil {
		return nil, err
	}
	cur := proto.Clone(rec).(*cellarv1.Location)
	cur.Versions = nil
	return cur, nil
}

func (s *server) PutBucketConfig(ctx context.Context, r *cellarv1.PutBucketConfigRequest) (*cellarv1.PutBucketConfigResponse, error) {
	return writeAs[*cellarv1.PutBucketConfigResponse](ctx, s, &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_PutBucketConfig{PutBucketConfig: r}})
}

func (s *server) PutObjectTags(ctx context.Context, r *cellarv1.PutObjectTagsRequest) (*cellarv1.PutObjectTagsResponse, error) {
	return writeAs[*cellarv1.PutObjectTagsResponse](ctx, s, &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_PutObjectTags{PutObjectTags: r}})
}
