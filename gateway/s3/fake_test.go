package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cellarsim/cellar/internal/errs"
)

// fakeBackend is an in-memory Backend. Each bucket lives in one of three cells, chosen
// by a hash of its name, as the real router does by default.
type fakeBackend struct {
	mu      sync.Mutex
	buckets map[string]*fakeBucket
	fail    map[string]error // operation name ("PutObject") → error to return
	commits int              // successful PutObject calls

	openBodies atomic.Int64 // GetObject bodies not yet closed
}

type fakeBucket struct {
	created time.Time
	objects map[string]fakeObject
	uploads map[string]*fakeUpload
}

type fakeUpload struct {
	info  UploadInfo
	parts map[int]fakePart
}

type fakePart struct {
	info PartInfo
	data []byte
}

type fakeObject struct {
	info ObjectInfo
	data []byte
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{buckets: map[string]*fakeBucket{}, fail: map[string]error{}}
}

func (f *fakeBackend) cellOf(bucket string) string {
	return "cell-" + strconv.Itoa(1+int(crc32.ChecksumIEEE([]byte(bucket))%3))
}

// setFail makes operation op return err (nil clears it).
func (f *fakeBackend) setFail(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fail, op)
	} else {
		f.fail[op] = err
	}
}

func (f *fakeBackend) committed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.commits
}

func (f *fakeBackend) object(bucket, key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.buckets[bucket]
	if b == nil {
		return nil, false
	}
	o, ok := b.objects[key]
	return o.data, ok
}

// lookup returns the bucket and any injected failure for op; call with f.mu held.
func (f *fakeBackend) lookup(op, bucket string) (*fakeBucket, error) {
	if err := f.fail[op]; err != nil {
		return nil, err
	}
	b := f.buckets[bucket]
	if b == nil {
		return nil, errs.New(errs.NoSuchBucket, "The specified bucket does not exist.")
	}
	return b, nil
}

func (f *fakeBackend) ListBuckets(ctx context.Context) (string, []BucketInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["ListBuckets"]; err != nil {
		return "cell-1,cell-2,cell-3", nil, err
	}
	var out []BucketInfo
	for name, b := range f.buckets {
		out = append(out, BucketInfo{Name: name, Created: b.created, Cell: f.cellOf(name)})
	}
	return "cell-1,cell-2,cell-3", out, nil
}

func (f *fakeBackend) CreateBucket(ctx context.Context, bucket string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["CreateBucket"]; err != nil {
		return f.cellOf(bucket), err
	}
	if f.buckets[bucket] != nil {
		return f.cellOf(bucket), errs.New(errs.BucketExists, "")
	}
	f.buckets[bucket] = &fakeBucket{created: time.Now(), objects: map[string]fakeObject{}, uploads: map[string]*fakeUpload{}}
	return f.cellOf(bucket), nil
}

func (f *fakeBackend) HeadBucket(ctx context.Context, bucket string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.lookup("HeadBucket", bucket)
	return f.cellOf(bucket), err
}

func (f *fakeBackend) DeleteBucket(ctx context.Context, bucket string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.lookup("DeleteBucket", bucket)
	if err != nil {
		return f.cellOf(bucket), err
	}
	if len(b.objects) > 0 {
		return f.cellOf(bucket), errs.New(errs.BucketNotEmpty, "")
	}
	delete(f.buckets, bucket)
	return f.cellOf(bucket), nil
}

func (f *fakeBackend) PutObject(ctx context.Context, in PutInput) (string, ObjectInfo, error) {
	cell := f.cellOf(in.Bucket)
	f.mu.Lock()
	_, err := f.lookup("PutObject", in.Bucket)
	f.mu.Unlock()
	if err != nil {
		return cell, ObjectInfo{}, err
	}
	// Read everything before committing, as the real data path does.
	data, err := io.ReadAll(in.Body)
	if err != nil {
		return cell, ObjectInfo{}, err
	}
	if in.Size >= 0 && int64(len(data)) != in.Size {
		return cell, ObjectInfo{}, errs.New(errs.Internal, "fake: read %d bytes, PutInput.Size is %d", len(data), in.Size)
	}
	sum := md5.Sum(data)
	info := ObjectInfo{Bucket: in.Bucket, Key: in.Key, Size: int64(len(data)), ETag: hex.EncodeToString(sum[:]),
		LastModified: time.Now().UTC(), ObjectMeta: in.Meta}
	if in.Checksum != nil {
		info.Checksum = in.Checksum()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.lookup("PutObject", in.Bucket)
	if err != nil {
		return cell, ObjectInfo{}, err
	}
	if err := fakeCond(b, in.Key, in.Cond); err != nil {
		return cell, ObjectInfo{}, err
	}
	b.objects[in.Key] = fakeObject{info: info, data: data}
	f.commits++
	return cell, info, nil
}

type trackedBody struct {
	io.Reader
	open   *atomic.Int64
	closed bool
}

func (t *trackedBody) Close() error {
	if !t.closed {
		t.closed = true
		t.open.Add(-1)
	}
	return nil
}

func (f *fakeBackend) GetObject(ctx context.Context, in GetInput) (string, ObjectInfo, io.ReadCloser, error) {
	bucket, key := in.Bucket, in.Key
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.lookup("GetObject", bucket)
	if err != nil {
		return f.cellOf(bucket), ObjectInfo{}, nil, err
	}
	o, ok := b.objects[key]
	if !ok {
		return f.cellOf(bucket), ObjectInfo{}, nil, errs.New(errs.NoSuchKey, "")
	}
	off, n := int64(0), o.info.Size
	if in.Choose != nil {
		if off, n, err = in.Choose(o.info); err != nil {
			return f.cellOf(bucket), o.info, nil, err
		}
	}
	f.openBodies.Add(1)
	return f.cellOf(bucket), o.info, &trackedBody{Reader: bytes.NewReader(o.data[off : off+n]), open: &f.openBodies}, nil
}

// fakeCond checks a write precondition; call with f.mu held.
func fakeCond(b *fakeBucket, key string, c Precondition) error {
	o, exists := b.objects[key]
	if c.IfNoneMatch && exists {
		return errs.New(errs.PreconditionFailed, "")
	}
	if c.IfMatch != "" {
		if !exists {
			return errs.New(errs.NoSuchKey, "")
		}
		if m := strings.Trim(c.IfMatch, `"`); m != "*" && m != o.info.ETag {
			return errs.New(errs.PreconditionFailed, "")
		}
	}
	return nil
}

func (f *fakeBackend) HeadObject(ctx context.Context, bucket, key string) (string, ObjectInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.lookup("HeadObject", bucket)
	if err != nil {
		return f.cellOf(bucket), ObjectInfo{}, err
	}
	o, ok := b.objects[key]
	if !ok {
		return f.cellOf(bucket), ObjectInfo{}, errs.New(errs.NoSuchKey, "")
	}
	return f.cellOf(bucket), o.info, nil
}

func (f *fakeBackend) DeleteObject(ctx context.Context, bucket, key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.lookup("DeleteObject", bucket)
	if err != nil {
		return f.cellOf(bucket), err
	}
	if _, ok := b.objects[key]; !ok {
		return f.cellOf(bucket), errs.New(errs.NoSuchKey, "")
	}
	delete(b.objects, key)
	return f.cellOf(bucket), nil
}

func (f *fakeBackend) ListObjects(ctx context.Context, bucket string, opts ListOptions) (string, ListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.lookup("ListObjects", bucket)
	if err != nil {
		return f.cellOf(bucket), ListResult{}, err
	}
	if opts.MaxKeys < 1 || opts.MaxKeys > 1000 {
		return f.cellOf(bucket), ListResult{}, errs.New(errs.Internal, "fake: MaxKeys %d out of range", opts.MaxKeys)
	}
	keys := make([]string, 0, len(b.objects))
	for k := range b.objects {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var res ListResult
	n := 0
	for _, k := range keys {
		if k <= opts.StartAfter || !strings.HasPrefix(k, opts.Prefix) {
			continue
		}
		entry, isPrefix := k, false
		if opts.Delimiter != "" {
			if i := strings.Index(k[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				entry, isPrefix = k[:len(opts.Prefix)+i+len(opts.Delimiter)], true
			}
		}
		if isPrefix && (entry <= opts.StartAfter ||
			len(res.CommonPrefixes) > 0 && res.CommonPrefixes[len(res.CommonPrefixes)-1] == entry) {
			continue
		}
		if n == opts.MaxKeys {
			res.IsTruncated = true
			break
		}
		n++
		res.Next = entry
		if isPrefix {
			res.CommonPrefixes = append(res.CommonPrefixes, entry)
		} else {
			res.Objects = append(res.Objects, b.objects[k].info)
		}
	}
	if !res.IsTruncated {
		res.Next = ""
	}
	return f.cellOf(bucket), res, nil
}

// fakeMinPartSize is the fake's minimum size of every part but the last.
const fakeMinPartSize = 5 << 20

func (f *fakeBackend) upload(op, bucket, key, id string) (*fakeBucket, *fakeUpload, error) {
	b, err := f.lookup(op, bucket)
	if err != nil {
		return nil, nil, err
	}
	u := b.uploads[id]
	if u == nil || u.info.Key != key {
		return nil, nil, errs.New(errs.NoSuchUpload, "")
	}
	return b, u, nil
}

func (f *fakeBackend) CreateUpload(ctx context.Context, bucket, key string, meta ObjectMeta) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.lookup("CreateUpload", bucket)
	if err != nil {
		return f.cellOf(bucket), "", err
	}
	id := fmt.Sprintf("upload-%d", len(b.uploads)+1)
	b.uploads[id] = &fakeUpload{info: UploadInfo{Bucket: bucket, Key: key, UploadID: id, Initiated: time.Now(), Meta: meta}, parts: map[int]fakePart{}}
	return f.cellOf(bucket), id, nil
}

func (f *fakeBackend) UploadPart(ctx context.Context, in PartInput) (string, PartInfo, error) {
	cell := f.cellOf(in.Bucket)
	f.mu.Lock()
	_, u, err := f.upload("UploadPart", in.Bucket, in.Key, in.UploadID)
	var up UploadInfo
	if u != nil {
		up = u.info
	}
	f.mu.Unlock()
	if err != nil {
		return cell, PartInfo{}, err
	}
	if in.CheckUpload != nil {
		if err := in.CheckUpload(up); err != nil {
			return cell, PartInfo{}, err
		}
	}
	data, err := io.ReadAll(in.Body)
	if err != nil {
		return cell, PartInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, u, err = f.upload("UploadPart", in.Bucket, in.Key, in.UploadID); err != nil {
		return cell, PartInfo{}, err
	}
	sum := md5.Sum(data)
	p := PartInfo{Number: in.Number, ETag: hex.EncodeToString(sum[:]), Size: int64(len(data)), LastModified: time.Now()}
	if in.Checksum != nil {
		p.Checksum = in.Checksum()
	}
	u.parts[in.Number] = fakePart{info: p, data: data}
	return cell, p, nil
}

func (f *fakeBackend) CompleteUpload(ctx context.Context, in CompleteInput) (string, ObjectInfo, error) {
	cell := f.cellOf(in.Bucket)
	f.mu.Lock()
	defer f.mu.Unlock()
	b, u, err := f.upload("CompleteUpload", in.Bucket, in.Key, in.UploadID)
	if err != nil {
		return cell, ObjectInfo{}, err
	}
	var data []byte
	var sizes []int64
	all := md5.New()
	for i, c := range in.Parts { // the order first, as the index checks it
		if i > 0 && c.Number <= in.Parts[i-1].Number {
			return cell, ObjectInfo{}, errs.New(errs.InvalidPartOrder, "")
		}
	}
	for i, c := range in.Parts {
		p, ok := u.parts[c.Number]
		if !ok || strings.Trim(c.ETag, `"`) != p.info.ETag {
			return cell, ObjectInfo{}, errs.New(errs.InvalidPart, "")
		}
		if i < len(in.Parts)-1 && p.info.Size < fakeMinPartSize {
			return cell, ObjectInfo{}, errs.New(errs.EntityTooSmall, "")
		}
		raw, _ := hex.DecodeString(p.info.ETag)
		all.Write(raw)
		sizes = append(sizes, p.info.Size)
		data = append(data, p.data...)
	}
	if err := fakeCond(b, in.Key, in.Cond); err != nil {
		return cell, ObjectInfo{}, err
	}
	// The fake makes full-object checksums only, over the bytes; the index makes
	// composite ones too, from the parts' checksums.
	meta := u.info.Meta
	meta.ChecksumType, meta.ChecksumAlgorithm = "", ""
	typ := uploadChecksumType(u.info)
	if in.ChecksumType != "" && in.ChecksumType != typ {
		return cell, ObjectInfo{}, errs.New(errs.BadDigest, "checksum type %s, declared %s", typ, in.ChecksumType)
	}
	if alg := u.info.Meta.ChecksumAlgorithm; alg != "" && typ == ChecksumFullObject {
		h := checksumAlgorithms[alg].newH()
		h.Write(data)
		meta.ChecksumAlgorithm, meta.Checksum = alg, base64.StdEncoding.EncodeToString(h.Sum(nil))
	}
	if in.Checksum != "" && (in.ChecksumAlgorithm != meta.ChecksumAlgorithm || in.Checksum != meta.Checksum) {
		return cell, ObjectInfo{}, errs.New(errs.BadDigest, "declared %s %s, object %s %s", in.ChecksumAlgorithm, in.Checksum, meta.ChecksumAlgorithm, meta.Checksum)
	}
	info := ObjectInfo{Bucket: in.Bucket, Key: in.Key, Size: int64(len(data)),
		ETag: fmt.Sprintf("%x-%d", all.Sum(nil), len(in.Parts)), LastModified: time.Now().UTC(), PartsCount: len(in.Parts), PartSizes: sizes, ObjectMeta: meta}
	b.objects[in.Key] = fakeObject{info: info, data: data}
	delete(b.uploads, in.UploadID)
	f.commits++
	return cell, info, nil
}

func (f *fakeBackend) AbortUpload(ctx context.Context, bucket, key, uploadID string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _, err := f.upload("AbortUpload", bucket, key, uploadID)
	if err != nil {
		return f.cellOf(bucket), err
	}
	delete(b.uploads, uploadID)
	return f.cellOf(bucket), nil
}

func (f *fakeBackend) ListUploads(ctx context.Context, bucket string, o ListUploadsOptions) (string, []UploadInfo, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.lookup("ListUploads", bucket)
	if err != nil {
		return f.cellOf(bucket), nil, false, err
	}
	var out []UploadInfo
	for _, u := range b.uploads {
		if strings.HasPrefix(u.info.Key, o.Prefix) && (u.info.Key > o.KeyMarker || u.info.Key == o.KeyMarker && u.info.UploadID > o.UploadIDMarker) {
			out = append(out, u.info)
		}
	}
	slices.SortFunc(out, func(a, b UploadInfo) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.UploadID, b.UploadID)
	})
	if len(out) > o.MaxUploads {
		return f.cellOf(bucket), out[:o.MaxUploads], true, nil
	}
	return f.cellOf(bucket), out, false, nil
}

func (f *fakeBackend) ListParts(ctx context.Context, bucket, key, uploadID string, o ListPartsOptions) (string, UploadInfo, []PartInfo, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, u, err := f.upload("ListParts", bucket, key, uploadID)
	if err != nil {
		return f.cellOf(bucket), UploadInfo{}, nil, false, err
	}
	var out []PartInfo
	for n, p := range u.parts {
		if n > o.PartNumberMarker {
			out = append(out, p.info)
		}
	}
	slices.SortFunc(out, func(a, b PartInfo) int { return a.Number - b.Number })
	if len(out) > o.MaxParts {
		return f.cellOf(bucket), u.info, out[:o.MaxParts], true, nil
	}
	return f.cellOf(bucket), u.info, out, false, nil
}
