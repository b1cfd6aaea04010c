package index

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"math/rand/v2"
	"testing"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// directCRC is each full-object algorithm computed the ordinary way, over the bytes.
var directCRC = map[string]func() hash.Hash{
	"CRC32":     func() hash.Hash { return crc32.NewIEEE() },
	"CRC32C":    func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) },
	"CRC64NVME": func() hash.Hash { return crc64.New(crc64.MakeTable(0x9a6c9329ac4bc9b5)) },
}

func checksumOf(alg string, data []byte) string {
	h := directCRC[alg]()
	h.Write(data)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func TestCRCCombineMatchesDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for alg, crc := range fullObjectCRCs {
		for trial := range 50 {
			data := make([]byte, rng.IntN(5000))
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			// Cut data into parts at random places; empty parts included.
			var sum uint64
			for rest := data; ; {
				n := min(len(rest), rng.IntN(1500))
				h := directCRC[alg]()
				h.Write(rest[:n])
				var part uint64
				if crc.width == 32 {
					part = uint64(binary.BigEndian.Uint32(h.Sum(nil)))
				} else {
					part = binary.BigEndian.Uint64(h.Sum(nil))
				}
				sum = crc.combine(sum, part, int64(n))
				rest = rest[n:]
				if len(rest) == 0 {
					break
				}
			}
			if got, want := base64.StdEncoding.EncodeToString(crc.bytes(sum)), checksumOf(alg, data); got != want {
				t.Fatalf("%s trial %d (%d bytes): combined %s, direct %s", alg, trial, len(data), got, want)
			}
		}
	}
}

// checksummedPart is part n of an upload holding data, with its checksum in alg.
func checksummedPart(n int32, alg string, data []byte) *cellarv1.PartLocation {
	sum := md5.Sum(data)
	return &cellarv1.PartLocation{Number: n, ObjectId: []byte(fmt.Sprintf("part-%d", n)), Size: int64(len(data)),
		Md5: sum[:], Replicas: []string{"s0"}, Checksum: checksumOf(alg, data)}
}

func TestCompleteFullObjectChecksum(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.CreateBucket("b")
	data := make([]byte, 300)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, alg := range []string{"CRC32", "CRC32C", "CRC64NVME"} {
		t.Run(alg, func(t *testing.T) {
			id := "full-" + alg
			up := &cellarv1.Upload{Bucket: "b", Key: alg, UploadId: id, ChecksumType: ChecksumFullObject,
				Meta: &cellarv1.Location{ChecksumAlgorithm: alg}}
			if err := s.CreateUpload(up, true); err != nil {
				t.Fatal(err)
			}
			p1, p2, p3 := checksummedPart(1, alg, data[:100]), checksummedPart(2, alg, data[100:250]), checksummedPart(3, alg, data[250:])
			for _, p := range []*cellarv1.PartLocation{p1, p2, p3} {
				if _, err := s.PutPart("b", alg, id, p); err != nil {
					t.Fatal(err)
				}
			}
			chosen := []CompletedPart{{1, etagOf(p1)}, {2, etagOf(p2)}, {3, etagOf(p3)}}
			whole := checksumOf(alg, data)
			opts := CompleteOptions{RequireBucket: true}
			for _, tc := range []struct {
				name     string
				declared DeclaredChecksums
				want     errs.Kind
			}{
				{"wrong value", DeclaredChecksums{Algorithm: alg, Value: checksumOf(alg, data[1:]), Type: ChecksumFullObject}, errs.BadDigest},
				{"composite type", DeclaredChecksums{Type: ChecksumComposite}, errs.BadDigest},
				{"other algorithm", DeclaredChecksums{Algorithm: "SHA256", Value: whole}, errs.InvalidRequest},
				{"wrong part checksum", DeclaredChecksums{Parts: map[int32]PartChecksum{2: {alg, p1.Checksum}}}, errs.InvalidPart},
				{"part checksum in another algorithm", DeclaredChecksums{Parts: map[int32]PartChecksum{2: {"SHA1", p2.Checksum}}}, errs.InvalidPart},
			} {
				o := opts
				o.Declared = tc.declared
				if _, _, _, err := s.CompleteUpload("b", alg, id, chosen, o); !errs.Is(err, tc.want) {
					t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
				}
			}
			if _, err := s.Lookup("b", alg); !errs.Is(err, errs.NoSuchKey) {
				t.Fatalf("a refused completion wrote the object: %v", err)
			}
			opts.Declared = DeclaredChecksums{Algorithm: alg, Value: whole, Type: ChecksumFullObject,
				Parts: map[int32]PartChecksum{1: {alg, p1.Checksum}, 3: {alg, p3.Checksum}}}
			loc, _, _, err := s.CompleteUpload("b", alg, id, chosen, opts)
			if err != nil {
				t.Fatal(err)
			}
			if loc.Checksum != whole || loc.ChecksumAlgorithm != alg || loc.Size != int64(len(data)) {
				t.Fatalf("object checksum %s %q, size %d; want %s %q, %d", loc.ChecksumAlgorithm, loc.Checksum, loc.Size, alg, whole, len(data))
			}
		})
	}
}

func TestCompleteCompositeChecksum(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.CreateBucket("b")
	up := &cellarv1.Upload{Bucket: "b", Key: "k", UploadId: "u", Meta: &cellarv1.Location{ChecksumAlgorithm: "CRC32"}}
	if err := s.CreateUpload(up, true); err != nil {
		t.Fatal(err)
	}
	p1, p2 := checksummedPart(1, "CRC32", []byte("first part")), checksummedPart(2, "CRC32", []byte("second"))
	for _, p := range []*cellarv1.PartLocation{p1, p2} {
		if _, err := s.PutPart("b", "k", "u", p); err != nil {
			t.Fatal(err)
		}
	}
	h := crc32.NewIEEE()
	for _, p := range []*cellarv1.PartLocation{p1, p2} {
		raw, _ := base64.StdEncoding.DecodeString(p.Checksum)
		h.Write(raw)
	}
	composite := base64.StdEncoding.EncodeToString(h.Sum(nil))
	chosen := []CompletedPart{{1, etagOf(p1)}, {2, etagOf(p2)}}
	full := CompleteOptions{Declared: DeclaredChecksums{Type: ChecksumFullObject}}
	if _, _, _, err := s.CompleteUpload("b", "k", "u", chosen, full); !errs.Is(err, errs.BadDigest) {
		t.Fatalf("FULL_OBJECT declared for a composite upload: %v, want BadDigest", err)
	}
	wrong := CompleteOptions{Declared: DeclaredChecksums{Algorithm: "CRC32", Value: checksumOf("CRC32", []byte("first partsecond"))}}
	if _, _, _, err := s.CompleteUpload("b", "k", "u", chosen, wrong); !errs.Is(err, errs.BadDigest) {
		t.Fatalf("the full-object CRC declared for a composite upload: %v, want BadDigest", err)
	}
	miscounted := CompleteOptions{Declared: DeclaredChecksums{Algorithm: "CRC32", Value: composite + "-3", Type: ChecksumComposite}}
	if _, _, _, err := s.CompleteUpload("b", "k", "u", chosen, miscounted); !errs.Is(err, errs.BadDigest) {
		t.Fatalf("composite value with the wrong part count: %v, want BadDigest", err)
	}
	// A composite value is accepted without its part count, too.
	bare := CompleteOptions{Declared: DeclaredChecksums{Algorithm: "CRC32", Value: composite, Type: ChecksumComposite}}
	if _, _, _, err := s.CompleteUpload("b", "k", "u", chosen, bare); err != nil {
		t.Fatalf("composite value without its part count: %v", err)
	}
	loc, err := s.Lookup("b", "k")
	if err != nil || loc.Checksum != composite+"-2" {
		t.Fatalf("object checksum %q (%v), want %s-2", loc.GetChecksum(), err, composite)
	}
}
