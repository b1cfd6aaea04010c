package index

import (
	"context"
	"fmt"
	"hash/fnv"

	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// S3 versioning in the index.
//
// A key's record holds all of its versions: the record's Location is the current
// version (a delete marker, perhaps) and its Versions field the older ones, newest
// first. So a version is checked, loaded and served exactly as an object is: the
// rebuild loads a key with every version it has, and the record's checksum covers them
// all. The cost is that a write to a key rewrites all its versions: versioning suits
// keys with a few versions (backups, state files), not thousands.
//
// A version id of "" is S3's "null" version: the version of every object of a bucket
// never versioned, and of writes while versioning is suspended. A key has at most one
// null version. A bucket never versioned keeps records exactly as before versioning
// existed: one version, no id, no history.

// nullVersion is how S3 names the version whose id is "".
const nullVersion = "null"

// versionOf turns S3's "null" into the empty id the records use.
func versionOf(id string) string {
	if id == nullVersion {
		return ""
	}
	return id
}

// derivedVersionID is the version id of a write whose caller chose none (the gateway
// chooses one for every write; other writers may not): the write's time and a hash of
// its key, the same on every node of a replication group.
func derivedVersionID(mk []byte, now int64) string {
	h := fnv.New64a()
	h.Write(mk)
	return fmt.Sprintf("%016x%016x", uint64(now), h.Sum64())
}

// versioningOf returns the versioning a write to bucket follows: the bucket's own
// record when this store holds it, otherwise what the caller says (the bucket lives in
// another cell). The caller holds bucketMu.
func (s *Store) versioningOf(bucket string, requested cellarv1.BucketVersioning) cellarv1.BucketVersioning {
	if b, ok := s.buckets[bucket]; ok {
		return b.GetVersioning()
	}
	return requested
}

// versioningFor is versioningOf for a caller that does not hold bucketMu.
func (s *Store) versioningFor(bucket string, requested cellarv1.BucketVersioning) cellarv1.BucketVersioning {
	s.bucketMu.RLock()
	defer s.bucketMu.RUnlock()
	return s.versioningOf(bucket, requested)
}

// record returns the whole record of mk (nil if there is none); the caller holds mk's
// key lock.
func (s *Store) record(mk []byte) (*cellarv1.Location, error) {
	payload, ok := s.objects.Get(mk)
	if !ok {
		return nil, nil
	}
	return decodeLocation(mk, payload)
}

// allVersions returns the versions of a record, newest first, each without history,
// bucket or key.
func allVersions(rec *cellarv1.Location) []*cellarv1.Location {
	if rec == nil {
		return nil
	}
	top := proto.Clone(rec).(*cellarv1.Location)
	history := top.Versions
	top.Versions, top.Bucket, top.Key = nil, "", ""
	return append([]*cellarv1.Location{top}, history...)
}

// fromVersions makes the record of bucket/key whose versions, newest first, are vs
// (nil when there are none).
func fromVersions(bucket, key string, vs []*cellarv1.Location) *cellarv1.Location {
	if len(vs) == 0 {
		return nil
	}
	rec := proto.Clone(vs[0]).(*cellarv1.Location)
	rec.Bucket, rec.Key = bucket, key
	if len(vs) > 1 {
		rec.Versions = vs[1:]
	}
	return rec
}

// stack makes loc the current version of a key whose record is cur (nil if none):
// it returns the new record and the version the write removes for good, if it is one
// with data (the caller reclaims its blobs). With versioning enabled loc keeps its
// version id and every older version is kept; otherwise loc is the null version and
// replaces the null version the key had, keeping the others. For a key of a bucket
// never versioned that is today's overwrite: the one version is replaced.
func stack(cur, loc *cellarv1.Location, enabled bool) (rec, replaced *cellarv1.Location) {
	if !enabled {
		loc.VersionId = ""
	}
	var kept []*cellarv1.Location
	for _, v := range allVersions(cur) {
		if !enabled && v.VersionId == "" {
			if !v.DeleteMarker {
				replaced = v
				replaced.Bucket, replaced.Key = loc.Bucket, loc.Key
			}
			continue
		}
		kept = append(kept, v)
	}
	loc.Versions = kept
	return loc, replaced
}

// replacedNull returns the version with data of the old record (nil if none) that
// writing rec replaced for good: its null version, when rec is the null version.
func replacedNull(old, rec *cellarv1.Location) *cellarv1.Location {
	if rec.GetVersionId() != "" {
		return nil
	}
	for _, v := range allVersions(old) {
		if v.VersionId == "" && !v.DeleteMarker {
			v.Bucket, v.Key = rec.Bucket, rec.Key
			return v
		}
	}
	return nil
}

// CommitResult is what a versioned commit did.
type CommitResult struct {
	// Previous is the version the commit replaced for good (nil if none): the
	// caller reclaims its blobs.
	Previous *cellarv1.Location
	// VersionID is the id of the new version ("" for null).
	VersionID string
	// Versioning is the versioning the commit followed.
	Versioning cellarv1.BucketVersioning
}

// CommitVersioned makes loc the current version of its key, durably, under the
// bucket's versioning (see versioningOf; versioning is the caller's word for a bucket
// of another cell). Under ENABLED loc.VersionId, chosen by the caller, names the new
// version and the key's older versions are kept; otherwise loc becomes the null
// version. A commit with cond.IfObjectID (repair moving a version's replicas) changes
// the replica lists of the version, current or older, whose VersionID that is, in
// place, and nothing else (see moveReplicas).
func (s *Store) CommitVersioned(loc *cellarv1.Location, requireBucket bool, cond Condition, versioning cellarv1.BucketVersioning) (CommitResult, error) {
	if loc.GetBucket() == "" || loc.GetKey() == "" {
		return CommitResult{}, errs.New(errs.InvalidArgument, "a location needs a bucket and a key")
	}
	loc = proto.Clone(loc).(*cellarv1.Location)
	loc.Versions, loc.DeleteMarker = nil, false
	s.bucketMu.RLock()
	defer s.bucketMu.RUnlock()
	if _, ok := s.buckets[loc.Bucket]; requireBucket && !ok {
		return CommitResult{}, errs.New(errs.NoSuchBucket, "The specified bucket does not exist.")
	}
	if err := s.fenceErr(loc.Bucket, true); err != nil {
		return CommitResult{}, err
	}
	mode := s.versioningOf(loc.Bucket, versioning)
	enabled := mode == cellarv1.BucketVersioning_BUCKET_VERSIONING_ENABLED
	mk := mapKey(loc.Bucket, loc.Key)
	if enabled && loc.VersionId == "" {
		loc.VersionId = derivedVersionID(mk, s.now())
	}
	l := s.keyLock(mk)
	l.Lock()
	defer l.Unlock()
	if err := s.checkCondition(mk, cond); err != nil {
		return CommitResult{}, err
	}
	cur, err := s.record(mk)
	if err != nil {
		return CommitResult{}, err
	}
	var rec, replaced *cellarv1.Location
	if len(cond.IfObjectID) > 0 {
		// The same version, current or older, with its blobs elsewhere: only its
		// replica lists change (see moveReplicas), and nothing is replaced for good.
		if rec, err = moveReplicas(cur, loc, cond.IfObjectID); err != nil {
			return CommitResult{}, err
		}
	} else {
		rec, replaced = stack(cur, loc, enabled)
	}
	payload, err := encodeLocation(rec)
	if err != nil {
		return CommitResult{}, errs.Wrap(errs.Internal, err, "encode location")
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(objectKey(mk), seal(payload), nil); err != nil {
		return CommitResult{}, errs.Wrap(errs.Internal, err, "index batch")
	}
	done, err := s.logChange(b, loc.Bucket, loc.Key)
	if err != nil {
		return CommitResult{}, err
	}
	defer done()
	if _, err := s.applyCommit(b, mk, payload); err != nil {
		return CommitResult{}, err
	}
	return CommitResult{Previous: replaced, VersionID: rec.VersionId, Versioning: mode}, nil
}

// DeleteOptions say what a delete removes.
type DeleteOptions struct {
	// VersionID removes that version for good ("null" for the null version) rather
	// than the key.
	VersionID string
	// Versioning is the caller's word for the bucket's versioning when this store does
	// not hold the bucket; MarkerVersionID the id of the delete marker a delete under
	// ENABLED makes.
	Versioning      cellarv1.BucketVersioning
	MarkerVersionID string
	// IfObjectID: the key's current version must be this one (see checkVersion).
	IfObjectID []byte
}

// DeleteResult is what a delete did.
type DeleteResult struct {
	// Previous is the version removed for good, if it had data: its blobs are the
	// caller's to reclaim.
	Previous *cellarv1.Location
	// VersionID is the version removed (with DeleteOptions.VersionID) or the delete
	// marker made ("" for null); DeleteMarker says whether it is a delete marker.
	VersionID    string
	DeleteMarker bool
	Versioning   cellarv1.BucketVersioning
}

// DeleteVersioned deletes as S3 does under the bucket's versioning: with o.VersionID
// that version goes for good (the next older one becomes current if it was current);
// without, a bucket never versioned loses the key, and a versioned bucket gets a
// delete marker as the key's current version (ENABLED: a new version; SUSPENDED: the
// null version, replacing the one there was). Deleting a version that does not exist
// does nothing.
func (s *Store) DeleteVersioned(bucket, key string, o DeleteOptions) (DeleteResult, error) {
	s.bucketMu.RLock()
	defer s.bucketMu.RUnlock()
	if err := s.fenceErr(bucket, true); err != nil {
		return DeleteResult{}, err
	}
	mode := s.versioningOf(bucket, o.Versioning)
	res := DeleteResult{Versioning: mode}
	mk := mapKey(bucket, key)
	l := s.keyLock(mk)
	l.Lock()
	defer l.Unlock()
	if err := s.checkVersion(mk, o.IfObjectID); err != nil {
		return DeleteResult{}, err
	}
	cur, err := s.record(mk)
	if err != nil {
		return DeleteResult{}, err
	}
	var rec *cellarv1.Location
	switch {
	case o.VersionID != "":
		id := versionOf(o.VersionID)
		res.VersionID = id
		vs := allVersions(cur)
		i := 0
		for i < len(vs) && vs[i].VersionId != id {
			i++
		}
		if i == len(vs) {
			return res, nil
		}
		removed := vs[i]
		res.DeleteMarker = removed.DeleteMarker
		if !removed.DeleteMarker {
			removed.Bucket, removed.Key = bucket, key
			res.Previous = removed
		}
		rec = fromVersions(bucket, key, append(vs[:i:i], vs[i+1:]...))
	case mode == cellarv1.BucketVersioning_BUCKET_VERSIONING_OFF && (cur == nil || cur.VersionId == "" && len(cur.Versions) == 0):
		if cur == nil {
			return res, nil
		}
		res.Previous = cur
	default:
		enabled := mode == cellarv1.BucketVersioning_BUCKET_VERSIONING_ENABLED
		now := s.now()
		marker := &cellarv1.Location{Bucket: bucket, Key: key, DeleteMarker: true, VersionId: o.MarkerVersionID, ModifiedUnixNano: now}
		if enabled && marker.VersionId == "" {
			marker.VersionId = derivedVersionID(mk, now)
		}
		rec, res.Previous = stack(cur, marker, enabled)
		res.VersionID, res.DeleteMarker = rec.VersionId, true
	}
	b := s.db.NewBatch()
	defer b.Close()
	var payload []byte
	if rec == nil {
		err = b.Delete(objectKey(mk), nil)
	} else if payload, err = encodeLocation(rec); err == nil {
		err = b.Set(objectKey(mk), seal(payload), nil)
	}
	if err != nil {
		return DeleteResult{}, errs.Wrap(errs.Internal, err, "index batch")
	}
	done, err := s.logChange(b, bucket, key)
	if err != nil {
		return DeleteResult{}, err
	}
	defer done()
	if err := s.commitBatch(b); err != nil {
		return DeleteResult{}, errs.Wrap(errs.Unavailable, err, "index write failed")
	}
	s.clearCorrupt(mk)
	if rec == nil {
		s.objects.Delete(mk)
	} else {
		s.objects.Put(mk, payload)
	}
	return res, nil
}

// LookupOptions say which version a lookup returns.
type LookupOptions struct {
	// VersionID returns that version ("null" for the null version), a delete marker
	// perhaps; NoSuchVersion if the key has none such.
	VersionID string
	// DeleteMarkers returns a current delete marker rather than NoSuchKey.
	DeleteMarkers bool
	// Versions returns the whole record: the current version with the older ones.
	Versions bool
}

// Lookup returns the current version of bucket/key (NoSuchKey when there is none, or
// when it is a delete marker).
func (s *Store) Lookup(bucket, key string) (*cellarv1.Location, error) {
	return s.LookupVersion(bucket, key, LookupOptions{})
}

// LookupVersion returns the version of bucket/key that o asks for.
func (s *Store) LookupVersion(bucket, key string, o LookupOptions) (*cellarv1.Location, error) {
	rec, err := s.lookupRecord(bucket, key)
	switch {
	case o.VersionID != "":
		if errs.Is(err, errs.NoSuchKey) {
			return nil, errs.New(errs.NoSuchVersion, "The specified version does not exist.")
		}
		if err != nil {
			return nil, err
		}
		id := versionOf(o.VersionID)
		for _, v := range allVersions(rec) {
			if v.VersionId == id {
				v.Bucket, v.Key = bucket, key
				return v, nil
			}
		}
		return nil, errs.New(errs.NoSuchVersion, "The specified version does not exist.")
	case err != nil:
		return nil, err
	case o.Versions:
		return rec, nil
	}
	if rec.DeleteMarker && !o.DeleteMarkers {
		return nil, errs.New(errs.NoSuchKey, "The specified key does not exist.")
	}
	rec.Versions = nil
	return rec, nil
}

// SetBucketVersioning sets a bucket's versioning: ENABLED or SUSPENDED (a bucket
// never goes back to OFF).
func (s *Store) SetBucketVersioning(name string, v cellarv1.BucketVersioning) (*cellarv1.Bucket, error) {
	if v != cellarv1.BucketVersioning_BUCKET_VERSIONING_ENABLED && v != cellarv1.BucketVersioning_BUCKET_VERSIONING_SUSPENDED {
		return nil, errs.New(errs.MalformedXML, "Versioning can be set to Enabled or Suspended only.")
	}
	s.bucketMu.Lock()
	defer s.bucketMu.Unlock()
	old, ok := s.buckets[name]
	if !ok || old.Fence == cellarv1.BucketFence_BUCKET_FENCE_ALL {
		if ok {
			return nil, s.fenceErr(name, true)
		}
		return nil, errs.New(errs.NoSuchBucket, "The specified bucket does not exist.")
	}
	if err := s.fenceErr(name, true); err != nil {
		return nil, err
	}
	bk := proto.Clone(old).(*cellarv1.Bucket)
	bk.Versioning = v
	if err := s.putBucket(bk); err != nil {
		return nil, err
	}
	return bk, nil
}

func (s *server) SetBucketVersioning(ctx context.Context, r *cellarv1.SetBucketVersioningRequest) (*cellarv1.SetBucketVersioningResponse, error) {
	return writeAs[*cellarv1.SetBucketVersioningResponse](ctx, s, &cellarv1.IndexCommand{Op: &cellarv1.IndexCommand_SetBucketVersioning{SetBucketVersioning: r}})
}
