package lab

import (
	"strings"

	mdns "github.com/miekg/dns"
)

// This file answers questions from the tree the way a recursive resolver asked with
// DO does: following CNAMEs, taking DS from the parent side of a zone cut, and putting
// RRSIGs, NSEC records and the SOA where the authoritative servers would.

// zoneFor returns the zone that answers name and qtype: the deepest zone containing
// name, except that DS at a zone apex comes from the parent (RFC 4035 §3.1.4.1).
func zoneFor(tree map[string]*zone, name string, qtype uint16) *zone {
	for n := name; n != ""; n = parentName(n) {
		if z := tree[n]; z != nil {
			if qtype == mdns.TypeDS && z.name == name && z.parent != nil {
				return z.parent
			}
			return z
		}
	}
	return nil
}

// result is a reply built from the tree, and whether every zone it came from is
// secure: signed with a chain of DS records up to the root.
type result struct {
	msg    *mdns.Msg
	secure bool
}

// resolve builds the reply for name and qtype, with signatures and proofs.
func resolve(tree map[string]*zone, name string, qtype uint16) result {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	m.Response, m.RecursionAvailable = true, true
	cur := strings.ToLower(mdns.Fqdn(name))
	secure := true
	seen := make(map[string]bool)
	for range 8 {
		z := zoneFor(tree, cur, qtype)
		if z == nil {
			m.Rcode = mdns.RcodeRefused
			return result{msg: m}
		}
		secure = secure && z.secure()
		ans, auth, rcode, cname := z.lookup(cur, qtype)
		m.Answer = append(m.Answer, ans...)
		m.Ns, m.Rcode = auth, rcode
		if cname == "" || seen[cname] {
			break
		}
		seen[cur] = true
		cur = cname
	}
	return result{msg: m, secure: secure}
}

// secure reports whether z and every zone above it are signed, so that a chain of
// trust runs from the root anchor to z.
func (z *zone) secure() bool {
	for ; z != nil; z = z.parent {
		if !z.signed {
			return false
		}
	}
	return true
}

// set returns copies of the records of name and t with their signatures.
func (z *zone) set(name string, t uint16) []mdns.RR {
	var out []mdns.RR
	for _, rr := range z.data[name][t] {
		out = append(out, mdns.Copy(rr))
	}
	for _, s := range z.sigs[name][t] {
		out = append(out, mdns.Copy(s))
	}
	return out
}

// nsecAt returns the NSEC record owned by name with its signature, if any.
func (z *zone) nsecAt(name string) []mdns.RR {
	n := z.nsec[name]
	if n == nil {
		return nil
	}
	out := []mdns.RR{mdns.Copy(n)}
	for _, s := range z.sigs[name][mdns.TypeNSEC] {
		out = append(out, mdns.Copy(s))
	}
	return out
}

// nsecCovering returns the NSEC whose span contains name: the one owned by the last
// name before it in canonical order.
func (z *zone) nsecCovering(name string) []mdns.RR {
	best := z.name
	for _, n := range z.names {
		if canonicalCompare(n, name) < 0 {
			best = n
		}
	}
	return z.nsecAt(best)
}

// lookup answers name and qtype from z alone: the answer and authority sections, the
// rcode, and the CNAME target to follow if any.
func (z *zone) lookup(name string, qtype uint16) (ans, auth []mdns.RR, rcode int, cname string) {
	soa := z.set(z.name, mdns.TypeSOA)
	if rs := z.data[name]; rs != nil {
		switch {
		case rs[qtype] != nil:
			return z.set(name, qtype), nil, mdns.RcodeSuccess, ""
		case rs[mdns.TypeCNAME] != nil:
			target := strings.ToLower(rs[mdns.TypeCNAME][0].(*mdns.CNAME).Target)
			return z.set(name, mdns.TypeCNAME), nil, mdns.RcodeSuccess, target
		}
		// NODATA: the NSEC at name shows the type is absent (RFC 4035 §3.1.3.1).
		return nil, append(soa, z.nsecAt(name)...), mdns.RcodeSuccess, ""
	}
	if z.ents[name] {
		// An empty non-terminal has no NSEC of its own; the one covering it proves
		// it has no data (RFC 4035 §3.1.3.1, RFC 4592 §2.2.2).
		return nil, append(soa, z.nsecCovering(name)...), mdns.RcodeSuccess, ""
	}
	// NXDOMAIN: one NSEC covers the name, one the wildcard at the closest encloser
	// (RFC 4035 §3.1.3.2).
	ce := parentName(name)
	for ce != z.name && z.data[ce] == nil && !z.ents[ce] {
		ce = parentName(ce)
	}
	proof := append(z.nsecCovering(name), z.nsecCovering("*."+ce)...)
	return nil, append(soa, dedupe(proof)...), mdns.RcodeNameError, ""
}

// dedupe drops repeated records, keeping the first.
func dedupe(rrs []mdns.RR) []mdns.RR {
	var out []mdns.RR
	seen := make(map[string]bool)
	for _, rr := range rrs {
		if s := rr.String(); !seen[s] {
			seen[s] = true
			out = append(out, rr)
		}
	}
	return out
}
