package s3bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string // start of the error; "" for none
	}{
		{"defaults", Options{}, ""},
		{"concurrency zero after defaults stays valid", Options{Concurrency: 0}, ""},
		{"concurrency negative", Options{Concurrency: -1}, "concurrency must be between 1 and 1024, not -1"},
		{"concurrency too high", Options{Concurrency: 5000}, "concurrency must be"},
		{"duration too short", Options{Duration: time.Millisecond}, "duration must be between 100ms"},
		{"duration too long", Options{Duration: time.Hour}, "duration must be"},
		{"passes", Options{Passes: 10}, "passes must be between 1 and 9, not 10"},
		{"size zero", Options{Sizes: []int64{0}}, "sizes: each size must be between 1B and 256MiB, not 0B"},
		{"size twice", Options{Sizes: []int64{4096, 4096}}, "sizes: 4KiB is given twice"},
		{"endpoint", Options{Endpoint: "127.0.0.1:9000"}, `endpoint "127.0.0.1:9000": want http://HOST:PORT`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.EnsureDefaults()
			err := tc.o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Fatalf("Validate() = %v, want an error starting %q", err, tc.want)
			}
		})
	}
}

func TestParseSizes(t *testing.T) {
	got, err := ParseSizes("4KiB, 1MiB,100,2M,3B")
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{4 << 10, 1 << 20, 100, 2 << 20, 3}
	if len(got) != len(want) {
		t.Fatalf("ParseSizes = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ParseSizes = %v, want %v", got, want)
		}
	}
	for _, bad := range []string{"", "4KB", "x", "-1", "4KiB,"} {
		if _, err := ParseSizes(bad); err == nil {
			t.Errorf("ParseSizes(%q) took it", bad)
		}
	}
	for n, s := range map[int64]string{4096: "4KiB", 1 << 20: "1MiB", 1000: "1000B", 3 << 30: "3GiB"} {
		if FormatSize(n) != s {
			t.Errorf("FormatSize(%d) = %q, want %q", n, FormatSize(n), s)
		}
	}
}

const testAK, testSK = "AKIDBENCHTEST", "secret-of-the-bench-test"

func testClient(t *testing.T, endpoint string) *minio.Client {
	t.Helper()
	c, err := minio.New(strings.TrimPrefix(endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(testAK, testSK, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The reference stores what it is sent, durably in a file of its directory, and gives
// it back, through a real signed S3 client.
func TestReferenceRoundTrip(t *testing.T) {
	ref, err := StartReference(t.TempDir(), testAK, testSK, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	ctx := context.Background()
	c := testClient(t, ref.Endpoint())
	if err := c.MakeBucket(ctx, "bkt", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 1, 4 << 10, 1<<20 + 7} {
		body := bytes.Repeat([]byte{byte(size)}, size)
		key := "k/" + FormatSize(int64(size))
		if _, err := c.PutObject(ctx, "bkt", key, bytes.NewReader(body), int64(size), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("PUT %d bytes: %v", size, err)
		}
		obj, err := c.GetObject(ctx, "bkt", key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("GET of %d bytes: %d bytes back, err %v", size, len(got), err)
		}
	}
	// A range, as the gateway's protocol code serves it.
	opts := minio.GetObjectOptions{}
	_ = opts.SetRange(10, 19)
	obj, err := c.GetObject(ctx, "bkt", "k/4KiB", opts)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(obj); err != nil || len(got) != 10 {
		t.Fatalf("ranged GET: %d bytes, err %v", len(got), err)
	}
	obj.Close()
	if n := ref.objectsIn(); n != 4 {
		t.Fatalf("%d files in the reference's directory, want 4 (one per object)", n)
	}
	// An overwrite leaves one file for the key.
	if _, err := c.PutObject(ctx, "bkt", "k/1B", strings.NewReader("z"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := ref.objectsIn(); n != 4 {
		t.Fatalf("%d files after an overwrite, want 4", n)
	}
	// A wrong signature is refused, as by the gateway.
	bad, _ := minio.New(strings.TrimPrefix(ref.Endpoint(), "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(testAK, "wrong", ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if _, err := bad.PutObject(ctx, "bkt", "x", strings.NewReader("x"), 1, minio.PutObjectOptions{}); minio.ToErrorResponse(err).Code != "SignatureDoesNotMatch" {
		t.Fatalf("PUT with a wrong secret: %v, want SignatureDoesNotMatch", err)
	}
	// What it does not implement says so.
	if _, err := (&minio.Core{Client: c}).NewMultipartUpload(ctx, "bkt", "mp", minio.PutObjectOptions{}); minio.ToErrorResponse(err).StatusCode != http.StatusNotImplemented {
		t.Fatalf("multipart upload on the reference: %v, want 501", err)
	}
	dir := ref.Dir()
	if err := ref.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Close left %s behind: %v", dir, err)
	}
}

// Run measures two targets (here two references) and reports every figure, per pass
// and as medians, in the JSON shape scripts read.
func TestRunReportShape(t *testing.T) {
	dir := t.TempDir()
	ref, err := StartReference(filepath.Join(dir, "ref"), testAK, testSK, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	other, err := StartReference(filepath.Join(dir, "other"), testAK, testSK, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Options{
		Endpoint: other.Endpoint(), AccessKey: testAK, SecretKey: testSK,
		Sizes: []int64{1 << 10, 64 << 10}, Concurrency: 2, Duration: 300 * time.Millisecond, Passes: 2,
		Reference: ref, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 4 {
		t.Fatalf("%d rows, want 4 (PUT and GET of 2 sizes)", len(rep.Rows))
	}
	for _, row := range rep.Rows {
		for name, m := range map[string]Measure{"cellar": row.Cellar, "reference": row.Reference} {
			if m.Ops == 0 || m.Errors != 0 || m.OpsPerSec <= 0 || m.P50MS <= 0 || m.P99MS < m.P50MS || m.MaxMS < m.P99MS {
				t.Errorf("%s %s %s: %+v", row.Op, row.SizeText, name, m)
			}
		}
		if len(row.Passes[TargetCellar]) != 2 || len(row.Passes[TargetReference]) != 2 {
			t.Errorf("%s %s: passes %v, want 2 per target", row.Op, row.SizeText, row.Passes)
		}
		if row.Ratio.OpsPerSec <= 0 || row.Ratio.P99 <= 0 {
			t.Errorf("%s %s: ratio %+v", row.Op, row.SizeText, row.Ratio)
		}
	}
	// The objects written are deleted at the end.
	if n := other.objectsIn(); n != 0 {
		t.Errorf("%d objects left on the measured target", n)
	}
	if !strings.Contains(progress.String(), "pass 2 cellar GET 64KiB") {
		t.Errorf("progress does not name the phases:\n%s", progress.String())
	}

	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"concurrency", "duration_ns", "passes", "rows", "started", "elapsed_ns"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, b)
		}
	}
	row := doc["rows"].([]any)[0].(map[string]any)
	for _, k := range []string{"op", "size_bytes", "size", "cellar", "reference", "ratio", "passes"} {
		if _, ok := row[k]; !ok {
			t.Errorf("a row has no %q", k)
		}
	}
	for _, k := range []string{"ops", "errors", "ops_per_sec", "mib_per_sec", "p50_ms", "p99_ms", "max_ms"} {
		if _, ok := row["cellar"].(map[string]any)[k]; !ok {
			t.Errorf("a measure has no %q", k)
		}
	}
	for _, k := range []string{"ops_per_sec", "mib_per_sec", "p50", "p99", "max"} {
		if _, ok := row["ratio"].(map[string]any)[k]; !ok {
			t.Errorf("a ratio has no %q", k)
		}
	}

	var table bytes.Buffer
	if err := WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OPS/S", "cellar", "reference", "ratio", "a floor for one durable copy"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

func TestMedian(t *testing.T) {
	m := median([]Measure{{OpsPerSec: 10, P99MS: 5, Ops: 3}, {OpsPerSec: 30, P99MS: 1, Ops: 4}, {OpsPerSec: 20, P99MS: 9, Ops: 5}})
	if m.OpsPerSec != 20 || m.P99MS != 5 || m.Ops != 12 {
		t.Fatalf("median = %+v", m)
	}
	m = median([]Measure{{OpsPerSec: 10}, {OpsPerSec: 30}})
	if m.OpsPerSec != 20 {
		t.Fatalf("median of two = %+v", m)
	}
}
