// Package dns looks up the records outbound delivery needs (MX, A/AAAA, TXT, TLSA) and
// reports, with every answer, how far it can be trusted: its DNSSEC status, the CNAME
// chain that led to it, and whether the name does not exist (NXDOMAIN), exists without
// records of the type (NODATA), or could not be looked up right now (a temporary failure).
//
// The standard library's net.Resolver cannot serve here: it hides the AD bit, blurs
// NXDOMAIN and NODATA, follows CNAMEs silently and applies resolv.conf search lists
// (reference semantics §12, MX-01). DANE (RFC 7672) and MTA-STS (RFC 8461) need all of
// that, so this package speaks DNS itself.
//
// The DNSSEC status currently comes from the AD bit of a validating recursive resolver,
// which is only believed when that resolver is on loopback or explicitly configured as
// trusted (RFC 7672 §2.1.1, DANE-01; Postfix does the same, PF-09). In-process
// validation can later produce the same Status values behind the same Resolver interface.
package dns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Status is the DNSSEC validation state of an answer, in the sense of RFC 4035 §4.3.
type Status string

const (
	// Secure: the answer (or the denial of existence) was validated up to a trust anchor.
	Secure Status = "secure"
	// Insecure: the name lies under an unsigned delegation, or the answer came from a
	// resolver whose AD bit is not trusted. The records may be used but prove nothing.
	Insecure Status = "insecure"
	// Bogus: validation failed. Lookups never return records with this status; they
	// fail with a TemporaryError whose Reason is "bogus" (DANE-02).
	Bogus Status = "bogus"
	// Indeterminate: no trust anchor says whether the answer should have been signed.
	Indeterminate Status = "indeterminate"
)

// rank orders statuses from weakest to strongest for Weakest.
func (s Status) rank() int {
	switch s {
	case Secure:
		return 3
	case Insecure:
		return 2
	case Indeterminate:
		return 1
	default: // Bogus and anything unknown
		return 0
	}
}

// Weakest returns the least trustworthy of the statuses: a chain of lookups is only as
// secure as its weakest link (RFC 7672 §2.1.3, DANE-05). With no arguments it returns
// Secure, the status of an empty chain.
func Weakest(ss ...Status) Status {
	w := Secure
	for _, s := range ss {
		if s.rank() < w.rank() {
			w = s
		}
	}
	return w
}

// Alias is one CNAME link followed during a lookup.
type Alias struct {
	Name   string // owner of the CNAME record, normalised
	Target string // its target, normalised
	Status Status // status of the response that carried the link
}

// Answer is what every lookup reports besides its records.
type Answer struct {
	// Name is the name that was asked for, normalised (lower case, no trailing dot).
	Name string
	// Canonical is the name the records (or the denial) belong to after following CNAMEs;
	// it equals Name when there was no alias (MX-02).
	Canonical string
	// Chain lists the CNAME links followed from Name to Canonical, in order.
	Chain []Alias
	// ChainStatus is the weakest status among the links of Chain; Secure when Chain is
	// empty. DANE needs it apart from Status (RFC 7672 §2.2.2, DANE-11).
	ChainStatus Status
	// Status is the status of the final RRset, or of the NODATA/NXDOMAIN denial, on its
	// own. Use Overall to judge the answer as a whole.
	Status Status
	// Reason says why the last reply was not Secure, when an in-process validator
	// judged it ("no DS at example.: insecure delegation").
	Reason string
	// EDE lists Extended DNS Errors (RFC 8914) for the last reply, from the validator
	// or from the upstream resolver's OPT record.
	EDE []EDE
}

// Overall is the status of the answer together with the CNAME chain that led to it: an
// insecure link makes everything after it insecure (DANE-05, DANE-06).
func (a Answer) Overall() Status { return Weakest(a.ChainStatus, a.Status) }

// MX is one mail exchanger record.
type MX struct {
	// Host is the exchanger's name as written in the record, lower case and without the
	// trailing dot. The root (a null MX target, RFC 7505) is kept as ".".
	Host string
	Pref uint16
}

// MXResult is the answer to an MX query. Records is empty for NODATA.
type MXResult struct {
	Answer
	Records []MX // in the order the resolver returned them
}

// IPResult is the answer to the A and AAAA queries for one host, made in parallel.
//
// The Answer describes the two lookups together: Canonical comes from whichever answered
// with addresses, Chain from the A lookup unless only AAAA had data, and the statuses
// are the weaker of the two completed lookups.
type IPResult struct {
	Answer
	IPv4 []netip.Addr // in the order the resolver returned them (MX-10)
	IPv6 []netip.Addr
	// Partial is set when one family failed temporarily while the other returned
	// addresses. The addresses may be used; the error says what is missing.
	Partial error
}

// Addrs returns all addresses, IPv4 first then IPv6, each in resolver order.
func (r IPResult) Addrs() []netip.Addr {
	out := make([]netip.Addr, 0, len(r.IPv4)+len(r.IPv6))
	out = append(out, r.IPv4...)
	return append(out, r.IPv6...)
}

// TXTResult is the answer to a TXT query. Each record's character-strings are
// concatenated into one string, as SPF (RFC 7208 §3.3) and MTA-STS (RFC 8461 §3.1) read them.
type TXTResult struct {
	Answer
	Records []string
}

// TLSA is one TLSA record (RFC 6698 §2.1). The record is passed on raw; deciding which
// records are usable (DANE-15..DANE-17) is the DANE code's job.
type TLSA struct {
	Usage        uint8
	Selector     uint8
	MatchingType uint8
	Data         []byte // certificate association data
}

// TLSAResult is the answer to a TLSA query, for example for "_25._tcp.mx.example.com".
type TLSAResult struct {
	Answer
	Records []TLSA
}

// Resolver is what delivery needs from DNS. Every method treats its argument as a fully
// qualified name: no search list is ever applied (MX-01).
//
// The methods distinguish three outcomes besides success with records:
//   - NODATA: a nil error and no records;
//   - NXDOMAIN: an error matching ErrNXDomain; the result is returned too, with the
//     status of the denial and the name that does not exist in Canonical (after CNAMEs);
//   - temporary failure: an error for which IsTemporary reports true (SERVFAIL, REFUSED,
//     timeouts, network errors, truncated answers that TCP could not fetch, malformed
//     or mismatched replies, referrals from a server that does not recurse, CNAME
//     loops, bogus answers).
//
// Any other error (an invalid name) is permanent and matches ErrInvalidName.
type Resolver interface {
	LookupMX(ctx context.Context, name string) (MXResult, error)
	LookupIP(ctx context.Context, host string) (IPResult, error)
	LookupTXT(ctx context.Context, name string) (TXTResult, error)
	LookupTLSA(ctx context.Context, name string) (TLSAResult, error)
}

// ErrNXDomain is matched (with errors.Is) by lookups of names that do not exist.
var ErrNXDomain = errors.New("domain does not exist (NXDOMAIN)")

// ErrInvalidName is matched by lookups of names that are not valid domain names.
var ErrInvalidName = errors.New("invalid domain name")

// NXDomainError reports that Name does not exist. It matches ErrNXDomain.
type NXDomainError struct {
	Name string // the name that does not exist, after CNAMEs
	Type string // query type, e.g. "MX"
}

func (e *NXDomainError) Error() string {
	return fmt.Sprintf("lookup %s %s: %v", e.Name, e.Type, ErrNXDomain)
}

// Is makes errors.Is(err, ErrNXDomain) true.
func (e *NXDomainError) Is(target error) bool { return target == ErrNXDomain }

// TemporaryError is a lookup that failed in a way that may succeed later. Delivery
// defers on it and never treats it as NODATA or NXDOMAIN (MX-04, DANE-02).
type TemporaryError struct {
	Name string // the name being queried when the failure happened
	Type string // query type, e.g. "MX"
	// Reason is a stable word for logs: "servfail", "refused", "rcode", "timeout",
	// "network", "truncated", "malformed", "mismatch", "referral", "cname_loop",
	// "cname_chain", "bogus".
	Reason string
	Err    error // the underlying cause, if any
	// EDE lists Extended DNS Errors (RFC 8914) that explain the failure: from the
	// resolver's SERVFAIL reply, or from the in-process validator for "bogus".
	EDE []EDE
}

func (e *TemporaryError) Error() string {
	s := fmt.Sprintf("lookup %s %s: temporary failure (%s)", e.Name, e.Type, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *TemporaryError) Unwrap() error { return e.Err }

// Temporary reports true, for callers that test for the method.
func (e *TemporaryError) Temporary() bool { return true }

// IsTemporary reports whether err is, or wraps, a TemporaryError.
func IsTemporary(err error) bool {
	var te *TemporaryError
	return errors.As(err, &te)
}

// IsNXDomain reports whether err says the name does not exist.
func IsNXDomain(err error) bool { return errors.Is(err, ErrNXDomain) }

// Normalize returns name in the form results use: lower case, without the trailing dot.
// The root stays ".".
func Normalize(name string) string {
	name = strings.ToLower(name)
	if name == "." {
		return name
	}
	return strings.TrimSuffix(name, ".")
}
