package index

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"testing"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

func part(n int32, size int64) *cellarv1.PartLocation {
	sum := md5.Sum([]byte(fmt.Sprint(n, size)))
	return &cellarv1.PartLocation{Number: n, ObjectId: []byte(fmt.Sprintf("part-%d", n)), Size: size, Md5: sum[:], Replicas: []string{"s0"}}
}

func etagOf(p *cellarv1.PartLocation) string { return hex.EncodeToString(p.Md5) }

func TestConditionalCommit(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.CreateBucket("b")
	l := loc("b", "k", 10)
	l.Md5 = []byte{1, 2}
	if _, err := s.CommitIf(l, true, Condition{IfMatch: "0102"}); !errs.Is(err, errs.NoSuchKey) {
		t.Fatalf("If-Match on a missing key: %v, want NoSuchKey", err)
	}
	if _, err := s.CommitIf(l, true, Condition{IfNoneMatch: true}); err != nil {
		t.Fatalf("If-None-Match on a missing key: %v", err)
	}
	if _, err := s.CommitIf(l, true, Condition{IfNoneMatch: true}); !errs.Is(err, errs.PreconditionFailed) {
		t.Fatalf("If-None-Match on an existing key: %v, want PreconditionFailed", err)
	}
	if _, err := s.CommitIf(l, true, Condition{IfMatch: `"ffff"`}); !errs.Is(err, errs.PreconditionFailed) {
		t.Fatalf("If-Match with another ETag: %v, want PreconditionFailed", err)
	}
	if prev, err := s.CommitIf(l, true, Condition{IfMatch: `"0102"`}); err != nil || prev == nil {
		t.Fatalf("If-Match with the ETag: %v, %v", prev, err)
	}
}

func TestMultipartUpload(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.CreateBucket("b")
	meta := &cellarv1.Location{ContentType: "text/plain", UserMetadata: map[string]string{"a": "1"}}
	if err := s.CreateUpload(&cellarv1.Upload{Bucket: "nope", Key: "k", UploadId: "u0", Meta: meta}, true); !errs.Is(err, errs.NoSuchBucket) {
		t.Fatalf("upload in a missing bucket: %v", err)
	}
	if err := s.CreateUpload(&cellarv1.Upload{Bucket: "b", Key: "k", UploadId: "u1", InitiatedUnixNano: 1, Meta: meta}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUpload(&cellarv1.Upload{Bucket: "b", Key: "k2", UploadId: "u2", InitiatedUnixNano: 2}, true); err != nil {
		t.Fatal(err)
	}
	const min = 100
	p1, p2, p3, p2b := part(1, min), part(2, 50), part(3, 20), part(2, min)
	for _, p := range []*cellarv1.PartLocation{p1, p2, p3} {
		if prev, err := s.PutPart("b", "k", "u1", p); err != nil || prev != nil {
			t.Fatalf("PutPart %d: %v %v", p.Number, prev, err)
		}
	}
	if prev, err := s.PutPart("b", "k", "u1", p2b); err != nil || prev == nil || prev.Size != 50 {
		t.Fatalf("PutPart replacing part 2: %v %v", prev, err)
	}
	if _, err := s.PutPart("b", "other", "u1", p1); !errs.Is(err, errs.NoSuchUpload) {
		t.Fatalf("PutPart with the wrong key: %v", err)
	}
	_, parts, _, err := s.ListParts("b", "k", "u1", 0, 0)
	if err != nil || len(parts) != 3 || parts[1].Size != min {
		t.Fatalf("ListParts: %v %v", parts, err)
	}
	ups, _, err := s.ListUploads(ListUploadsOptions{Bucket: "b"})
	if err != nil || len(ups) != 2 || ups[0].UploadId != "u1" {
		t.Fatalf("ListUploads: %v %v", ups, err)
	}
	if ups, _, _ := s.ListUploads(ListUploadsOptions{InitiatedBeforeUnixNano: 2}); len(ups) != 1 {
		t.Fatalf("ListUploads initiated before 2: %v", ups)
	}

	opts := CompleteOptions{MinPartSize: min, ModifiedUnixNano: 5, RequireBucket: true}
	for _, tc := range []struct {
		parts []CompletedPart
		kind  errs.Kind
	}{
		{nil, errs.MalformedXML},
		{[]CompletedPart{{2, etagOf(p2b)}, {1, etagOf(p1)}}, errs.InvalidPartOrder},
		{[]CompletedPart{{1, etagOf(p1)}, {4, etagOf(p3)}}, errs.InvalidPart},
		{[]CompletedPart{{1, etagOf(p1)}, {2, etagOf(p2)}}, errs.InvalidPart}, // the replaced part's ETag
		{[]CompletedPart{{1, etagOf(p1)}, {3, etagOf(p3)}, {2, etagOf(p2b)}}, errs.InvalidPartOrder},
		{[]CompletedPart{{3, etagOf(p3)}, {2, etagOf(p2b)}}, errs.InvalidPartOrder},
		{[]CompletedPart{{1, etagOf(p1)}, {3, etagOf(p3)}, {4, etagOf(p3)}}, errs.InvalidPart},
	} {
		if _, _, _, err := s.CompleteUpload("b", "k", "u1", tc.parts, opts); !errs.Is(err, tc.kind) {
			t.Errorf("Complete %v: %v, want %v", tc.parts, err, tc.kind)
		}
	}
	if _, _, _, err := s.CompleteUpload("b", "k", "u1", []CompletedPart{{3, etagOf(p3)}, {4, "x"}}, opts); !errs.Is(err, errs.InvalidPart) {
		t.Errorf("Complete with an unknown part: %v", err)
	}
	small := CompleteOptions{MinPartSize: 1000, RequireBucket: true}
	if _, _, _, err := s.CompleteUpload("b", "k", "u1", []CompletedPart{{1, etagOf(p1)}, {3, etagOf(p3)}}, small); !errs.Is(err, errs.EntityTooSmall) {
		t.Errorf("Complete with a small part: %v", err)
	}
	if _, err := s.Lookup("b", "k"); !errs.Is(err, errs.NoSuchKey) {
		t.Fatalf("a failed completion left an object: %v", err)
	}
	loc, prev, unused, err := s.CompleteUpload("b", "k", "u1", []CompletedPart{{1, `"` + etagOf(p1) + `"`}, {3, etagOf(p3)}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	h := md5.New()
	h.Write(p1.Md5)
	h.Write(p3.Md5)
	if want := hex.EncodeToString(h.Sum(nil)) + "-2"; ETag(loc) != want || loc.Size != min+20 || prev != nil || len(unused) != 1 || unused[0].Number != 2 {
		t.Fatalf("completed %v (etag %s, want %s), prev %v, unused %v", loc, ETag(loc), want, prev, unused)
	}
	if _, _, _, err := s.CompleteUpload("b", "k", "u1", []CompletedPart{{1, etagOf(p1)}}, opts); !errs.Is(err, errs.NoSuchUpload) {
		t.Fatalf("second completion: %v", err)
	}
	parts2, err := s.AbortUpload("b", "k2", "u2")
	if err != nil || len(parts2) != 0 {
		t.Fatalf("abort: %v %v", parts2, err)
	}
	s.Close()

	// The object and the absence of the uploads survive a restart.
	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Lookup("b", "k")
	if err != nil || len(got.Parts) != 2 || got.ContentType != "text/plain" || got.UserMetadata["a"] != "1" || got.Etag != loc.Etag {
		t.Fatalf("after restart: %v %v", got, err)
	}
	if ups, _, err := s.ListUploads(ListUploadsOptions{}); err != nil || len(ups) != 0 {
		t.Fatalf("uploads left: %v %v", ups, err)
	}
}
