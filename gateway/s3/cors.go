package s3

import (
	"encoding/xml"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/cellarsim/cellar/internal/errs"
)

// Cross-origin resource sharing. A bucket's CORS rules (PutBucketCors, GetBucketCors,
// DeleteBucketCors) answer browsers:
//
//   - A preflight, OPTIONS on the bucket or any key of it, is answered without a
//     signature (browsers send none) from the first rule whose AllowedOrigin matches
//     Origin, whose AllowedMethod holds Access-Control-Request-Method, and whose
//     AllowedHeader patterns match every header of Access-Control-Request-Headers
//     (case-insensitively). No such rule, or no rules: 403 AccessForbidden. Origin or
//     Access-Control-Request-Method missing: 400 BadRequest.
//   - Any other request that carries Origin gets the Access-Control-* headers of the
//     first rule matching its origin and method, on its answer and on its error.
//
// A pattern (an origin or a header) may hold one '*', which matches any run of
// characters. Access-Control-Allow-Origin is "*" for a rule allowing any origin, else
// the request's Origin with Access-Control-Allow-Credentials: true, as S3 answers.

const (
	maxCORSRules = 100
	maxCORSBody  = 64 << 10
	maxRuleID    = 255
)

// corsMethods are the methods a CORS rule may allow.
var corsMethods = []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodHead}

type corsRuleXML struct {
	ID             string   `xml:"ID,omitempty"`
	AllowedHeaders []string `xml:"AllowedHeader"`
	AllowedMethods []string `xml:"AllowedMethod"`
	AllowedOrigins []string `xml:"AllowedOrigin"`
	ExposeHeaders  []string `xml:"ExposeHeader"`
	MaxAgeSeconds  *int     `xml:"MaxAgeSeconds"`
}

type corsConfigurationXML struct {
	XMLName xml.Name      `xml:"CORSConfiguration"`
	Xmlns   string        `xml:"xmlns,attr,omitempty"`
	Rules   []corsRuleXML `xml:"CORSRule"`
}

// parseCORS reads and validates a CORSConfiguration document.
func parseCORS(body []byte) ([]CORSRule, error) {
	var doc corsConfigurationXML
	if err := xml.Unmarshal(body, &doc); err != nil {
		return nil, malformedXML(err)
	}
	if len(doc.Rules) == 0 || len(doc.Rules) > maxCORSRules {
		return nil, errs.New(errs.MalformedXML, "A CORS configuration holds 1 to %d CORSRule elements.", maxCORSRules)
	}
	rules := make([]CORSRule, 0, len(doc.Rules))
	for _, r := range doc.Rules {
		if len(r.AllowedMethods) == 0 || len(r.AllowedOrigins) == 0 {
			return nil, errs.New(errs.MalformedXML, "Every CORSRule needs at least one AllowedMethod and one AllowedOrigin.")
		}
		if len(r.ID) > maxRuleID {
			return nil, errs.New(errs.InvalidArgument, "The ID of a CORSRule is at most %d characters.", maxRuleID)
		}
		for _, m := range r.AllowedMethods {
			if !slices.Contains(corsMethods, m) {
				return nil, errs.New(errs.InvalidRequest, "Found unsupported HTTP method in CORS config. Unsupported method is %s", clip(m, 32))
			}
		}
		for _, o := range r.AllowedOrigins {
			if strings.Count(o, "*") > 1 {
				return nil, errs.New(errs.InvalidRequest, "AllowedOrigin %q can not have more than one wildcard.", clip(o, 128))
			}
		}
		for _, hd := range r.AllowedHeaders {
			if strings.Count(hd, "*") > 1 {
				return nil, errs.New(errs.InvalidRequest, "AllowedHeader %q can not have more than one wildcard.", clip(hd, 128))
			}
		}
		rule := CORSRule{ID: r.ID, AllowedOrigins: r.AllowedOrigins, AllowedMethods: r.AllowedMethods,
			AllowedHeaders: r.AllowedHeaders, ExposeHeaders: r.ExposeHeaders, MaxAgeSeconds: -1}
		if r.MaxAgeSeconds != nil {
			if *r.MaxAgeSeconds < 0 {
				return nil, errs.New(errs.MalformedXML, "MaxAgeSeconds must not be negative.")
			}
			rule.MaxAgeSeconds = *r.MaxAgeSeconds
		}
		rules = append(rules, rule)
	}
	return rules, nil
}

func corsDocument(rules []CORSRule) corsConfigurationXML {
	doc := corsConfigurationXML{Xmlns: xmlNamespace}
	for _, r := range rules {
		rx := corsRuleXML{ID: r.ID, AllowedHeaders: r.AllowedHeaders, AllowedMethods: r.AllowedMethods,
			AllowedOrigins: r.AllowedOrigins, ExposeHeaders: r.ExposeHeaders}
		if r.MaxAgeSeconds >= 0 {
			age := r.MaxAgeSeconds
			rx.MaxAgeSeconds = &age
		}
		doc.Rules = append(doc.Rules, rx)
	}
	return doc
}

// wildcardMatch reports whether s matches pattern, in which one '*' matches any run of
// characters.
func wildcardMatch(pattern, s string) bool {
	before, after, star := strings.Cut(pattern, "*")
	if !star {
		return pattern == s
	}
	return len(s) >= len(before)+len(after) && strings.HasPrefix(s, before) && strings.HasSuffix(s, after)
}

// matchOrigin reports whether the rule allows origin.
func (r CORSRule) matchOrigin(origin string) bool {
	for _, o := range r.AllowedOrigins {
		if wildcardMatch(o, origin) {
			return true
		}
	}
	return false
}

// allowsHeader reports whether the rule allows the request header name.
func (r CORSRule) allowsHeader(name string) bool {
	name = strings.ToLower(strings.TrimSpace(name))
	for _, p := range r.AllowedHeaders {
		if wildcardMatch(strings.ToLower(p), name) {
			return true
		}
	}
	return false
}

// matchCORS returns the first rule allowing origin, method and every header of
// headers (a comma-separated list), if any.
func matchCORS(rules []CORSRule, origin, method string, headers []string) (CORSRule, bool) {
next:
	for _, r := range rules {
		if !r.matchOrigin(origin) || !slices.Contains(r.AllowedMethods, method) {
			continue
		}
		for _, hd := range headers {
			if !r.allowsHeader(hd) {
				continue next
			}
		}
		return r, true
	}
	return CORSRule{}, false
}

// splitHeaderList splits Access-Control-Request-Headers into names.
func splitHeaderList(v string) []string {
	var out []string
	for part := range strings.SplitSeq(v, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// setCORSHeaders sets the Access-Control-* headers that rule gives origin.
func setCORSHeaders(hdr http.Header, rule CORSRule, origin string) {
	if slices.Contains(rule.AllowedOrigins, "*") {
		hdr.Set("Access-Control-Allow-Origin", "*")
	} else {
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Set("Access-Control-Allow-Credentials", "true")
	}
	hdr.Set("Access-Control-Allow-Methods", strings.Join(rule.AllowedMethods, ", "))
	if len(rule.ExposeHeaders) > 0 {
		hdr.Set("Access-Control-Expose-Headers", strings.Join(rule.ExposeHeaders, ", "))
	}
	if rule.MaxAgeSeconds >= 0 {
		hdr.Set("Access-Control-Max-Age", strconv.Itoa(rule.MaxAgeSeconds))
	}
	hdr.Set("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method")
}

// isCORSHeader reports whether a response header is one that CORS set, which an error
// answer keeps so that the browser lets its page read the error.
func isCORSHeader(name string) bool {
	return strings.HasPrefix(name, "Access-Control-") || name == "Vary"
}

// corsForRequest sets the CORS headers of a request that carries Origin, from the
// bucket's rules. A bucket without rules, or a configuration that cannot be read now,
// adds nothing: the request itself is served all the same.
func (h *handler) corsForRequest(x *exchange) {
	origin := x.r.Header.Get("Origin")
	if origin == "" || x.req.bucket == "" || x.req.op == opPreflight {
		return
	}
	cb, ok := h.b.(ConfigBackend)
	if !ok {
		return
	}
	_, cfg, err := cb.BucketConfig(x.r.Context(), x.req.bucket)
	if err != nil || len(cfg.CORS) == 0 {
		return
	}
	if rule, ok := matchCORS(cfg.CORS, origin, x.r.Method, nil); ok {
		setCORSHeaders(x.w.Header(), rule, origin)
	}
}

// preflight answers a CORS preflight request (OPTIONS), unsigned.
func (h *handler) preflight(x *exchange) error {
	origin := x.r.Header.Get("Origin")
	if origin == "" {
		return errs.New(errs.BadRequest, "Insufficient information. Origin request header needed.")
	}
	method := x.r.Header.Get("Access-Control-Request-Method")
	if !slices.Contains(corsMethods, method) {
		return errs.New(errs.BadRequest, "Invalid Access-Control-Request-Method: %s", clip(method, 32))
	}
	cfg, err := h.bucketConfig(x)
	if err != nil {
		return err
	}
	if len(cfg.CORS) == 0 {
		return errs.New(errs.CORSForbidden, "CORSResponse: CORS is not enabled for this bucket.")
	}
	rule, ok := matchCORS(cfg.CORS, origin, method, splitHeaderList(x.r.Header.Get("Access-Control-Request-Headers")))
	if !ok {
		return errs.New(errs.CORSForbidden, "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.")
	}
	hdr := x.w.Header()
	setCORSHeaders(hdr, rule, origin)
	if v := x.r.Header.Get("Access-Control-Request-Headers"); v != "" {
		hdr.Set("Access-Control-Allow-Headers", strings.ToLower(v))
	}
	hdr.Set("Content-Length", "0")
	x.writeHeader(http.StatusOK)
	return nil
}

func (h *handler) getBucketCors(x *exchange) error {
	cfg, err := h.bucketConfig(x)
	if err != nil {
		return err
	}
	if len(cfg.CORS) == 0 {
		return errs.New(errs.NoSuchCORSConfiguration, "The CORS configuration does not exist")
	}
	return x.writeXML(http.StatusOK, corsDocument(cfg.CORS))
}

func (h *handler) putBucketCors(x *exchange) error {
	body, err := readXMLBody(x, maxCORSBody, true)
	if err != nil {
		return err
	}
	rules, err := parseCORS(body)
	if err != nil {
		return err
	}
	return h.putBucketConfig(x, BucketConfigChange{SetCORS: true, CORS: rules}, http.StatusOK)
}
