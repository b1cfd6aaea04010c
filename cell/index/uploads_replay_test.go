package index

import (
	"testing"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// A completion whose answer was lost is retried by its client after the upload is
// gone: the retry of the same parts answers with the object it made; anything else
// still gets NoSuchUpload.
func TestCompleteUploadRetryAnswersAsTheFirst(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.CreateBucket("b")
	if err := s.CreateUpload(&cellarv1.Upload{Bucket: "b", Key: "k", UploadId: "u1", InitiatedUnixNano: 1}, true); err != nil {
		t.Fatal(err)
	}
	p1, p2 := part(1, 100), part(2, 10)
	for _, p := range []*cellarv1.PartLocation{p1, p2} {
		if _, err := s.PutPart("b", "k", "u1", p); err != nil {
			t.Fatal(err)
		}
	}
	chosen := []CompletedPart{{Number: 1, ETag: `"` + etagOf(p1) + `"`}, {Number: 2, ETag: etagOf(p2)}}
	opts := CompleteOptions{MinPartSize: 100, ModifiedUnixNano: 5}
	first, _, _, err := s.CompleteUpload("b", "k", "u1", chosen, opts)
	if err != nil {
		t.Fatal(err)
	}
	again, prev, unused, err := s.CompleteUpload("b", "k", "u1", chosen, CompleteOptions{MinPartSize: 100, ModifiedUnixNano: 9,
		Condition: Condition{IfNoneMatch: true}})
	if err != nil {
		t.Fatalf("retried completion: %v", err)
	}
	if ETag(again) != ETag(first) || again.ModifiedUnixNano != first.ModifiedUnixNano || prev != nil || unused != nil {
		t.Fatalf("retried completion answered %s at %d (prev %v, unused %v), the first %s at %d",
			ETag(again), again.ModifiedUnixNano, prev, unused, ETag(first), first.ModifiedUnixNano)
	}
	for name, parts := range map[string][]CompletedPart{
		"fewer parts":    chosen[:1],
		"another etag":   {chosen[0], {Number: 2, ETag: etagOf(p1)}},
		"another number": {chosen[0], {Number: 3, ETag: etagOf(p2)}},
	} {
		if _, _, _, err := s.CompleteUpload("b", "k", "u1", parts, opts); !errs.Is(err, errs.NoSuchUpload) {
			t.Errorf("%s: %v, want NoSuchUpload", name, err)
		}
	}
	if _, err := s.Delete("b", "k"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.CompleteUpload("b", "k", "u1", chosen, opts); !errs.Is(err, errs.NoSuchUpload) {
		t.Errorf("completion after the object was deleted: %v, want NoSuchUpload", err)
	}
}
