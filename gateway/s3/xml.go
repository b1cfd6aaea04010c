package s3

import (
	"encoding/xml"
	"net/url"
	"time"

	"github.com/cellarsim/cellar/internal/errs"
)

// The XML documents of the S3 API that cellar serves, and the ones it accepts.

const xmlNamespace = "http://s3.amazonaws.com/doc/2006-03-01/"

// iso8601 is the timestamp format of S3 XML bodies.
const iso8601 = "2006-01-02T15:04:05.000Z"

func xmlTime(t time.Time) string { return t.UTC().Format(iso8601) }

type errorResponse struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource"`
	RequestID string   `xml:"RequestId"`
}

type ownerXML struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

// owner owns every bucket until cellar has accounts.
var owner = ownerXML{ID: "cellar", DisplayName: "cellar"}

type listAllMyBucketsResult struct {
	XMLName           xml.Name    `xml:"ListAllMyBucketsResult"`
	Xmlns             string      `xml:"xmlns,attr"`
	Owner             ownerXML    `xml:"Owner"`
	Buckets           []bucketXML `xml:"Buckets>Bucket"`
	ContinuationToken string      `xml:"ContinuationToken,omitempty"`
	Prefix            string      `xml:"Prefix,omitempty"`
}

type bucketXML struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
	BucketRegion string `xml:"BucketRegion,omitempty"`
}

type objectXML struct {
	Key               string    `xml:"Key"`
	LastModified      string    `xml:"LastModified"`
	ETag              string    `xml:"ETag"`
	ChecksumAlgorithm string    `xml:"ChecksumAlgorithm,omitempty"`
	Size              int64     `xml:"Size"`
	Owner             *ownerXML `xml:"Owner,omitempty"`
	StorageClass      string    `xml:"StorageClass"`
}

type commonPrefixXML struct {
	Prefix string `xml:"Prefix"`
}

// listBucketResult serves both ListObjects versions; fields of the other version stay
// empty and are omitted.
type listBucketResult struct {
	XMLName        xml.Name          `xml:"ListBucketResult"`
	Xmlns          string            `xml:"xmlns,attr"`
	Name           string            `xml:"Name"`
	Prefix         string            `xml:"Prefix"`
	Marker         *string           `xml:"Marker"`               // v1 only
	NextMarker     string            `xml:"NextMarker,omitempty"` // v1 only
	Delimiter      string            `xml:"Delimiter,omitempty"`
	MaxKeys        int               `xml:"MaxKeys"`
	EncodingType   string            `xml:"EncodingType,omitempty"`
	KeyCount       *int              `xml:"KeyCount"` // v2 only
	IsTruncated    bool              `xml:"IsTruncated"`
	ContToken      string            `xml:"ContinuationToken,omitempty"`     // v2 only
	NextContToken  string            `xml:"NextContinuationToken,omitempty"` // v2 only
	StartAfter     string            `xml:"StartAfter,omitempty"`            // v2 only
	Contents       []objectXML       `xml:"Contents"`
	CommonPrefixes []commonPrefixXML `xml:"CommonPrefixes"`
}

type locationConstraintXML struct {
	XMLName xml.Name `xml:"LocationConstraint"`
	Xmlns   string   `xml:"xmlns,attr"`
	Region  string   `xml:",chardata"`
}

// createBucketConfiguration is the optional body of CreateBucket.
type createBucketConfiguration struct {
	XMLName            xml.Name `xml:"CreateBucketConfiguration"`
	LocationConstraint string   `xml:"LocationConstraint"`
}

// listEncoder applies encoding-type=url to the keys and prefixes of a listing.
type listEncoder bool

// listEncoderOf reads the encoding-type of a listing request: "url", or none.
func listEncoderOf(q url.Values) (listEncoder, error) {
	if !q.Has("encoding-type") {
		return false, nil
	}
	if q.Get("encoding-type") != "url" {
		return false, errs.New(errs.InvalidArgument, "Invalid Encoding Method specified in Request.")
	}
	return true, nil
}

func (e listEncoder) enc(s string) string {
	if e {
		return url.QueryEscape(s)
	}
	return s
}
