package dns

import (
	"context"
	"time"

	mdns "github.com/miekg/dns"
)

// This file is the seam between the client, which fetches replies, and an in-process
// DNSSEC validator (package dnssec), which judges them. The client does not import the
// validator: the validator imports these types, and the caller joins the two in Config.

// Exchanger sends one query upstream and returns the reply as it came. The query carries
// EDNS0 with DO and, when a Validator is configured, CD, so that the upstream resolver
// hands over signatures and proofs even for data it would itself judge bogus (RFC 4035
// §3.2.2, §4.6). Replies are checked to answer the question; only NOERROR and NXDOMAIN
// replies are returned, any other outcome is a *TemporaryError.
type Exchanger interface {
	Exchange(ctx context.Context, name string, qtype uint16) (*mdns.Msg, error)
}

// Validator judges the DNSSEC status of a reply fetched with DO+CD. It may ask further
// questions (DS, DNSKEY) through ex. It must never call data Secure that an attacker on
// the path could have forged, nor Insecure when signatures of a signed zone are missing.
type Validator interface {
	Validate(ctx context.Context, ex Exchanger, resp *mdns.Msg) Validation
}

// Validation is a Validator's verdict on one reply.
type Validation struct {
	// Status is the status of the reply's final RRset, or of its proof of
	// non-existence (NXDOMAIN, NODATA), for the question in the reply.
	Status Status
	// Links holds the status of each CNAME (or DNAME-synthesised CNAME) RRset in the
	// answer section, by owner name, fully qualified and lower case (DANE-05).
	Links map[string]Status
	// Reason says, for anything but Secure, why: "no signatures for example.com. MX",
	// "insecure delegation at example.", "signature expired" … for logs and for
	// `mxward dns lookup`.
	Reason string
	// EDE carries Extended DNS Errors (RFC 8914) describing a Bogus or Indeterminate
	// result, such as 7 (Signature Expired) or 10 (RRSIGs Missing).
	EDE []EDE
	// Expires, when not zero, is the earliest expiration of the signatures the verdict
	// rests on (the reply's and those of the chain of trust): a cached Secure reply
	// must not outlive it, whatever its TTL (RFC 4035 §5.3.3).
	Expires time.Time
}

// EDE is one Extended DNS Error (RFC 8914 §2): an info code and optional text.
type EDE struct {
	Code uint16 `json:"code"`
	Text string `json:"text,omitempty"`
}

// String returns the code's registered name and the text, for logs.
func (e EDE) String() string {
	s := mdns.ExtendedErrorCodeToString[e.Code]
	if s == "" {
		s = "EDE"
	}
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// edeOf returns the Extended DNS Errors in a reply's OPT record.
func edeOf(resp *mdns.Msg) []EDE {
	opt := resp.IsEdns0()
	if opt == nil {
		return nil
	}
	var out []EDE
	for _, o := range opt.Option {
		if e, ok := o.(*mdns.EDNS0_EDE); ok {
			out = append(out, EDE{Code: e.InfoCode, Text: e.ExtraText})
		}
	}
	return out
}

// dnssecFailure reports whether any of the errors is one RFC 8914 §4 assigns to DNSSEC
// validation (codes 1 to 12).
func dnssecFailure(ede []EDE) bool {
	for _, e := range ede {
		if e.Code >= mdns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm && e.Code <= mdns.ExtendedErrorCodeNSECMissing {
			return true
		}
	}
	return false
}
