package s3

import (
	"net/http"
	"strings"

	"github.com/cellarsim/cellar/internal/errs"
)

// Object write headers of features cellar does not have. An object written with one
// of them and stored without it would leave the client believing what is not so (that
// the object is locked against deletion, kept in a cheaper storage class, or
// redirects), so such a write is refused with NotImplemented, naming the feature,
// before any byte is read; a storage class S3 does not know is refused as S3 refuses
// it, with 400 InvalidStorageClass. x-amz-storage-class: STANDARD, the class of every
// cellar object, is accepted.

// storageClassStandard is the storage class of every object cellar stores.
const storageClassStandard = "STANDARD"

// s3StorageClasses are the storage classes S3 knows besides STANDARD.
var s3StorageClasses = map[string]bool{
	"REDUCED_REDUNDANCY": true, "STANDARD_IA": true, "ONEZONE_IA": true, "INTELLIGENT_TIERING": true,
	"GLACIER": true, "DEEP_ARCHIVE": true, "OUTPOSTS": true, "GLACIER_IR": true, "SNOW": true,
	"EXPRESS_ONEZONE": true, "FSX_OPENZFS": true,
}

// unsupportedWriteHeaders maps the headers of an object write that cellar refuses
// to the feature each asks for.
var unsupportedWriteHeaders = []struct{ header, feature string }{
	{"x-amz-object-lock-mode", "object lock"},
	{"x-amz-object-lock-retain-until-date", "object lock"},
	{"x-amz-object-lock-legal-hold", "object lock legal holds"},
	{"x-amz-website-redirect-location", "website redirects"},
}

// refuseUnsupportedWrite checks the headers of a PutObject, CopyObject or
// CreateMultipartUpload for features cellar does not implement.
func refuseUnsupportedWrite(h http.Header) error {
	if v := strings.TrimSpace(h.Get("x-amz-storage-class")); v != "" && v != storageClassStandard {
		if !s3StorageClasses[v] {
			return errs.New(errs.InvalidStorageClass, "The storage class you specified is not valid.")
		}
		return errs.New(errs.NotImplemented, "cellar does not implement the %s storage class: every object is stored as STANDARD, so it refuses x-amz-storage-class: %s rather than ignore it.", v, v)
	}
	for _, u := range unsupportedWriteHeaders {
		if _, ok := h[http.CanonicalHeaderKey(u.header)]; ok {
			return errs.New(errs.NotImplemented, "cellar does not implement %s, so it refuses %s rather than ignore it.", u.feature, u.header)
		}
	}
	return nil
}
