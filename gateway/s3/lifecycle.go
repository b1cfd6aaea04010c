package s3

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cellarsim/cellar/internal/errs"
)

// Lifecycle configuration: expiration of current objects. A rule (Status Enabled or
// Disabled) selects objects by a filter (a key prefix, tags, size bounds, or all of
// them under And; or the rule's own Prefix, the old form) and expires them a number
// of Days after they were written (rounded up to the next midnight UTC, as S3 does)
// or from a Date (midnight UTC) on. The cell's background worker removes expired
// objects (package cell/repair); the gateway stores and returns the rules.
//
// What S3 also has and cellar does not build is refused with 501 NotImplemented,
// naming it, and nothing is stored: transitions to other storage classes (every
// object is STANDARD), the actions on noncurrent versions and expired delete markers,
// and AbortIncompleteMultipartUpload (the gateway aborts abandoned uploads by its own
// --upload-max-age).

const (
	maxLifecycleRules = 1000
	maxLifecycleBody  = 1 << 20
	lifecycleEnabled  = "Enabled"
	lifecycleDisabled = "Disabled"
)

// presence records whether an element was present, whatever its content.
type presence struct {
	Inner string `xml:",innerxml"`
}

type lifecycleAndXML struct {
	Prefix                *string  `xml:"Prefix"`
	Tags                  []tagXML `xml:"Tag"`
	ObjectSizeGreaterThan *int64   `xml:"ObjectSizeGreaterThan"`
	ObjectSizeLessThan    *int64   `xml:"ObjectSizeLessThan"`
}

type lifecycleFilterXML struct {
	Prefix                *string          `xml:"Prefix"`
	Tag                   *tagXML          `xml:"Tag"`
	ObjectSizeGreaterThan *int64           `xml:"ObjectSizeGreaterThan"`
	ObjectSizeLessThan    *int64           `xml:"ObjectSizeLessThan"`
	And                   *lifecycleAndXML `xml:"And"`
}

type lifecycleExpirationXML struct {
	Days                      *int      `xml:"Days"`
	Date                      string    `xml:"Date,omitempty"`
	ExpiredObjectDeleteMarker *presence `xml:"ExpiredObjectDeleteMarker"`
}

type lifecycleRuleXML struct {
	ID         string                  `xml:"ID,omitempty"`
	Filter     *lifecycleFilterXML     `xml:"Filter"`
	Prefix     *string                 `xml:"Prefix"`
	Status     string                  `xml:"Status"`
	Expiration *lifecycleExpirationXML `xml:"Expiration"`

	Transitions                    []presence `xml:"Transition"`
	NoncurrentVersionTransitions   []presence `xml:"NoncurrentVersionTransition"`
	NoncurrentVersionExpiration    *presence  `xml:"NoncurrentVersionExpiration"`
	AbortIncompleteMultipartUpload *presence  `xml:"AbortIncompleteMultipartUpload"`
}

type lifecycleConfigurationXML struct {
	XMLName xml.Name           `xml:"LifecycleConfiguration"`
	Xmlns   string             `xml:"xmlns,attr,omitempty"`
	Rules   []lifecycleRuleXML `xml:"Rule"`
}

// parseLifecycle reads and validates a LifecycleConfiguration document.
func parseLifecycle(body []byte) ([]LifecycleRule, error) {
	var doc lifecycleConfigurationXML
	if err := xml.Unmarshal(body, &doc); err != nil {
		return nil, malformedXML(err)
	}
	if len(doc.Rules) == 0 || len(doc.Rules) > maxLifecycleRules {
		return nil, errs.New(errs.MalformedXML, "A lifecycle configuration holds 1 to %d rules.", maxLifecycleRules)
	}
	ids := map[string]bool{}
	rules := make([]LifecycleRule, 0, len(doc.Rules))
	for i, rx := range doc.Rules {
		r, err := parseLifecycleRule(rx)
		if err != nil {
			return nil, err
		}
		if r.ID == "" {
			r.ID = "rule-" + strconv.Itoa(i+1) // S3 gives a rule without an ID one of its own
		}
		if ids[r.ID] {
			return nil, errs.New(errs.InvalidArgument, "Rule ID must be unique. Found same ID for more than one rule")
		}
		ids[r.ID] = true
		rules = append(rules, r)
	}
	return rules, nil
}

func parseLifecycleRule(rx lifecycleRuleXML) (LifecycleRule, error) {
	r := LifecycleRule{ID: rx.ID}
	if len(rx.ID) > maxRuleID {
		return r, errs.New(errs.InvalidArgument, "ID length should not exceed allowed limit of %d", maxRuleID)
	}
	switch rx.Status {
	case lifecycleEnabled:
		r.Enabled = true
	case lifecycleDisabled:
	default:
		return r, errs.New(errs.MalformedXML, "The Status of a lifecycle rule is Enabled or Disabled.")
	}
	switch {
	case len(rx.Transitions) > 0 || len(rx.NoncurrentVersionTransitions) > 0:
		return r, errs.New(errs.NotImplemented, "cellar does not implement lifecycle transitions: every object is stored as STANDARD, so it refuses a rule with Transition rather than ignore it.")
	case rx.NoncurrentVersionExpiration != nil:
		return r, errs.New(errs.NotImplemented, "cellar does not implement the lifecycle action NoncurrentVersionExpiration.")
	case rx.AbortIncompleteMultipartUpload != nil:
		return r, errs.New(errs.NotImplemented, "cellar does not implement the lifecycle action AbortIncompleteMultipartUpload; the gateway aborts abandoned uploads after its --upload-max-age.")
	case rx.Expiration != nil && rx.Expiration.ExpiredObjectDeleteMarker != nil:
		return r, errs.New(errs.NotImplemented, "cellar does not implement the lifecycle action ExpiredObjectDeleteMarker.")
	case rx.Expiration == nil:
		return r, errs.New(errs.InvalidRequest, "At least one action needs to be specified in a rule")
	}
	if err := parseLifecycleFilter(rx, &r); err != nil {
		return r, err
	}
	e := rx.Expiration
	switch {
	case e.Days != nil && e.Date != "":
		return r, errs.New(errs.MalformedXML, "An Expiration has Days or Date, not both.")
	case e.Days != nil:
		if *e.Days <= 0 {
			return r, errs.New(errs.InvalidArgument, "'Days' for Expiration action must be a positive integer")
		}
		r.ExpirationDays = *e.Days
	case e.Date != "":
		d, err := time.Parse(time.RFC3339, strings.TrimSpace(e.Date))
		if err != nil {
			return r, errs.New(errs.InvalidArgument, "Invalid Date value: %s", clip(e.Date, 64))
		}
		d = d.UTC()
		if !d.Equal(d.Truncate(24 * time.Hour)) {
			return r, errs.New(errs.InvalidArgument, "'Date' must be at midnight GMT")
		}
		r.ExpirationDate = d
	default:
		return r, errs.New(errs.MalformedXML, "An Expiration needs Days or Date.")
	}
	return r, nil
}

// parseLifecycleFilter reads the filter of a rule: its Filter element or its own
// Prefix (the old form), exactly one of them.
func parseLifecycleFilter(rx lifecycleRuleXML, r *LifecycleRule) error {
	switch {
	case rx.Filter != nil && rx.Prefix != nil:
		return errs.New(errs.MalformedXML, "A lifecycle rule has a Filter or a Prefix, not both.")
	case rx.Filter == nil && rx.Prefix == nil:
		return errs.New(errs.MalformedXML, "A lifecycle rule needs a Filter (or a Prefix).")
	case rx.Prefix != nil:
		r.Form, r.Prefix = FilterRulePrefix, *rx.Prefix
		return nil
	}
	f := rx.Filter
	n := 0
	for _, set := range []bool{f.Prefix != nil, f.Tag != nil, f.ObjectSizeGreaterThan != nil, f.ObjectSizeLessThan != nil, f.And != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errs.New(errs.MalformedXML, "A lifecycle Filter holds one condition; several go in And.")
	}
	var gt, lt *int64
	switch {
	case f.And != nil:
		r.Form = FilterAnd
		if f.And.Prefix != nil {
			r.Prefix = *f.And.Prefix
		}
		for _, t := range f.And.Tags {
			r.Tags = append(r.Tags, Tag(t))
		}
		gt, lt = f.And.ObjectSizeGreaterThan, f.And.ObjectSizeLessThan
	case f.Prefix != nil:
		r.Prefix = *f.Prefix
	case f.Tag != nil:
		r.Tags = []Tag{Tag(*f.Tag)}
	default:
		gt, lt = f.ObjectSizeGreaterThan, f.ObjectSizeLessThan
	}
	if gt != nil {
		r.SizeGreaterThan = *gt
	}
	if lt != nil {
		r.SizeLessThan = *lt
	}
	if r.SizeGreaterThan < 0 || r.SizeLessThan < 0 || (lt != nil && r.SizeLessThan == 0) {
		return errs.New(errs.InvalidArgument, "ObjectSizeGreaterThan must not be negative, and ObjectSizeLessThan must be positive.")
	}
	if r.SizeLessThan > 0 && r.SizeGreaterThan >= r.SizeLessThan {
		return errs.New(errs.InvalidArgument, "ObjectSizeGreaterThan must be less than ObjectSizeLessThan")
	}
	seen := map[string]bool{}
	for _, t := range r.Tags {
		if seen[t.Key] {
			return errs.New(errs.InvalidRequest, "Duplicate Tag Keys are not allowed.")
		}
		seen[t.Key] = true
	}
	return validateTags(r.Tags, maxObjectTags, "Filter")
}

// lifecycleDocument renders rules as GetBucketLifecycleConfiguration gives them.
func lifecycleDocument(rules []LifecycleRule) lifecycleConfigurationXML {
	doc := lifecycleConfigurationXML{Xmlns: xmlNamespace}
	for _, r := range rules {
		rx := lifecycleRuleXML{ID: r.ID, Status: lifecycleDisabled, Expiration: &lifecycleExpirationXML{}}
		if r.Enabled {
			rx.Status = lifecycleEnabled
		}
		if r.ExpirationDays > 0 {
			days := r.ExpirationDays
			rx.Expiration.Days = &days
		} else {
			rx.Expiration.Date = r.ExpirationDate.UTC().Format(iso8601)
		}
		prefix := r.Prefix
		size := func(v int64) *int64 {
			if v == 0 {
				return nil
			}
			return &v
		}
		switch {
		case r.Form == FilterRulePrefix:
			rx.Prefix = &prefix
		case r.Form == FilterAnd:
			and := &lifecycleAndXML{ObjectSizeGreaterThan: size(r.SizeGreaterThan), ObjectSizeLessThan: size(r.SizeLessThan)}
			if prefix != "" {
				and.Prefix = &prefix
			}
			for _, t := range r.Tags {
				and.Tags = append(and.Tags, tagXML(t))
			}
			rx.Filter = &lifecycleFilterXML{And: and}
		case len(r.Tags) == 1:
			t := tagXML(r.Tags[0])
			rx.Filter = &lifecycleFilterXML{Tag: &t}
		case r.SizeGreaterThan > 0 || r.SizeLessThan > 0:
			rx.Filter = &lifecycleFilterXML{ObjectSizeGreaterThan: size(r.SizeGreaterThan), ObjectSizeLessThan: size(r.SizeLessThan)}
		default:
			rx.Filter = &lifecycleFilterXML{Prefix: &prefix}
		}
		doc.Rules = append(doc.Rules, rx)
	}
	return doc
}

func (h *handler) getBucketLifecycle(x *exchange) error {
	cfg, err := h.bucketConfig(x)
	if err != nil {
		return err
	}
	if len(cfg.Lifecycle) == 0 {
		return errs.New(errs.NoSuchLifecycleConfiguration, "The lifecycle configuration does not exist")
	}
	return x.writeXML(http.StatusOK, lifecycleDocument(cfg.Lifecycle))
}

func (h *handler) putBucketLifecycle(x *exchange) error {
	body, err := readXMLBody(x, maxLifecycleBody, true)
	if err != nil {
		return err
	}
	rules, err := parseLifecycle(body)
	if err != nil {
		return err
	}
	return h.putBucketConfig(x, BucketConfigChange{SetLifecycle: true, Lifecycle: rules}, http.StatusOK)
}
