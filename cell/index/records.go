package index

import (
	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
)

// ObjectRecord returns the Pebble key and value under which an index node stores loc.
// Tools that write an index database directly (package seed) use it; the records they
// write are read back, and checked, exactly as the node's own.
func ObjectRecord(loc *cellarv1.Location) (key, value []byte, err error) {
	payload, err := encodeLocation(loc)
	if err != nil {
		return nil, nil, err
	}
	return objectKey(mapKey(loc.Bucket, loc.Key)), seal(payload), nil
}

// ObjectRecordFor is ObjectRecord for a loc whose Bucket and Key are left empty
// (they are in the key), without copying loc: for tools that write many records.
func ObjectRecordFor(bucket, key string, loc *cellarv1.Location) (k, v []byte, err error) {
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(loc)
	if err != nil {
		return nil, nil, err
	}
	return objectKey(mapKey(bucket, key)), seal(payload), nil
}

// BucketRecord returns the Pebble key and value under which an index node stores b.
func BucketRecord(b *cellarv1.Bucket) (key, value []byte, err error) {
	payload, err := proto.Marshal(b)
	if err != nil {
		return nil, nil, err
	}
	return bucketKey(b.Name), seal(payload), nil
}
