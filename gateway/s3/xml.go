package s3

import (
	"encoding/xml"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

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
	Key               xmlText   `xml:"Key"`
	LastModified      string    `xml:"LastModified"`
	ETag              string    `xml:"ETag"`
	ChecksumAlgorithm string    `xml:"ChecksumAlgorithm,omitempty"`
	Size              int64     `xml:"Size"`
	Owner             *ownerXML `xml:"Owner,omitempty"`
	StorageClass      string    `xml:"StorageClass"`
}

type commonPrefixXML struct {
	Prefix xmlText `xml:"Prefix"`
}

// listBucketResult serves both ListObjects versions; fields of the other version stay
// empty and are omitted.
type listBucketResult struct {
	XMLName        xml.Name          `xml:"ListBucketResult"`
	Xmlns          string            `xml:"xmlns,attr"`
	Name           string            `xml:"Name"`
	Prefix         xmlText           `xml:"Prefix"`
	Marker         *xmlText          `xml:"Marker"`               // v1 only
	NextMarker     xmlText           `xml:"NextMarker,omitempty"` // v1 only
	Delimiter      xmlText           `xml:"Delimiter,omitempty"`
	MaxKeys        int               `xml:"MaxKeys"`
	EncodingType   string            `xml:"EncodingType,omitempty"`
	KeyCount       *int              `xml:"KeyCount"` // v2 only
	IsTruncated    bool              `xml:"IsTruncated"`
	ContToken      string            `xml:"ContinuationToken,omitempty"`     // v2 only
	NextContToken  string            `xml:"NextContinuationToken,omitempty"` // v2 only
	StartAfter     xmlText           `xml:"StartAfter,omitempty"`            // v2 only
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

// enc returns s as a listing's element carries it: percent-encoded as S3 does for
// encoding-type=url (every byte but the unreserved characters of RFC 3986 and '/',
// so "a b/c+d" becomes "a%20b/c%2Bd"), or as it is.
func (e listEncoder) enc(s string) xmlText {
	if !e {
		return xmlText(s)
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return xmlText(b.String())
}

// xmlText is the text of an element that carries an object key (or a prefix, marker
// or delimiter). Keys may hold characters that XML 1.0 cannot carry: C0 controls but
// tab, newline and carriage return, U+FFFE and U+FFFF. encoding/xml would replace them
// with U+FFFD, which changes the key; S3 instead writes them as character references
// (a key "a\x1b" is <Key>a&#x1b;</Key>) and leaves it to the client to ask for
// encoding-type=url when its parser refuses those. xmlText does as S3 does.
type xmlText string

// MarshalXML writes the element with its text escaped by escapeXMLText.
func (t xmlText) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	return e.EncodeElement(struct {
		Inner string `xml:",innerxml"`
	}{escapeXMLText(string(t))}, start)
}

// escapeXMLText escapes s as the character data of an element: markup characters and
// line ends as encoding/xml escapes them, characters XML 1.0 does not allow as
// character references, and bytes that are not UTF-8 as U+FFFD.
func escapeXMLText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"':
			b.WriteString("&#34;")
		case r == '\'':
			b.WriteString("&#39;")
		case r == '\t':
			b.WriteString("&#x9;")
		case r == '\n':
			b.WriteString("&#xA;")
		case r == '\r':
			b.WriteString("&#xD;")
		case r == utf8.RuneError && n == 1:
			b.WriteRune(utf8.RuneError)
		case r < 0x20 || r == 0xFFFE || r == 0xFFFF:
			fmt.Fprintf(&b, "&#x%x;", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
