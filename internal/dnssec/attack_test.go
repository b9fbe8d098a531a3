package dnssec

import (
	"fmt"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
)

// This file plays the attacker on the path between mxward and its resolver: every case
// takes a reply of the signed test tree and forges, replays, strips or pads it, and
// requires that the validator not call the result Secure, nor Insecure where that
// would downgrade a signed zone.

// rrsOf returns the records of owner and type t in rrs, signatures left out.
func rrsOf(rrs []mdns.RR, owner string, t uint16) []mdns.RR {
	var out []mdns.RR
	for _, rr := range rrs {
		if h := rr.Header(); h.Rrtype == t && canonical(h.Name) == canonical(owner) {
			out = append(out, rr)
		}
	}
	return out
}

// renamed returns copies of rrs owned by name.
func renamed(rrs []mdns.RR, name string) []mdns.RR {
	out := make([]mdns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = mdns.Copy(rr)
		out[i].Header().Name = name
	}
	return out
}

// mustRR parses one record.
func mustRR(tb testing.TB, s string) mdns.RR {
	tb.Helper()
	rr, err := mdns.NewRR(s)
	if err != nil || rr == nil {
		tb.Fatalf("record %q: %v", s, err)
	}
	return rr
}

// withTypes returns rr, an NSEC or NSEC3 record, with another type bitmap, signed again
// by zone z as if z had once published it so: what an attacker replays from the past
// while its signature is still valid.
func withTypes(tb testing.TB, z *testZone, rr mdns.RR, types ...uint16) []mdns.RR {
	tb.Helper()
	c := mdns.Copy(rr)
	switch r := c.(type) {
	case *mdns.NSEC:
		r.TypeBitMap = sortedTypes(types)
	case *mdns.NSEC3:
		r.TypeBitMap = sortedTypes(types)
	default:
		tb.Fatalf("%s is not NSEC or NSEC3", rr)
	}
	return []mdns.RR{c, signWith(tb, z.zsk, z.name, []mdns.RR{c}, before, after)}
}

// escapeFirst spells the first octet of name as a decimal escape: "mx.example." becomes
// "\109x.example.", the same name (RFC 4343 §2.1, RFC 4034 §6.2).
func escapeFirst(name string) string {
	if name == "" || name == "." || name[0] == '\\' {
		return name
	}
	return fmt.Sprintf("\\%03d%s", name[0], name[1:])
}

// attackSpecs is the default tree with a few more names for the attacks: two records in
// one RRset, CNAMEs to names that do not exist, and a signed child of the NSEC3 zone.
func attackSpecs() []zoneSpec {
	specs := withZone(defaultSpecs(), "example.test.", func(s *zoneSpec) {
		s.records = append(append([]string(nil), s.records...),
			"multi A 192.0.2.51",
			"multi A 192.0.2.52",
			"dangle CNAME gone.example.test.",
			"dangle3 CNAME gone.nsec3.test.",
		)
	})
	return plus(specs, zoneSpec{name: "sec.nsec3.test.", records: []string{
		"@ MX 10 mx.sec.nsec3.test.", "mx A 192.0.2.36", "www A 192.0.2.37",
	}})
}

func TestAttacks(t *testing.T) {
	specs := attackSpecs()
	cases := []validateCase{
		// Replays of validly signed data under another owner or type (RFC 4035 §5.3.1,
		// §5.3.2: the signed data includes the owner name and the type).
		{name: "signed RRset replayed under another owner", specs: specs, qname: "nx.example.test.", qtype: mdns.TypeA,
			attack: on("nx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Rcode, m.Ns = mdns.RcodeSuccess, nil
				m.Answer = renamed(tr.answer("mx.example.test.", mdns.TypeA).Answer, "nx.example.test.")
			}), want: dns.Bogus, ede: edeDNSSECBogus},
		{name: "signed RRset replayed under another owner, signatures left at the original", specs: specs,
			qname: "nx.example.test.", qtype: mdns.TypeA,
			attack: on("nx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				orig := tr.answer("mx.example.test.", mdns.TypeA).Answer
				m.Rcode, m.Ns = mdns.RcodeSuccess, nil
				m.Answer = append(renamed(rrsOf(orig, "mx.example.test.", mdns.TypeA), "nx.example.test."), rrsOf(orig, "mx.example.test.", mdns.TypeRRSIG)...)
			}), want: dns.Bogus, ede: edeRRSIGsMissing},
		{name: "signed RRset of another zone replayed", specs: specs, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Answer = renamed(tr.answer("mx.nsec3.test.", mdns.TypeA).Answer, "mx.example.test.")
			}), want: dns.Bogus},
		{name: "signature over another type relabelled (Type Covered)", specs: specs, qname: "example.test.", qtype: mdns.TypeMX,
			attack: on("example.test.", mdns.TypeMX, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				filter(m, func(rr mdns.RR) bool { return isSigOver(rr, mdns.TypeMX) })
				for _, rr := range rrsOf(tr.answer("example.test.", mdns.TypeTXT).Answer, "example.test.", mdns.TypeRRSIG) {
					s := mdns.Copy(rr).(*mdns.RRSIG)
					s.TypeCovered = mdns.TypeMX
					m.Answer = append(m.Answer, s)
				}
			}), want: dns.Bogus, ede: edeDNSSECBogus},
		{name: "signature over another type as it is", specs: specs, qname: "example.test.", qtype: mdns.TypeMX,
			attack: on("example.test.", mdns.TypeMX, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				filter(m, func(rr mdns.RR) bool { return isSigOver(rr, mdns.TypeMX) })
				m.Answer = append(m.Answer, rrsOf(tr.answer("example.test.", mdns.TypeTXT).Answer, "example.test.", mdns.TypeRRSIG)...)
			}), want: dns.Bogus, ede: edeRRSIGsMissing},
		{name: "Labels field lowered to claim a wildcard expansion", specs: specs, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				for _, rr := range m.Answer {
					if s, ok := rr.(*mdns.RRSIG); ok {
						s.Labels = 2
					}
				}
			}), want: dns.Bogus},
		{name: "wildcard expansion replayed below a name that exists (RFC 4035 §5.3.4)", specs: specs,
			qname: "a.real.wild.example.test.", qtype: mdns.TypeA,
			attack: on("a.real.wild.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				w := tr.answer("x.wild.example.test.", mdns.TypeA)
				z := tr.zones["example.test."]
				m.Rcode = mdns.RcodeSuccess
				m.Answer = renamed(w.Answer, "a.real.wild.example.test.")
				m.Ns = dedupe(append(w.Ns, z.nsecCovering("a.real.wild.example.test.")...))
			}), want: dns.Bogus, ede: edeNSECMissing},
		{name: "wildcard expansion replayed below a name that exists, NSEC3 (RFC 5155 §8.8)", specs: specs,
			qname: "a.real.wild.nsec3.test.", qtype: mdns.TypeA,
			attack: on("a.real.wild.nsec3.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				w := tr.answer("x.wild.nsec3.test.", mdns.TypeA)
				z := tr.zones["nsec3.test."]
				m.Rcode = mdns.RcodeSuccess
				m.Answer = renamed(w.Answer, "a.real.wild.nsec3.test.")
				m.Ns = dedupe(append(append(w.Ns, z.nsec3Cover("a.real.wild.nsec3.test.")...), z.nsec3Match("real.wild.nsec3.test.")...))
			}), want: dns.Bogus, ede: edeNSECMissing},
		{name: "wildcard expansion replayed at the wildcard's parent", specs: specs, qname: "wild.example.test.", qtype: mdns.TypeA,
			attack: on("wild.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				w := tr.answer("x.wild.example.test.", mdns.TypeA)
				m.Answer, m.Ns = renamed(w.Answer, "wild.example.test."), w.Ns
			}), want: dns.Bogus},

		// The parent's NSEC3 records at a delegation speak for the DS RRset only (RFC
		// 6840 §4.1, RFC 5155 §8.3); the NSEC cases are in TestValidate.
		{name: "parent's NSEC3 at a secure delegation cannot deny the child's data", specs: specs, qname: "sec.nsec3.test.", qtype: mdns.TypeMX,
			attack: on("sec.nsec3.test.", mdns.TypeMX, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["nsec3.test."]
				m.Answer, m.Ns = nil, append(p.soa(), p.nsec3Match("sec.nsec3.test.")...)
			}), want: dns.Bogus},
		{name: "parent's NSEC3 at a delegation as the closest encloser of a name below it", specs: specs,
			qname: "www.sec.nsec3.test.", qtype: mdns.TypeA,
			attack: on("www.sec.nsec3.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["nsec3.test."]
				m.Rcode, m.Answer = mdns.RcodeNameError, nil
				m.Ns = dedupe(append(append(append(p.soa(), p.nsec3Match("sec.nsec3.test.")...),
					p.nsec3Cover("www.sec.nsec3.test.")...), p.nsec3Cover("*.sec.nsec3.test.")...))
			}), want: dns.Bogus},
		{name: "parent's NSEC3 proof that leaves the delegation out", specs: specs, qname: "www.sec.nsec3.test.", qtype: mdns.TypeA,
			attack: on("www.sec.nsec3.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["nsec3.test."]
				m.Rcode, m.Answer = mdns.RcodeNameError, nil
				m.Ns = dedupe(append(append(append(p.soa(), p.nsec3Match("nsec3.test.")...),
					p.nsec3Cover("www.sec.nsec3.test.")...), p.nsec3Cover("*.nsec3.test.")...))
			}), want: dns.Bogus},
		{name: "opt-out parent's NSEC3 at a secure delegation", specs: specs, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["test."]
				m.Rcode, m.Answer = mdns.RcodeNameError, nil
				m.Ns = dedupe(append(append(append(p.soa(), p.nsec3Match("example.test.")...),
					p.nsec3Cover("mx.example.test.")...), p.nsec3Cover("*.example.test.")...))
			}), want: dns.Bogus},
		{name: "opt-out parent's NSEC3 proof that leaves a secure delegation out", specs: specs, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["test."]
				m.Rcode, m.Answer = mdns.RcodeNameError, nil
				m.Ns = dedupe(append(append(append(p.soa(), p.nsec3Match("test.")...),
					p.nsec3Cover("mx.example.test.")...), p.nsec3Cover("*.test.")...))
			}), want: dns.Bogus},

		// Aliases (RFC 6672 §5.3.1, RFC 4035 §5.3).
		{name: "unsigned CNAME in a signed zone", specs: specs, qname: "alias.example.test.", qtype: mdns.TypeA,
			attack: on("alias.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				filter(m, func(rr mdns.RR) bool { return isSigOver(rr, mdns.TypeCNAME) })
			}), want: dns.Bogus, ede: edeRRSIGsMissing},
		{name: "forged CNAME out of a signed zone into an unsigned one", specs: specs, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Answer = append([]mdns.RR{mustRR(tb, "mx.example.test. 300 IN CNAME host.insecure.test.")},
					tr.answer("host.insecure.test.", mdns.TypeA).Answer...)
			}), want: dns.Bogus, ede: edeRRSIGsMissing},
		{name: "second synthesised CNAME beside the one the DNAME gives", specs: specs, qname: "mx.dn.example.test.", qtype: mdns.TypeA,
			attack: on("mx.dn.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Answer = append(m.Answer, mustRR(tb, "mx.dn.example.test. 3600 IN CNAME mx.insecure.test."))
			}), want: dns.Bogus},
		{name: "DNAME target changed, synthesised CNAME to match", specs: specs, qname: "mx.dn.example.test.", qtype: mdns.TypeA,
			attack: on("mx.dn.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				for _, rr := range m.Answer {
					switch r := rr.(type) {
					case *mdns.DNAME:
						r.Target = "insecure.test."
					case *mdns.CNAME:
						r.Target = "mx.insecure.test."
					}
				}
				m.Answer = append(rrsOf(m.Answer, "dn.example.test.", mdns.TypeDNAME), rrsOf(m.Answer, "dn.example.test.", mdns.TypeRRSIG)...)
				m.Answer = append(m.Answer, mustRR(tb, "mx.dn.example.test. 3600 IN CNAME mx.insecure.test."))
				m.Answer = append(m.Answer, tr.answer("mx.insecure.test.", mdns.TypeA).Answer...)
			}), want: dns.Bogus},
		{name: "DNAME used for a name that is not below it", specs: specs, qname: "x.example.test.", qtype: mdns.TypeA,
			attack: on("x.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				d := tr.answer("mx.dn.example.test.", mdns.TypeA)
				m.Rcode, m.Ns = mdns.RcodeSuccess, nil
				m.Answer = append(append(rrsOf(d.Answer, "dn.example.test.", mdns.TypeDNAME), rrsOf(d.Answer, "dn.example.test.", mdns.TypeRRSIG)...),
					mustRR(tb, "x.example.test. 3600 IN CNAME x.nsec3.test."))
			}), want: dns.Bogus, ede: edeRRSIGsMissing},
		{name: "synthesised CNAME with the DNAME's signature stripped", specs: specs, qname: "mx.dn.example.test.", qtype: mdns.TypeA,
			attack: on("mx.dn.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				filter(m, func(rr mdns.RR) bool { return isSigOver(rr, mdns.TypeDNAME) })
			}), want: dns.Bogus, ede: edeRRSIGsMissing},

		// Insecure-delegation proofs for a signed child (RFC 4035 §5.2): the parent's
		// record must match the name exactly, list NS, and list neither DS nor SOA.
		{name: "replayed NSEC from before the DS, matching exactly, cannot be told apart: insecure", specs: specs,
			qname: "sub.example.test.", qtype: mdns.TypeMX,
			attack: on("sub.example.test.", mdns.TypeDS, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["example.test."]
				m.Answer = nil
				m.Ns = append(p.soa(), withTypes(tb, p, p.nsec["sub.example.test."], mdns.TypeNS, mdns.TypeRRSIG, mdns.TypeNSEC)...)
			}), want: dns.Insecure},
		{name: "current NSEC at the delegation lists DS", specs: specs, qname: "sub.example.test.", qtype: mdns.TypeMX,
			attack: on("sub.example.test.", mdns.TypeDS, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["example.test."]
				m.Answer, m.Ns = nil, append(p.soa(), p.nsecAt("sub.example.test.")...)
			}), want: dns.Bogus},
		{name: "replayed NSEC from before the delegation (no NS)", specs: specs, qname: "sub.example.test.", qtype: mdns.TypeMX,
			attack: on("sub.example.test.", mdns.TypeDS, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["example.test."]
				m.Answer = nil
				m.Ns = append(p.soa(), withTypes(tb, p, p.nsec["sub.example.test."], mdns.TypeA, mdns.TypeRRSIG, mdns.TypeNSEC)...)
			}), want: dns.Bogus},
		{name: "replayed NSEC with NS and SOA (the child's apex)", specs: specs, qname: "sub.example.test.", qtype: mdns.TypeMX,
			attack: on("sub.example.test.", mdns.TypeDS, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["example.test."]
				m.Answer = nil
				m.Ns = append(p.soa(), withTypes(tb, p, p.nsec["sub.example.test."], mdns.TypeNS, mdns.TypeSOA, mdns.TypeRRSIG, mdns.TypeNSEC)...)
			}), want: dns.Bogus},
		{name: "replayed NSEC that covers the delegation, NODATA", specs: specs, qname: "sub.example.test.", qtype: mdns.TypeMX,
			attack: on("sub.example.test.", mdns.TypeDS, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["example.test."]
				old := &mdns.NSEC{Hdr: mdns.RR_Header{Name: "out.example.test.", Rrtype: mdns.TypeNSEC, Class: mdns.ClassINET, Ttl: 300},
					NextDomain: "unsigned.example.test.", TypeBitMap: []uint16{mdns.TypeCNAME, mdns.TypeRRSIG, mdns.TypeNSEC}}
				m.Answer = nil
				m.Ns = append(p.soa(), withTypes(tb, p, old, old.TypeBitMap...)...)
			}), want: dns.Bogus},
		{name: "replayed NSEC that covers the delegation, NXDOMAIN", specs: specs, qname: "sub.example.test.", qtype: mdns.TypeMX,
			attack: on("sub.example.test.", mdns.TypeDS, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["example.test."]
				old := &mdns.NSEC{Hdr: mdns.RR_Header{Name: "out.example.test.", Rrtype: mdns.TypeNSEC, Class: mdns.ClassINET, Ttl: 300},
					NextDomain: "unsigned.example.test.", TypeBitMap: []uint16{mdns.TypeCNAME, mdns.TypeRRSIG, mdns.TypeNSEC}}
				m.Rcode, m.Answer = mdns.RcodeNameError, nil
				m.Ns = dedupe(append(append(p.soa(), withTypes(tb, p, old, old.TypeBitMap...)...), p.nsecCovering("*.example.test.")...))
			}), want: dns.Bogus},
		{name: "replayed NSEC3 from before the DS, matching exactly, cannot be told apart: insecure", specs: specs,
			qname: "sec.nsec3.test.", qtype: mdns.TypeMX,
			attack: on("sec.nsec3.test.", mdns.TypeDS, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["nsec3.test."]
				m.Answer = nil
				m.Ns = append(p.soa(), withTypes(tb, p, p.nsec3Of["sec.nsec3.test."], mdns.TypeNS)...)
			}), want: dns.Insecure},
		{name: "current NSEC3 at the delegation lists DS", specs: specs, qname: "sec.nsec3.test.", qtype: mdns.TypeMX,
			attack: on("sec.nsec3.test.", mdns.TypeDS, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["nsec3.test."]
				m.Answer, m.Ns = nil, append(p.soa(), p.nsec3Match("sec.nsec3.test.")...)
			}), want: dns.Bogus},
		{name: "replayed NSEC3 from before the delegation (no NS)", specs: specs, qname: "sec.nsec3.test.", qtype: mdns.TypeMX,
			attack: on("sec.nsec3.test.", mdns.TypeDS, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["nsec3.test."]
				m.Answer = nil
				m.Ns = append(p.soa(), withTypes(tb, p, p.nsec3Of["sec.nsec3.test."], mdns.TypeA, mdns.TypeRRSIG)...)
			}), want: dns.Bogus},
		{name: "replayed NSEC3 with NS and SOA (the child's apex)", specs: specs, qname: "sec.nsec3.test.", qtype: mdns.TypeMX,
			attack: on("sec.nsec3.test.", mdns.TypeDS, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["nsec3.test."]
				m.Answer = nil
				m.Ns = append(p.soa(), withTypes(tb, p, p.nsec3Of["sec.nsec3.test."], mdns.TypeNS, mdns.TypeSOA, mdns.TypeRRSIG)...)
			}), want: dns.Bogus},

		// The authority and additional sections: nothing unsigned there counts.
		{name: "unsigned NS and glue beside a secure answer change nothing", specs: specs, qname: "example.test.", qtype: mdns.TypeMX,
			attack: on("example.test.", mdns.TypeMX, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Ns = append(m.Ns, mustRR(tb, "example.test. 3600 IN NS ns.evil.test."), mustRR(tb, "mx.example.test. 3600 IN A 203.0.113.66"))
				m.Extra = append(m.Extra, mustRR(tb, "ns.evil.test. 3600 IN A 203.0.113.1"), mustRR(tb, "mx.example.test. 3600 IN A 203.0.113.66"))
			}), want: dns.Secure},
		{name: "unsigned records of the question in authority and additional are no answer", specs: specs, qname: "example.test.", qtype: mdns.TypeA,
			attack: on("example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Ns = append(m.Ns, mustRR(tb, "example.test. 3600 IN A 203.0.113.66"))
				m.Extra = append(m.Extra, mustRR(tb, "example.test. 3600 IN A 203.0.113.66"))
			}), want: dns.Secure},
		{name: "answer's signature moved to the additional section", specs: specs, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Extra = append(m.Extra, rrsOf(m.Answer, "mx.example.test.", mdns.TypeRRSIG)...)
				filter(m, func(rr mdns.RR) bool { _, sig := rr.(*mdns.RRSIG); return sig && len(m.Extra) == 0 })
				m.Answer = rrsOf(m.Answer, "mx.example.test.", mdns.TypeA)
			}), want: dns.Bogus, ede: edeRRSIGsMissing},
		{name: "answer's signature moved to the authority section", specs: specs, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Ns = append(m.Ns, rrsOf(m.Answer, "mx.example.test.", mdns.TypeRRSIG)...)
				m.Answer = rrsOf(m.Answer, "mx.example.test.", mdns.TypeA)
			}), want: dns.Bogus, ede: edeRRSIGsMissing},
		{name: "unsigned SOA of another zone in a denial", specs: specs, qname: "nx.example.test.", qtype: mdns.TypeA,
			attack: on("nx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				filter(m, func(rr mdns.RR) bool { return rr.Header().Rrtype == mdns.TypeSOA || isSigOver(rr, mdns.TypeSOA) })
				m.Ns = append(m.Ns, mustRR(tb, "insecure.test. 300 IN SOA ns.insecure.test. h.insecure.test. 1 2 3 4 300"))
			}), want: dns.Bogus},
		{name: "unsigned NS at the name of a NODATA is no delegation", specs: specs, qname: "mx.example.test.", qtype: mdns.TypeTXT,
			attack: on("mx.example.test.", mdns.TypeTXT, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Ns = append(m.Ns, mustRR(tb, "mx.example.test. 3600 IN NS ns.evil.test."))
			}), want: dns.Secure},

		// Signers: the zone that holds the data, and no other (RFC 4035 §5.3.1).
		{name: "denial signed by a child zone", specs: specs, qname: "nx.example.test.", qtype: mdns.TypeA,
			attack: on("nx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				c := tr.zones["sub.example.test."]
				var ns []mdns.RR
				for _, rr := range m.Ns {
					if _, sig := rr.(*mdns.RRSIG); !sig {
						ns = append(ns, rr, signWith(tb, c.zsk, c.name, []mdns.RR{rr}, before, after))
					}
				}
				m.Ns = ns
			}), want: dns.Bogus, ede: edeNSECMissing},
		{name: "denial signed by a sibling zone of the same length", specs: specs, qname: "nx.example.test.", qtype: mdns.TypeA,
			attack: on("nx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				c := tr.zones["secure2.test."]
				var ns []mdns.RR
				for _, rr := range m.Ns {
					if _, sig := rr.(*mdns.RRSIG); !sig {
						ns = append(ns, rr, signWith(tb, c.zsk, c.name, []mdns.RR{rr}, before, after))
					}
				}
				m.Ns = ns
			}), want: dns.Bogus, ede: edeNSECMissing},
		{name: "DS RRset signed by the child it delegates to", specs: specs, qname: "example.test.", qtype: mdns.TypeDS,
			attack: on("example.test.", mdns.TypeDS, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["example.test."]
				resignAnswer(tb, m, "example.test.", mdns.TypeDS, z.zsk, z.name, before, after)
			}), want: dns.Bogus},

		// NXDOMAIN after a CNAME speaks of the CNAME's target (RFC 6604 §3).
		{name: "NXDOMAIN for the target of a CNAME", specs: specs, qname: "dangle.example.test.", qtype: mdns.TypeA,
			want: dns.Secure, links: map[string]dns.Status{"dangle.example.test.": dns.Secure}},
		{name: "NXDOMAIN for the target of a CNAME in an NSEC3 zone", specs: specs, qname: "dangle3.example.test.", qtype: mdns.TypeA,
			want: dns.Secure, links: map[string]dns.Status{"dangle3.example.test.": dns.Secure}},
		{name: "NXDOMAIN with a proof about the CNAME's owner, not its target", specs: specs, qname: "dangle.example.test.", qtype: mdns.TypeA,
			attack: on("dangle.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["example.test."]
				m.Ns = append(z.soa(), z.nsecAt("dangle.example.test.")...)
			}), want: dns.Bogus},
		{name: "NXDOMAIN proof for the question's name beside an unsigned CNAME for it", specs: specs, qname: "nx.example.test.", qtype: mdns.TypeA,
			attack: on("nx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Answer = append([]mdns.RR{mustRR(tb, "nx.example.test. 300 IN CNAME mx.example.test.")}, tr.answer("mx.example.test.", mdns.TypeA).Answer...)
			}), want: dns.Bogus, ede: edeRRSIGsMissing},
		{name: "NXDOMAIN proof for the question's name beside a signed CNAME replayed for it", specs: specs, qname: "nx.example.test.", qtype: mdns.TypeA,
			attack: on("nx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				a := tr.answer("alias.example.test.", mdns.TypeA).Answer
				m.Answer = append(renamed(append(rrsOf(a, "alias.example.test.", mdns.TypeCNAME), rrsOf(a, "alias.example.test.", mdns.TypeRRSIG)...), "nx.example.test."),
					rrsOf(a, "mx.example.test.", mdns.TypeA)...)
			}), want: dns.Bogus},
		{name: "NXDOMAIN after a CNAME whose target's records are there", specs: specs, qname: "alias.example.test.", qtype: mdns.TypeA,
			attack: on("alias.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) { m.Rcode = mdns.RcodeNameError }),
			want:   dns.Bogus},
		{name: "NXDOMAIN after a CNAME, target dropped, another name's proof", specs: specs, qname: "alias.example.test.", qtype: mdns.TypeA,
			attack: on("alias.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Rcode = mdns.RcodeNameError
				m.Answer = append(rrsOf(m.Answer, "alias.example.test.", mdns.TypeCNAME), rrsOf(m.Answer, "alias.example.test.", mdns.TypeRRSIG)...)
				m.Ns = tr.answer("nx.example.test.", mdns.TypeA).Ns
			}), want: dns.Bogus, links: map[string]dns.Status{"alias.example.test.": dns.Secure}},

		// Names compare canonically: case (RFC 4343) and escapes (RFC 4034 §6.2).
		{name: "question in mixed case", specs: specs, qname: "Mx.ExAmple.TEST.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "owner names in upper case", specs: specs, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				for _, rr := range m.Answer {
					rr.Header().Name = strings.ToUpper(rr.Header().Name)
				}
			}), want: dns.Secure},
		{name: "owner spelt differently within one RRset", specs: specs, qname: "multi.example.test.", qtype: mdns.TypeA,
			attack: on("multi.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				spell := []string{"MULTI.example.test.", "multi.EXAMPLE.test.", `\109ulti.example.test.`}
				for i, rr := range m.Answer {
					rr.Header().Name = spell[i%len(spell)]
				}
				if len(rrsOf(m.Answer, "multi.example.test.", mdns.TypeA)) != 2 {
					tb.Fatal("want two records in the RRset")
				}
			}), want: dns.Secure},
		{name: "signer name in upper case", specs: specs, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				for _, rr := range m.Answer {
					if s, ok := rr.(*mdns.RRSIG); ok {
						s.SignerName = strings.ToUpper(s.SignerName)
					}
				}
			}), want: dns.Secure},
		{name: "owner spelt with a decimal escape", specs: specs, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				for _, rr := range m.Answer {
					rr.Header().Name = escapeFirst(rr.Header().Name)
				}
			}), want: dns.Secure},
		{name: "NSEC owner, next name and signer spelt with escapes", specs: specs, qname: "nx.example.test.", qtype: mdns.TypeA,
			attack: on("nx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				for _, rr := range m.Ns {
					switch r := rr.(type) {
					case *mdns.NSEC:
						r.Hdr.Name, r.NextDomain = escapeFirst(r.Hdr.Name), escapeFirst(r.NextDomain)
					case *mdns.RRSIG:
						r.Hdr.Name, r.SignerName = escapeFirst(r.Hdr.Name), escapeFirst(r.SignerName)
					}
				}
			}), want: dns.Secure},
		{name: "NSEC3 owner hash in upper case", specs: specs, qname: "nx.nsec3.test.", qtype: mdns.TypeA,
			attack: on("nx.nsec3.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				for _, rr := range m.Ns {
					if h := rr.Header(); h.Rrtype == mdns.TypeNSEC3 || isSigOver(rr, mdns.TypeNSEC3) {
						h.Name = strings.ToUpper(h.Name)
					}
				}
			}), want: dns.Secure},
		{name: "a label with an escaped dot is not two labels", specs: specs, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				for _, rr := range m.Answer {
					rr.Header().Name = `mx\.example.test.`
				}
			}), want: dns.Bogus},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runValidateCase(t, tc)
		})
	}
}

// TestSignerAboveTrustAnchor checks that a signature naming a zone above the trust
// anchor that governs the data is not used to judge it: that zone's status (insecure,
// or outside every anchor) says nothing about an island of security below it.
func TestSignerAboveTrustAnchor(t *testing.T) {
	// A signature by test. put first, over data of example.test.
	fakeSigner := func(strip bool) attack {
		return on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
			set := rrsOf(m.Answer, "mx.example.test.", mdns.TypeA)
			if strip {
				m.Answer = set
			}
			k := newTestKey(tb, "test.", mdns.ZONE, mdns.ECDSAP256SHA256, 9)
			m.Answer = append([]mdns.RR{signWith(tb, k, "test.", set, before, after)}, m.Answer...)
		})
	}
	exampleOnly := func(tr *testTree) []mdns.RR { return []mdns.RR{dsOf(tr.zones["example.test."].ksk, mdns.SHA256)} }
	island := withZone(defaultSpecs(), "test.", func(s *zoneSpec) { s.unsigned = true; s.denial = "" })
	rootAndExample := func(tr *testTree) []mdns.RR {
		return append(tr.rootAnchor(), dsOf(tr.zones["example.test."].ksk, mdns.SHA256))
	}
	for _, tc := range []validateCase{
		{name: "only anchor example.test.: a signer above it does not make secure data indeterminate",
			specs: defaultSpecs(), anchors: exampleOnly, attack: fakeSigner(false), qname: "mx.example.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "only anchor example.test.: stripped data signed only above it is bogus",
			specs: defaultSpecs(), anchors: exampleOnly, attack: fakeSigner(true), qname: "mx.example.test.", qtype: mdns.TypeA, want: dns.Bogus},
		{name: "island below an unsigned TLD: a signer in the TLD does not make secure data insecure",
			specs: island, anchors: rootAndExample, attack: fakeSigner(false), qname: "mx.example.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "island below an unsigned TLD: stripped data signed only in the TLD is bogus",
			specs: island, anchors: rootAndExample, attack: fakeSigner(true), qname: "mx.example.test.", qtype: mdns.TypeA, want: dns.Bogus},
		{name: "island below an unsigned TLD: a denial signed only in the TLD is bogus",
			specs: island, anchors: rootAndExample, qname: "nx.example.test.", qtype: mdns.TypeA, want: dns.Bogus,
			attack: on("nx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				k := newTestKey(tb, "test.", mdns.ZONE, mdns.ECDSAP256SHA256, 9)
				var ns []mdns.RR
				for _, rr := range m.Ns {
					if _, sig := rr.(*mdns.RRSIG); !sig {
						ns = append(ns, rr, signWith(tb, k, "test.", []mdns.RR{rr}, before, after))
					}
				}
				m.Ns = ns
			})},
		{name: "island below an unsigned TLD: its DS is judged by the TLD's chain",
			specs: island, anchors: rootAndExample, qname: "example.test.", qtype: mdns.TypeDS, want: dns.Insecure},
		{name: "island below an unsigned TLD: its data is secure",
			specs: island, anchors: rootAndExample, qname: "mx.example.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "DS at the apex of a deeper anchor is judged by the parent's anchor",
			specs: defaultSpecs(), anchors: rootAndExample, qname: "example.test.", qtype: mdns.TypeDS, want: dns.Secure},
	} {
		t.Run(tc.name, func(t *testing.T) { runValidateCase(t, tc) })
	}
}

// TestBudgetFailureNotCached checks that a reply which spends the per-reply budget of
// signature verifications fails alone: the zone whose keys could not be checked for
// want of budget is not remembered as bogus for other replies.
func TestBudgetFailureNotCached(t *testing.T) {
	// Six verifications take the chain to example.test. and its CNAME; nsec3.test.,
	// the CNAME's target, gets none.
	f := newFixture(t, defaultSpecs(), Config{MaxValidations: 6})
	got, _, _ := f.validate(t, "n3.example.test.", mdns.TypeA)
	if got.Status != dns.Bogus || !strings.Contains(got.Reason, "limit of 6") {
		t.Fatalf("%s (%s), want bogus for the verification limit", got.Status, got.Reason)
	}
	if got, _, _ := f.validate(t, "nsec3.test.", mdns.TypeMX); got.Status != dns.Secure {
		t.Fatalf("nsec3.test. MX after another reply spent its budget: %s (%s)", got.Status, got.Reason)
	}
}

// TestWildcardDNAMEInChain checks that a DNAME synthesised from a wildcard, in the reply
// to a DS query of the chain of trust, makes the walk fail rather than end in a zone it
// does not know the keys of.
func TestWildcardDNAMEInChain(t *testing.T) {
	specs := withZone(defaultSpecs(), "example.test.", func(s *zoneSpec) {
		s.records = append(append([]string(nil), s.records...), "*.wdn DNAME nsec3.test.")
	})
	f := newFixture(t, specs, Config{})
	f.r.mutate = func(q question, m *mdns.Msg) {
		if q.name == "a.foo.wdn.example.test." && q.qtype == mdns.TypeDS {
			// The expansion of *.wdn at foo.wdn, validly signed with Labels 3.
			m.Rcode, m.Ns = mdns.RcodeSuccess, nil
			m.Answer = renamed(f.tr.zones["example.test."].set("*.wdn.example.test.", mdns.TypeDNAME), "foo.wdn.example.test.")
		}
	}
	resp := f.r.ask(t, "a.foo.wdn.example.test.", mdns.TypeA)
	resp.Rcode, resp.Ns = mdns.RcodeSuccess, nil
	resp.Answer = []mdns.RR{mustRR(t, "a.foo.wdn.example.test. 60 IN A 192.0.2.1")}
	got := f.v.Validate(t.Context(), f.r, resp)
	if got.Status != dns.Bogus || !strings.Contains(got.Reason, "wildcard expansion") {
		t.Fatalf("%s (%s), want bogus for the wildcard DNAME", got.Status, got.Reason)
	}
}
