package dane

import (
	"mxward/internal/dns"
)

// Destination describes how an MX host was reached, which decides the names a
// DANE-TA(2) certificate may carry (DANE-22).
type Destination struct {
	NextHop string // the recipient domain (or the transport's next hop)
	// NextHopExpanded is NextHop after CNAME expansion during the MX lookup ("" or
	// equal to NextHop when there was none). For an implicit MX it is the expansion
	// found by the address lookup of NextHop.
	NextHopExpanded string
	// MXSecure is true when the MX RRset (or, for an implicit MX, the denial of MX
	// records) and any CNAME leading to it were secure (DANE-06).
	MXSecure bool
	// ImplicitMX is true when the domain has no MX records and is itself the host
	// (RFC 5321 §5.1).
	ImplicitMX bool
	// MXHost is the MX host name as written in the MX record, before CNAME expansion;
	// for an implicit MX, NextHop (used when left empty).
	MXHost string
}

// ReferenceIDs returns the names a DANE-TA(2) server certificate may match, base being
// the TLSA base domain of the host (Host.BaseDomain). Following RFC 7672 §3.2.2 and
// §2.2.1 (DANE-22):
//
//   - the base domain always (the primary reference identifier);
//   - after a secure MX lookup, also the next-hop domain and its CNAME-expanded form;
//   - for an implicit MX whose base domain is the CNAME-expanded next hop, also the
//     original next-hop domain;
//   - after an insecure MX lookup ("half-DANE", DANE-07) only the MX host name as it
//     appeared in the MX record: the next hop was not authenticated, so no name derived
//     from it may be, and a success is not secure delivery to the next-hop domain.
//
// Names are normalised (lower case, no trailing dot); the result has no repeats and
// starts with the primary identifier.
func ReferenceIDs(d Destination, base string) []string {
	base = dns.Normalize(base)
	next := dns.Normalize(d.NextHop)
	expanded := dns.Normalize(d.NextHopExpanded)
	mxHost := dns.Normalize(d.MXHost)
	if mxHost == "" && d.ImplicitMX {
		mxHost = next
	}
	var ids []string
	add := func(n string) {
		if n == "" || n == "." {
			return
		}
		for _, x := range ids {
			if x == n {
				return
			}
		}
		ids = append(ids, n)
	}
	if !d.MXSecure {
		if mxHost == "" {
			mxHost = base
		}
		add(mxHost)
		return ids
	}
	add(base)
	if d.ImplicitMX {
		if expanded != "" && base == expanded {
			add(next)
		}
		return ids
	}
	add(next)
	add(expanded)
	return ids
}
