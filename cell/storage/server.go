package storage

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// server is the Storage gRPC service over a Store. Until it has a store (the daemon
// registers the service before it has opened its data directory) it answers
// Unavailable.
type server struct {
	cellarv1.UnimplementedStorageServer
	store atomic.Pointer[Store]
	log   *slog.Logger
}

// NewServer returns the Storage gRPC service over st, for registration with
// cellarv1.RegisterStorageServer. Its errors are errs errors: register it on a server
// whose interceptor converts them with errs.ToGRPC, as the daemon's does. A nil log
// means slog.Default().
func NewServer(st *Store, log *slog.Logger) cellarv1.StorageServer {
	return newServer(st, log)
}

func newServer(st *Store, log *slog.Logger) *server {
	if log == nil {
		log = slog.Default()
	}
	s := &server{log: log}
	if st != nil {
		s.store.Store(st)
	}
	return s
}

func (s *server) getStore() (*Store, error) {
	if st := s.store.Load(); st != nil {
		return st, nil
	}
	return nil, errs.New(errs.Unavailable, "storage node is starting")
}

// Write receives a header, then data, and commits the blob when the client closes its
// side of the stream.
func (s *server) Write(stream cellarv1.Storage_WriteServer) error {
	st, err := s.getStore()
	if err != nil {
		return err
	}
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return errs.New(errs.InvalidArgument, "write stream without a header")
	} else if err != nil {
		return errs.Wrap(errs.IncompleteBody, err, "write stream broken before its header")
	}
	h := first.GetHeader()
	if h == nil {
		return errs.New(errs.InvalidArgument, "first message of a write must be a header")
	}
	id, err := ParseID(h.GetObjectId())
	if err != nil {
		return err
	}
	w, err := st.Create(id, h.GetSize())
	if err != nil {
		return s.logged(ctx, "write", id, err)
	}
	defer w.Abort()
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return errs.Wrap(errs.IncompleteBody, err, "object %s: write stream ended early", id)
		}
		d, ok := m.GetMsg().(*cellarv1.WriteRequest_Data)
		if !ok {
			return errs.New(errs.InvalidArgument, "object %s: only data may follow the header", id)
		}
		if _, err := w.Write(d.Data); err != nil {
			return s.logged(ctx, "write", id, err)
		}
	}
	n, err := w.Commit(ctx)
	if err != nil {
		return s.logged(ctx, "write", id, err)
	}
	return stream.SendAndClose(&cellarv1.WriteResponse{Size: n})
}

// Read streams the requested range of a blob, checked block by block.
func (s *server) Read(req *cellarv1.ReadRequest, stream cellarv1.Storage_ReadServer) error {
	st, err := s.getStore()
	if err != nil {
		return err
	}
	id, err := ParseID(req.GetObjectId())
	if err != nil {
		return err
	}
	_, err = st.Read(stream.Context(), id, req.GetOffset(), req.GetLength(), func(p []byte) error {
		return stream.Send(&cellarv1.ReadResponse{Data: p})
	})
	return s.logged(stream.Context(), "read", id, err)
}

// Delete removes a blob; a blob that is not there is not an error.
func (s *server) Delete(ctx context.Context, req *cellarv1.DeleteBlobRequest) (*cellarv1.DeleteBlobResponse, error) {
	st, err := s.getStore()
	if err != nil {
		return nil, err
	}
	id, err := ParseID(req.GetObjectId())
	if err != nil {
		return nil, err
	}
	if err := st.Delete(id); err != nil {
		return nil, s.logged(ctx, "delete", id, err)
	}
	return &cellarv1.DeleteBlobResponse{}, nil
}

// logged logs the errors an operator must see — corruption and failures of this node —
// and returns err. The client's mistakes, missing objects and calls the client gave up
// on are not logged.
func (s *server) logged(ctx context.Context, op string, id ID, err error) error {
	if err == nil {
		return nil
	}
	switch k := errs.KindOf(err); {
	case k == errs.Corrupt:
		s.log.ErrorContext(ctx, "checksum failure: stored data is corrupt", "op", op, "object", id.String(), "err", err)
	case ctx.Err() != nil:
	case k == errs.Internal || k == errs.Unavailable:
		s.log.ErrorContext(ctx, "storage operation failed", "op", op, "object", id.String(), "err", err)
	}
	return err
}
