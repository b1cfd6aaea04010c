package storage

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// The inventory of a storage node, for its cell's repair (package cell/repair): which
// blobs it holds and whether one is intact. Repair compares the inventory with the
// index to find missing copies and orphan blobs, and verifies blobs in place at a
// paced rate (scrub) without sending their bytes over the network.

// BlobInfo is one blob as the inventory lists it.
type BlobInfo struct {
	ID       ID
	FileSize int64     // the blob's file: data, block checksums and footer
	Modified time.Time // when it was written
}

// Blobs calls fn with every blob of the store, one fan-out directory at a time. Blobs
// written or deleted during the walk may or may not be seen. It stops at fn's first
// error and returns it.
func (s *Store) Blobs(ctx context.Context, fn func(BlobInfo) error) error {
	for fan := 0; fan < 256; fan++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := fmt.Sprintf("%02x", fan)
		entries, err := os.ReadDir(filepath.Join(s.blobsDir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return ioErr(err, "list blobs")
		}
		for _, e := range entries {
			if !isBlobName(e.Name(), name) || !e.Type().IsRegular() {
				continue
			}
			info, err := e.Info()
			if errors.Is(err, os.ErrNotExist) {
				continue // deleted meanwhile
			} else if err != nil {
				return ioErr(err, "list blobs")
			}
			var id ID
			if _, err := hex.Decode(id[:], []byte(e.Name())); err != nil {
				continue
			}
			if err := fn(BlobInfo{ID: id, FileSize: info.Size(), Modified: info.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Verify reads blob id whole, checking every block against its checksum, at no more
// than rate bytes per second (0: no limit), and returns its size. Errors are Read's:
// NoSuchKey if the blob is not there, Corrupt if it fails a check.
func (s *Store) Verify(ctx context.Context, id ID, rate int64) (int64, error) {
	start := time.Now()
	var done int64
	return s.Read(ctx, id, 0, 0, func(p []byte) error {
		done += int64(len(p))
		if rate <= 0 {
			return nil
		}
		// Pace: wait until the bytes read so far fit the rate.
		due := start.Add(time.Duration(float64(done) / float64(rate) * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
		return nil
	})
}

// listPage is how many blobs one ListBlobsResponse carries.
const listPage = 1024

// blobsServer is the Blobs gRPC service of a storage node, over the same store as its
// Storage service.
type blobsServer struct {
	cellarv1.UnimplementedBlobsServer
	s *server
}

// NewBlobsServer returns the Blobs gRPC service over st, for
// cellarv1.RegisterBlobsServer. Its errors are errs errors, as NewServer's.
func NewBlobsServer(st *Store) cellarv1.BlobsServer {
	return blobsServer{s: newServer(st, nil)}
}

func (b blobsServer) List(_ *cellarv1.ListBlobsRequest, stream cellarv1.Blobs_ListServer) error {
	st, err := b.s.getStore()
	if err != nil {
		return err
	}
	var page []*cellarv1.BlobInfo
	err = st.Blobs(stream.Context(), func(bi BlobInfo) error {
		page = append(page, &cellarv1.BlobInfo{ObjectId: bi.ID[:], FileSize: bi.FileSize, ModifiedUnixNano: bi.Modified.UnixNano()})
		if len(page) < listPage {
			return nil
		}
		err := stream.Send(&cellarv1.ListBlobsResponse{Blobs: page})
		page = nil
		return err
	})
	if err != nil {
		return err
	}
	if len(page) > 0 {
		return stream.Send(&cellarv1.ListBlobsResponse{Blobs: page})
	}
	return nil
}

func (b blobsServer) Verify(ctx context.Context, req *cellarv1.VerifyBlobRequest) (*cellarv1.VerifyBlobResponse, error) {
	st, err := b.s.getStore()
	if err != nil {
		return nil, err
	}
	id, err := ParseID(req.GetObjectId())
	if err != nil {
		return nil, err
	}
	n, err := st.Verify(ctx, id, req.GetRateBytesPerSecond())
	if err != nil {
		if errs.KindOf(err) == errs.Corrupt {
			b.s.log.ErrorContext(ctx, "scrub: stored data is corrupt", "object", id.String(), "err", err)
		}
		return nil, err
	}
	return &cellarv1.VerifyBlobResponse{Size: n}, nil
}
