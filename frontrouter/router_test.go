package frontrouter_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/clustertest"
	"github.com/cellarsim/cellar/frontrouter"
	"github.com/cellarsim/cellar/internal/testwait"
)

func client(endpoint string, tn cell.Tenant) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint), UsePathStyle: true, Region: "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(tn.AccessKey, tn.SecretKey, ""),
		RetryMaxAttempts: 1,
	})
}

func get(t *testing.T, c *s3.Client, bucket, key string) string {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GET %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return string(b)
}

// onlyReader hides every method of a reader but Read, so that the client cannot seek it
// and streams it.
type onlyReader struct{ io.Reader }

// TestRouterForwardsSignedRequestsUnchanged runs S3 clients through the front router of
// a real in-process cluster: SigV4 in the Authorization header with a signed payload, a
// streaming (aws-chunked) upload, a presigned URL, a LIST; an unknown key is refused
// by the router itself; a stopped gateway of the shard is passed over; the router
// restarted loses nothing acknowledged; and a client fails over to a second router.
func TestRouterForwardsSignedRequestsUnchanged(t *testing.T) {
	tenants, err := cell.NewTenants(3)
	if err != nil {
		t.Fatal(err)
	}
	topo := cell.DefaultTopology()
	topo.Cells, topo.IndexNodes, topo.StorageNodes, topo.Gateways, topo.Slots = 1, 1, 1, 2, 16
	topo.Copies = 1
	topo.Tenants, topo.Sharding, topo.ShardSize = tenants, cell.ShardingAll, 2
	c := clustertest.Start(t, topo)
	ep, stop := c.StartRouter("127.0.0.1:0", c.Topology)
	ctx := context.Background()
	s := client(ep, tenants[0])

	if _, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("photos")}); err != nil {
		t.Fatalf("CreateBucket through the router: %v", err)
	}
	// The cluster is ready in gateway-0's view; wait until every gateway's gossip has
	// seen the cell's nodes too (each takes writes once it has).
	for i := range topo.Gateways {
		g := c.Node(cell.NodeID("", cell.RoleGateway, i))
		direct := client("http://"+g.S3Addr, tenants[0])
		testwait.Succeeds(t, 3*time.Minute, g.Spec.ID+" takes a write", func() error {
			_, err := direct.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("warm-up"), Body: strings.NewReader("x")})
			return err
		})
	}
	if _, err := s.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("photos"), Key: aws.String("warm-up")}); err != nil {
		t.Fatalf("DELETE warm-up: %v", err)
	}
	t.Run("signed payload", func(t *testing.T) {
		if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("a b/ü+c.txt"),
			Body: bytes.NewReader([]byte("hello"))}); err != nil {
			t.Fatalf("PUT: %v", err)
		}
		if got := get(t, s, "photos", "a b/ü+c.txt"); got != "hello" {
			t.Fatalf("GET = %q", got)
		}
	})
	t.Run("streaming upload", func(t *testing.T) {
		// minio-go signs every chunk over plain HTTP (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
		mc, err := minio.New(strings.TrimPrefix(ep, "http://"), &minio.Options{
			Creds:  miniocreds.NewStaticV4(tenants[0].AccessKey, tenants[0].SecretKey, ""),
			Region: "us-east-1", BucketLookup: minio.BucketLookupPath,
		})
		if err != nil {
			t.Fatal(err)
		}
		body := strings.Repeat("0123456789", 20000)
		if _, err := mc.PutObject(ctx, "photos", "big", onlyReader{strings.NewReader(body)}, int64(len(body)),
			minio.PutObjectOptions{}); err != nil {
			t.Fatalf("streaming PUT: %v", err)
		}
		if got := get(t, s, "photos", "big"); got != body {
			t.Fatalf("GET returned %d bytes, want %d", len(got), len(body))
		}
	})
	t.Run("presigned URL", func(t *testing.T) {
		req, err := s3.NewPresignClient(client(ep, tenants[1])).PresignGetObject(ctx,
			&s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("a b/ü+c.txt")})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(req.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "hello" {
			t.Fatalf("presigned GET: %s %q", resp.Status, b)
		}
		if resp.Header.Get(frontrouter.HeaderGateway) == "" {
			t.Errorf("no %s header", frontrouter.HeaderGateway)
		}
	})
	t.Run("list", func(t *testing.T) {
		out, err := client(ep, tenants[2]).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("photos")})
		if err != nil || len(out.Contents) != 2 {
			t.Fatalf("LIST: %v, %d objects", err, len(out.Contents))
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		_, err := client(ep, cell.Tenant{AccessKey: "CELLNOSUCHKEY", SecretKey: "x"}).
			HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("photos")})
		var re interface{ HTTPStatusCode() int }
		if !errors.As(err, &re) || re.HTTPStatusCode() != 403 {
			t.Fatalf("HEAD with an unknown key: %v, want 403", err)
		}
		_, err = client(ep, cell.Tenant{AccessKey: "CELLNOSUCHKEY", SecretKey: "x"}).
			ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("photos")})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidAccessKeyId" {
			t.Fatalf("LIST with an unknown key: %v, want InvalidAccessKeyId", err)
		}
	})
	t.Run("a gateway down", func(t *testing.T) {
		c.StopNode(cell.NodeID("", cell.RoleGateway, 0))
		defer c.StartNode(cell.NodeID("", cell.RoleGateway, 0))
		for i := range 10 {
			if got := get(t, s, "photos", "a b/ü+c.txt"); got != "hello" {
				t.Fatalf("GET %d with gateway-0 down = %q", i, got)
			}
		}
	})
	t.Run("router restarted and a second router", func(t *testing.T) {
		addr := strings.TrimPrefix(ep, "http://")
		if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("acked"),
			Body: bytes.NewReader([]byte("kept"))}); err != nil {
			t.Fatal(err)
		}
		stop()
		ep2, _ := c.StartRouter("127.0.0.1:0", c.Topology)
		// A client with two endpoints goes on with the second when the first is gone.
		var got string
		for _, e := range []string{ep, ep2} {
			out, err := client(e, tenants[0]).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("acked")})
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(out.Body)
			out.Body.Close()
			got = string(b)
			break
		}
		if got != "kept" {
			t.Fatalf("failover GET = %q", got)
		}
		// The first router started again on its address serves the write too.
		ep1, _ := c.StartRouter(addr, c.Topology)
		if got := get(t, client(ep1, tenants[0]), "photos", "acked"); got != "kept" {
			t.Fatalf("GET through the restarted router = %q", got)
		}
	})
}
