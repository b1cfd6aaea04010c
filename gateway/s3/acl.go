package s3

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"strings"

	"github.com/cellarsim/cellar/internal/errs"
)

// Access control lists. cellar's buckets behave as S3 buckets with Object Ownership
// "bucket owner enforced", S3's default for new buckets: ACLs are disabled, the
// bucket's owner owns and fully controls every object, and access is decided by
// credentials alone.
//
//   - GetBucketAcl and GetObjectAcl answer the one grant there is: the owner's
//     FULL_CONTROL.
//   - PutBucketAcl and PutObjectAcl accept what leaves that grant as it is: the canned
//     ACLs private and bucket-owner-full-control, or an AccessControlPolicy body whose
//     every grant is FULL_CONTROL to the owner. So do PutObject, CopyObject,
//     CreateMultipartUpload and CreateBucket with an x-amz-acl header.
//   - Any other ACL (public-read, a grant to someone else, an x-amz-grant-* header) is
//     refused with S3's answer for such a bucket, 400 AccessControlListNotSupported,
//     and nothing is stored.

const (
	aclMaxBody    = 64 << 10
	xsiNamespace  = "http://www.w3.org/2001/XMLSchema-instance"
	permFullCtl   = "FULL_CONTROL"
	granteeCanon  = "CanonicalUser"
	aclNotAllowed = "The bucket does not allow ACLs: its objects are owned and fully controlled by the bucket owner (Object Ownership: bucket owner enforced)."
)

// acceptedCannedACLs are the canned ACLs that keep the owner's full control alone.
var acceptedCannedACLs = map[string]bool{"private": true, "bucket-owner-full-control": true}

type granteeXML struct {
	XMLNS       string `xml:"xmlns:xsi,attr,omitempty"`
	Type        string `xml:"xsi:type,attr,omitempty"`
	ID          string `xml:"ID,omitempty"`
	DisplayName string `xml:"DisplayName,omitempty"`
	URI         string `xml:"URI,omitempty"`
	Email       string `xml:"EmailAddress,omitempty"`
}

type grantXML struct {
	Grantee    granteeXML `xml:"Grantee"`
	Permission string     `xml:"Permission"`
}

type accessControlPolicyXML struct {
	XMLName xml.Name   `xml:"AccessControlPolicy"`
	Xmlns   string     `xml:"xmlns,attr,omitempty"`
	Owner   ownerXML   `xml:"Owner"`
	Grants  []grantXML `xml:"AccessControlList>Grant"`
}

// ownerOnlyPolicy is the ACL of every bucket and object: the owner's full control.
func ownerOnlyPolicy() accessControlPolicyXML {
	return accessControlPolicyXML{Xmlns: xmlNamespace, Owner: owner, Grants: []grantXML{{
		Grantee:    granteeXML{XMLNS: xsiNamespace, Type: granteeCanon, ID: owner.ID, DisplayName: owner.DisplayName},
		Permission: permFullCtl,
	}}}
}

// checkACLHeaders refuses the ACL headers of a write unless they keep the owner's full
// control alone.
func checkACLHeaders(hdr http.Header) error {
	if v := hdr.Get("x-amz-acl"); v != "" && !acceptedCannedACLs[strings.TrimSpace(v)] {
		return errs.New(errs.ACLNotSupported, "%s (x-amz-acl: %s)", aclNotAllowed, clip(v, 64))
	}
	for name := range hdr {
		if strings.HasPrefix(strings.ToLower(name), "x-amz-grant-") {
			return errs.New(errs.ACLNotSupported, "%s (%s)", aclNotAllowed, clip(name, 64))
		}
	}
	return nil
}

// aclTarget checks that the bucket, or the object, whose ACL is asked for exists.
func (h *handler) aclTarget(x *exchange) error {
	if x.req.key == "" {
		cell, err := h.b.HeadBucket(x.r.Context(), x.req.bucket)
		x.setCell(cell)
		return err
	}
	cell, _, err := h.b.HeadObject(x.r.Context(), x.req.bucket, x.req.key)
	x.setCell(cell)
	return err
}

// getACL serves GetBucketAcl and GetObjectAcl.
func (h *handler) getACL(x *exchange) error {
	if err := h.aclTarget(x); err != nil {
		return err
	}
	return x.writeXML(http.StatusOK, ownerOnlyPolicy())
}

// putACL serves PutBucketAcl and PutObjectAcl: an ACL that changes nothing is accepted.
func (h *handler) putACL(x *exchange) error {
	if err := checkACLHeaders(x.r.Header); err != nil {
		return err
	}
	body, err := readXMLBody(x, aclMaxBody, true)
	if err != nil {
		return err
	}
	var pol accessControlPolicyXML
	if len(bytes.TrimSpace(body)) > 0 {
		if err := xml.Unmarshal(body, &pol); err != nil {
			return malformedXML(err)
		}
	}
	hasCanned := x.r.Header.Get("x-amz-acl") != ""
	if pol.XMLName.Local != "" {
		if hasCanned {
			return errs.New(errs.InvalidRequest, "Specifying both Canned ACLs and Header Grants or an ACL body is not allowed.")
		}
		if len(pol.Grants) == 0 {
			return errs.New(errs.MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema: it grants nothing.")
		}
		for _, g := range pol.Grants {
			if g.Permission != permFullCtl || g.Grantee.ID != owner.ID || g.Grantee.URI != "" || g.Grantee.Email != "" {
				return errs.New(errs.ACLNotSupported, "%s (a grant of %s to %s)", aclNotAllowed, clip(g.Permission, 32),
					clip(g.Grantee.ID+g.Grantee.URI+g.Grantee.Email, 128))
			}
		}
	} else if !hasCanned {
		return errs.New(errs.MalformedXML, "PutBucketAcl and PutObjectAcl need an x-amz-acl header or an AccessControlPolicy body.")
	}
	if err := h.aclTarget(x); err != nil {
		return err
	}
	x.w.Header().Set("Content-Length", "0")
	x.writeHeader(http.StatusOK)
	return nil
}
