package clustertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/router"
)

// topology is the default topology with one index node per cell: the cell's index
// is then a single point of failure, which is what these tests are about.
func topology(cells int) cell.Topology {
	t := cell.DefaultTopology()
	t.Cells = cells
	t.IndexNodes = 1
	return t
}

func cellOf(topo cell.Topology) func(string) string {
	return router.NewSlotTable(topo.Slots, topo.CellIDs()).Cell
}

// code returns the HTTP status and S3 error code of an SDK error (200, "" for nil).
func code(err error) (int, string) {
	if err == nil {
		return 200, ""
	}
	status, s3code := 0, ""
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		s3code = ae.ErrorCode()
	}
	return status, s3code
}

// cellHeader captures the x-cellar-cell header of the last response.
func cellHeader(dst *string) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *smithyMiddlewareStack) error {
			return stack.Deserialize.Add(cellCapture{dst}, smithyMiddlewareAfter)
		})
	}
}

func codeString(err error) string {
	status, s3code := code(err)
	return fmt.Sprintf("%d %s", status, s3code)
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func put(ctx context.Context, c *s3.Client, bucket, key string, body []byte) error {
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	return err
}

func get(ctx context.Context, c *s3.Client, bucket, key string) ([]byte, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func TestEndToEndAcrossCellsAndRestart(t *testing.T) {
	topo := topology(4)
	cl := Start(t, topo)
	ctx := context.Background()
	var servedBy string
	c := cl.S3(cellHeader(&servedBy))

	buckets := BucketsPerCell(topo, cellOf(topo), 2)
	sizes := map[string]int{"empty": 0, "one": 1, "mib": 1 << 20, "big": 20 << 20}
	want := map[string][]byte{}
	for cellID, names := range buckets {
		for _, b := range names {
			if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
				t.Fatalf("create %s: %v", b, err)
			}
			if servedBy != cellID {
				t.Fatalf("bucket %s served by %q, want %s", b, servedBy, cellID)
			}
			for name, size := range sizes {
				if name == "big" && b != names[0] {
					continue // one 20 MiB object per cell is plenty
				}
				key := "dir/" + name
				body := randomBytes(t, size)
				if err := put(ctx, c, b, key, body); err != nil {
					t.Fatalf("put %s/%s: %v", b, key, err)
				}
				// Read-after-write.
				got, err := get(ctx, c, b, key)
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("read-after-write %s/%s: %d bytes, %v", b, key, len(got), err)
				}
				if servedBy != cellID {
					t.Fatalf("get %s/%s served by %q, want %s", b, key, servedBy, cellID)
				}
				want[b+"/"+key] = body
			}
			if err := put(ctx, c, b, "top", []byte("x")); err != nil {
				t.Fatal(err)
			}
			want[b+"/top"] = []byte("x")
		}
	}

	// LIST with a delimiter rolls dir/ up; with a prefix it lists inside.
	b0 := buckets[cell.ID(0)][0]
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b0), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 1 || *out.Contents[0].Key != "top" || len(out.CommonPrefixes) != 1 || *out.CommonPrefixes[0].Prefix != "dir/" {
		t.Fatalf("list with delimiter: %d contents, prefixes %v", len(out.Contents), out.CommonPrefixes)
	}
	out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b0), Prefix: aws.String("dir/")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, *o.Key)
		if int(*o.Size) != len(want[b0+"/"+*o.Key]) {
			t.Fatalf("list size of %s = %d", *o.Key, *o.Size)
		}
	}
	if fmt.Sprint(keys) != "[dir/big dir/empty dir/mib dir/one]" {
		t.Fatalf("list with prefix: %v", keys)
	}
	lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 8 {
		t.Fatalf("list buckets: %v, %v", lb, err)
	}

	// Delete one object: gone; the rest stay.
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b0), Key: aws.String("dir/one")}); err != nil {
		t.Fatal(err)
	}
	delete(want, b0+"/dir/one")
	if _, err := get(ctx, c, b0, "dir/one"); codeString(err) != "404 NoSuchKey" {
		t.Fatalf("get after delete: %v", err)
	}

	// Stop every daemon and start them again on the same directories.
	cl.StopAll()
	for _, id := range cl.order {
		cl.StartNode(id)
	}
	cl.WaitReady(cl.order...)
	c = cl.S3()
	for k, body := range want {
		var bucket, key string
		fmt.Sscanf(k, "%s", &bucket)
		for i := range k {
			if k[i] == '/' {
				bucket, key = k[:i], k[i+1:]
				break
			}
		}
		got, err := get(ctx, c, bucket, key)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("after restart %s: %d bytes, %v", k, len(got), err)
		}
	}
	// Empty the buckets and delete them.
	for _, names := range buckets {
		for _, b := range names {
			if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(b)}); codeString(err) != "409 BucketNotEmpty" {
				t.Fatalf("delete of a full bucket: %v", err)
			}
			lo, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b)})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range lo.Contents {
				if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: o.Key}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(b)}); err != nil {
				t.Fatalf("delete bucket %s: %v", b, err)
			}
		}
	}
}

// allOps runs GET, HEAD, LIST, PUT and DELETE against a bucket and returns each result.
func allOps(ctx context.Context, c *s3.Client, bucket string) map[string]error {
	res := map[string]error{}
	_, res["GET"] = get(ctx, c, bucket, "seed")
	_, res["HEAD"] = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("seed")})
	_, res["LIST"] = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	res["PUT"] = put(ctx, c, bucket, "new", []byte("new"))
	_, res["DELETE"] = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("new")})
	return res
}

func seedBuckets(t *testing.T, cl *Cluster, perCell int) map[string][]string {
	t.Helper()
	ctx := context.Background()
	c := cl.S3()
	buckets := BucketsPerCell(cl.Topology, cellOf(cl.Topology), perCell)
	for _, names := range buckets {
		for _, b := range names {
			if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
				t.Fatal(err)
			}
			if err := put(ctx, c, b, "seed", []byte("seed")); err != nil {
				t.Fatal(err)
			}
		}
	}
	return buckets
}

func TestBlastRadiusOfAnIndexIsOneCell(t *testing.T) {
	cl := Start(t, topology(4))
	buckets := seedBuckets(t, cl, 2)
	ctx := context.Background()
	c := cl.S3()

	down := cell.ID(2)
	victim := cell.NodeID(down, cell.RoleIndex, 0)
	cl.StopNode(victim)
	cl.WaitGone(victim)
	for cellID, names := range buckets {
		for _, b := range names {
			start := time.Now()
			for op, err := range allOps(ctx, c, b) {
				took := time.Since(start)
				if cellID == down {
					if status, _ := code(err); status != http.StatusServiceUnavailable {
						t.Errorf("%s %s in the cell without its index: %v, want 503", op, b, err)
					}
					if took > time.Second {
						t.Errorf("%s %s took %v to fail, want under 1s", op, b, took)
					}
				} else if err != nil {
					t.Errorf("%s %s in healthy %s: %v", op, b, cellID, err)
				}
			}
		}
	}

	cl.StartNode(victim)
	cl.WaitReady(victim, cell.NodeID(down, cell.RolePlacement, 0))
	for _, names := range buckets {
		for _, b := range names {
			for op, err := range allOps(ctx, c, b) {
				if err != nil {
					t.Errorf("after restart, %s %s: %v", op, b, err)
				}
			}
		}
	}
}

func TestOnlyPutNeedsPlacement(t *testing.T) {
	cl := Start(t, topology(4))
	buckets := seedBuckets(t, cl, 1)
	ctx := context.Background()
	c := cl.S3()

	down := cell.ID(1)
	victim := cell.NodeID(down, cell.RolePlacement, 0)
	cl.StopNode(victim)
	cl.WaitGone(victim)
	for cellID, names := range buckets {
		for op, err := range allOps(ctx, c, names[0]) {
			if cellID == down && op == "PUT" {
				if status, s3code := code(err); status != 503 || s3code != "ServiceUnavailable" {
					t.Errorf("PUT without placement: %v, want 503 ServiceUnavailable", err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s in %s: %v", op, cellID, err)
			}
		}
	}
}
