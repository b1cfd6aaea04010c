package s3

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cellarsim/cellar/internal/errs"
)

// Object and bucket tagging, with S3's limits:
//
//   - an object has at most 10 tags, a bucket at most 50 (400 BadRequest beyond);
//   - a key is 1 to 128 characters, a value 0 to 256 (Unicode characters, not bytes);
//     keys are unique in a set, and none starts with "aws:" (400 InvalidTag);
//   - keys and values hold letters, digits, spaces and + - = . _ : / @ (InvalidTag).
//
// Tags come with the object (x-amz-tagging on PutObject, CreateMultipartUpload, and on
// CopyObject with x-amz-tagging-directive: REPLACE; a copy keeps its source's tags by
// default), and are changed alone with PutObjectTagging and DeleteObjectTagging, which
// leave the object's data, metadata, ETag and Last-Modified as they are. GET and HEAD
// give their count in x-amz-tagging-count.

const (
	maxObjectTags    = 10
	maxBucketTags    = 50
	maxTagKeyChars   = 128
	maxTagValueChars = 256
	maxTaggingBody   = 64 << 10

	taggingDirectiveCopy    = "COPY"
	taggingDirectiveReplace = "REPLACE"
)

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type taggingXML struct {
	XMLName xml.Name `xml:"Tagging"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	TagSet  struct {
		Tags []tagXML `xml:"Tag"`
	} `xml:"TagSet"`
}

func taggingOf(tags []Tag) taggingXML {
	t := taggingXML{Xmlns: xmlNamespace}
	t.TagSet.Tags = make([]tagXML, 0, len(tags))
	for _, tag := range tags {
		t.TagSet.Tags = append(t.TagSet.Tags, tagXML(tag))
	}
	return t
}

// validTagChar is a character S3 accepts in a tag's key or value.
func validTagChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsSpace(r) || unicode.IsMark(r) ||
		strings.ContainsRune("+-=._:/@", r)
}

// validateTags checks a tag set against S3's limits, max being the most tags it may hold.
func validateTags(tags []Tag, max int, what string) error {
	if len(tags) > max {
		return errs.New(errs.BadRequest, "%s tags cannot be greater than %d", what, max)
	}
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		switch {
		case !utf8.ValidString(t.Key) || !utf8.ValidString(t.Value):
			return errs.New(errs.InvalidTag, "The TagKey or TagValue you have provided is not valid UTF-8.")
		case t.Key == "":
			return errs.New(errs.InvalidTag, "The TagKey you have provided is invalid")
		case utf8.RuneCountInString(t.Key) > maxTagKeyChars:
			return errs.New(errs.InvalidTag, "The TagKey you have provided is too long, max %d", maxTagKeyChars)
		case utf8.RuneCountInString(t.Value) > maxTagValueChars:
			return errs.New(errs.InvalidTag, "The TagValue you have provided is too long, max %d", maxTagValueChars)
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return errs.New(errs.InvalidTag, "Your TagKey cannot be prefixed with aws:")
		case strings.IndexFunc(t.Key, func(r rune) bool { return !validTagChar(r) }) >= 0:
			return errs.New(errs.InvalidTag, "The TagKey you have provided is invalid")
		case strings.IndexFunc(t.Value, func(r rune) bool { return !validTagChar(r) }) >= 0:
			return errs.New(errs.InvalidTag, "The TagValue you have provided is invalid")
		case seen[t.Key]:
			return errs.New(errs.InvalidTag, "Cannot provide multiple Tags with the same key")
		}
		seen[t.Key] = true
	}
	return nil
}

// parseTaggingHeader reads x-amz-tagging: tags as a URL query ("k1=v1&k2=v2"), in the
// order given. A key without '=' has the empty value.
func parseTaggingHeader(v string) ([]Tag, error) {
	var tags []Tag
	for part := range strings.SplitSeq(v, "&") {
		if part == "" {
			continue
		}
		k, val, _ := strings.Cut(part, "=")
		key, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(val)
		if err1 != nil || err2 != nil {
			return nil, errs.New(errs.InvalidArgument, "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
		}
		tags = append(tags, Tag{Key: key, Value: value})
	}
	if err := validateTags(tags, maxObjectTags, "Object"); err != nil {
		return nil, err
	}
	return tags, nil
}

// tagsFromHeader reads the x-amz-tagging header of an object write (nil when absent).
func tagsFromHeader(h http.Header) ([]Tag, error) {
	if _, ok := h["X-Amz-Tagging"]; !ok {
		return nil, nil
	}
	return parseTaggingHeader(h.Get("x-amz-tagging"))
}

// copyTagging reads x-amz-tagging-directive of a CopyObject: with REPLACE the copy
// gets the tags of x-amz-tagging (replace true, and those tags); with COPY, the
// default, its source's.
func copyTagging(h http.Header) (replace bool, tags []Tag, err error) {
	switch d := strings.ToUpper(strings.TrimSpace(h.Get("x-amz-tagging-directive"))); d {
	case "", taggingDirectiveCopy:
		return false, nil, nil
	case taggingDirectiveReplace:
		tags, err := tagsFromHeader(h)
		return true, tags, err
	default:
		return false, nil, errs.New(errs.InvalidArgument, "Unknown tagging directive.")
	}
}

// setTaggingCount sets x-amz-tagging-count on a GET or HEAD of an object with tags.
func setTaggingCount(hdr http.Header, info ObjectInfo) {
	if n := len(info.Tags); n > 0 {
		hdr.Set("x-amz-tagging-count", strconv.Itoa(n))
	}
}

// readTagging reads a Tagging body and checks it against max.
func readTagging(x *exchange, max int, what string) ([]Tag, error) {
	var body taggingXML
	if err := readXML(x, maxTaggingBody, &body, true); err != nil {
		return nil, err
	}
	if body.XMLName.Local != "Tagging" {
		return nil, errs.New(errs.MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	tags := make([]Tag, 0, len(body.TagSet.Tags))
	for _, t := range body.TagSet.Tags {
		tags = append(tags, Tag(t))
	}
	if err := validateTags(tags, max, what); err != nil {
		return nil, err
	}
	return tags, nil
}

// currentVersionOnly refuses a tagging request that names a version other than the
// null one: tags are read and written on a key's current version.
func currentVersionOnly(x *exchange) error {
	if x.req.query.Has(versionIDParam) && x.req.query.Get(versionIDParam) != versionNull {
		return errs.New(errs.NotImplemented, "cellar reads and writes the tags of an object's current version only, not of a version named by versionId.")
	}
	return nil
}

// getObjectTagging serves GetObjectTagging: the object's tags (an empty set when it
// has none).
func (h *handler) getObjectTagging(x *exchange) error {
	if err := currentVersionOnly(x); err != nil {
		return err
	}
	cell, info, err := h.b.HeadObject(x.r.Context(), x.req.bucket, x.req.key)
	x.setCell(cell)
	if err != nil {
		return err
	}
	return x.writeXML(http.StatusOK, taggingOf(info.Tags))
}

func (h *handler) putObjectTagging(x *exchange) error {
	tags, err := readTagging(x, maxObjectTags, "Object")
	if err != nil {
		return err
	}
	return h.setObjectTags(x, tags, http.StatusOK)
}

func (h *handler) deleteObjectTagging(x *exchange) error {
	return h.setObjectTags(x, nil, http.StatusNoContent)
}

func (h *handler) setObjectTags(x *exchange, tags []Tag, status int) error {
	if err := currentVersionOnly(x); err != nil {
		return err
	}
	cb, err := h.configBackend(x)
	if err != nil {
		return err
	}
	cell, err := cb.PutObjectTags(x.r.Context(), x.req.bucket, x.req.key, tags)
	x.setCell(cell)
	if err != nil {
		return err
	}
	if status != http.StatusNoContent {
		x.w.Header().Set("Content-Length", "0")
	}
	x.writeHeader(status)
	return nil
}

// getBucketTagging serves GetBucketTagging: 404 NoSuchTagSet for a bucket without tags.
func (h *handler) getBucketTagging(x *exchange) error {
	cfg, err := h.bucketConfig(x)
	if err != nil {
		return err
	}
	if len(cfg.Tags) == 0 {
		return errs.New(errs.NoSuchTagSet, "The TagSet does not exist")
	}
	return x.writeXML(http.StatusOK, taggingOf(cfg.Tags))
}

func (h *handler) putBucketTagging(x *exchange) error {
	tags, err := readTagging(x, maxBucketTags, "Bucket")
	if err != nil {
		return err
	}
	return h.putBucketConfig(x, BucketConfigChange{SetTags: true, Tags: tags}, http.StatusNoContent)
}
