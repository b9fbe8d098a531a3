package dane

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"mxward/internal/dns"
)

// Outcome is the result of the TLSA step for one MX host: what the client must do with
// that host (RFC 7672 §2.2; reference semantics §3.4).
type Outcome int

const (
	// NotApplicable: no secure TLSA RRset (an insecure RRset, a secure or insecure
	// NODATA or NXDOMAIN, or DANE does not apply to the host at all). Pre-DANE
	// opportunistic TLS is used, or whatever other policy applies (RFC 7672 §2.2.1 ¶7).
	NotApplicable Outcome = iota
	// Authenticate: a secure RRset with at least one usable record. TLS is mandatory and
	// the server must match the records (RFC 7672 §2.2, §3.2).
	Authenticate
	// EncryptOnly: a secure, non-empty RRset whose records are all unusable. TLS is
	// mandatory, authentication is not (DANE-18; RFC 7672 §2.2.3 ¶14, RFC 7671 §10.3).
	EncryptOnly
	// Unreachable: the TLSA lookup failed (bogus, indeterminate, SERVFAIL, timeout,
	// malformed reply). The host must be skipped, never used without DANE (DANE-04;
	// RFC 7672 §2.1.2 ¶2–3).
	Unreachable
)

func (o Outcome) String() string {
	switch o {
	case NotApplicable:
		return "not-applicable"
	case Authenticate:
		return "authenticate"
	case EncryptOnly:
		return "encrypt-only"
	case Unreachable:
		return "unreachable"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Host is the DANE state for one MX host.
type Host struct {
	Outcome Outcome
	// BaseDomain is the candidate whose TLSA RRset was secure: the name to send as SNI
	// (DANE-24) and the primary reference identifier (DANE-22). It is "" for
	// NotApplicable and Unreachable.
	BaseDomain string
	// RRset is the secure TLSA RRset as published, for Authenticate and EncryptOnly.
	RRset   []dns.TLSA
	Records []dns.TLSA // the usable records, for Authenticate
	Dropped []Dropped  // records of RRset set aside by Usable
	// Reason says, for the attempt log, which rule decided and why.
	Reason string
	// Err is the lookup failure, for Unreachable.
	Err error
}

// TLSRequired reports whether the outcome forbids plaintext and any fallback to it
// (DANE-04, DANE-18): an Unreachable host must not be contacted at all.
func (h Host) TLSRequired() bool { return h.Outcome != NotApplicable }

// DefaultPort is the SMTP port whose TLSA records are looked up when LookupHost is
// given none (RFC 7672 §2.2.3).
const DefaultPort = 25

// LookupHost performs the TLSA step for one MX host (RFC 7672 §2.2.2, §2.2.3).
//
// host and addr are as for Candidates; with no candidate the outcome is NotApplicable.
// For each candidate in order, the TLSA RRset of `_<port>._tcp.<candidate>` is looked
// up, port being the port actually connected to (DANE-12; 0 means 25). A CNAME at that
// name is followed by the resolver but does not change the base domain (§2.2.3 ¶5–9).
// The first candidate with a secure, non-empty RRset becomes the base domain; an
// insecure RRset counts as no records, as do NODATA and NXDOMAIN whether secure or not,
// and the next candidate is tried (DANE-13). Any other lookup result (a temporary
// failure, bogus or indeterminate data, an invalid query name, a cancelled context)
// makes the host Unreachable at once (DANE-02, DANE-04): a failure is never read as
// absence. digestPref is passed on to Usable (nil: DefaultDigests).
func LookupHost(ctx context.Context, r dns.Resolver, host string, addr dns.IPResult, port int, digestPref []uint8) Host {
	cands, why := Candidates(host, addr)
	if len(cands) == 0 {
		return Host{Outcome: NotApplicable, Reason: why}
	}
	if port <= 0 {
		port = DefaultPort
	}
	var absent []string
	for _, c := range cands {
		qname := "_" + strconv.Itoa(port) + "._tcp." + c
		res, err := r.LookupTLSA(ctx, qname)
		switch {
		case dns.IsNXDomain(err):
			absent = append(absent, qname+" does not exist ("+statusWord(res.Overall())+" NXDOMAIN)")
			continue
		case err != nil:
			return Host{Outcome: Unreachable, Err: err,
				Reason: fmt.Sprintf("DANE-04: TLSA lookup for %s failed; the host is unreachable (RFC 7672 §2.1.2): %v", qname, err)}
		}
		switch st := res.Overall(); st {
		case dns.Secure:
		case dns.Insecure:
			if len(res.Records) == 0 {
				absent = append(absent, qname+" has no TLSA records (insecure NODATA)")
			} else {
				absent = append(absent, qname+" has an insecure TLSA RRset")
			}
			continue
		default:
			return Host{Outcome: Unreachable, Err: fmt.Errorf("TLSA lookup for %s: %s answer", qname, statusWord(st)),
				Reason: fmt.Sprintf("DANE-02: TLSA answer for %s is %s; the host is unreachable (RFC 7672 §2.1.1)", qname, statusWord(st))}
		}
		if len(res.Records) == 0 {
			absent = append(absent, qname+" has no TLSA records (secure NODATA)")
			continue
		}
		h := Host{BaseDomain: c, RRset: res.Records}
		h.Records, h.Dropped = Usable(res.Records, digestPref)
		via := ""
		if res.Canonical != "" && res.Canonical != dns.Normalize(qname) {
			via = " via CNAME " + res.Canonical
		}
		if len(h.Records) > 0 {
			h.Outcome = Authenticate
			h.Reason = fmt.Sprintf("DANE-13: secure TLSA RRset at %s%s, %d usable of %d records; base domain %s",
				qname, via, len(h.Records), len(res.Records), c)
		} else {
			h.Outcome = EncryptOnly
			h.Reason = fmt.Sprintf("DANE-18: secure TLSA RRset at %s%s has no usable record (%d records); TLS required, no authentication",
				qname, via, len(res.Records))
		}
		return h
	}
	return Host{Outcome: NotApplicable,
		Reason: "DANE-13: no secure TLSA RRset: " + strings.Join(absent, "; ")}
}
