// Package storage is the storage tier of a cell: storaged, the daemon that keeps object
// bytes on a local disk and serves them over the Storage gRPC service
// (api/proto/cellar/v1/storage.proto).
//
// A storage node knows nothing about buckets or keys. It stores blobs named by a 16-byte
// object id that the placement tier hands out; the index maps keys to those ids. On a PUT
// the gateway streams the bytes to Write; on a GET it streams them back with Read,
// possibly a byte range of them; space is reclaimed with Delete.
//
// # Guarantees
//
//   - A blob is durable when Write returns: its file is fsynced, renamed into place and
//     the directory fsynced. A write that fails, is cancelled, or carries a different
//     number of bytes than its header announced leaves nothing behind.
//   - Every byte a Read sends has been checked against a CRC32C stored when it was
//     written, block by block, before any byte of that block is sent. A mismatch fails the
//     read with errs.Corrupt and counts in cellar_storage_corrupt_blocks_total.
//   - Memory is bounded per call (about one block buffer and one 1 MiB read chunk),
//     whatever the size of the object.
//   - A write stream that brings nothing for Config.StreamIdleTimeout is ended, and its
//     temp file removed: a writer that froze or vanished holds nothing for long.
//   - A node that cannot write says so (health.go): from the first disk error a write
//     meets, and while a probe write fails or the disk has less than
//     Config.MinFreeBytes free, it gossips cell.StateReadOnly and /readyz gives the
//     reason. Placement then leaves it out; it still serves reads and deletes.
//
// # On disk
//
//	<data-dir>/LOCK                 held (flock) while a Store is open
//	<data-dir>/tmp/                 writes in flight; emptied when the store opens
//	<data-dir>/tmp/PROBE            written, fsynced and removed by each write probe
//	<data-dir>/blobs/00 … ff/       fan-out directories by the id's first byte, made on first use
//	<data-dir>/blobs/3f/3fa2…e1     one file per blob, named by the id's 32 hex digits
//
// A blob file is the object's bytes, then one little-endian CRC32C (Castagnoli) per
// block of BlockSize bytes (the last block may be short), then a 36-byte footer:
//
//	magic "CLB1" | block size uint32 | data size uint64 | object id [16]byte | CRC32C of the previous 32 bytes
//
// The footer makes a file self-describing: a reader checks the magic, the footer's own
// checksum, that the id matches the file's name and that the file's length is exactly
// data + 4×blocks + 36, before it trusts any of it.
//
// # Use
//
// The daemon is Run(ctx, Config). For tests and tools the parts are exported: Open a
// Store on a directory and use it directly, or serve it with NewServer on any gRPC
// server. Handlers return errs errors; the daemon's interceptor turns them into gRPC
// status errors and daemon.Conns turns them back on the client side.
package storage
