package index

import (
	"testing"

	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// TestBucketConfigAndObjectTags: configuration parts change one at a time, object
// tags change alone, conditionally, and both survive a reopen (the rebuild).
func TestBucketConfigAndObjectTags(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutBucketConfig(&cellarv1.PutBucketConfigRequest{Name: "b", SetTags: true}); !errs.Is(err, errs.NoSuchBucket) {
		t.Errorf("config of a missing bucket: %v", err)
	}
	if _, err := s.CreateBucket("b"); err != nil {
		t.Fatal(err)
	}
	tags := []*cellarv1.Tag{{Key: "env", Value: "test"}}
	cors := &cellarv1.CorsConfiguration{Rules: []*cellarv1.CorsRule{{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}, MaxAgeSeconds: -1}}}
	lc := &cellarv1.LifecycleConfiguration{Rules: []*cellarv1.LifecycleRule{{Id: "r", Enabled: true, Prefix: "logs/", ExpirationDays: 3}}}
	for _, r := range []*cellarv1.PutBucketConfigRequest{
		{Name: "b", SetTags: true, Tags: tags},
		{Name: "b", SetCors: true, Cors: cors},
		{Name: "b", SetLifecycle: true, Lifecycle: lc},
	} {
		if _, err := s.PutBucketConfig(r); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.GetBucket("b")
	if err != nil || len(b.Tags) != 1 || !proto.Equal(b.Cors, cors) || !proto.Equal(b.Lifecycle, lc) {
		t.Fatalf("bucket after three changes: %v, %v", b, err)
	}
	if _, err := s.PutBucketConfig(&cellarv1.PutBucketConfigRequest{Name: "b", SetCors: true}); err != nil {
		t.Fatal(err)
	}

	obj := loc("b", "k", 10)
	obj.Etag, obj.ModifiedUnixNano = "e", 42
	if _, err := s.Commit(obj, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutObjectTags(&cellarv1.PutObjectTagsRequest{Bucket: "b", Key: "k", Tags: tags, IfObjectId: []byte("another")}); !errs.Is(err, errs.PreconditionFailed) {
		t.Errorf("tags on another version: %v, want PreconditionFailed", err)
	}
	if _, err := s.PutObjectTags(&cellarv1.PutObjectTagsRequest{Bucket: "b", Key: "nope", Tags: tags}); !errs.Is(err, errs.NoSuchKey) {
		t.Errorf("tags on a missing key: %v, want NoSuchKey", err)
	}
	if _, err := s.PutObjectTags(&cellarv1.PutObjectTagsRequest{Bucket: "b", Key: "k", Tags: tags, IfObjectId: obj.ObjectId}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Lookup("b", "k")
	if err != nil {
		t.Fatal(err)
	}
	want := proto.Clone(obj).(*cellarv1.Location)
	want.Tags = tags
	got.VersionId, want.VersionId = "", ""
	if !proto.Equal(got, want) {
		t.Errorf("object after tagging and a reopen:\n got %v\nwant %v", got, want)
	}
	b, err = s.GetBucket("b")
	if err != nil || len(b.Tags) != 1 || b.Cors != nil || !proto.Equal(b.Lifecycle, lc) {
		t.Errorf("bucket after a reopen: %v, %v", b, err)
	}
}
