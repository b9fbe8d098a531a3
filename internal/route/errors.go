package route

import (
	"fmt"
)

// Reasons are the stable words in Error.Reason, for logs and metrics.
const (
	ReasonInvalidDomain  = "invalid_domain"  // the domain is not a valid name
	ReasonInvalidLiteral = "invalid_literal" // a bracketed address literal that does not parse
	ReasonNXDomain       = "nxdomain"        // the domain does not exist (MX-03)
	ReasonNullMX         = "null_mx"         // the domain accepts no mail (MX-13)
	ReasonDNSTemporary   = "dns_temporary"   // the MX lookup failed temporarily (MX-04)
	ReasonDNSSECBogus    = "dnssec_bogus"    // the MX answer failed DNSSEC validation (DANE-03)
	ReasonNoUsableMX     = "no_usable_mx"    // no MX host has a usable address (MX-06)
	ReasonMailLoop       = "mail_loop"       // the best remaining MX host is this server (MX-11)
)

// Error is a failure to find where to deliver. It carries what a delivery status
// notification and the log need: whether to retry, the SMTP reply code and RFC 3463
// enhanced status code to report, and a stable Reason.
type Error struct {
	Domain    string // the destination domain, as asked
	Reason    string // one of the Reason constants
	Temporary bool   // defer and retry, rather than bounce
	Code      int    // SMTP reply code, e.g. 550, 556 or 451
	Enhanced  string // RFC 3463 status code, e.g. "5.1.2"
	Msg       string // human-readable text for the DSN
	Err       error  // the underlying cause, if any
}

func (e *Error) Error() string {
	s := fmt.Sprintf("route to %s: %s %s (%s)", e.Domain, e.Enhanced, e.Msg, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

func newError(domain, reason string, err error) *Error {
	e := &Error{Domain: domain, Reason: reason, Err: err}
	switch reason {
	case ReasonInvalidDomain:
		e.Code, e.Enhanced, e.Msg = 550, "5.1.2", "invalid domain name"
	case ReasonInvalidLiteral:
		e.Code, e.Enhanced, e.Msg = 553, "5.1.3", "invalid address literal"
	case ReasonNXDomain:
		e.Code, e.Enhanced, e.Msg = 550, "5.1.2", "domain does not exist"
	case ReasonNullMX:
		// RFC 7505 §4.1; Postfix uses 5.1.0 here, the RFC's code is kept.
		e.Code, e.Enhanced, e.Msg = 556, "5.1.10", "domain does not accept mail (null MX)"
	case ReasonDNSTemporary:
		e.Code, e.Enhanced, e.Msg, e.Temporary = 451, "4.4.3", "temporary DNS failure looking up MX records", true
	case ReasonDNSSECBogus:
		// A DNSSEC failure defers, never bounces (decision 14.7).
		e.Code, e.Enhanced, e.Msg, e.Temporary = 451, "4.7.5", "MX records failed DNSSEC validation", true
	case ReasonNoUsableMX:
		e.Code, e.Enhanced, e.Msg = 550, "5.4.4", "no MX host has a usable address"
	case ReasonMailLoop:
		e.Code, e.Enhanced, e.Msg = 550, "5.4.6", "mail loops back to myself"
	default:
		panic("route: unknown reason " + reason)
	}
	return e
}

// deferred turns a permanent error into the matching temporary one: 4xx code, enhanced
// class 4. It is used when some candidate failed only temporarily, and for routes the
// operator configured, whose failures point at local configuration to be fixed rather
// than at the recipient.
func (e *Error) deferred() *Error {
	if e.Temporary {
		return e
	}
	d := *e
	d.Temporary = true
	d.Code = 451
	d.Enhanced = "4" + e.Enhanced[1:]
	return &d
}
