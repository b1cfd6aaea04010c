package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/testwait"
)

// TestS3TaggingCORSAndLifecycle checks object and bucket tagging, CORS and lifecycle
// expiration with aws-sdk-go-v2 against a cluster: the configurations are stored in
// the cell's index and survive nothing but their own deletes, a preflight is answered
// unsigned, and the cell's repair loop removes the objects a lifecycle rule expires
// and no other.
func TestS3TaggingCORSAndLifecycle(t *testing.T) {
	cl := Start(t, topology(2), fastRepair)
	c := cl.S3()
	t.Run("object tagging", func(t *testing.T) { objectTagging(t, c) })
	t.Run("bucket tagging", func(t *testing.T) { bucketTagging(t, c) })
	t.Run("cors", func(t *testing.T) { bucketCORS(t, cl, c) })
	t.Run("lifecycle", func(t *testing.T) { lifecycleExpiration(t, cl, c) })
}

func tagSet(tags []types.Tag) string {
	var parts []string
	for _, t := range tags {
		parts = append(parts, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
	}
	return strings.Join(parts, "&")
}

func objectTags(t *testing.T, c *s3.Client, bucket, key string) string {
	t.Helper()
	out, err := c.GetObjectTagging(context.Background(), &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObjectTagging %s/%s: %v", bucket, key, err)
	}
	return tagSet(out.TagSet)
}

func objectTagging(t *testing.T, c *s3.Client) {
	ctx := context.Background()
	b := aws.String("tagged")
	mustCreateBucket(t, c, "tagged")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("k"), Body: strings.NewReader("data"),
		Tagging: aws.String("team=blue&note=two%20words")}); err != nil {
		t.Fatal(err)
	}
	if got := objectTags(t, c, "tagged", "k"); got != "team=blue&note=two words" {
		t.Errorf("tags after PUT: %q", got)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	if aws.ToInt32(out.TagCount) != 2 {
		t.Errorf("x-amz-tagging-count = %d, want 2", aws.ToInt32(out.TagCount))
	}

	// PutObjectTagging replaces the set and leaves the object as it was.
	before, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("k"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("tier"), Value: aws.String("cold")}}}}); err != nil {
		t.Fatal(err)
	}
	if got := objectTags(t, c, "tagged", "k"); got != "tier=cold" {
		t.Errorf("tags after PutObjectTagging: %q", got)
	}
	after, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(after.ETag) != aws.ToString(before.ETag) || !aws.ToTime(after.LastModified).Equal(aws.ToTime(before.LastModified)) {
		t.Errorf("PutObjectTagging changed the object: ETag %s → %s, Last-Modified %v → %v",
			aws.ToString(before.ETag), aws.ToString(after.ETag), before.LastModified, after.LastModified)
	}
	if body, err := get(ctx, c, "tagged", "k"); err != nil || string(body) != "data" {
		t.Errorf("GET after tagging: %q, %v", body, err)
	}

	// Copies keep their source's tags, or take new ones with REPLACE.
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy"), CopySource: aws.String("tagged/k")}); err != nil {
		t.Fatal(err)
	}
	if got := objectTags(t, c, "tagged", "copy"); got != "tier=cold" {
		t.Errorf("tags of a copy: %q, want the source's", got)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy2"), CopySource: aws.String("tagged/k"),
		TaggingDirective: types.TaggingDirectiveReplace, Tagging: aws.String("fresh=yes")}); err != nil {
		t.Fatal(err)
	}
	if got := objectTags(t, c, "tagged", "copy2"); got != "fresh=yes" {
		t.Errorf("tags of a copy with REPLACE: %q", got)
	}

	// A multipart upload's object gets the tags its upload was created with.
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("mp"), Tagging: aws.String("parts=1")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(1),
		Body: bytes.NewReader([]byte("part"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}}); err != nil {
		t.Fatal(err)
	}
	if got := objectTags(t, c, "tagged", "mp"); got != "parts=1" {
		t.Errorf("tags of a multipart object: %q", got)
	}

	// DeleteObjectTagging leaves an empty set.
	if _, err := c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: b, Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if got := objectTags(t, c, "tagged", "k"); got != "" {
		t.Errorf("tags after DeleteObjectTagging: %q", got)
	}

	// S3's limits, with S3's codes; nothing is stored.
	eleven := "a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1&j=1&k=1"
	many := make([]types.Tag, 11)
	for i := range many {
		many[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")}
	}
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"PUT with 11 tags", func() error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("eleven"), Body: strings.NewReader("x"), Tagging: aws.String(eleven)})
			return err
		}, "400 BadRequest"},
		{"PutObjectTagging with 11 tags", func() error {
			_, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("copy"), Tagging: &types.Tagging{TagSet: many}})
			return err
		}, "400 BadRequest"},
		{"duplicate keys", func() error {
			_, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("copy"), Tagging: &types.Tagging{TagSet: []types.Tag{
				{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("a"), Value: aws.String("2")}}}})
			return err
		}, "400 InvalidTag"},
		{"key of 129 characters", func() error {
			_, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("copy"), Tagging: &types.Tagging{TagSet: []types.Tag{
				{Key: aws.String(strings.Repeat("k", 129)), Value: aws.String("1")}}}})
			return err
		}, "400 InvalidTag"},
		{"value of 257 characters", func() error {
			_, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("copy"), Tagging: &types.Tagging{TagSet: []types.Tag{
				{Key: aws.String("k"), Value: aws.String(strings.Repeat("v", 257))}}}})
			return err
		}, "400 InvalidTag"},
		{"aws: prefix", func() error {
			_, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("copy"), Tagging: &types.Tagging{TagSet: []types.Tag{
				{Key: aws.String("aws:owner"), Value: aws.String("me")}}}})
			return err
		}, "400 InvalidTag"},
		{"missing key", func() error {
			_, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("nothing"), Tagging: &types.Tagging{TagSet: []types.Tag{}}})
			return err
		}, "404 NoSuchKey"},
		{"missing bucket", func() error {
			_, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("no-such-bucket"), Key: aws.String("k")})
			return err
		}, "404 NoSuchBucket"},
	} {
		if got := codeString(tc.call()); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if got := objectTags(t, c, "tagged", "copy"); got != "tier=cold" {
		t.Errorf("tags after refused changes: %q", got)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("eleven")}); codeString(err) != "404 NotFound" {
		t.Errorf("a PUT refused for its tags stored the object: %v", err)
	}
}

func bucketTagging(t *testing.T, c *s3.Client) {
	ctx := context.Background()
	b := aws.String("btags")
	mustCreateBucket(t, c, "btags")
	if _, err := c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: b}); codeString(err) != "404 NoSuchTagSet" {
		t.Errorf("GetBucketTagging before any: %v", err)
	}
	set := []types.Tag{{Key: aws.String("cost-center"), Value: aws.String("42")}, {Key: aws.String("env"), Value: aws.String("test")}}
	if _, err := c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: b, Tagging: &types.Tagging{TagSet: set}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: b})
	if err != nil || tagSet(out.TagSet) != "cost-center=42&env=test" {
		t.Errorf("GetBucketTagging: %v, %v", tagSet(out.TagSet), err)
	}
	many := make([]types.Tag, 51)
	for i := range many {
		many[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")}
	}
	if _, err := c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: b, Tagging: &types.Tagging{TagSet: many}}); codeString(err) != "400 BadRequest" {
		t.Errorf("PutBucketTagging with 51 tags: %v", err)
	}
	if _, err := c.DeleteBucketTagging(ctx, &s3.DeleteBucketTaggingInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: b}); codeString(err) != "404 NoSuchTagSet" {
		t.Errorf("GetBucketTagging after DeleteBucketTagging: %v", err)
	}
}

// preflight sends an unsigned CORS preflight.
func preflight(t *testing.T, endpoint, path, origin, method, headers string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodOptions, endpoint+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", method)
	if headers != "" {
		req.Header.Set("Access-Control-Request-Headers", headers)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func bucketCORS(t *testing.T, cl *Cluster, c *s3.Client) {
	ctx := context.Background()
	b := aws.String("web")
	mustCreateBucket(t, c, "web")
	if err := put(ctx, c, "web", "index.html", []byte("<p>hi</p>")); err != nil {
		t.Fatal(err)
	}
	if r := preflight(t, cl.S3Endpoint(), "/web/index.html", "https://app.example.com", "GET", ""); r.StatusCode != http.StatusForbidden {
		t.Errorf("preflight before any rule: %d, want 403", r.StatusCode)
	}
	rules := []types.CORSRule{
		{ID: aws.String("app"), AllowedOrigins: []string{"https://*.example.com"}, AllowedMethods: []string{"GET", "PUT"},
			AllowedHeaders: []string{"content-type", "x-amz-*"}, ExposeHeaders: []string{"ETag"}, MaxAgeSeconds: aws.Int32(600)},
		{ID: aws.String("public-read"), AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}},
	}
	if _, err := c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: b, CORSConfiguration: &types.CORSConfiguration{CORSRules: rules}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: b})
	if err != nil || len(got.CORSRules) != 2 || aws.ToString(got.CORSRules[0].ID) != "app" ||
		!slices.Equal(got.CORSRules[0].AllowedHeaders, rules[0].AllowedHeaders) || aws.ToInt32(got.CORSRules[0].MaxAgeSeconds) != 600 ||
		got.CORSRules[1].MaxAgeSeconds != nil {
		t.Errorf("GetBucketCors: %+v, %v", got, err)
	}

	r := preflight(t, cl.S3Endpoint(), "/web/index.html", "https://app.example.com", "PUT", "Content-Type, X-Amz-Date")
	if r.StatusCode != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		r.Header.Get("Access-Control-Allow-Methods") != "GET, PUT" || r.Header.Get("Access-Control-Max-Age") != "600" ||
		r.Header.Get("Access-Control-Allow-Headers") != "content-type, x-amz-date" || r.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("allowed preflight: %d %v", r.StatusCode, r.Header)
	}
	if r := preflight(t, cl.S3Endpoint(), "/web/index.html", "https://other.org", "GET", ""); r.StatusCode != http.StatusOK ||
		r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight matched by the '*' rule: %d %v", r.StatusCode, r.Header)
	}
	for _, tc := range []struct{ origin, method, headers string }{
		{"https://other.org", "PUT", ""},                    // only GET for any origin
		{"https://app.example.com", "DELETE", ""},           // not an allowed method
		{"https://app.example.com", "PUT", "Authorization"}, // not an allowed header
		{"https://app.example.com.evil.org", "PUT", ""},     // the pattern is anchored
	} {
		if r := preflight(t, cl.S3Endpoint(), "/web/index.html", tc.origin, tc.method, tc.headers); r.StatusCode != http.StatusForbidden ||
			r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight %+v: %d %v, want 403 without CORS headers", tc, r.StatusCode, r.Header)
		}
	}

	// A signed request with Origin gets the matching rule's headers.
	withOrigin := func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue("Origin", "https://app.example.com"))
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("index.html")}, withOrigin)
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	hdr := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response).Header
	if hdr.Get("Access-Control-Allow-Origin") != "https://app.example.com" || hdr.Get("Access-Control-Expose-Headers") != "ETag" {
		t.Errorf("GET with Origin: CORS headers %v", hdr)
	}

	if _, err := c.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: b}); codeString(err) != "404 NoSuchCORSConfiguration" {
		t.Errorf("GetBucketCors after delete: %v", err)
	}
	if r := preflight(t, cl.S3Endpoint(), "/web/index.html", "https://app.example.com", "GET", ""); r.StatusCode != http.StatusForbidden {
		t.Errorf("preflight after DeleteBucketCors: %d, want 403", r.StatusCode)
	}
}

func lifecycleExpiration(t *testing.T, cl *Cluster, c *s3.Client) {
	ctx := context.Background()
	b := aws.String("aging")
	mustCreateBucket(t, c, "aging")
	if _, err := c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: b}); codeString(err) != "404 NoSuchLifecycleConfiguration" {
		t.Errorf("GetBucketLifecycleConfiguration before any: %v", err)
	}
	transition := &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{ID: aws.String("t"), Status: types.ExpirationStatusEnabled,
		Filter:      &types.LifecycleRuleFilter{Prefix: aws.String("")},
		Transitions: []types.Transition{{Days: aws.Int32(30), StorageClass: types.TransitionStorageClassGlacier}}}}}
	if _, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: b, LifecycleConfiguration: transition}); codeString(err) != "501 NotImplemented" {
		t.Errorf("a transition rule: %v, want 501 NotImplemented", err)
	}

	// Objects under old/ tagged temp=yes expire from a date that has passed; those
	// under later/ a day after they were written, which no test waits for.
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{
		{ID: aws.String("old-temp"), Status: types.ExpirationStatusEnabled,
			Filter: &types.LifecycleRuleFilter{And: &types.LifecycleRuleAndOperator{Prefix: aws.String("old/"),
				Tags: []types.Tag{{Key: aws.String("temp"), Value: aws.String("yes")}}}},
			Expiration: &types.LifecycleExpiration{Date: aws.Time(past)}},
		{ID: aws.String("later"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("later/")},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}},
		{ID: aws.String("off"), Status: types.ExpirationStatusDisabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")},
			Expiration: &types.LifecycleExpiration{Date: aws.Time(past)}},
	}}
	keep := []string{"old/untagged", "old/other-tag", "later/a", "new/a"}
	for _, k := range keep {
		tagging := ""
		if k == "old/other-tag" {
			tagging = "temp=no"
		}
		in := &s3.PutObjectInput{Bucket: b, Key: aws.String(k), Body: strings.NewReader(k)}
		if tagging != "" {
			in.Tagging = aws.String(tagging)
		}
		if _, err := c.PutObject(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	expire := []string{"old/a", "old/deep/b", "old/c"}
	for _, k := range expire {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String(k), Body: strings.NewReader(k), Tagging: aws.String("temp=yes")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: b, LifecycleConfiguration: cfg}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: b})
	if err != nil || len(got.Rules) != 3 || aws.ToString(got.Rules[0].Filter.And.Prefix) != "old/" ||
		!aws.ToTime(got.Rules[0].Expiration.Date).Equal(past) || aws.ToInt32(got.Rules[1].Expiration.Days) != 1 ||
		got.Rules[2].Status != types.ExpirationStatusDisabled {
		t.Fatalf("GetBucketLifecycleConfiguration: %+v, %v", got, err)
	}

	testwait.Until(t, 60*time.Second, "the repair loop expires old/* tagged temp=yes", func() bool {
		for _, k := range expire {
			if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String(k)}); codeString(err) != "404 NotFound" {
				return false
			}
		}
		return true
	})
	for _, k := range keep {
		if body, err := get(ctx, c, "aging", k); err != nil || string(body) != k {
			t.Errorf("%s, which no enabled rule expires yet: %q, %v", k, body, err)
		}
	}
	total := 0.0
	for _, cellID := range cl.Topology.CellIDs() {
		total += metricValue(t, cl.Node(cell.NodeID(cellID, cell.RolePlacement, 0)).AdminAddr, "cellar_lifecycle_expired_total")
	}
	if total != float64(len(expire)) {
		t.Errorf("cellar_lifecycle_expired_total over the cells = %v, want %d", total, len(expire))
	}

	if _, err := c.DeleteBucketLifecycle(ctx, &s3.DeleteBucketLifecycleInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: b}); codeString(err) != "404 NoSuchLifecycleConfiguration" {
		t.Errorf("GetBucketLifecycleConfiguration after delete: %v", err)
	}
}

// metricValue reads one metric of a node's /metrics, with the node's own labels (0
// when absent).
func metricValue(t *testing.T, adminAddr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 2 && (f[0] == name || strings.HasPrefix(f[0], name+"{")) {
			var v float64
			fmt.Sscan(f[1], &v)
			return v
		}
	}
	return 0
}

// TestS3ConfigPartitionedByKey: where a bucket's objects span cells, object tags live
// with each object in its own cell and bucket rules with the bucket, and lifecycle
// rules are refused (each cell expires only the buckets it holds).
func TestS3ConfigPartitionedByKey(t *testing.T) {
	topo := topology(2)
	topo.Partition = cell.PartitionByKey
	cl := Start(t, topo)
	c, ctx := cl.S3(), context.Background()
	b := aws.String("spread")
	mustCreateBucket(t, c, "spread")
	for i := range 8 {
		key := fmt.Sprintf("k%d", i)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String(key), Body: strings.NewReader(key),
			Tagging: aws.String("n=" + key)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String(key),
			Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("n"), Value: aws.String(key + "-again")}}}}); err != nil {
			t.Fatal(err)
		}
		if got := objectTags(t, c, "spread", key); got != "n="+key+"-again" {
			t.Errorf("%s: tags %q", key, got)
		}
	}
	if _, err := c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: b, CORSConfiguration: &types.CORSConfiguration{
		CORSRules: []types.CORSRule{{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}}}}}); err != nil {
		t.Fatal(err)
	}
	if r := preflight(t, cl.S3Endpoint(), "/spread/k1", "https://a.example", "GET", ""); r.StatusCode != http.StatusOK {
		t.Errorf("preflight: %d", r.StatusCode)
	}
	_, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: b,
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{ID: aws.String("r"),
			Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}}}}})
	if codeString(err) != "501 NotImplemented" {
		t.Errorf("lifecycle rules in a cluster partitioned by key: %v, want 501 NotImplemented", err)
	}
}
