package gateway

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
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
	f.buckets[bucket] = &fakeBucket{created: time.Now(), objects: map[string]fakeObject{}}
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
		ContentType: in.ContentType, LastModified: time.Now().UTC()}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.lookup("PutObject", in.Bucket)
	if err != nil {
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

func (f *fakeBackend) GetObject(ctx context.Context, bucket, key string) (string, ObjectInfo, io.ReadCloser, error) {
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
	f.openBodies.Add(1)
	return f.cellOf(bucket), o.info, &trackedBody{Reader: bytes.NewReader(o.data), open: &f.openBodies}, nil
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
