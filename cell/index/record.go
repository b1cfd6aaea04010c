package index

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// Pebble key space of an index node:
//
//	'o' bucket 0x00 key  → checksummed Location (without bucket and key)
//	'b' bucket           → checksummed Bucket
//
// (and uploads and their parts, 'u' and 'p', in uploads.go; a moving bucket's change
// log, 'c', in changes.go)
//
// A value is a 4-byte little-endian CRC-32C of the payload, then the payload. The
// in-memory map holds object keys without the 'o' and payloads without the checksum.
const (
	prefixObject = 'o'
	prefixBucket = 'b'
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// mapKey is the in-memory key of an object: bucket 0x00 key. Bucket names never hold
// 0x00, so all of a bucket's keys are contiguous and in key order.
func mapKey(bucket, key string) []byte {
	b := make([]byte, 0, len(bucket)+1+len(key))
	b = append(b, bucket...)
	b = append(b, 0)
	return append(b, key...)
}

func splitMapKey(k []byte) (bucket, key string) {
	i := bytes.IndexByte(k, 0)
	return string(k[:i]), string(k[i+1:])
}

func objectKey(mk []byte) []byte {
	return append([]byte{prefixObject}, mk...)
}

func bucketKey(name string) []byte {
	return append([]byte{prefixBucket}, name...)
}

// seal prefixes payload with its checksum.
func seal(payload []byte) []byte {
	out := make([]byte, 4+len(payload))
	binary.LittleEndian.PutUint32(out, crc32.Checksum(payload, castagnoli))
	copy(out[4:], payload)
	return out
}

// open checks a sealed value and returns its payload.
func open(v []byte) ([]byte, bool) {
	if len(v) < 4 {
		return nil, false
	}
	if binary.LittleEndian.Uint32(v) != crc32.Checksum(v[4:], castagnoli) {
		return nil, false
	}
	return v[4:], true
}

// openBucket decodes a sealed bucket record; false when it fails its checksum or
// does not decode.
func openBucket(v []byte) (*cellarv1.Bucket, bool) {
	payload, ok := open(v)
	if !ok {
		return nil, false
	}
	var bk cellarv1.Bucket
	if proto.Unmarshal(payload, &bk) != nil {
		return nil, false
	}
	return &bk, true
}

// deletePrefix adds to b the removal of every key that starts with p.
func deletePrefix(b *pebble.Batch, p []byte) error {
	return b.DeleteRange(p, prefixSuccessor(p), nil)
}

// encodeLocation gives the map payload of loc: the Location without bucket and key,
// which the map key already holds.
func encodeLocation(loc *cellarv1.Location) ([]byte, error) {
	c := proto.Clone(loc).(*cellarv1.Location)
	c.Bucket, c.Key = "", ""
	return proto.MarshalOptions{Deterministic: true}.Marshal(c)
}

func decodeLocation(mk, payload []byte) (*cellarv1.Location, error) {
	var loc cellarv1.Location
	if err := proto.Unmarshal(payload, &loc); err != nil {
		return nil, errs.Wrap(errs.Corrupt, err, "index record does not decode")
	}
	loc.Bucket, loc.Key = splitMapKey(mk)
	return &loc, nil
}
