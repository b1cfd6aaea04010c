package storage

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"sync"

	"github.com/cellarsim/cellar/internal/errs"
)

const (
	// BlockSize is the unit of checksumming: one CRC32C per BlockSize bytes of data.
	// A read verifies whole blocks, so it is also the smallest unit a ranged read
	// reads from disk.
	BlockSize = 256 << 10

	// MaxMessage bounds the data in one ReadResponse (gRPC's default limit is 4 MiB).
	// It is also how much a read takes from disk at a time.
	MaxMessage = 1 << 20

	footerSize = 36
	magic      = "CLB1"
	// maxBlockSize bounds the block size a footer may claim, so that a damaged footer
	// cannot make a read allocate a huge buffer.
	maxBlockSize = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// footer is the fixed-size end of a blob file; see the package doc.
type footer struct {
	blockSize int64
	size      int64 // object bytes
	id        ID
}

func (f footer) blocks() int64 { return (f.size + f.blockSize - 1) / f.blockSize }

// fileSize is the length of a blob file with this footer.
func (f footer) fileSize() int64 { return f.size + 4*f.blocks() + footerSize }

func (f footer) encode() []byte {
	b := make([]byte, footerSize)
	copy(b[0:4], magic)
	binary.LittleEndian.PutUint32(b[4:8], uint32(f.blockSize))
	binary.LittleEndian.PutUint64(b[8:16], uint64(f.size))
	copy(b[16:32], f.id[:])
	binary.LittleEndian.PutUint32(b[32:36], crc32.Checksum(b[:32], castagnoli))
	return b
}

// readFooter reads and checks the footer of the blob file f, fileSize bytes long, that
// should hold object id. A nil error means every offset derived from the footer lies
// inside the file.
func readFooter(f *os.File, fileSize int64, id ID) (footer, error) {
	var ft footer
	if fileSize < footerSize {
		return ft, errors.New("file shorter than its footer")
	}
	b := make([]byte, footerSize)
	if _, err := f.ReadAt(b, fileSize-footerSize); err != nil {
		return ft, err
	}
	if string(b[0:4]) != magic {
		return ft, errors.New("bad magic")
	}
	if crc32.Checksum(b[:32], castagnoli) != binary.LittleEndian.Uint32(b[32:36]) {
		return ft, errors.New("footer checksum mismatch")
	}
	ft.blockSize = int64(binary.LittleEndian.Uint32(b[4:8]))
	ft.size = int64(binary.LittleEndian.Uint64(b[8:16]))
	copy(ft.id[:], b[16:32])
	switch {
	case ft.blockSize <= 0 || ft.blockSize > maxBlockSize:
		return ft, errors.New("bad block size")
	case ft.size < 0 || ft.size > fileSize:
		return ft, errors.New("bad data size")
	case ft.fileSize() != fileSize:
		return ft, errors.New("file length does not match footer")
	case ft.id != id:
		return ft, errors.New("footer names another object")
	}
	return ft, nil
}

// Writer writes one blob. Nothing is visible under the blob's id until Commit
// succeeds; Abort (or a failed Commit) removes the temporary file. Call Abort in a
// defer: it does nothing after a successful Commit.
type Writer struct {
	s    *Store
	id   ID
	want int64 // announced size, -1 if unknown
	f    *os.File
	buf  *bufio.Writer
	n    int64
	done bool

	crcs    []uint32 // of the complete blocks so far
	crc     uint32   // of the block being filled
	inBlock int
}

// Create starts writing blob id. size is the exact number of bytes that will be
// written, or -1 if unknown.
func (s *Store) Create(id ID, size int64) (*Writer, error) {
	if size < -1 {
		return nil, errs.New(errs.InvalidArgument, "object %s: bad size %d", id, size)
	}
	if err := s.diskFault(); err != nil {
		return nil, s.writeFailed(err, "create object %s", id)
	}
	f, err := os.CreateTemp(s.tmpDir, id.String()+".*.tmp")
	if err != nil {
		return nil, s.writeFailed(err, "create object %s", id)
	}
	buf := writeBufs.Get().(*bufio.Writer)
	buf.Reset(f)
	return &Writer{s: s, id: id, want: size, f: f, buf: buf}, nil
}

// writeBufs are the Writers' block-sized buffers, reused rather than allocated (and
// zeroed) for every blob.
var writeBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, BlockSize) }}

// release gives the Writer's buffer back to the pool; the Writer is done with it.
func (w *Writer) release() {
	if w.buf != nil {
		w.buf.Reset(nil)
		writeBufs.Put(w.buf)
		w.buf = nil
	}
}

// Write appends p to the blob. Going past the announced size is an InvalidArgument
// error.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errs.New(errs.Internal, "object %s: write after commit or abort", w.id)
	}
	if w.want >= 0 && w.n+int64(len(p)) > w.want {
		return 0, errs.New(errs.InvalidArgument, "object %s: more bytes than the %d announced", w.id, w.want)
	}
	if err := w.s.diskFault(); err != nil {
		return 0, w.s.writeFailed(err, "write object %s", w.id)
	}
	if _, err := w.buf.Write(p); err != nil {
		return 0, w.s.writeFailed(err, "write object %s", w.id)
	}
	n := len(p)
	w.n += int64(n)
	for len(p) > 0 {
		k := min(BlockSize-w.inBlock, len(p))
		w.crc = crc32.Update(w.crc, castagnoli, p[:k])
		w.inBlock += k
		p = p[k:]
		if w.inBlock == BlockSize {
			w.crcs = append(w.crcs, w.crc)
			w.crc, w.inBlock = 0, 0
		}
	}
	return n, nil
}

// Commit makes the blob durable and visible under its id, replacing any blob of that id,
// and returns its size. It fails with IncompleteBody if fewer bytes were written than
// announced, and does not install the blob if ctx is done.
func (w *Writer) Commit(ctx context.Context) (int64, error) {
	if w.done {
		return 0, errs.New(errs.Internal, "object %s: commit after commit or abort", w.id)
	}
	if w.want >= 0 && w.n != w.want {
		w.Abort()
		return 0, errs.New(errs.IncompleteBody, "object %s: got %d of %d bytes", w.id, w.n, w.want)
	}
	if w.inBlock > 0 {
		w.crcs = append(w.crcs, w.crc)
		w.crc, w.inBlock = 0, 0
	}
	trailer := make([]byte, 4*len(w.crcs), 4*len(w.crcs)+footerSize)
	for i, c := range w.crcs {
		binary.LittleEndian.PutUint32(trailer[4*i:], c)
	}
	trailer = append(trailer, footer{blockSize: BlockSize, size: w.n, id: w.id}.encode()...)
	if err := w.finish(trailer); err != nil {
		w.Abort()
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		w.Abort()
		return 0, errs.Wrap(errs.IncompleteBody, err, "object %s: write cancelled", w.id)
	}
	if err := w.s.install(w.f.Name(), w.id, int64(len(trailer))+w.n); err != nil {
		w.Abort()
		return 0, err
	}
	w.done = true
	w.release()
	w.s.written.Add(w.n)
	return w.n, nil
}

// finish writes the trailer, flushes, fsyncs and closes the temp file.
func (w *Writer) finish(trailer []byte) error {
	if err := w.s.diskFault(); err != nil {
		return w.s.writeFailed(err, "write object %s", w.id)
	}
	if _, err := w.buf.Write(trailer); err != nil {
		return w.s.writeFailed(err, "write object %s", w.id)
	}
	if err := w.buf.Flush(); err != nil {
		return w.s.writeFailed(err, "write object %s", w.id)
	}
	if err := w.f.Sync(); err != nil {
		return w.s.writeFailed(err, "sync object %s", w.id)
	}
	if err := w.f.Close(); err != nil {
		return w.s.writeFailed(err, "close object %s", w.id)
	}
	return nil
}

// Abort drops the blob being written. It is safe to call more than once, and after
// Commit.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.release()
	w.f.Close() // may already be closed by finish
	os.Remove(w.f.Name())
}

// Read sends bytes [off, off+length) of blob id to fn, in order, in slices of at most
// MaxMessage bytes; length 0 means to the end, and a range past the end is cut at the
// end. Every block a slice comes from has passed its checksum before fn sees any of it.
// fn owns each slice it is given. Read returns the number of bytes sent to fn.
//
// Errors: NoSuchKey if there is no such blob, InvalidArgument for a negative range or an
// offset past the end, Corrupt if a block (or the footer) fails its checksum, and
// whatever fn or ctx return.
func (s *Store) Read(ctx context.Context, id ID, off, length int64, fn func([]byte) error) (int64, error) {
	if off < 0 || length < 0 {
		return 0, errs.New(errs.InvalidArgument, "object %s: bad range offset %d length %d", id, off, length)
	}
	f, ft, err := s.open(id)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if off > ft.size {
		return 0, errs.New(errs.InvalidArgument, "object %s: offset %d is past the end (%d bytes)", id, off, ft.size)
	}
	end := ft.size
	if length > 0 && length < ft.size-off {
		end = off + length
	}
	if off == end {
		return 0, nil
	}

	bs := ft.blockSize
	chunk := max(bs, MaxMessage/bs*bs) // whole blocks per disk read
	crcBuf := make([]byte, 4*(chunk/bs))
	var sent int64
	// Read only the blocks the range overlaps: from the block holding off to the one
	// holding end-1.
	stop := min((end+bs-1)/bs*bs, ft.size)
	for pos := off / bs * bs; pos < end; pos += chunk {
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		data := make([]byte, min(chunk, stop-pos)) // fresh: fn may keep it
		if _, err := f.ReadAt(data, pos); err != nil {
			return sent, ioErr(err, "read object %s", id)
		}
		first, nblocks := pos/bs, (int64(len(data))+bs-1)/bs
		crcs := crcBuf[:4*nblocks]
		if _, err := f.ReadAt(crcs, ft.size+4*first); err != nil {
			return sent, ioErr(err, "read object %s", id)
		}
		for i := range nblocks {
			block := data[i*bs : min((i+1)*bs, int64(len(data)))]
			if crc32.Checksum(block, castagnoli) != binary.LittleEndian.Uint32(crcs[4*i:]) {
				s.corrupt.Add(1)
				return sent, errs.New(errs.Corrupt, "object %s: block %d failed its checksum", id, first+i)
			}
		}
		out := data[max(off, pos)-pos : min(end, pos+int64(len(data)))-pos]
		for len(out) > 0 {
			p := out[:min(len(out), MaxMessage)]
			if err := fn(p); err != nil {
				return sent, err
			}
			sent += int64(len(p))
			s.read.Add(int64(len(p)))
			out = out[len(p):]
		}
	}
	return sent, nil
}

// Size returns the size of blob id, from its checked footer.
func (s *Store) Size(id ID) (int64, error) {
	f, ft, err := s.open(id)
	if err != nil {
		return 0, err
	}
	f.Close()
	return ft.size, nil
}

// open opens blob id and checks its footer.
func (s *Store) open(id ID) (*os.File, footer, error) {
	f, err := os.Open(s.Path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, footer{}, errs.New(errs.NoSuchKey, "object %s not found", id)
	} else if err != nil {
		return nil, footer{}, ioErr(err, "open object %s", id)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, footer{}, ioErr(err, "stat object %s", id)
	}
	ft, err := readFooter(f, info.Size(), id)
	if err != nil {
		f.Close()
		s.corrupt.Add(1)
		return nil, footer{}, errs.Wrap(errs.Corrupt, err, "object %s: bad footer", id)
	}
	return f, ft, nil
}

var _ io.Writer = (*Writer)(nil)
