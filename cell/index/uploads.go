package index

// Multipart uploads. An upload and its parts are index records of the object's cell
// until the upload is completed or aborted; the parts' bytes are blobs on the cell's
// storage nodes, like objects. Completion is one Pebble batch that writes the object's
// record (its Location lists the parts) and deletes the upload and part records, so the
// object appears whole or not at all.
//
// Pebble key space, next to the objects and buckets of record.go:
//
//	'u' bucket 0x00 upload-id         → checksummed Upload
//	'p' upload-id 0x00 part (4 bytes) → checksummed PartLocation
//
// Upload ids are chosen by the caller, are unique and never contain 0x00.
//
// Each write is an apply* function that adds its records to a Pebble batch and updates
// memory, wrapped by a method that applies it alone in a synced batch. The reads of an
// apply* function go through the batch when it is indexed, so several writes can share
// one batch.

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

const (
	prefixUpload = 'u'
	prefixPart   = 'p'

	// MaxParts is the largest part number, as in S3.
	MaxParts = 10000
)

// writeAlone runs apply, a write to an upload of bucket, on a fresh batch under
// bucketMu (for reading; taken first, as by every object write) and uploadsMu, and
// commits it with commitBatch (synced outside a replication group). A bucket whose
// writes are fenced refuses it, checked under the lock as the fence is set.
func (s *Store) writeAlone(bucket string, apply func(b *pebble.Batch) error) error {
	s.bucketMu.RLock()
	defer s.bucketMu.RUnlock()
	if err := s.fenceErr(bucket, true); err != nil {
		return err
	}
	s.uploadsMu.Lock()
	defer s.uploadsMu.Unlock()
	b := s.db.NewIndexedBatch()
	defer b.Close()
	if err := apply(b); err != nil {
		return err
	}
	if err := s.commitBatch(b); err != nil {
		return errs.Wrap(errs.Unavailable, err, "index write failed")
	}
	return nil
}

// reader is what the reads of an apply* function go through.
func (s *Store) reader(b *pebble.Batch) pebble.Reader {
	if b != nil && b.Indexed() {
		return b
	}
	return s.db
}

func uploadKey(bucket, uploadID string) []byte {
	k := make([]byte, 0, 2+len(bucket)+len(uploadID))
	k = append(k, prefixUpload)
	k = append(k, bucket...)
	k = append(k, 0)
	return append(k, uploadID...)
}

func partPrefix(uploadID string) []byte {
	k := make([]byte, 0, 2+len(uploadID)+4)
	k = append(k, prefixPart)
	k = append(k, uploadID...)
	return append(k, 0)
}

func partKey(uploadID string, number int32) []byte {
	return binary.BigEndian.AppendUint32(partPrefix(uploadID), uint32(number))
}

// ETag returns the S3 ETag of a location, without quotes: the MD5 of a single-part
// object, "<md5 of md5s>-<parts>" for a multipart one.
func ETag(loc *cellarv1.Location) string {
	if loc.GetEtag() != "" {
		return loc.Etag
	}
	return hex.EncodeToString(loc.GetMd5())
}

func normalizeETag(e string) string {
	return strings.ToLower(strings.Trim(strings.TrimSpace(e), `"`))
}

// checkCondition evaluates cond against the current object of mk; the caller holds
// mk's key lock.
func (s *Store) checkCondition(mk []byte, cond Condition) error {
	if cond.IfMatch == "" && !cond.IfNoneMatch {
		return nil
	}
	payload, exists := s.objects.Get(mk)
	var cur *cellarv1.Location
	if exists {
		var err error
		if cur, err = decodeLocation(mk, payload); err != nil {
			return err
		}
		exists = !cur.DeleteMarker // a key deleted in a versioned bucket does not exist
	}
	if cond.IfNoneMatch && exists {
		return errs.New(errs.PreconditionFailed, "At least one of the pre-conditions you specified did not hold")
	}
	if cond.IfMatch != "" {
		if !exists {
			return errs.New(errs.NoSuchKey, "The specified key does not exist.")
		}
		if want := normalizeETag(cond.IfMatch); want != "*" && want != ETag(cur) {
			return errs.New(errs.PreconditionFailed, "At least one of the pre-conditions you specified did not hold")
		}
	}
	return nil
}

func sealProto(m proto.Message) ([]byte, error) {
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "encode record")
	}
	return seal(payload), nil
}

func getSealed(r pebble.Reader, k []byte, m proto.Message) (bool, error) {
	v, closer, err := r.Get(k)
	if err == pebble.ErrNotFound {
		return false, nil
	}
	if err != nil {
		return false, errs.Wrap(errs.Unavailable, err, "index read failed")
	}
	defer closer.Close()
	payload, ok := open(v)
	if !ok || proto.Unmarshal(payload, m) != nil {
		return false, errs.New(errs.Corrupt, "an index record of this upload is damaged")
	}
	return true, nil
}

// getUpload returns the upload, or NoSuchUpload unless it exists for bucket/key.
func getUpload(r pebble.Reader, bucket, key, uploadID string) (*cellarv1.Upload, error) {
	if uploadID == "" || strings.IndexByte(uploadID, 0) >= 0 || strings.IndexByte(bucket, 0) >= 0 {
		return nil, errs.New(errs.NoSuchUpload, "")
	}
	var u cellarv1.Upload
	found, err := getSealed(r, uploadKey(bucket, uploadID), &u)
	if err != nil {
		return nil, err
	}
	if !found || u.Key != key {
		return nil, errs.New(errs.NoSuchUpload, "")
	}
	return &u, nil
}

// listParts returns the parts of an upload in number order, those above after only.
func listParts(r pebble.Reader, uploadID string, after int32, limit int) ([]*cellarv1.PartLocation, bool, error) {
	if after >= MaxParts {
		return nil, false, nil
	}
	lower := partKey(uploadID, max(after, 0)+1)
	upper := prefixSuccessor(partPrefix(uploadID))
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, false, errs.Wrap(errs.Unavailable, err, "index read failed")
	}
	defer it.Close()
	var out []*cellarv1.PartLocation
	for it.First(); it.Valid(); it.Next() {
		if limit > 0 && len(out) == limit {
			return out, true, nil
		}
		payload, ok := open(it.Value())
		var p cellarv1.PartLocation
		if !ok || proto.Unmarshal(payload, &p) != nil {
			return nil, false, errs.New(errs.Corrupt, "a part record of this upload is damaged")
		}
		out = append(out, &p)
	}
	return out, false, nil
}

// CreateUpload records a new multipart upload (write). u carries the bucket, key,
// upload id, initiation time and the metadata the object will have.
func (s *Store) CreateUpload(u *cellarv1.Upload, requireBucket bool) error {
	return s.writeAlone(u.GetBucket(), func(b *pebble.Batch) error { return s.applyCreateUpload(b, u, requireBucket) })
}

func (s *Store) applyCreateUpload(b *pebble.Batch, u *cellarv1.Upload, requireBucket bool) error {
	if u.GetBucket() == "" || u.GetKey() == "" || u.GetUploadId() == "" || strings.IndexByte(u.UploadId, 0) >= 0 {
		return errs.New(errs.InvalidArgument, "an upload needs a bucket, a key and an id")
	}
	if _, ok := s.buckets[u.Bucket]; requireBucket && !ok {
		return errs.New(errs.NoSuchBucket, "The specified bucket does not exist.")
	}
	v, err := sealProto(u)
	if err != nil {
		return err
	}
	return b.Set(uploadKey(u.Bucket, u.UploadId), v, nil)
}

// PutPart records an uploaded part (write) and returns the part of the same number it
// replaced, whose blob the caller reclaims. It fails with NoSuchUpload when the upload
// is gone, and the caller then reclaims the new part's blob.
func (s *Store) PutPart(bucket, key, uploadID string, part *cellarv1.PartLocation) (prev *cellarv1.PartLocation, err error) {
	err = s.writeAlone(bucket, func(b *pebble.Batch) error {
		prev, err = s.applyPutPart(b, bucket, key, uploadID, part)
		return err
	})
	return prev, err
}

func (s *Store) applyPutPart(b *pebble.Batch, bucket, key, uploadID string, part *cellarv1.PartLocation) (*cellarv1.PartLocation, error) {
	if part.GetNumber() < 1 || part.GetNumber() > MaxParts {
		return nil, errs.New(errs.InvalidArgument, "Part number must be an integer between 1 and %d, inclusive.", MaxParts)
	}
	r := s.reader(b)
	if _, err := getUpload(r, bucket, key, uploadID); err != nil {
		return nil, err
	}
	v, err := sealProto(part)
	if err != nil {
		return nil, err
	}
	pk := partKey(uploadID, part.Number)
	var prev cellarv1.PartLocation
	found, err := getSealed(r, pk, &prev)
	if err != nil && !errs.Is(err, errs.Corrupt) {
		return nil, err
	}
	if err := b.Set(pk, v, nil); err != nil {
		return nil, err
	}
	if !found {
		return nil, nil
	}
	return &prev, nil
}

// CompletedPart is one entry of a CompleteMultipartUpload request.
type CompletedPart struct {
	Number int32
	ETag   string // quoted or not
}

// CompleteOptions are the settings of one completion.
type CompleteOptions struct {
	MinPartSize      int64 // every part but the last must be at least this large
	ModifiedUnixNano int64 // the object's Last-Modified
	RequireBucket    bool
	Condition        Condition
	// Declared is what the client declares of the checksums; the completion fails,
	// writing nothing, unless it matches the upload and its parts.
	Declared DeclaredChecksums
	// Versioning and VersionID are as for CommitVersioned: the object is a new
	// version named VersionID under ENABLED, the null version otherwise.
	Versioning cellarv1.BucketVersioning
	VersionID  string
}

// Checksum types of a multipart upload (Upload.ChecksumType): how the object's
// checksum is made from its parts' checksums.
const (
	ChecksumFullObject = "FULL_OBJECT" // the checksum of the whole object, from the parts' CRCs
	ChecksumComposite  = "COMPOSITE"   // the checksum of the parts' checksums, "<value>-<parts>"
)

// DeclaredChecksums is what a CompleteMultipartUpload declares of checksums; empty
// fields declare nothing.
type DeclaredChecksums struct {
	Algorithm string // of Value: CRC32, CRC32C, CRC64NVME, SHA1 or SHA256
	Value     string // the object's checksum, base64; a composite one may end in "-<parts>"
	Type      string // ChecksumFullObject or ChecksumComposite
	// Parts are the part checksums the request names, by part number: each must be
	// the one its part was uploaded with.
	Parts map[int32]PartChecksum
}

// PartChecksum is a part's checksum as a client names it.
type PartChecksum struct{ Algorithm, Value string }

// declaredChecksumsOf reads the checksums a completion request declares.
func declaredChecksumsOf(r *cellarv1.CompleteUploadRequest) DeclaredChecksums {
	d := DeclaredChecksums{Algorithm: r.GetChecksumAlgorithm(), Value: r.GetChecksum(), Type: r.GetChecksumType()}
	for _, p := range r.GetParts() {
		if p.GetChecksum() == "" {
			continue
		}
		if d.Parts == nil {
			d.Parts = map[int32]PartChecksum{}
		}
		d.Parts[p.Number] = PartChecksum{Algorithm: p.ChecksumAlgorithm, Value: p.Checksum}
	}
	return d
}

// CompleteUpload turns an upload into its object (write), atomically: one batch writes
// the object's record, listing the chosen parts, and deletes the upload and every part
// record. It returns the new location, the location it replaced and the uploaded parts
// the object does not use; the caller reclaims the blobs of the last two. On any error
// nothing is written.
func (s *Store) CompleteUpload(bucket, key, uploadID string, chosen []CompletedPart, o CompleteOptions) (loc, prev *cellarv1.Location, unused []*cellarv1.PartLocation, err error) {
	// bucketMu first, as every object write takes it: the bucket stays as it is
	// (its versioning, whether its changes are logged) until the object is made.
	s.bucketMu.RLock()
	defer s.bucketMu.RUnlock()
	if err := s.fenceErr(bucket, true); err != nil {
		return nil, nil, nil, err
	}
	mk := mapKey(bucket, key)
	l := s.keyLock(mk)
	l.Lock()
	defer l.Unlock()
	s.uploadsMu.Lock()
	defer s.uploadsMu.Unlock()
	b := s.db.NewIndexedBatch()
	defer b.Close()
	loc, unused, mk, payload, err := s.applyCompleteUpload(b, bucket, key, uploadID, chosen, o)
	if errs.Is(err, errs.NoSuchUpload) {
		if done := s.completedAs(mapKey(bucket, key), chosen); done != nil {
			return done, nil, nil, nil // a replay of the completion that made the object
		}
	}
	if err != nil {
		return nil, nil, nil, err
	}
	done, err := s.logChange(b, bucket, key)
	if err != nil {
		return nil, nil, nil, err
	}
	defer done()
	old, err := s.applyCommit(b, mk, payload)
	if err != nil {
		return nil, nil, nil, err
	}
	prev = replacedNull(old, loc)
	loc = proto.Clone(loc).(*cellarv1.Location)
	loc.Versions = nil
	return loc, prev, unused, nil
}

// completedAs returns the current object of mk when it is what completing an upload
// with exactly the parts chosen made (same part numbers, same part ETags, in order),
// and nil otherwise; the caller holds mk's key lock.
//
// A completion is answered to its client only after the write is applied. When that
// answer is lost (the caller's deadline passes while a busy group commits, or the
// leader steps down between commit and answer), the write may still have been
// applied, and the client retries: the upload is gone by then, and answering
// NoSuchUpload would report a failure for an object that was made. As S3 does, a
// retried completion of the object that stands answers as the first one did. A
// completion that names other parts, or an object that has since been replaced or
// deleted, is not a replay and keeps NoSuchUpload.
func (s *Store) completedAs(mk []byte, chosen []CompletedPart) *cellarv1.Location {
	payload, ok := s.objects.Get(mk)
	if !ok {
		return nil
	}
	cur, err := decodeLocation(mk, payload)
	if err != nil || len(cur.Parts) != len(chosen) || !strings.HasSuffix(cur.GetEtag(), "-"+strconv.Itoa(len(chosen))) {
		return nil
	}
	for i, c := range chosen {
		p := cur.Parts[i]
		if p.Number != c.Number || normalizeETag(c.ETag) != hex.EncodeToString(p.Md5) {
			return nil
		}
	}
	return cur
}

// applyCompleteUpload adds the completion to b and returns the object's location, the
// unused parts, and the map key and payload to put in the location map once b commits.
func (s *Store) applyCompleteUpload(b *pebble.Batch, bucket, key, uploadID string, chosen []CompletedPart, o CompleteOptions) (loc *cellarv1.Location, unused []*cellarv1.PartLocation, mk, payload []byte, err error) {
	if len(chosen) == 0 {
		return nil, nil, nil, nil, errs.New(errs.MalformedXML, "You must specify at least one part.")
	}
	for i, c := range chosen {
		if c.Number < 1 || c.Number > MaxParts {
			return nil, nil, nil, nil, errs.New(errs.InvalidPart, "Part number must be an integer between 1 and %d, inclusive.", MaxParts)
		}
		if i > 0 && c.Number <= chosen[i-1].Number {
			return nil, nil, nil, nil, errs.New(errs.InvalidPartOrder, "The list of parts was not in ascending order. The parts list must be specified in order by part number.")
		}
	}
	if _, ok := s.buckets[bucket]; o.RequireBucket && !ok {
		return nil, nil, nil, nil, errs.New(errs.NoSuchBucket, "The specified bucket does not exist.")
	}
	r := s.reader(b)
	u, err := getUpload(r, bucket, key, uploadID)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	all, _, err := listParts(r, uploadID, 0, 0)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	byNumber := make(map[int32]*cellarv1.PartLocation, len(all))
	for _, p := range all {
		byNumber[p.Number] = p
	}
	alg := u.GetMeta().GetChecksumAlgorithm()
	for _, c := range chosen {
		p := byNumber[c.Number]
		if p == nil || normalizeETag(c.ETag) != hex.EncodeToString(p.Md5) {
			return nil, nil, nil, nil, errs.New(errs.InvalidPart, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag (part %d).", c.Number)
		}
		if named, ok := o.Declared.Parts[c.Number]; ok && (named.Value != p.Checksum || alg != "" && named.Algorithm != alg) {
			return nil, nil, nil, nil, errs.New(errs.InvalidPart, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified checksum might not have matched the part's checksum (part %d).", c.Number)
		}
	}
	loc = &cellarv1.Location{}
	if u.Meta != nil {
		loc = proto.Clone(u.Meta).(*cellarv1.Location)
	}
	loc.Bucket, loc.Key, loc.ModifiedUnixNano = bucket, key, o.ModifiedUnixNano
	loc.ObjectId, loc.Replicas, loc.Md5, loc.Checksum, loc.Size = nil, nil, nil, "", 0
	md5s := md5.New()
	used := map[int32]bool{}
	for i, c := range chosen {
		p := byNumber[c.Number]
		if i < len(chosen)-1 && p.Size < o.MinPartSize {
			return nil, nil, nil, nil, errs.New(errs.EntityTooSmall, "Your proposed upload is smaller than the minimum allowed object size: part %d has %d bytes, every part but the last needs %d.", c.Number, p.Size, o.MinPartSize)
		}
		md5s.Write(p.Md5)
		loc.Size += p.Size
		loc.Parts = append(loc.Parts, p)
		used[p.Number] = true
	}
	loc.Etag = hex.EncodeToString(md5s.Sum(nil)) + "-" + strconv.Itoa(len(chosen))
	typ := checksumTypeOf(u)
	loc.Checksum = multipartChecksum(loc.ChecksumAlgorithm, typ, loc.Parts)
	if err := checkDeclared(o.Declared, alg, typ, loc.Checksum); err != nil {
		return nil, nil, nil, nil, err
	}
	if loc.Checksum == "" {
		loc.ChecksumAlgorithm = "" // a part without a checksum: the object gets none
	}
	for _, p := range all {
		if !used[p.Number] {
			unused = append(unused, p)
		}
	}
	mk = mapKey(bucket, key)
	if err := s.checkCondition(mk, o.Condition); err != nil {
		return nil, nil, nil, nil, err
	}
	cur, err := s.record(mk)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	enabled := s.versioningOf(bucket, o.Versioning) == cellarv1.BucketVersioning_BUCKET_VERSIONING_ENABLED
	if loc.VersionId = o.VersionID; enabled && loc.VersionId == "" {
		loc.VersionId = derivedVersionID(mk, o.ModifiedUnixNano)
	}
	loc, _ = stack(cur, loc, enabled)
	if payload, err = encodeLocation(loc); err != nil {
		return nil, nil, nil, nil, errs.Wrap(errs.Internal, err, "encode location")
	}
	if err := b.Set(objectKey(mk), seal(payload), nil); err != nil {
		return nil, nil, nil, nil, err
	}
	if err := b.Delete(uploadKey(bucket, uploadID), nil); err != nil {
		return nil, nil, nil, nil, err
	}
	if err := deletePrefix(b, partPrefix(uploadID)); err != nil {
		return nil, nil, nil, nil, err
	}
	return loc, unused, mk, payload, nil
}

// checksumTypeOf returns how an upload's object checksum is made from its parts'.
func checksumTypeOf(u *cellarv1.Upload) string {
	if u.GetChecksumType() == ChecksumFullObject {
		return ChecksumFullObject
	}
	return ChecksumComposite
}

// multipartChecksum returns the base64 checksum, in algorithm alg, of an object made
// of parts: for ChecksumFullObject the CRC of the whole object, combined from the
// parts' CRCs and sizes; for ChecksumComposite the algorithm's hash over the parts'
// raw checksums, followed by "-<parts>". It returns "" when there is no algorithm, when
// the type does not apply to it, or when a part has no checksum.
func multipartChecksum(alg, typ string, parts []*cellarv1.PartLocation) string {
	if alg == "" {
		return ""
	}
	raws := make([][]byte, len(parts))
	for i, p := range parts {
		raw, err := base64.StdEncoding.DecodeString(p.Checksum)
		if err != nil || len(raw) == 0 {
			return ""
		}
		raws[i] = raw
	}
	if typ == ChecksumFullObject {
		crc, ok := fullObjectCRCs[alg]
		if !ok {
			return ""
		}
		var sum uint64 // the CRC of nothing
		for i, raw := range raws {
			if len(raw) != crc.width/8 {
				return ""
			}
			sum = crc.combine(sum, bigEndian(raw), parts[i].Size)
		}
		return base64.StdEncoding.EncodeToString(crc.bytes(sum))
	}
	h := compositeHash(alg)
	if h == nil {
		return ""
	}
	for _, raw := range raws {
		h.Write(raw)
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts))
}

// compositeHash returns the hash of a checksum algorithm that makes composite
// checksums: that hash over the parts' raw checksums. CRC64NVME makes only
// full-object ones.
func compositeHash(alg string) hash.Hash {
	switch alg {
	case "CRC32":
		return crc32.NewIEEE()
	case "CRC32C":
		return crc32.New(castagnoli)
	case "SHA1":
		return sha1.New()
	case "SHA256":
		return sha256.New()
	}
	return nil
}

// checkDeclared compares what a completion declares with the upload's algorithm alg
// and type typ and with the object checksum sum computed from the parts.
func checkDeclared(d DeclaredChecksums, alg, typ, sum string) error {
	if d.Type != "" && d.Type != typ {
		return errs.New(errs.BadDigest, "The upload was created with the %s checksum type; the complete request declares %s.", typ, d.Type)
	}
	if d.Algorithm == "" {
		return nil
	}
	switch {
	case alg == "":
		return errs.New(errs.InvalidRequest, "The upload was created without a checksum algorithm; the complete request declares a %s checksum.", d.Algorithm)
	case d.Algorithm != alg:
		return errs.New(errs.InvalidRequest, "The upload was created using a %s checksum; the complete request declares a %s checksum.", alg, d.Algorithm)
	case sum == "":
		return errs.New(errs.InvalidRequest, "The object's %s checksum cannot be verified: a part was uploaded without one.", alg)
	}
	got, want := sum, d.Value
	if typ == ChecksumComposite && !strings.Contains(want, "-") {
		got, _, _ = strings.Cut(sum, "-") // a composite value may come without its part count
	}
	if got != want {
		return errs.New(errs.BadDigest, "The %s you specified did not match the calculated checksum.", alg)
	}
	return nil
}

// fullObjectCRCs are the algorithms whose checksum of a whole object can be combined
// from its parts' checksums.
var fullObjectCRCs = map[string]crcMath{
	"CRC32":     {width: 32, poly: 0xedb88320},
	"CRC32C":    {width: 32, poly: 0x82f63b78},
	"CRC64NVME": {width: 64, poly: 0x9a6c9329ac4bc9b5},
}

// crcMath is arithmetic on a CRC of the kind S3's checksums are (reflected, with its
// register preset to all ones and inverted at the end): the CRC of a message is
// the message as a polynomial over GF(2), modulo the CRC's polynomial P, with a
// correction for the preset and the inversion that cancels out when two CRCs are
// combined. In the reflected form a CRC value's most significant bit is the
// coefficient of x^0 and its least significant bit that of x^(width-1); poly is P
// without its x^width term, in that form.
//
// Appending a message B to a message A gives
//
//	crc(A‖B) = crc(A)·x^(8·len(B)) + crc(B)   (mod P)
//
// which is what combine computes, in time logarithmic in len(B).
type crcMath struct {
	width int
	poly  uint64
}

// timesX returns a·x mod P.
func (c crcMath) timesX(a uint64) uint64 {
	if a&1 != 0 { // the x^(width-1) term becomes x^width, which is poly mod P
		return a>>1 ^ c.poly
	}
	return a >> 1
}

// mulMod returns a·b mod P.
func (c crcMath) mulMod(a, b uint64) uint64 {
	var product uint64
	for term := uint64(1) << (c.width - 1); term != 0; term >>= 1 { // x^0, x^1, ... of a
		if a&term != 0 {
			product ^= b
		}
		b = c.timesX(b) // b·x^(i+1) for the next term
	}
	return product
}

// xPow8n returns x^(8n) mod P, by squaring and multiplying.
func (c crcMath) xPow8n(n int64) uint64 {
	result := uint64(1) << (c.width - 1) // x^0
	power := result                      // x^(8·2^i) for bit i of n
	for range 8 {
		power = c.timesX(power)
	}
	for ; n > 0; n >>= 1 {
		if n&1 != 0 {
			result = c.mulMod(result, power)
		}
		power = c.mulMod(power, power)
	}
	return result
}

// combine returns the CRC of A followed by B from the CRC of A, the CRC of B and the
// length of B in bytes.
func (c crcMath) combine(crcA, crcB uint64, lenB int64) uint64 {
	return c.mulMod(crcA, c.xPow8n(lenB)) ^ crcB
}

// bytes returns a CRC value as S3 encodes it: big-endian, width/8 bytes.
func (c crcMath) bytes(v uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, v)
	return b[8-c.width/8:]
}

// bigEndian reads a big-endian unsigned value of up to 8 bytes.
func bigEndian(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// AbortUpload deletes an upload and its part records (write) and returns the parts,
// whose blobs the caller reclaims.
func (s *Store) AbortUpload(bucket, key, uploadID string) (parts []*cellarv1.PartLocation, err error) {
	err = s.writeAlone(bucket, func(b *pebble.Batch) error {
		parts, err = s.applyAbortUpload(b, bucket, key, uploadID)
		return err
	})
	return parts, err
}

func (s *Store) applyAbortUpload(b *pebble.Batch, bucket, key, uploadID string) ([]*cellarv1.PartLocation, error) {
	r := s.reader(b)
	if _, err := getUpload(r, bucket, key, uploadID); err != nil {
		return nil, err
	}
	all, _, err := listParts(r, uploadID, 0, 0)
	if err != nil && !errs.Is(err, errs.Corrupt) {
		return nil, err
	}
	if err := b.Delete(uploadKey(bucket, uploadID), nil); err != nil {
		return nil, err
	}
	if err := deletePrefix(b, partPrefix(uploadID)); err != nil {
		return nil, err
	}
	return all, nil
}

// ListUploadsOptions select uploads; Bucket "" means every bucket of the cell.
type ListUploadsOptions struct {
	Bucket, Prefix            string
	KeyMarker, UploadIDMarker string
	Limit                     int   // 0 means 1000
	InitiatedBeforeUnixNano   int64 // if not 0, only uploads initiated earlier
}

// ListUploads returns uploads in order of bucket, key and upload id (read).
func (s *Store) ListUploads(o ListUploadsOptions) ([]*cellarv1.Upload, bool, error) {
	if o.Limit <= 0 || o.Limit > 1000 {
		o.Limit = 1000
	}
	lower, upper := []byte{prefixUpload}, []byte{prefixUpload + 1}
	if o.Bucket != "" {
		lower = uploadKey(o.Bucket, "")
		upper = prefixSuccessor(lower)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, false, errs.Wrap(errs.Unavailable, err, "index read failed")
	}
	defer it.Close()
	var all []*cellarv1.Upload
	for it.First(); it.Valid(); it.Next() {
		payload, ok := open(it.Value())
		var u cellarv1.Upload
		if !ok || proto.Unmarshal(payload, &u) != nil {
			s.log.Error("corrupt upload record; not listed", "record", string(bytes.ToValidUTF8(it.Key(), nil)))
			continue
		}
		if !strings.HasPrefix(u.Key, o.Prefix) {
			continue
		}
		if o.InitiatedBeforeUnixNano != 0 && u.InitiatedUnixNano >= o.InitiatedBeforeUnixNano {
			continue
		}
		if o.KeyMarker != "" && (u.Key < o.KeyMarker || u.Key == o.KeyMarker && (o.UploadIDMarker == "" || u.UploadId <= o.UploadIDMarker)) {
			continue
		}
		all = append(all, &u)
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.Bucket != b.Bucket {
			return a.Bucket < b.Bucket
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return a.UploadId < b.UploadId
	})
	if len(all) > o.Limit {
		return all[:o.Limit], true, nil
	}
	return all, false, nil
}

// ListParts returns an upload and its parts numbered above after, in order (read).
func (s *Store) ListParts(bucket, key, uploadID string, after int32, limit int) (*cellarv1.Upload, []*cellarv1.PartLocation, bool, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	u, err := getUpload(s.db, bucket, key, uploadID)
	if err != nil {
		return nil, nil, false, err
	}
	parts, truncated, err := listParts(s.db, uploadID, after, limit)
	if err != nil {
		return nil, nil, false, err
	}
	return u, parts, truncated, nil
}
