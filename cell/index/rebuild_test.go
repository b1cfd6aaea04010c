package index

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cellarsim/cellar/internal/errs"
)

// refStore is what a store should answer: bucket → key → size.
type refStore map[string]map[string]int64

func (r refStore) sorted(bucket string) []string {
	keys := make([]string, 0, len(r[bucket]))
	for k := range r[bucket] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// fillRandom writes random keys to three buckets with overwrites and deletes, flushing
// Pebble now and then so that the data sits in several sstables.
func fillRandom(t *testing.T, s *Store, rng *rand.Rand, n int) refStore {
	t.Helper()
	ref := refStore{}
	buckets := []string{"alpha", "beta", "gamma"}
	for _, b := range buckets {
		if _, err := s.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
		ref[b] = map[string]int64{}
	}
	for i := 0; i < n; i++ {
		b := buckets[rng.IntN(len(buckets))]
		key := fmt.Sprintf("%s/%x/%d", []string{"img", "doc", "log"}[rng.IntN(3)], rng.IntN(64), rng.IntN(300))
		if rng.IntN(5) == 0 {
			if _, err := s.Delete(b, key); err != nil {
				t.Fatal(err)
			}
			delete(ref[b], key)
		} else {
			if _, err := s.Commit(loc(b, key, int64(i)), true); err != nil {
				t.Fatal(err)
			}
			ref[b][key] = int64(i)
		}
		if i%700 == 699 {
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	return ref
}

// checkAgainst checks every lookup and a full, paged LIST of every bucket.
func checkAgainst(t *testing.T, s *Store, ref refStore) {
	t.Helper()
	for b, keys := range ref {
		for k, size := range keys {
			got, err := s.Lookup(b, k)
			if err != nil || got.Size != size || got.Bucket != b || got.Key != k {
				t.Fatalf("lookup %s/%s = %v, %v; want size %d", b, k, got, err, size)
			}
		}
		for _, k := range []string{"img/0/0x", "missing", "zzz"} {
			if _, ok := keys[k]; !ok {
				if _, err := s.Lookup(b, k); !errs.Is(err, errs.NoSuchKey) {
					t.Fatalf("lookup of absent %s/%s: %v", b, k, err)
				}
			}
		}
		var listed []string
		after := ""
		for {
			res, err := s.List(b, ListOptions{StartAfter: after, Limit: 97})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range res.Entries {
				listed = append(listed, e.Key)
			}
			if !res.Truncated {
				break
			}
			after = res.Next
		}
		if want := ref.sorted(b); !slices.Equal(listed, want) {
			t.Fatalf("list %s: %d keys, want %d (first difference at %d)", b, len(listed), len(want), firstDiff(listed, want))
		}
		// A delimited listing too.
		res, err := s.List(b, ListOptions{Prefix: "doc/", Delimiter: "/"})
		if err != nil {
			t.Fatal(err)
		}
		wantEntries, wantPrefixes, _ := refList(ref.sorted(b), ListOptions{Prefix: "doc/", Delimiter: "/"})
		if len(res.Entries) != len(wantEntries) || !slices.Equal(res.CommonPrefixes, wantPrefixes) {
			t.Fatalf("delimited list %s: %d entries %v, want %d %v", b, len(res.Entries), res.CommonPrefixes, len(wantEntries), wantPrefixes)
		}
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestParallelRebuildAnswersWhatWasWritten(t *testing.T) {
	for _, tc := range []struct{ ranges, workers int }{{0, 0}, {1, 1}, {5, 2}, {16, 3}, {64, 8}} {
		t.Run(fmt.Sprintf("ranges=%d,workers=%d", tc.ranges, tc.workers), func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(uint64(tc.ranges), 11))
			ref := fillRandom(t, s, rng, 3000)
			s.Close()

			s, err = OpenAsync(dir, Options{Ranges: tc.ranges, Workers: tc.workers})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			<-s.Ready()
			if err := s.RebuildErr(); err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, keys := range ref {
				total += len(keys)
			}
			st := s.Stats()
			if st.Objects != int64(total) || s.Len() != total || st.Corrupt != 0 || !st.Done {
				t.Fatalf("stats %+v, len %d; want %d objects", st, s.Len(), total)
			}
			if tc.ranges > 1 && (st.Ranges < 2 || st.Ranges > tc.ranges) {
				t.Errorf("asked for %d ranges, got %d", tc.ranges, st.Ranges)
			}
			if loaded, est := s.Progress(); loaded != int64(total) || est != int64(total) {
				t.Errorf("progress %d/%d, want %d/%d", loaded, est, total, total)
			}
			checkAgainst(t, s, ref)

			// New writes after the rebuild: overwrites, deletes and new keys keep
			// lookups and LIST order right.
			for i := 0; i < 2000; i++ {
				b := []string{"alpha", "beta", "gamma"}[rng.IntN(3)]
				key := fmt.Sprintf("%s/%x/%d", []string{"img", "doc", "new"}[rng.IntN(3)], rng.IntN(64), rng.IntN(300))
				if rng.IntN(3) == 0 {
					if _, err := s.Delete(b, key); err != nil {
						t.Fatal(err)
					}
					delete(ref[b], key)
					continue
				}
				if _, err := s.Commit(loc(b, key, int64(100000+i)), true); err != nil {
					t.Fatal(err)
				}
				ref[b][key] = int64(100000 + i)
			}
			checkAgainst(t, s, ref)
		})
	}
}

// corruptRecord flips a byte of bucket/key's record behind the store's back.
func corruptRecord(t *testing.T, dir, bucket, key string) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	k := objectKey(mapKey(bucket, key))
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
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
}

// holdRanges is an Options.beforeRange hook that lets range 0 load and holds every
// other range until release is closed; reached is closed when a worker is about to
// load range 1, i.e. (with one worker) once range 0 is loaded.
type holdRanges struct {
	reached, release chan struct{}
}

func newHoldRanges() *holdRanges {
	return &holdRanges{reached: make(chan struct{}), release: make(chan struct{})}
}

func (h *holdRanges) hook(i int) {
	if i == 0 {
		return
	}
	if i == 1 {
		close(h.reached)
	}
	<-h.release
}

func TestReadsDuringRebuild(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	ref := fillRandom(t, s, rng, 5000)
	s.Close()
	// One corrupt record in the last bucket, which is in a held range.
	corruptKey := ref.sorted("gamma")[len(ref["gamma"])/2]
	corruptRecord(t, dir, "gamma", corruptKey)
	delete(ref["gamma"], corruptKey)

	for _, pending := range []Pending{PendingSlowDown, PendingPebble} {
		t.Run(pending.String(), func(t *testing.T) {
			h := newHoldRanges()
			s, err := OpenAsync(dir, Options{Pending: pending, Workers: 1, Ranges: 8, beforeRange: h.hook})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			<-h.reached
			st := s.Stats()
			if st.Ranges < 3 || st.Loaded != 1 || st.Done || st.FirstServe <= 0 {
				t.Fatalf("while held: stats %+v, want 1 of several ranges loaded", st)
			}
			select {
			case <-s.Ready():
				t.Fatal("ready while ranges are held")
			default:
			}
			// Buckets are served at once.
			if got := len(s.ListBuckets()); got != 3 {
				t.Fatalf("%d buckets while rebuilding", got)
			}
			// Every key: from memory in range 0; per the policy elsewhere.
			var inFirst, inHeld int
			for b, keys := range ref {
				for k, size := range keys {
					got, err := s.Lookup(b, k)
					switch {
					case s.rangeOf(mapKey(b, k)) == 0:
						inFirst++
						if err != nil || got.Size != size {
							t.Fatalf("lookup %s/%s in the loaded range: %v, %v", b, k, got, err)
						}
					case pending == PendingSlowDown:
						inHeld++
						if !errs.Is(err, errs.SlowDown) || !strings.Contains(err.Error(), "is loading") {
							t.Fatalf("lookup %s/%s in a loading range: %v, %v; want SlowDown", b, k, got, err)
						}
					default:
						inHeld++
						if err != nil || got.Size != size {
							t.Fatalf("lookup %s/%s from Pebble: %v, %v", b, k, got, err)
						}
					}
				}
			}
			if inFirst == 0 || inHeld == 0 {
				t.Fatalf("%d keys in the loaded range, %d in held ones: the test needs both", inFirst, inHeld)
			}
			_, err = s.Lookup("gamma", corruptKey)
			if pending == PendingPebble && !errs.Is(err, errs.Corrupt) {
				t.Fatalf("lookup of the corrupt record from Pebble: %v", err)
			}
			if pending == PendingSlowDown && !errs.Is(err, errs.SlowDown) {
				t.Fatalf("lookup of the corrupt record while loading: %v", err)
			}
			// LIST: complete from Pebble, or refused where it reaches a held range.
			if pending == PendingPebble {
				checkAgainst(t, s, ref)
			} else if _, err := s.List("gamma", ListOptions{}); !errs.Is(err, errs.SlowDown) {
				t.Fatalf("list of a bucket in held ranges: %v", err)
			}
			if loaded, total := s.Progress(); loaded <= 0 || loaded >= total {
				t.Errorf("progress %d of %d while held", loaded, total)
			}

			close(h.release)
			<-s.Ready()
			if err := s.RebuildErr(); err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.Corrupt != 1 || !st.Done || st.Loaded != st.Ranges {
				t.Fatalf("after the rebuild: %+v", st)
			}
			if _, err := s.Lookup("gamma", corruptKey); !errs.Is(err, errs.Corrupt) {
				t.Fatalf("lookup of the corrupt record after the rebuild: %v", err)
			}
			checkAgainst(t, s, ref)
		})
	}
}

func TestCloseDuringRebuild(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fillRandom(t, s, rand.New(rand.NewPCG(9, 9)), 2000)
	s.Close()
	h := newHoldRanges()
	s, err = OpenAsync(dir, Options{Workers: 1, Ranges: 4, beforeRange: h.hook})
	if err != nil {
		t.Fatal(err)
	}
	<-h.reached
	go close(h.release)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	<-s.Ready()
}

func TestMidKey(t *testing.T) {
	for _, tc := range [][2]string{
		{"a", "b"}, {"a", "a\x00\x01"}, {"bench-000\x00k", "bench-999\x00k"}, {"x\x00", "x\x00\x00\x00\x00\x00\x00\x00\x00\x01"},
		{"o", "p"}, {"same/prefix/1", "same/prefix/2"},
	} {
		a, b := []byte(tc[0]), []byte(tc[1])
		m := midKey(a, b)
		if m == nil {
			continue // allowed: no key found between
		}
		if string(m) <= tc[0] || string(m) >= tc[1] {
			t.Errorf("midKey(%q, %q) = %q, not between", tc[0], tc[1], m)
		}
	}
	if m := midKey([]byte("bench-000"), []byte("bench-999")); m == nil {
		t.Error("no key between bench-000 and bench-999")
	}
}
