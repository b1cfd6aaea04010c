package storage

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

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
	idle  time.Duration // a write stream that brings nothing for this long is ended
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
	s := &server{log: log, idle: DefaultStreamIdleTimeout}
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
// side of the stream. A stream that brings nothing for s.idle is ended; one that ends
// in any way but a commit leaves no temp file behind.
func (s *server) Write(stream cellarv1.Storage_WriteServer) error {
	st, err := s.getStore()
	if err != nil {
		return err
	}
	ctx := stream.Context()
	st.hold(ctx)
	recv, stop := s.receive(ctx, st, stream)
	defer stop()
	first, err := recv()
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
		m, err := recv()
		if errors.Is(err, io.EOF) {
			break
		} else if errors.Is(err, errIdle) {
			s.log.WarnContext(ctx, "write stream brought nothing for too long; abandoned", "object", id.String(), "idle", s.idle)
			return errs.Wrap(errs.IncompleteBody, err, "object %s: write stream idle for %s", id, s.idle)
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

// errIdle ends a write stream that brought nothing for the idle timeout.
var errIdle = errors.New("no message within the idle timeout")

// receive returns a function that gives the next message of a write stream, or errIdle
// (wrapped) if none comes within s.idle. A blocked Recv cannot be interrupted, so a
// goroutine of its own receives; stop releases it (it ends when the stream does, which
// is when the handler returns).
func (s *server) receive(ctx context.Context, st *Store, stream cellarv1.Storage_WriteServer) (recv func() (*cellarv1.WriteRequest, error), stop func()) {
	type msg struct {
		m   *cellarv1.WriteRequest
		err error
	}
	msgs := make(chan msg)
	quit := make(chan struct{})
	go func() {
		for {
			st.hold(ctx)
			m, err := stream.Recv()
			select {
			case msgs <- msg{m, err}:
			case <-quit:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	idle := time.NewTimer(s.idle)
	recv = func() (*cellarv1.WriteRequest, error) {
		idle.Reset(s.idle)
		select {
		case r := <-msgs:
			return r.m, r.err
		case <-idle.C:
			return nil, errIdle
		}
	}
	stop = func() {
		idle.Stop()
		close(quit)
	}
	return recv, stop
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
	ctx := stream.Context()
	st.hold(ctx)
	_, err = st.Read(ctx, id, req.GetOffset(), req.GetLength(), func(p []byte) error {
		st.hold(ctx)
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
	st.hold(ctx)
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
