package s3

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cellarsim/cellar/internal/errs"
)

// presignV2 is a GET of bkt/k presigned with Signature Version 2 to expire at expires.
func presignV2(t *testing.T, expires int64) *http.Request {
	t.Helper()
	r := onTheWire(t, httptest.NewRequest(http.MethodGet, "http://127.0.0.1:9000/bkt/k", nil))
	sig := hmacSHA1(testSecretKey, stringToSignV2(r, fmt.Sprint(expires)))
	q := r.URL.Query()
	q.Set("AWSAccessKeyId", testAccessKey)
	q.Set("Expires", fmt.Sprint(expires))
	q.Set("Signature", sig)
	return onTheWire(t, httptest.NewRequest(http.MethodGet, "http://127.0.0.1:9000/bkt/k?"+q.Encode(), nil))
}

// headerV2 is a GET of bkt/k signed with Signature Version 2 in its Authorization header.
func headerV2(t *testing.T, at time.Time) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:9000/bkt/k", nil)
	r.Header.Set("Date", at.Format(http.TimeFormat))
	r = onTheWire(t, r)
	r.Header.Set("Authorization", "AWS "+testAccessKey+":"+hmacSHA1(testSecretKey, stringToSignV2(r, r.Header.Get("Date"))))
	return r
}

// A presigned V2 URL lives at most a week, as a V4 one does: one that expires ten
// years ahead, as V2 allowed, is refused with the error a V4 URL gets.
func TestSigV2PresignedLifetimeIsCapped(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	week := int64(maxPresignExpiry / time.Second)
	for _, tc := range []struct {
		name    string
		expires int64
		want    string
	}{
		{"an hour", now.Add(time.Hour).Unix(), "ok"},
		{"a week exactly", now.Unix() + week, "ok"},
		{"a week and a second", now.Unix() + week + 1, "AuthorizationHeaderMalformed"},
		{"ten years", now.AddDate(10, 0, 0).Unix(), "AuthorizationHeaderMalformed"},
		{"expired", now.Add(-time.Second).Unix(), "AccessDenied"},
	} {
		if _, err := authenticate(presignV2(t, tc.expires), testCreds, now); authKind(err) != tc.want {
			t.Errorf("%s: %s (%v), want %s", tc.name, authKind(err), err, tc.want)
		}
	}
	_, err := authenticate(presignV2(t, now.AddDate(10, 0, 0).Unix()), testCreds, now)
	if _, _, msg := errs.S3(err); msg != "Expires must be less than a week (in seconds) from now, that is at most 604800 seconds ahead." {
		t.Errorf("ten-year URL refused with %q", msg)
	}
}

// A gateway that accepts Version 4 only refuses both forms of Version 2 with 403
// AccessDenied, and serves Version 4 as before.
func TestAcceptV4Only(t *testing.T) {
	now := time.Now().UTC()
	var got error
	h := AcceptV4Only(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, got = authenticate(r, testCreds, now)
	}))
	for _, tc := range []struct {
		name string
		r    *http.Request
		want string
	}{
		{"V2 presigned", presignV2(t, now.Add(time.Hour).Unix()), "AccessDenied"},
		{"V2 header", headerV2(t, now), "AccessDenied"},
		{"V4 header", signed(t, http.MethodGet, "k", "", nil, emptySHA256, now), "ok"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), tc.r)
		if authKind(got) != tc.want {
			t.Errorf("%s: %s (%v), want %s", tc.name, authKind(got), got, tc.want)
		}
		// Without the wrapper, Version 2 is accepted.
		if _, err := authenticate(tc.r, testCreds, now); err != nil {
			t.Errorf("%s without AcceptV4Only: %v", tc.name, err)
		}
	}
}
