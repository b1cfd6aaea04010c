package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// A request is named by what went wrong with it; a success status line is never that
// name, even when the body after it did not arrive.
func TestErrorCodeNamesTheFailure(t *testing.T) {
	const listStart = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name>`
	for _, tc := range []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request)
		want   string
	}{
		{"S3 error", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>no quorum</Message></Error>`)
		}, "ServiceUnavailable"},
		{"200 that does not decode", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `<ListBucketResult><KeyCount>many</KeyCount></ListBucketResult>`)
		}, "BrokenResponse"},
		{"200 cut short", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "500")
			fmt.Fprint(w, listStart)
		}, "BrokenResponse"},
		{"200 whose body stalls past the timeout", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, listStart)
			w.(http.Flusher).Flush()
			<-r.Context().Done() // until the client gives up
		}, "Timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(tc.handle))
			defer srv.Close()
			c, closeIdle := NewClient(Config{Endpoint: srv.URL, AccessKey: "a", SecretKey: "s", Region: "us-east-1"})
			defer closeIdle()
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("b")})
			if err == nil {
				t.Fatal("the request succeeded")
			}
			if got := ErrorCode(err); got != tc.want {
				t.Errorf("ErrorCode = %s, want %s (%v)", got, tc.want, err)
			}
		})
	}
}
