package index

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell/index/locmap"
	"github.com/cellarsim/cellar/internal/errs"
)

// execute runs one write command against the store and returns the response the
// writer gets. Every node of a group runs the same commands in the same order.
func execute(s *Store, cmd *cellarv1.IndexCommand) (proto.Message, error) {
	if s.pill.swallows(cmd) {
		return nil, errCrashed
	}
	if b := commandBucket(cmd); b != "" {
		if err := s.CheckFence(b, true); err != nil {
			return nil, err
		}
	}
	switch op := cmd.GetOp().(type) {
	case *cellarv1.IndexCommand_FenceBucket:
		r := op.FenceBucket
		b, from, err := s.FenceBucket(r.Name, r.Fence, r.MovedTo, r.TrackChanges)
		return &cellarv1.FenceBucketResponse{Bucket: b, ChangesFrom: from}, err
	case *cellarv1.IndexCommand_DropBucket:
		n, err := s.DropBucket(op.DropBucket.Name)
		return &cellarv1.DropBucketResponse{Objects: n}, err
	case *cellarv1.IndexCommand_Commit:
		r := op.Commit
		res, err := s.CommitVersioned(r.Location, r.RequireBucket, Condition{IfMatch: r.IfMatch, IfNoneMatch: r.IfNoneMatch, IfObjectID: r.IfObjectId}, r.Versioning)
		return &cellarv1.CommitResponse{Previous: res.Previous, VersionId: res.VersionID, Versioning: res.Versioning}, err
	case *cellarv1.IndexCommand_Delete:
		r := op.Delete
		res, err := s.DeleteVersioned(r.Bucket, r.Key, DeleteOptions{VersionID: r.VersionId, Versioning: r.Versioning,
			MarkerVersionID: r.MarkerVersionId, IfObjectID: r.IfObjectId})
		return &cellarv1.DeleteResponse{Previous: res.Previous, VersionId: res.VersionID, DeleteMarker: res.DeleteMarker, Versioning: res.Versioning}, err
	case *cellarv1.IndexCommand_PutBucketConfig:
		b, err := s.PutBucketConfig(op.PutBucketConfig)
		return &cellarv1.PutBucketConfigResponse{Bucket: b}, err
	case *cellarv1.IndexCommand_PutObjectTags:
		loc, err := s.PutObjectTags(op.PutObjectTags)
		return &cellarv1.PutObjectTagsResponse{Location: loc}, err
	case *cellarv1.IndexCommand_SetBucketVersioning:
		b, err := s.SetBucketVersioning(op.SetBucketVersioning.Name, op.SetBucketVersioning.Versioning)
		return &cellarv1.SetBucketVersioningResponse{Bucket: b}, err
	case *cellarv1.IndexCommand_CreateBucket:
		b, err := s.CreateBucket(op.CreateBucket.Name)
		return &cellarv1.CreateBucketResponse{Bucket: b}, err
	case *cellarv1.IndexCommand_DeleteBucket:
		return &cellarv1.DeleteBucketResponse{}, s.DeleteBucket(op.DeleteBucket.Name)
	case *cellarv1.IndexCommand_CreateUpload:
		return &cellarv1.CreateUploadResponse{}, s.CreateUpload(op.CreateUpload.Upload, op.CreateUpload.RequireBucket)
	case *cellarv1.IndexCommand_PutPart:
		r := op.PutPart
		prev, err := s.PutPart(r.Bucket, r.Key, r.UploadId, r.Part)
		return &cellarv1.PutPartResponse{Previous: prev}, err
	case *cellarv1.IndexCommand_CompleteUpload:
		r := op.CompleteUpload
		parts := make([]CompletedPart, len(r.Parts))
		for i, p := range r.Parts {
			parts[i] = CompletedPart{Number: p.Number, ETag: p.Etag}
		}
		loc, prev, unused, err := s.CompleteUpload(r.Bucket, r.Key, r.UploadId, parts, CompleteOptions{
			MinPartSize: r.MinPartSize, ModifiedUnixNano: r.ModifiedUnixNano, RequireBucket: r.RequireBucket,
			Condition: Condition{IfMatch: r.IfMatch, IfNoneMatch: r.IfNoneMatch}, Declared: declaredChecksumsOf(r),
			Versioning: r.Versioning, VersionID: r.VersionId,
		})
		return &cellarv1.CompleteUploadResponse{Location: loc, Previous: prev, Unused: unused, Versioning: s.versioningFor(r.Bucket, r.Versioning)}, err
	case *cellarv1.IndexCommand_AbortUpload:
		r := op.AbortUpload
		parts, err := s.AbortUpload(r.Bucket, r.Key, r.UploadId)
		return &cellarv1.AbortUploadResponse{Parts: parts}, err
	}
	return nil, errs.New(errs.InvalidArgument, "unknown index command")
}

// applied is what the FSM hands back to the writer on the leader.
type applied struct {
	resp proto.Message
	err  error
}

// fsm is the raft state machine of an index node: the Store, in Pebble.
type fsm struct{ s *Store }

// Apply applies one committed log entry. Entries the store already holds (raft
// replays the log since the last snapshot after a restart) are skipped.
func (f fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	if l.Index <= f.s.AppliedIndex() {
		return applied{err: errs.New(errs.Unavailable, "already applied")}
	}
	var cmd cellarv1.IndexCommand
	if err := proto.Unmarshal(l.Data, &cmd); err != nil {
		f.s.markApplied(l.Index)
		return applied{err: errs.Wrap(errs.Internal, err, "undecodable index command")}
	}
	f.s.applying, f.s.applyingAt = l.Index, cmd.UnixNano
	resp, err := execute(f.s, &cmd)
	f.s.applying, f.s.applyingAt = 0, 0
	if errors.Is(err, errCrashed) {
		// A crashed process records nothing: the entry is applied again after a restart.
		return applied{err: err}
	}
	if f.s.AppliedIndex() < l.Index {
		// A refused command writes nothing, but it was applied all the same.
		f.s.markApplied(l.Index)
	}
	return applied{resp: resp, err: err}
}

// markApplied records idx as applied without other writes.
func (s *Store) markApplied(idx uint64) {
	if err := s.db.Set(appliedKey, binary.BigEndian.AppendUint64(nil, idx), pebble.NoSync); err != nil {
		panic(fmt.Sprintf("index: record applied index: %v", err))
	}
	s.applied.Store(idx)
}

// Snapshots hold every record of the state (not the raft log, raft's stable state or
// the applied index): a header, then length-prefixed keys and sealed values as Pebble
// holds them, then a zero length.
var snapshotMagic = []byte("cellar-index-snapshot-1\n")

// isStateKey tells the state machine's keys from the raft log's and the node's own.
func isStateKey(k []byte) bool {
	return len(k) > 0 && k[0] != prefixLog && k[0] != prefixStable && !bytes.HasPrefix(k, []byte("m/"))
}

// Snapshot is called on the FSM's goroutine, between two Applies: a Pebble snapshot
// taken here holds exactly the state at the applied index.
//
// Applies are not synced (the raft log is), but once this snapshot exists raft may
// drop the log entries it covers, and after a restart it resumes from the snapshot's
// index without replaying them: so everything applied must be on disk first.
func (f fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.s.db.LogData(nil, pebble.Sync); err != nil {
		return nil, fmt.Errorf("sync index before snapshot: %w", err)
	}
	return &snapshot{snap: f.s.db.NewSnapshot(), index: f.s.AppliedIndex()}, nil
}

type snapshot struct {
	snap  *pebble.Snapshot
	index uint64
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	err := s.write(sink)
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.Write(snapshotMagic)
	var n [binary.MaxVarintLen64]byte
	bw.Write(binary.BigEndian.AppendUint64(nil, s.index))
	it, err := s.snap.NewIter(nil)
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if !isStateKey(it.Key()) {
			continue
		}
		bw.Write(n[:binary.PutUvarint(n[:], uint64(len(it.Key())))])
		bw.Write(it.Key())
		bw.Write(n[:binary.PutUvarint(n[:], uint64(len(it.Value())))])
		if _, err := bw.Write(it.Value()); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	bw.Write(n[:binary.PutUvarint(n[:], 0)])
	return bw.Flush()
}

func (s *snapshot) Release() { s.snap.Close() }

// Restore replaces the whole state with a snapshot's, when this node is too far behind
// the leader to catch up from the log (or new). Then it rebuilds the in-memory map.
func (f fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s := f.s
	br := bufio.NewReaderSize(rc, 1<<20)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || !bytes.Equal(magic, snapshotMagic) {
		return errors.New("index: not an index snapshot")
	}
	var idxBuf [8]byte
	if _, err := io.ReadFull(br, idxBuf[:]); err != nil {
		return fmt.Errorf("index: snapshot header: %w", err)
	}
	index := binary.BigEndian.Uint64(idxBuf[:])

	// Drop the old state: every key but the raft log's, raft's stable keys and m/.
	b := s.db.NewBatch()
	for _, r := range [][2][]byte{
		{{0x00}, {prefixLog}}, {{prefixLog + 1}, []byte("m/")}, {[]byte("m0"), {prefixStable}},
		{{prefixStable + 1}, bytes.Repeat([]byte{0xff}, 8)},
	} {
		if err := b.DeleteRange(r[0], r[1], nil); err != nil {
			return err
		}
	}
	build := locmap.NewBuilder(0, 0)
	buckets := map[string]*cellarv1.Bucket{}
	for {
		k, err := readChunk(br)
		if err != nil {
			return fmt.Errorf("index: snapshot: %w", err)
		}
		if len(k) == 0 {
			break
		}
		v, err := readChunk(br)
		if err != nil {
			return fmt.Errorf("index: snapshot: %w", err)
		}
		if err := b.Set(k, v, nil); err != nil {
			return err
		}
		if err := s.loadRecord(k, v, build, buckets); err != nil {
			return err
		}
		if b.Len() > 4<<20 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b = s.db.NewBatch()
		}
	}
	if err := b.Set(appliedKey, binary.BigEndian.AppendUint64(nil, index), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	s.replaceState(build.Finish(), buckets)
	s.applied.Store(index)
	s.noteApplied(index)
	s.log.Info("index restored from a snapshot", "applied_index", index, "objects", s.Len())
	return nil
}

func readChunk(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > 64<<20 {
		return nil, errors.New("record too large")
	}
	buf := make([]byte, n)
	_, err = io.ReadFull(r, buf)
	return buf, err
}

// loadRecord adds one Pebble record to a map being built (objects) or to buckets.
func (s *Store) loadRecord(k, v []byte, build *locmap.Builder, buckets map[string]*cellarv1.Bucket) error {
	switch k[0] {
	case prefixObject:
		payload, ok := open(v)
		if !ok {
			s.markCorrupt(k[1:])
			return nil
		}
		return build.Append(k[1:], payload)
	case prefixBucket:
		bk, ok := openBucket(v)
		if !ok {
			s.log.Error("corrupt bucket record; bucket not served", "bucket", string(k[1:]))
			return nil
		}
		buckets[string(k[1:])] = bk
	}
	return nil
}

// replaceState makes objects and buckets the store's whole in-memory state.
func (s *Store) replaceState(objects *locmap.Map, buckets map[string]*cellarv1.Bucket) {
	s.bucketMu.Lock()
	s.buckets = buckets
	s.bucketMu.Unlock()
	s.objects.Replace(objects)
}
