package index

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

func loc(bucket, key string, size int64) *cellarv1.Location {
	return &cellarv1.Location{Bucket: bucket, Key: key, ObjectId: []byte(fmt.Sprintf("%016d", size)), Size: size, Replicas: []string{"s0", "s1"}}
}

// refList is the reference implementation of List over a sorted key set.
func refList(keys []string, o ListOptions) (entries, prefixes []string, truncated bool) {
	if o.Limit <= 0 {
		o.Limit = 1000
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if !strings.HasPrefix(k, o.Prefix) || k <= o.StartAfter {
			continue
		}
		name, isPrefix := k, false
		if o.Delimiter != "" {
			if i := strings.Index(k[len(o.Prefix):], o.Delimiter); i >= 0 {
				name, isPrefix = k[:len(o.Prefix)+i+len(o.Delimiter)], true
			}
		}
		if isPrefix && (seen[name] || name <= o.StartAfter) {
			continue
		}
		if len(entries)+len(prefixes) == o.Limit {
			return entries, prefixes, true
		}
		if isPrefix {
			seen[name] = true
			prefixes = append(prefixes, name)
		} else {
			entries = append(entries, name)
		}
	}
	return entries, prefixes, false
}

func TestStoreMatchesReferenceAcrossRebuilds(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateBucket("photos"); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ref := map[string]int64{}
	for i := 0; i < 3000; i++ {
		key := fmt.Sprintf("%c/%c/%d", 'a'+rng.IntN(4), 'a'+rng.IntN(3), rng.IntN(400))
		if rng.IntN(4) == 0 {
			prev, err := s.Delete("photos", key)
			if err != nil {
				t.Fatal(err)
			}
			if _, had := ref[key]; had != (prev != nil) {
				t.Fatalf("delete %q: previous=%v, reference had=%v", key, prev, had)
			}
			delete(ref, key)
			continue
		}
		prev, err := s.Commit(loc("photos", key, int64(i)), true)
		if err != nil {
			t.Fatal(err)
		}
		if old, had := ref[key]; had != (prev != nil) || (had && prev.Size != old) {
			t.Fatalf("commit %q: previous=%v, reference=%v,%v", key, prev, old, had)
		}
		ref[key] = int64(i)
	}
	check := func(s *Store) {
		t.Helper()
		if s.Len() != len(ref) {
			t.Fatalf("len = %d, want %d", s.Len(), len(ref))
		}
		for k, size := range ref {
			got, err := s.Lookup("photos", k)
			if err != nil || got.Size != size || got.Key != k || got.Bucket != "photos" {
				t.Fatalf("lookup %q = %v, %v; want size %d", k, got, err, size)
			}
		}
		if _, err := s.Lookup("photos", "nope"); !errs.Is(err, errs.NoSuchKey) {
			t.Fatalf("lookup of a missing key: %v", err)
		}
		keys := make([]string, 0, len(ref))
		for k := range ref {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, o := range []ListOptions{
			{}, {Limit: 7}, {Prefix: "b/"}, {Delimiter: "/"}, {Prefix: "a/", Delimiter: "/"},
			{Prefix: "c/b/", Limit: 5, StartAfter: "c/b/2"}, {Delimiter: "/", StartAfter: "b/"},
			{Delimiter: "/", Limit: 2}, {Prefix: "d/a", Delimiter: "/"}, {Prefix: "zzz"},
		} {
			// Page through with Next, as a client does.
			var gotE, gotP []string
			page := o
			for {
				res, err := s.List("photos", page)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range res.Entries {
					gotE = append(gotE, e.Key)
				}
				gotP = append(gotP, res.CommonPrefixes...)
				if !res.Truncated {
					break
				}
				page.StartAfter = res.Next
			}
			all := o
			all.Limit = 1 << 30
			wantE, wantP, _ := refList(keys, all)
			if !slices.Equal(gotE, wantE) || !slices.Equal(gotP, wantP) {
				t.Fatalf("list %+v:\n got %d entries %v prefixes %v\nwant %d entries %v prefixes %v", o, len(gotE), head(gotE), gotP, len(wantE), head(wantE), wantP)
			}
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Objects != int64(len(ref)) || st.Corrupt != 0 {
		t.Fatalf("rebuild stats %+v, want %d objects", st, len(ref))
	}
	check(s)
	// New writes after the rebuild keep LIST order.
	for i := 0; i < 200; i++ {
		key := fmt.Sprintf("%c/new/%03d", 'a'+rng.IntN(4), rng.IntN(500))
		if _, err := s.Commit(loc("photos", key, int64(i)), true); err != nil {
			t.Fatal(err)
		}
		ref[key] = int64(i)
	}
	check(s)
}

func head(s []string) []string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

func TestBuckets(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Commit(loc("nobucket", "k", 1), true); !errs.Is(err, errs.NoSuchBucket) {
		t.Fatalf("commit into a missing bucket: %v", err)
	}
	if _, err := s.CreateBucket("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateBucket("a"); !errs.Is(err, errs.BucketExists) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := s.CreateBucket("ab"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(loc("ab", "k", 1), true); err != nil {
		t.Fatal(err)
	}
	// "a" is empty even though "ab" (which sorts right after it) is not.
	if err := s.DeleteBucket("ab"); !errs.Is(err, errs.BucketNotEmpty) {
		t.Fatalf("delete of a full bucket: %v", err)
	}
	if err := s.DeleteBucket("a"); err != nil {
		t.Fatalf("delete of an empty bucket: %v", err)
	}
	if err := s.DeleteBucket("a"); !errs.Is(err, errs.NoSuchBucket) {
		t.Fatalf("delete of a deleted bucket: %v", err)
	}
	if got := s.ListBuckets(); len(got) != 1 || got[0].Name != "ab" {
		t.Fatalf("buckets = %v", got)
	}
}

func TestCorruptRecordIsReportedAndNotServed(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.CreateBucket("b")
	for _, k := range []string{"good-1", "bad", "good-2"} {
		if _, err := s.Commit(loc("b", k, 5), true); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	// Flip a byte of one record's payload behind the index's back.
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := objectKey(mapKey("b", "bad"))
	v, closer, err := db.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), v...)
	closer.Close()
	bad[len(bad)-1] ^= 0x40
	if err := db.Set(k, bad, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Corrupt != 1 || st.Objects != 2 {
		t.Fatalf("stats %+v, want 1 corrupt and 2 objects", st)
	}
	if _, err := s.Lookup("b", "bad"); !errs.Is(err, errs.Corrupt) {
		t.Fatalf("lookup of the corrupt record: %v, want a corrupt error", err)
	}
	for _, k := range []string{"good-1", "good-2"} {
		if _, err := s.Lookup("b", k); err != nil {
			t.Fatalf("lookup %s: %v", k, err)
		}
	}
	res, _ := s.List("b", ListOptions{})
	if len(res.Entries) != 2 {
		t.Fatalf("list served %d entries, want the 2 good ones", len(res.Entries))
	}
	// Writing the key again repairs it.
	if _, err := s.Commit(loc("b", "bad", 9), true); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Lookup("b", "bad"); err != nil || got.Size != 9 {
		t.Fatalf("after rewrite: %v %v", got, err)
	}
}
