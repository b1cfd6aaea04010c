// Package raftpebble is the plumbing cellar's raft groups share (the index group of
// each cell, and the map group): hashicorp/raft's log and stable store kept in a Pebble
// database, its network transport over mutual TLS that lets in only the peers a group
// names, raft's timers tuned for a busy machine, and raft's log lines as slog records.
//
//	store := raftpebble.Store{DB: db}
//	trans, err := raftpebble.NewTransport(raftpebble.TransportConfig{Bind: addr, TLS: creds, Peer: allow}, logOut)
//	rc := raftpebble.NewConfig(nodeID, logOut)
//	r, err := raft.NewRaft(rc, fsm, store, store, snaps, trans)
package raftpebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// Store keeps the raft log and raft's stable state (term, vote) in a node's Pebble
// database, beside the records they produce:
//
//	'l' index(8, big-endian) → log entry
//	's' key                  → stable value
//
// Every write is synced: an entry is on disk before raft counts it.
type Store struct{ DB *pebble.DB }

// The first byte of the keys Store writes: the rest of the database may use any other.
const (
	PrefixLog    = 'l'
	PrefixStable = 's'
)

// errNotFound is the error raft expects, by its text, for a missing stable key.
var errNotFound = errors.New("not found")

func logKey(i uint64) []byte {
	k := make([]byte, 9)
	k[0] = PrefixLog
	binary.BigEndian.PutUint64(k[1:], i)
	return k
}

func (s Store) edgeIndex(last bool) (uint64, error) {
	it, err := s.DB.NewIter(&pebble.IterOptions{LowerBound: []byte{PrefixLog}, UpperBound: []byte{PrefixLog + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	ok := false
	if last {
		ok = it.Last()
	} else {
		ok = it.First()
	}
	if !ok {
		return 0, it.Error()
	}
	return binary.BigEndian.Uint64(it.Key()[1:]), nil
}

func (s Store) FirstIndex() (uint64, error) { return s.edgeIndex(false) }
func (s Store) LastIndex() (uint64, error)  { return s.edgeIndex(true) }

func (s Store) GetLog(index uint64, out *raft.Log) error {
	v, closer, err := s.DB.Get(logKey(index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	return decodeLog(index, v, out)
}

func (s Store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

func (s Store) StoreLogs(logs []*raft.Log) error {
	b := s.DB.NewBatch()
	defer b.Close()
	for _, l := range logs {
		if err := b.Set(logKey(l.Index), encodeLog(l), nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}

func (s Store) DeleteRange(min, max uint64) error {
	return s.DB.DeleteRange(logKey(min), logKey(max+1), pebble.Sync)
}

func (s Store) Set(key, val []byte) error {
	return s.DB.Set(append([]byte{PrefixStable}, key...), val, pebble.Sync)
}

func (s Store) Get(key []byte) ([]byte, error) {
	v, closer, err := s.DB.Get(append([]byte{PrefixStable}, key...))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

func (s Store) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

func (s Store) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("stable value %q is %d bytes, want 8", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// A log entry on disk: term(8) type(1) appended-at unix nanos(8) len(data)(4) data
// len(extensions)(4) extensions.
func encodeLog(l *raft.Log) []byte {
	b := make([]byte, 0, 25+len(l.Data)+len(l.Extensions))
	b = binary.BigEndian.AppendUint64(b, l.Term)
	b = append(b, byte(l.Type))
	b = binary.BigEndian.AppendUint64(b, uint64(l.AppendedAt.UnixNano()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Extensions)))
	return append(b, l.Extensions...)
}

func decodeLog(index uint64, b []byte, l *raft.Log) error {
	bad := fmt.Errorf("raft log entry %d is damaged", index)
	if len(b) < 21 {
		return bad
	}
	l.Index = index
	l.Term = binary.BigEndian.Uint64(b)
	l.Type = raft.LogType(b[8])
	l.AppendedAt = time.Unix(0, int64(binary.BigEndian.Uint64(b[9:])))
	n := int(binary.BigEndian.Uint32(b[17:]))
	b = b[21:]
	if len(b) < n+4 {
		return bad
	}
	l.Data = append([]byte(nil), b[:n]...)
	b = b[n:]
	m := int(binary.BigEndian.Uint32(b))
	if len(b[4:]) != m {
		return bad
	}
	l.Extensions = nil
	if m > 0 {
		l.Extensions = append([]byte(nil), b[4:]...)
	}
	return nil
}

var (
	_ raft.LogStore    = Store{}
	_ raft.StableStore = Store{}
)
