package s3bench

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cellarsim/cellar/gateway/s3"
	"github.com/cellarsim/cellar/internal/errs"
)

// Reference is the floor Run measures cellar against: an S3 server in this process that
// keeps each object as one file in its directory, written once and fsynced (the file
// and then the directory that names it) before the PUT is answered, and reads it back
// from that file. It speaks S3 through the same protocol code as cellar's gateway
// (gateway/s3), with the same credentials, so a client signs and streams the same way
// to both.
//
// It is a yardstick, not a product: buckets and the object table live in memory and
// are lost when it stops; it keeps one copy; listing, multipart uploads and
// conditional writes are not implemented. Put its directory on the same filesystem as
// the cluster's data, so both measure the same disk.
type Reference struct {
	dir string
	ln  net.Listener
	srv *http.Server
	b   *refBackend
}

// StartReference serves the reference on a loopback port, keeping objects in a new
// directory under dir (removed by Close). Requests must be signed with accessKey and
// secretKey (none if both are empty).
func StartReference(dir, accessKey, secretKey, region string) (*Reference, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	objDir, err := os.MkdirTemp(dir, "reference-*")
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(objDir)
		return nil, fmt.Errorf("reference: %w", err)
	}
	b := &refBackend{dir: objDir, buckets: map[string]time.Time{}, objects: map[string]refObject{}}
	opts := s3.HandlerOptions{Region: region, Logger: slog.New(slog.DiscardHandler)}
	if accessKey != "" || secretKey != "" {
		opts.Credentials = map[string]string{accessKey: secretKey}
	}
	r := &Reference{dir: objDir, ln: ln, b: b,
		srv: &http.Server{Handler: s3.NewHandler(b, opts), ReadHeaderTimeout: 10 * time.Second}}
	go r.srv.Serve(ln)
	return r, nil
}

// Endpoint is the reference's S3 endpoint, http://127.0.0.1:PORT.
func (r *Reference) Endpoint() string { return "http://" + r.ln.Addr().String() }

// Dir is the directory the reference keeps its objects in.
func (r *Reference) Dir() string { return r.dir }

// Close stops the server and removes its objects.
func (r *Reference) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	return errors.Join(err, os.RemoveAll(r.dir))
}

// refBackend is the reference's s3.Backend: one fsynced file per object version.
type refBackend struct {
	dir  string
	next atomic.Uint64 // file name of the next object version

	mu      sync.RWMutex
	buckets map[string]time.Time
	objects map[string]refObject // by bucket + "/" + key
}

type refObject struct {
	file string
	info s3.ObjectInfo
}

const refCell = "reference"

func (b *refBackend) CreateBucket(_ context.Context, bucket string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.buckets[bucket]; ok {
		return refCell, errs.New(errs.BucketExists, "Your previous request to create the named bucket succeeded and you already own it.")
	}
	b.buckets[bucket] = time.Now()
	return refCell, nil
}

func (b *refBackend) HeadBucket(_ context.Context, bucket string) (string, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if _, ok := b.buckets[bucket]; !ok {
		return refCell, errs.New(errs.NoSuchBucket, "The specified bucket does not exist.")
	}
	return refCell, nil
}

// PutObject writes the body to a new file, fsyncs it and the directory, and only then
// makes it the key's object.
func (b *refBackend) PutObject(ctx context.Context, in s3.PutInput) (string, s3.ObjectInfo, error) {
	if _, err := b.HeadBucket(ctx, in.Bucket); err != nil {
		return refCell, s3.ObjectInfo{}, err
	}
	name := filepath.Join(b.dir, fmt.Sprintf("%016x", b.next.Add(1)))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return refCell, s3.ObjectInfo{}, errs.Wrap(errs.Internal, err, "reference: create")
	}
	h := md5.New()
	n, err := io.Copy(f, io.TeeReader(in.Body, h))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(b.dir)
	}
	if err != nil {
		os.Remove(name)
		return refCell, s3.ObjectInfo{}, err
	}
	info := s3.ObjectInfo{Bucket: in.Bucket, Key: in.Key, Size: n, ETag: hex.EncodeToString(h.Sum(nil)),
		LastModified: time.Now(), ObjectMeta: in.Meta}
	if in.Checksum != nil {
		info.Checksum = in.Checksum()
	}
	b.mu.Lock()
	old, had := b.objects[in.Bucket+"/"+in.Key]
	b.objects[in.Bucket+"/"+in.Key] = refObject{file: name, info: info}
	b.mu.Unlock()
	if had {
		os.Remove(old.file)
	}
	return refCell, info, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

func (b *refBackend) lookup(bucket, key string) (refObject, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	o, ok := b.objects[bucket+"/"+key]
	if !ok {
		return o, errs.New(errs.NoSuchKey, "The specified key does not exist.")
	}
	return o, nil
}

func (b *refBackend) HeadObject(_ context.Context, bucket, key string) (string, s3.ObjectInfo, error) {
	o, err := b.lookup(bucket, key)
	return refCell, o.info, err
}

// GetObject reads the range the request chooses from the object's file.
func (b *refBackend) GetObject(_ context.Context, in s3.GetInput) (string, s3.ObjectInfo, io.ReadCloser, error) {
	o, err := b.lookup(in.Bucket, in.Key)
	if err != nil {
		return refCell, s3.ObjectInfo{}, nil, err
	}
	off, n := int64(0), o.info.Size
	if in.Choose != nil {
		if off, n, err = in.Choose(o.info); err != nil {
			return refCell, o.info, nil, err
		}
	}
	f, err := os.Open(o.file)
	if err != nil {
		// Replaced by a PUT since the lookup: the reference does not keep old versions.
		return refCell, o.info, nil, errs.Wrap(errs.Unavailable, err, "reference: object replaced during the read")
	}
	return refCell, o.info, &fileRange{SectionReader: io.NewSectionReader(f, off, n), f: f}, nil
}

type fileRange struct {
	*io.SectionReader
	f *os.File
}

func (r *fileRange) Close() error { return r.f.Close() }

func (b *refBackend) DeleteObject(_ context.Context, bucket, key string) (string, error) {
	b.mu.Lock()
	o, had := b.objects[bucket+"/"+key]
	delete(b.objects, bucket+"/"+key)
	b.mu.Unlock()
	if had {
		os.Remove(o.file)
	}
	return refCell, nil
}

func (b *refBackend) ListBuckets(context.Context) (string, []s3.BucketInfo, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []s3.BucketInfo
	for name, created := range b.buckets {
		out = append(out, s3.BucketInfo{Name: name, Created: created, Cell: refCell})
	}
	return refCell, out, nil
}

// What the reference does not do.

func notInReference(what string) error {
	return errs.New(errs.NotImplemented, "The benchmark's reference server does not implement %s.", what)
}

func (b *refBackend) DeleteBucket(context.Context, string) (string, error) {
	return refCell, notInReference("DeleteBucket")
}

func (b *refBackend) ListObjects(context.Context, string, s3.ListOptions) (string, s3.ListResult, error) {
	return refCell, s3.ListResult{}, notInReference("listing")
}

func (b *refBackend) CreateUpload(context.Context, string, string, s3.ObjectMeta) (string, string, error) {
	return refCell, "", notInReference("multipart uploads")
}

func (b *refBackend) UploadPart(context.Context, s3.PartInput) (string, s3.PartInfo, error) {
	return refCell, s3.PartInfo{}, notInReference("multipart uploads")
}

func (b *refBackend) CompleteUpload(context.Context, s3.CompleteInput) (string, s3.ObjectInfo, error) {
	return refCell, s3.ObjectInfo{}, notInReference("multipart uploads")
}

func (b *refBackend) AbortUpload(context.Context, string, string, string) (string, error) {
	return refCell, notInReference("multipart uploads")
}

func (b *refBackend) ListUploads(context.Context, string, s3.ListUploadsOptions) (string, []s3.UploadInfo, bool, error) {
	return refCell, nil, false, notInReference("multipart uploads")
}

func (b *refBackend) ListParts(context.Context, string, string, string, s3.ListPartsOptions) (string, s3.UploadInfo, []s3.PartInfo, bool, error) {
	return refCell, s3.UploadInfo{}, nil, false, notInReference("multipart uploads")
}

var _ s3.Backend = (*refBackend)(nil)

// objectsIn counts the reference's files, for tests.
func (r *Reference) objectsIn() int {
	entries, _ := os.ReadDir(r.dir)
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}
