package s3

import (
	"context"
	"encoding/xml"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cellarsim/cellar/internal/errs"
)

// configFake is the fake backend with bucket configurations and object tags.
type configFake struct {
	*fakeBackend
	mu  sync.Mutex
	cfg map[string]BucketConfig
}

func newConfigFake() *configFake {
	return &configFake{fakeBackend: newFakeBackend(), cfg: map[string]BucketConfig{}}
}

func (f *configFake) BucketConfig(ctx context.Context, bucket string) (string, BucketConfig, error) {
	if _, err := f.HeadBucket(ctx, bucket); err != nil {
		return "", BucketConfig{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cellOf(bucket), f.cfg[bucket], nil
}

func (f *configFake) PutBucketConfig(ctx context.Context, bucket string, ch BucketConfigChange) (string, error) {
	if _, err := f.HeadBucket(ctx, bucket); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cfg[bucket]
	if ch.SetTags {
		c.Tags = ch.Tags
	}
	if ch.SetCORS {
		c.CORS = ch.CORS
	}
	if ch.SetLifecycle {
		c.Lifecycle = ch.Lifecycle
	}
	f.cfg[bucket] = c
	return f.cellOf(bucket), nil
}

func (f *configFake) PutObjectTags(ctx context.Context, bucket, key string, tags []Tag) (string, error) {
	f.fakeBackend.mu.Lock()
	defer f.fakeBackend.mu.Unlock()
	b, ok := f.buckets[bucket]
	if !ok {
		return "", errs.New(errs.NoSuchBucket, "no bucket")
	}
	o, ok := b.objects[key]
	if !ok {
		return "", errs.New(errs.NoSuchKey, "no key")
	}
	o.info.Tags = tags
	b.objects[key] = o
	return f.cellOf(bucket), nil
}

func TestParseTaggingHeader(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Tag
		code string
	}{
		{"a=1&b=two%20words", []Tag{{"a", "1"}, {"b", "two words"}}, ""},
		{"k=", []Tag{{"k", ""}}, ""},
		{"k", []Tag{{"k", ""}}, ""},
		{"%C3%A9t%C3%A9=%E2%82%AC", nil, "InvalidTag"}, // € is not a letter, digit or allowed sign
		{"%C3%A9t%C3%A9=v", []Tag{{"été", "v"}}, ""},
		{"a=1&a=2", nil, "InvalidTag"},
		{"aws:x=1", nil, "InvalidTag"},
		{"=v", nil, "InvalidTag"},
		{strings.Repeat("k", 129) + "=v", nil, "InvalidTag"},
		{strings.Repeat("é", 128) + "=" + strings.Repeat("v", 256), []Tag{{strings.Repeat("é", 128), strings.Repeat("v", 256)}}, ""},
		{"k=" + strings.Repeat("v", 257), nil, "InvalidTag"},
		{"a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1&j=1&k=1", nil, "BadRequest"},
		{"a=%zz", nil, "InvalidArgument"},
		{"a=x%21", nil, "InvalidTag"}, // '!'
		{"path=a/b:c@d+e-f.g_h", []Tag{{"path", "a/b:c@d e-f.g_h"}}, ""},
	} {
		got, err := parseTaggingHeader(tc.in)
		_, code, _ := errs.S3(err)
		if err == nil {
			code = ""
		}
		if code != tc.code || (err == nil && !slices.Equal(got, tc.want)) {
			t.Errorf("parseTaggingHeader(%.40q) = %v, %v (code %q); want %v, code %q", tc.in, got, err, code, tc.want, tc.code)
		}
	}
}

func TestParseCORS(t *testing.T) {
	for _, tc := range []struct {
		name, body, code string
	}{
		{"ok", `<CORSConfiguration><CORSRule><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader>*</AllowedHeader><MaxAgeSeconds>60</MaxAgeSeconds></CORSRule></CORSConfiguration>`, ""},
		{"no rules", `<CORSConfiguration></CORSConfiguration>`, "MalformedXML"},
		{"no origin", `<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>`, "MalformedXML"},
		{"bad method", `<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>`, "InvalidRequest"},
		{"two wildcards", `<CORSConfiguration><CORSRule><AllowedOrigin>*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>`, "InvalidRequest"},
		{"not xml", `<CORS`, "MalformedXML"},
	} {
		_, err := parseCORS([]byte(tc.body))
		_, code, _ := errs.S3(err)
		if err == nil {
			code = ""
		}
		if code != tc.code {
			t.Errorf("%s: code %q (%v), want %q", tc.name, code, err, tc.code)
		}
	}
}

func TestMatchCORS(t *testing.T) {
	rules := []CORSRule{
		{ID: "app", AllowedOrigins: []string{"https://*.example.com"}, AllowedMethods: []string{"GET", "PUT"}, AllowedHeaders: []string{"x-amz-*", "content-type"}},
		{ID: "any", AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}},
	}
	for _, tc := range []struct {
		origin, method string
		headers        []string
		want           string // rule id, "" for none
	}{
		{"https://app.example.com", "PUT", []string{"Content-Type", "X-Amz-Date"}, "app"},
		{"https://app.example.com", "PUT", []string{"authorization"}, ""},
		{"https://app.example.com", "GET", []string{"authorization"}, ""}, // "any" allows no header
		{"https://app.example.com", "GET", nil, "app"},
		{"http://app.example.com", "GET", nil, "any"},
		{"https://example.com", "PUT", nil, ""}, // the wildcard needs its dot
		{"https://evil.com", "DELETE", nil, ""},
	} {
		r, ok := matchCORS(rules, tc.origin, tc.method, tc.headers)
		if got := map[bool]string{true: r.ID}[ok]; got != tc.want {
			t.Errorf("matchCORS(%s, %s, %v) = %q, want %q", tc.origin, tc.method, tc.headers, got, tc.want)
		}
	}
}

func TestParseLifecycle(t *testing.T) {
	rule := func(inner string) string {
		return `<LifecycleConfiguration><Rule><ID>r</ID><Status>Enabled</Status>` + inner + `</Rule></LifecycleConfiguration>`
	}
	for _, tc := range []struct {
		name, body, code string
		want             LifecycleRule
	}{
		{"prefix and days", rule(`<Filter><Prefix>logs/</Prefix></Filter><Expiration><Days>30</Days></Expiration>`), "",
			LifecycleRule{ID: "r", Enabled: true, Prefix: "logs/", ExpirationDays: 30}},
		{"old form", rule(`<Prefix>tmp/</Prefix><Expiration><Days>1</Days></Expiration>`), "",
			LifecycleRule{ID: "r", Enabled: true, Prefix: "tmp/", Form: FilterRulePrefix, ExpirationDays: 1}},
		{"and", rule(`<Filter><And><Prefix>a/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></And></Filter><Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration>`), "",
			LifecycleRule{ID: "r", Enabled: true, Prefix: "a/", Tags: []Tag{{"k", "v"}}, SizeGreaterThan: 10, Form: FilterAnd,
				ExpirationDate: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"tag", rule(`<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Expiration><Days>2</Days></Expiration>`), "",
			LifecycleRule{ID: "r", Enabled: true, Tags: []Tag{{"k", "v"}}, ExpirationDays: 2}},
		{"empty filter", rule(`<Filter></Filter><Expiration><Days>2</Days></Expiration>`), "",
			LifecycleRule{ID: "r", Enabled: true, ExpirationDays: 2}},
		{"transition", rule(`<Filter/><Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>`), "NotImplemented", LifecycleRule{}},
		{"noncurrent", rule(`<Filter/><NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays></NoncurrentVersionExpiration>`), "NotImplemented", LifecycleRule{}},
		{"abort uploads", rule(`<Filter/><AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation></AbortIncompleteMultipartUpload>`), "NotImplemented", LifecycleRule{}},
		{"delete markers", rule(`<Filter/><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>`), "NotImplemented", LifecycleRule{}},
		{"no action", rule(`<Filter/>`), "InvalidRequest", LifecycleRule{}},
		{"zero days", rule(`<Filter/><Expiration><Days>0</Days></Expiration>`), "InvalidArgument", LifecycleRule{}},
		{"date not midnight", rule(`<Filter/><Expiration><Date>2030-01-01T12:00:00Z</Date></Expiration>`), "InvalidArgument", LifecycleRule{}},
		{"days and date", rule(`<Filter/><Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date></Expiration>`), "MalformedXML", LifecycleRule{}},
		{"no filter", rule(`<Expiration><Days>1</Days></Expiration>`), "MalformedXML", LifecycleRule{}},
		{"filter and prefix", rule(`<Prefix>a</Prefix><Filter/><Expiration><Days>1</Days></Expiration>`), "MalformedXML", LifecycleRule{}},
		{"two conditions outside And", rule(`<Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Expiration><Days>1</Days></Expiration>`), "MalformedXML", LifecycleRule{}},
		{"bad status", `<LifecycleConfiguration><Rule><Status>On</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>`, "MalformedXML", LifecycleRule{}},
		{"duplicate ids", `<LifecycleConfiguration><Rule><ID>x</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule><Rule><ID>x</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>`, "InvalidArgument", LifecycleRule{}},
		{"sizes crossed", rule(`<Filter><And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>5</ObjectSizeLessThan></And></Filter><Expiration><Days>1</Days></Expiration>`), "InvalidArgument", LifecycleRule{}},
	} {
		rules, err := parseLifecycle([]byte(tc.body))
		_, code, _ := errs.S3(err)
		if err == nil {
			code = ""
		}
		if code != tc.code {
			t.Errorf("%s: code %q (%v), want %q", tc.name, code, err, tc.code)
			continue
		}
		if err != nil {
			continue
		}
		if got := rules[0]; got.ID != tc.want.ID || got.Enabled != tc.want.Enabled || got.Prefix != tc.want.Prefix ||
			!slices.Equal(got.Tags, tc.want.Tags) || got.SizeGreaterThan != tc.want.SizeGreaterThan || got.Form != tc.want.Form ||
			got.ExpirationDays != tc.want.ExpirationDays || !got.ExpirationDate.Equal(tc.want.ExpirationDate) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
		// What Get gives back parses to the same rules.
		doc, err := xmlBytes(lifecycleDocument(rules))
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseLifecycle(doc)
		if err != nil || len(again) != 1 || again[0].Form != rules[0].Form || again[0].Prefix != rules[0].Prefix ||
			again[0].ExpirationDays != rules[0].ExpirationDays || !again[0].ExpirationDate.Equal(rules[0].ExpirationDate) {
			t.Errorf("%s: round trip gave %+v, %v from %s", tc.name, again, err, doc)
		}
	}
}

// TestConfigOverSDK drives tagging, CORS and lifecycle through aws-sdk-go-v2 against
// the handler on the fake backend: the documents, the status codes and the errors.
func TestConfigOverSDK(t *testing.T) {
	be := newConfigFake()
	ts := startServerOn(t, be, be.fakeBackend, HandlerOptions{}, false)
	c, ctx := ts.client, context.Background()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"),
		Body: strings.NewReader("x"), Tagging: aws.String("team=blue&tier=hot")}); err != nil {
		t.Fatal(err)
	}
	obj, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	obj.Body.Close()
	if aws.ToInt32(obj.TagCount) != 2 {
		t.Errorf("GetObject TagCount (x-amz-tagging-count) = %d, want 2", aws.ToInt32(obj.TagCount))
	}
	get, err := c.GetObjectTagging(ctx, &awss3.GetObjectTaggingInput{Bucket: aws.String("bkt"), Key: aws.String("k")})
	if err != nil || len(get.TagSet) != 2 || aws.ToString(get.TagSet[0].Key) != "team" {
		t.Fatalf("GetObjectTagging: %+v, %v", get, err)
	}
	if _, err := c.GetBucketTagging(ctx, &awss3.GetBucketTaggingInput{Bucket: aws.String("bkt")}); apiErrorCode(err) != "NoSuchTagSet" {
		t.Errorf("GetBucketTagging of an untagged bucket: %v, want NoSuchTagSet", err)
	}
	if _, err := c.PutBucketCors(ctx, &awss3.PutBucketCorsInput{Bucket: aws.String("bkt"), CORSConfiguration: &types.CORSConfiguration{
		CORSRules: []types.CORSRule{{AllowedMethods: []string{"PATCH"}, AllowedOrigins: []string{"*"}}}}}); apiErrorCode(err) != "InvalidRequest" {
		t.Errorf("PutBucketCors with PATCH: %v, want InvalidRequest", err)
	}
}

func xmlBytes(v any) ([]byte, error) { return xml.Marshal(v) }
