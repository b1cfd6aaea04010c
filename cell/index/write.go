package index

import (
	"bytes"
	"encoding/binary"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// The Store's writes. Each checks its preconditions against the current state, writes
// one Pebble batch through commitBatch, and then changes the in-memory map. In a
// replication group they are called only by the group's FSM, one command at a time in
// log order, so every node makes the same decisions; see fsm.go.

// Condition makes a commit conditional on the object it replaces, as S3's
// If-Match and If-None-Match on PUT do.
type Condition struct {
	IfMatch     string // the current ETag must be this one (quoted or not)
	IfNoneMatch bool   // the key must not exist
	// IfObjectID: on a delete or a tagging, the key's current version must be this
	// one (see checkVersion); on a commit, the version, current or older, whose
	// replicas the commit moves (see moveReplicas).
	IfObjectID []byte
}

// commitBatch commits b. Outside a replication group it is synced. Inside one, the
// raft log the command came from is already synced, so the batch is not, and it also
// records the command's log index, so a restarted node knows what it holds.
func (s *Store) commitBatch(b *pebble.Batch) error {
	if s.applying == 0 {
		return b.Commit(pebble.Sync)
	}
	if err := b.Set(appliedKey, binary.BigEndian.AppendUint64(nil, s.applying), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	s.applied.Store(s.applying)
	return nil
}

// now is the time of the command being applied (the leader's clock when it accepted
// it), so that every node records the same times.
func (s *Store) now() int64 {
	if s.applyingAt != 0 {
		return s.applyingAt
	}
	return time.Now().UnixNano()
}

// Commit makes loc the location of its bucket/key, durably, and returns the location
// it replaced (nil if none). With requireBucket it fails unless the store holds the bucket.
func (s *Store) Commit(loc *cellarv1.Location, requireBucket bool) (*cellarv1.Location, error) {
	return s.CommitIf(loc, requireBucket, Condition{})
}

// CommitIf is Commit when cond holds, PreconditionFailed (or NoSuchKey) when not.
// It follows the bucket's versioning, as CommitVersioned does.
func (s *Store) CommitIf(loc *cellarv1.Location, requireBucket bool, cond Condition) (*cellarv1.Location, error) {
	res, err := s.CommitVersioned(loc, requireBucket, cond, cellarv1.BucketVersioning_BUCKET_VERSIONING_OFF)
	return res.Previous, err
}

// applyCommit commits b, which writes the record of mk, and puts payload in the map.
// The caller holds mk's key lock. It returns the location mk held before.
func (s *Store) applyCommit(b *pebble.Batch, mk, payload []byte) (*cellarv1.Location, error) {
	if err := s.commitBatch(b); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "index write failed")
	}
	s.clearCorrupt(mk)
	prev, existed := s.objects.Put(mk, payload)
	if !existed {
		return nil, nil
	}
	return decodeLocation(mk, prev)
}

// Delete removes bucket/key durably and returns what it removed (nil if nothing). In
// a versioned bucket it adds a delete marker instead; see DeleteVersioned.
func (s *Store) Delete(bucket, key string) (*cellarv1.Location, error) {
	res, err := s.DeleteVersioned(bucket, key, DeleteOptions{})
	return res.Previous, err
}

// CreateBucket creates a bucket.
func (s *Store) CreateBucket(name string) (*cellarv1.Bucket, error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return nil, errs.New(errs.InvalidBucketName, "The specified bucket is not valid.")
	}
	s.bucketMu.Lock()
	defer s.bucketMu.Unlock()
	// A bucket that moved away left its record, fenced, so that a gateway with an
	// older map is refused rather than told it does not exist; once its records are
	// dropped (DropBucket marks it so), a new bucket of the same name replaces it.
	// Until then it is a bucket in its move's cutover, or one waiting for its
	// reclaim: a create is refused as every other request of it is, and neither
	// lifts the fence nor brings the old records back.
	if old, ok := s.buckets[name]; ok {
		if old.Fence != cellarv1.BucketFence_BUCKET_FENCE_ALL {
			return nil, errs.New(errs.BucketExists, "Your previous request to create the named bucket succeeded and you already own it.")
		}
		if !old.Dropped {
			return nil, s.fenceErr(name, true)
		}
	}
	bk := &cellarv1.Bucket{Name: name, CreatedUnixNano: s.now()}
	payload, err := proto.Marshal(bk)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "encode bucket")
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(bucketKey(name), seal(payload), nil); err != nil {
		return nil, errs.Wrap(errs.Internal, err, "index batch")
	}
	if err := s.commitBatch(b); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "index write failed")
	}
	s.buckets[name] = bk
	return bk, nil
}

// hasObjects says whether the map holds a record of the bucket.
func (s *Store) hasObjects(name string) bool {
	found := false
	prefix := mapKey(name, "")
	s.objects.Ascend(prefix, func(k, _ []byte) bool {
		found = bytes.HasPrefix(k, prefix)
		return false
	})
	return found
}

// DeleteBucket deletes an empty bucket.
func (s *Store) DeleteBucket(name string) error {
	s.bucketMu.Lock()
	defer s.bucketMu.Unlock()
	if _, ok := s.buckets[name]; !ok {
		return errs.New(errs.NoSuchBucket, "The specified bucket does not exist.")
	}
	// A bucket moving away (or moved: its tombstone) is not deleted here; the
	// request belongs to the cell it moves to, which the gateway's next map names.
	if err := s.fenceErr(name, true); err != nil {
		return err
	}
	if s.hasObjects(name) {
		return errs.New(errs.BucketNotEmpty, "The bucket you tried to delete is not empty.")
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(bucketKey(name), nil); err != nil {
		return errs.Wrap(errs.Internal, err, "index batch")
	}
	if err := dropChanges(b, name); err != nil {
		return err
	}
	if err := s.keepLastChange(b); err != nil {
		return err
	}
	if err := s.commitBatch(b); err != nil {
		return errs.Wrap(errs.Unavailable, err, "index write failed")
	}
	delete(s.buckets, name)
	return nil
}
