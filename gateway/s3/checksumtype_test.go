package s3

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// checksumOf is the base64 checksum alg of data.
func checksumOf(alg string, data []byte) string {
	h := checksumAlgorithms[alg].newH()
	h.Write(data)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func TestCreateUploadChecksumType(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, HandlerOptions{})
	for _, tc := range []struct {
		name, alg, typ string
		wantType       string // "" when refused
	}{
		{"composite by default", "CRC32", "", ChecksumComposite},
		{"CRC64NVME is full-object by default", "CRC64NVME", "", ChecksumFullObject},
		{"full-object CRC32C", "CRC32C", "FULL_OBJECT", ChecksumFullObject},
		{"full-object in lowercase", "crc32", "full_object", ChecksumFullObject},
		{"composite SHA256", "SHA256", "COMPOSITE", ChecksumComposite},
		{"full-object SHA256", "SHA256", "FULL_OBJECT", ""},
		{"full-object SHA1", "SHA1", "FULL_OBJECT", ""},
		{"composite CRC64NVME", "CRC64NVME", "COMPOSITE", ""},
		{"a type without an algorithm", "", "FULL_OBJECT", ""},
		{"an unknown type", "CRC32", "WHOLE", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"x-amz-checksum-algorithm": tc.alg, "x-amz-checksum-type": tc.typ}
			r := do(t, ts, "POST", "/bkt/mp?uploads", nil, hdr)
			if tc.wantType == "" {
				wantError(t, r, 400, "InvalidRequest", cellNone)
				return
			}
			if r.status != 200 {
				t.Fatalf("CreateMultipartUpload: %d %s", r.status, r.body)
			}
			if got := r.header.Get("x-amz-checksum-type"); got != tc.wantType {
				t.Errorf("x-amz-checksum-type %q, want %q", got, tc.wantType)
			}
			var res initiateResultXML
			if err := xml.Unmarshal(r.body, &res); err != nil {
				t.Fatal(err)
			}
			r = do(t, ts, "GET", "/bkt/mp?uploadId="+res.UploadID, nil, nil)
			var parts listPartsResultXML
			if err := xml.Unmarshal(r.body, &parts); err != nil || parts.ChecksumType != tc.wantType {
				t.Errorf("ListParts ChecksumType %q (%v), want %q", parts.ChecksumType, err, tc.wantType)
			}
		})
	}
}

// TestFullObjectMultipartSDK runs full-object multipart uploads through
// aws-sdk-go-v2, which combines nothing itself: it sends each part's CRC and the
// whole object's, and checks the body of a GET against the object's.
func TestFullObjectMultipartSDK(t *testing.T) {
	t.Parallel()
	ts := startServer(t, newFakeBackend(), HandlerOptions{}, false)
	ctx := t.Context()
	c := ts.client
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("full")}); err != nil {
		t.Fatal(err)
	}
	part1 := bytes.Repeat([]byte("0123456789abcdef"), fakeMinPartSize/16)
	part2 := []byte("the last part, shorter")
	whole := append(append([]byte{}, part1...), part2...)
	for _, alg := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmCrc64nvme} {
		t.Run(string(alg), func(t *testing.T) {
			key := "obj-" + string(alg)
			upload := func() (string, []types.CompletedPart) {
				t.Helper()
				up, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("full"), Key: aws.String(key),
					ChecksumAlgorithm: alg, ChecksumType: types.ChecksumTypeFullObject})
				if err != nil {
					t.Fatal(err)
				}
				if up.ChecksumType != types.ChecksumTypeFullObject || up.ChecksumAlgorithm != alg {
					t.Fatalf("CreateMultipartUpload answered %s %s", up.ChecksumAlgorithm, up.ChecksumType)
				}
				var done []types.CompletedPart
				for i, data := range [][]byte{part1, part2} {
					p, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("full"), Key: aws.String(key), UploadId: up.UploadId,
						PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(data), ChecksumAlgorithm: alg})
					if err != nil {
						t.Fatal(err)
					}
					done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: p.ETag,
						ChecksumCRC32: p.ChecksumCRC32, ChecksumCRC32C: p.ChecksumCRC32C, ChecksumCRC64NVME: p.ChecksumCRC64NVME})
				}
				return aws.ToString(up.UploadId), done
			}
			complete := func(id string, parts []types.CompletedPart, value string) (*awss3.CompleteMultipartUploadOutput, error) {
				in := &awss3.CompleteMultipartUploadInput{Bucket: aws.String("full"), Key: aws.String(key), UploadId: aws.String(id),
					ChecksumType: types.ChecksumTypeFullObject, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
				switch alg {
				case types.ChecksumAlgorithmCrc32:
					in.ChecksumCRC32 = aws.String(value)
				case types.ChecksumAlgorithmCrc32c:
					in.ChecksumCRC32C = aws.String(value)
				default:
					in.ChecksumCRC64NVME = aws.String(value)
				}
				return c.CompleteMultipartUpload(ctx, in)
			}
			want := checksumOf(string(alg), whole)

			id, parts := upload()
			_, err := complete(id, parts, checksumOf(string(alg), part1))
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "BadDigest" {
				t.Fatalf("completing with a wrong checksum: %v, want BadDigest", err)
			}
			if _, ok := ts.be.object("full", key); ok {
				t.Fatal("a completion refused for its checksum stored the object")
			}
			out, err := complete(id, parts, want)
			if err != nil {
				t.Fatal(err)
			}
			if out.ChecksumType != types.ChecksumTypeFullObject || checksumValue(alg, out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64NVME) != want {
				t.Errorf("CompleteMultipartUpload answered %s %s, want FULL_OBJECT %s", out.ChecksumType,
					checksumValue(alg, out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64NVME), want)
			}
			head, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("full"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil || head.ChecksumType != types.ChecksumTypeFullObject || checksumValue(alg, head.ChecksumCRC32, head.ChecksumCRC32C, head.ChecksumCRC64NVME) != want {
				t.Errorf("HeadObject: %v, type %s", err, head.ChecksumType)
			}
			// The SDK checks the body it reads against the full-object checksum.
			get, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("full"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(get.Body)
			get.Body.Close()
			if err != nil || !bytes.Equal(body, whole) || get.ChecksumType != types.ChecksumTypeFullObject {
				t.Errorf("GetObject: %d bytes, %v, type %s", len(body), err, get.ChecksumType)
			}
		})
	}
}

func checksumValue(alg types.ChecksumAlgorithm, crc32, crc32c, crc64 *string) string {
	switch alg {
	case types.ChecksumAlgorithmCrc32:
		return aws.ToString(crc32)
	case types.ChecksumAlgorithmCrc32c:
		return aws.ToString(crc32c)
	}
	return aws.ToString(crc64)
}

// createFullObjectUpload starts a FULL_OBJECT upload of bkt/mp and returns its id.
func createFullObjectUpload(t *testing.T, ts *testServer, alg string) string {
	t.Helper()
	r := do(t, ts, "POST", "/bkt/mp?uploads", nil, map[string]string{"x-amz-checksum-algorithm": alg, "x-amz-checksum-type": "FULL_OBJECT"})
	var up initiateResultXML
	if err := xml.Unmarshal(r.body, &up); err != nil || r.status != 200 {
		t.Fatalf("CreateMultipartUpload: %d %s", r.status, r.body)
	}
	return up.UploadID
}

// TestPartChecksumMustMatchUpload checks that a part in another algorithm than its
// upload's is refused, and that one sent without a checksum gets one.
func TestPartChecksumMustMatchUpload(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, HandlerOptions{})
	id := createFullObjectUpload(t, ts, "CRC32")
	target := "/bkt/mp?partNumber=1&uploadId=" + id
	data := []byte("part data")
	r := do(t, ts, "PUT", target, bytes.NewReader(data), map[string]string{"x-amz-checksum-crc32c": checksumOf("CRC32C", data)})
	wantError(t, r, 400, "InvalidRequest", ts.be.cellOf("bkt"))
	r = do(t, ts, "PUT", target, bytes.NewReader(data), nil)
	if r.status != 200 || r.header.Get("x-amz-checksum-crc32") != checksumOf("CRC32", data) {
		t.Fatalf("part without a checksum: %d, x-amz-checksum-crc32 %q, want %q", r.status, r.header.Get("x-amz-checksum-crc32"), checksumOf("CRC32", data))
	}
	r = do(t, ts, "GET", "/bkt/mp?uploadId="+id, nil, nil)
	var parts listPartsResultXML
	if err := xml.Unmarshal(r.body, &parts); err != nil || len(parts.Parts) != 1 || parts.Parts[0].ChecksumCRC32 != checksumOf("CRC32", data) {
		t.Fatalf("ListParts: %v %+v", err, parts.Parts)
	}
}

// TestCompleteChecksumHeaders checks that the x-amz-checksum-* headers of a
// completion are read as the object's, not as the checksum of the XML body.
func TestCompleteChecksumHeaders(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, HandlerOptions{})
	id := createFullObjectUpload(t, ts, "CRC32")
	data := []byte("the only part")
	r := do(t, ts, "PUT", "/bkt/mp?partNumber=1&uploadId="+id, bytes.NewReader(data), nil)
	if r.status != 200 {
		t.Fatalf("UploadPart: %d %s", r.status, r.body)
	}
	etag := r.header.Get("ETag")
	body := `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>` + etag + `</ETag></Part></CompleteMultipartUpload>`
	target := "/bkt/mp?uploadId=" + id
	cell := ts.be.cellOf("bkt")
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		status int
		code   string
	}{
		{"not base64", map[string]string{"x-amz-checksum-crc32": "not base64!"}, 400, "InvalidDigest"},
		{"two algorithms", map[string]string{"x-amz-checksum-crc32": checksumOf("CRC32", data), "x-amz-checksum-crc32c": checksumOf("CRC32C", data)}, 400, "InvalidRequest"},
		{"unknown type", map[string]string{"x-amz-checksum-type": "PARTIAL"}, 400, "InvalidRequest"},
		{"another type", map[string]string{"x-amz-checksum-type": "COMPOSITE"}, 400, "BadDigest"},
		{"the XML's checksum", map[string]string{"x-amz-checksum-crc32": checksumOf("CRC32", []byte(body))}, 400, "BadDigest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cell
			if tc.code == "InvalidDigest" || tc.code == "InvalidRequest" {
				c = cellNone
			}
			wantError(t, do(t, ts, "POST", target, strings.NewReader(body), tc.hdr), tc.status, tc.code, c)
		})
	}
	r = do(t, ts, "POST", target, strings.NewReader(body), map[string]string{"x-amz-checksum-crc32": checksumOf("CRC32", data)})
	var res completeResultXML
	if err := xml.Unmarshal(r.body, &res); err != nil || r.status != 200 || res.ChecksumCRC32 != checksumOf("CRC32", data) || res.ChecksumType != ChecksumFullObject {
		t.Fatalf("CompleteMultipartUpload: %d %s", r.status, r.body)
	}
}
