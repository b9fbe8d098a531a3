package dnssec

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
)

// withZone returns specs with f applied to the zone called name.
func withZone(specs []zoneSpec, name string, f func(*zoneSpec)) []zoneSpec {
	out := append([]zoneSpec(nil), specs...)
	for i := range out {
		if canonical(out[i].name) == canonical(name) {
			f(&out[i])
			return out
		}
	}
	panic("no zone " + name)
}

// plus returns specs with more zones appended.
func plus(specs []zoneSpec, more ...zoneSpec) []zoneSpec {
	return append(append([]zoneSpec(nil), specs...), more...)
}

// attack changes replies to one question.
type attack func(tb testing.TB, tr *testTree, q question, m *mdns.Msg)

// on restricts an attack to the replies for name and qtype.
func on(name string, qtype uint16, f func(tb testing.TB, tr *testTree, m *mdns.Msg)) attack {
	return func(tb testing.TB, tr *testTree, q question, m *mdns.Msg) {
		if q.name == canonical(name) && q.qtype == qtype {
			f(tb, tr, m)
		}
	}
}

// resignAnswer replaces the signatures over owner and t in the answer section with one
// made by key with the given signer name and validity.
func resignAnswer(tb testing.TB, m *mdns.Msg, owner string, t uint16, key *testKey, signer string, inception, expiration time.Time) {
	tb.Helper()
	var set []mdns.RR
	for _, rr := range m.Answer {
		if canonical(rr.Header().Name) == canonical(owner) && rr.Header().Rrtype == t {
			set = append(set, rr)
		}
	}
	if len(set) == 0 {
		tb.Fatalf("no %s %s in the answer", owner, mdns.TypeToString[t])
	}
	filter(m, func(rr mdns.RR) bool { return isSigOver(rr, t) && canonical(rr.Header().Name) == canonical(owner) })
	m.Answer = append(m.Answer, signWith(tb, key, signer, set, inception, expiration))
}

// dsOf returns a DS of key k with digest type d.
func dsOf(k *testKey, d uint8) *mdns.DS { return k.rr.ToDS(d) }

// fakeDS returns a DS record for a key that does not exist.
func fakeDS(tag uint16, alg, digestType uint8, size int) *mdns.DS {
	sum := sha256.Sum256([]byte{byte(tag), alg, digestType})
	digest := hex.EncodeToString(append(sum[:], sum[:]...)[:size])
	return &mdns.DS{Hdr: mdns.RR_Header{Rrtype: mdns.TypeDS, Class: mdns.ClassINET}, KeyTag: tag, Algorithm: alg, DigestType: digestType, Digest: digest}
}

var (
	before = testNow.Add(-48 * time.Hour)
	after  = testNow.Add(48 * time.Hour)
)

type validateCase struct {
	name    string // what is tested, and the rule
	specs   []zoneSpec
	attack  attack
	anchors func(tr *testTree) []mdns.RR
	qname   string
	qtype   uint16
	want    dns.Status
	ede     uint16 // expected among the EDE codes; 0: not checked
	reason  string // expected in the reason; "": not checked
	links   map[string]dns.Status
}

func TestValidate(t *testing.T) {
	def := defaultSpecs()
	algZones := plus(def,
		zoneSpec{name: "alg8.test.", alg: mdns.RSASHA256, records: []string{"@ A 192.0.2.8"}},
		zoneSpec{name: "alg10.test.", alg: mdns.RSASHA512, records: []string{"@ A 192.0.2.10"}},
		zoneSpec{name: "alg13.test.", alg: mdns.ECDSAP256SHA256, records: []string{"@ A 192.0.2.13"}},
		zoneSpec{name: "alg14.test.", alg: mdns.ECDSAP384SHA384, records: []string{"@ A 192.0.2.14"}},
		zoneSpec{name: "alg15.test.", alg: mdns.ED25519, denial: "nsec3", records: []string{"@ A 192.0.2.15"}},
	)
	withAmple := plus(def, zoneSpec{name: "ample.test.", records: []string{"mx A 192.0.2.99"}})

	cases := []validateCase{
		// Positive answers, RFC 4035 §5.3.
		{name: "secure MX (RFC 4035 §5.3)", specs: def, qname: "example.test.", qtype: mdns.TypeMX, want: dns.Secure},
		{name: "secure TLSA three labels below the apex", specs: def, qname: "_25._tcp.mx.example.test.", qtype: mdns.TypeTLSA, want: dns.Secure},
		{name: "secure DNSKEY question", specs: def, qname: "example.test.", qtype: mdns.TypeDNSKEY, want: dns.Secure},
		{name: "secure DS question, signed by the parent (RFC 4035 §5.2)", specs: def, qname: "example.test.", qtype: mdns.TypeDS, want: dns.Secure},
		{name: "algorithm 8 RSA/SHA-256 (RFC 5702)", specs: algZones, qname: "alg8.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "algorithm 10 RSA/SHA-512 (RFC 5702)", specs: algZones, qname: "alg10.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "algorithm 13 ECDSA P-256 (RFC 6605)", specs: algZones, qname: "alg13.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "algorithm 14 ECDSA P-384 (RFC 6605)", specs: algZones, qname: "alg14.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "algorithm 15 Ed25519 (RFC 8080)", specs: algZones, qname: "alg15.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "NXDOMAIN under an Ed25519 NSEC3 zone", specs: algZones, qname: "nx.alg15.test.", qtype: mdns.TypeA, want: dns.Secure},

		// CNAME chains, RFC 4035 §5.3 per link; RFC 7672 §2.1.3.
		{name: "secure CNAME chain", specs: def, qname: "alias2.example.test.", qtype: mdns.TypeA, want: dns.Secure,
			links: map[string]dns.Status{"alias2.example.test.": dns.Secure, "alias.example.test.": dns.Secure}},
		{name: "CNAME from a signed into an unsigned zone: link secure, answer insecure", specs: def,
			qname: "out.example.test.", qtype: mdns.TypeA, want: dns.Insecure,
			links: map[string]dns.Status{"out.example.test.": dns.Secure}},
		{name: "CNAME from an unsigned into a signed zone: link insecure, answer secure", specs: def,
			qname: "back.insecure.test.", qtype: mdns.TypeA, want: dns.Secure,
			links: map[string]dns.Status{"back.insecure.test.": dns.Insecure}},
		{name: "CNAME into an NSEC3 zone", specs: def, qname: "n3.example.test.", qtype: mdns.TypeA, want: dns.Secure,
			links: map[string]dns.Status{"n3.example.test.": dns.Secure}},
		{name: "CNAME synthesised from a signed DNAME (RFC 6672 §5.3.1)", specs: def, qname: "mx.dn.example.test.", qtype: mdns.TypeA,
			want: dns.Secure, links: map[string]dns.Status{"mx.dn.example.test.": dns.Secure}},
		{name: "unsigned data below a DNAME: the walk stops at the DNAME", specs: def, qname: "x.dn.example.test.", qtype: mdns.TypeTXT,
			attack: on("x.dn.example.test.", mdns.TypeTXT, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				txt, _ := mdns.NewRR("x.dn.example.test. 60 IN TXT forged")
				m.Rcode, m.Answer, m.Ns = mdns.RcodeSuccess, []mdns.RR{txt}, nil
			}), want: dns.Bogus, ede: edeRRSIGsMissing},
		{name: "synthesised CNAME that does not follow from the DNAME", specs: def, qname: "mx.dn.example.test.", qtype: mdns.TypeA,
			attack: on("mx.dn.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				for _, rr := range m.Answer {
					if c, ok := rr.(*mdns.CNAME); ok {
						c.Target = "mx.insecure.test."
					}
				}
			}), want: dns.Bogus, ede: edeRRSIGsMissing},
		{name: "CNAME link with a broken signature makes the reply bogus", specs: def, qname: "alias2.example.test.", qtype: mdns.TypeA,
			attack: on("alias2.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				for _, rr := range m.Answer {
					if s, ok := rr.(*mdns.RRSIG); ok && s.TypeCovered == mdns.TypeCNAME && s.Hdr.Name == "alias.example.test." {
						s.Signature = corrupt(s.Signature)
					}
				}
			}), want: dns.Bogus, ede: edeDNSSECBogus},

		// Insecure delegations, RFC 4035 §5.2.
		{name: "insecure delegation proven by NSEC (RFC 4035 §5.2)", specs: def, qname: "unsigned.example.test.", qtype: mdns.TypeMX, want: dns.Insecure},
		{name: "insecure delegation proven by NSEC3 (RFC 5155 §8.5)", specs: def, qname: "mx.unsigned.nsec3.test.", qtype: mdns.TypeA, want: dns.Insecure},
		{name: "insecure delegation inside an NSEC3 opt-out span (RFC 5155 §8.6)", specs: def, qname: "insecure.test.", qtype: mdns.TypeMX, want: dns.Insecure},
		{name: "NXDOMAIN inside an insecure zone", specs: def, qname: "nx.insecure.test.", qtype: mdns.TypeA, want: dns.Insecure},
		{name: "secure NODATA for the DS of an insecure delegation", specs: def, qname: "unsigned.example.test.", qtype: mdns.TypeDS, want: dns.Secure},
		{name: "signed zone without DS in its parent is an island: insecure", qname: "island.example.test.", qtype: mdns.TypeA,
			specs: plus(def, zoneSpec{name: "island.example.test.", noDS: true, records: []string{"@ A 192.0.2.7"}}), want: dns.Insecure},

		// Denial of existence, RFC 4035 §5.4 and RFC 5155 §8.
		{name: "secure NXDOMAIN with NSEC (RFC 4035 §5.4)", specs: def, qname: "nx.example.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "secure NXDOMAIN below an existing name with NSEC", specs: def, qname: "a.nx.mx.example.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "secure NODATA with NSEC (RFC 4035 §5.4)", specs: def, qname: "example.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "secure NODATA at an empty non-terminal with NSEC", specs: def, qname: "c.ent.example.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "secure NXDOMAIN with NSEC3 (RFC 5155 §8.4)", specs: def, qname: "nx.nsec3.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "secure NODATA with NSEC3 (RFC 5155 §8.5)", specs: def, qname: "nsec3.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "secure NODATA at an empty non-terminal with NSEC3", specs: def, qname: "y.ent.nsec3.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "TLSA NODATA in a signed zone", specs: def, qname: "_25._tcp.example.test.", qtype: mdns.TypeTLSA, want: dns.Secure},
		{name: "NXDOMAIN in an opt-out span is insecure (RFC 5155 §6)", specs: def, qname: "nx.test.", qtype: mdns.TypeA, want: dns.Insecure},

		// Wildcards, RFC 4035 §5.3.4, RFC 5155 §8.7, §8.8.
		{name: "wildcard answer with NSEC proof (RFC 4035 §5.3.4)", specs: def, qname: "x.wild.example.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "wildcard answer two labels down with NSEC proof", specs: def, qname: "a.b.wild.example.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "wildcard answer with NSEC3 proof (RFC 5155 §8.8)", specs: def, qname: "x.wild.nsec3.test.", qtype: mdns.TypeA, want: dns.Secure},
		{name: "wildcard CNAME with proof", specs: def, qname: "x.wildcname.example.test.", qtype: mdns.TypeA, want: dns.Secure,
			links: map[string]dns.Status{"x.wildcname.example.test.": dns.Secure}},
		{name: "wildcard answer without NSEC proof is bogus", specs: def, qname: "x.wild.example.test.", qtype: mdns.TypeA,
			attack: on("x.wild.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) { m.Ns = nil }),
			want:   dns.Bogus, ede: edeNSECMissing},
		{name: "wildcard answer without NSEC3 proof is bogus", specs: def, qname: "x.wild.nsec3.test.", qtype: mdns.TypeA,
			attack: on("x.wild.nsec3.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) { m.Ns = nil }),
			want:   dns.Bogus, ede: edeNSECMissing},
		{name: "wildcard answer replayed for a name that exists is bogus", specs: def, qname: "real.wild.example.test.", qtype: mdns.TypeA,
			attack: on("real.wild.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				// The expansion of *.wild.example.test. with its proof for x.wild, which
				// cannot show that real.wild.example.test. does not exist.
				w := tr.answer("x.wild.example.test.", mdns.TypeA)
				for _, rr := range w.Answer {
					rr.Header().Name = "real.wild.example.test."
				}
				m.Answer, m.Ns = w.Answer, w.Ns
			}), want: dns.Bogus, ede: edeNSECMissing},
		{name: "wildcard answer replayed for a name that exists, NSEC3", specs: def, qname: "real.wild.nsec3.test.", qtype: mdns.TypeA,
			attack: on("real.wild.nsec3.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				w := tr.answer("x.wild.nsec3.test.", mdns.TypeA)
				for _, rr := range w.Answer {
					rr.Header().Name = "real.wild.nsec3.test."
				}
				m.Answer, m.Ns = w.Answer, w.Ns
			}), want: dns.Bogus, ede: edeNSECMissing},
		{name: "wildcard NODATA with NSEC (RFC 4035 §3.1.3.4)", specs: def, qname: "x.wild.example.test.", qtype: mdns.TypeMX, want: dns.Secure},
		{name: "wildcard NODATA with NSEC3 (RFC 5155 §8.7)", specs: def, qname: "x.wild.nsec3.test.", qtype: mdns.TypeMX, want: dns.Secure},

		// Signature validity, RFC 4035 §5.3.1.
		{name: "expired signatures throughout the zone", qname: "example.test.", qtype: mdns.TypeMX,
			specs: withZone(def, "example.test.", func(s *zoneSpec) { s.inception, s.expiration = before.Add(-time.Hour), before }),
			want:  dns.Bogus, ede: edeSignatureExpired},
		{name: "expired signature on the answer", specs: def, qname: "example.test.", qtype: mdns.TypeMX,
			attack: on("example.test.", mdns.TypeMX, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["example.test."]
				resignAnswer(tb, m, "example.test.", mdns.TypeMX, z.zsk, z.name, before.Add(-time.Hour), before)
			}), want: dns.Bogus, ede: edeSignatureExpired},
		{name: "signature not yet valid", specs: def, qname: "example.test.", qtype: mdns.TypeMX,
			attack: on("example.test.", mdns.TypeMX, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["example.test."]
				resignAnswer(tb, m, "example.test.", mdns.TypeMX, z.zsk, z.name, after, after.Add(time.Hour))
			}), want: dns.Bogus, ede: edeSignatureNotYetValid},
		{name: "corrupted signature", specs: def, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				for _, rr := range m.Answer {
					if s, ok := rr.(*mdns.RRSIG); ok {
						s.Signature = corrupt(s.Signature)
					}
				}
			}), want: dns.Bogus, ede: edeDNSSECBogus},
		{name: "changed data under a valid signature", specs: def, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				for _, rr := range m.Answer {
					if a, ok := rr.(*mdns.A); ok {
						a.A = []byte{203, 0, 113, 66}
					}
				}
			}), want: dns.Bogus, ede: edeDNSSECBogus},

		// Chain of trust, RFC 4035 §5.2.
		{name: "DS that matches no DNSKEY", qname: "example.test.", qtype: mdns.TypeMX,
			specs: withZone(def, "example.test.", func(s *zoneSpec) {
				s.ds = func(ksk, zsk *testKey) []*mdns.DS {
					return []*mdns.DS{dsOf(newTestKey(t, "example.test.", mdns.ZONE|mdns.SEP, mdns.ECDSAP256SHA256, 1), mdns.SHA256)}
				}
			}), want: dns.Bogus, ede: edeDNSKEYMissing},
		{name: "missing RRSIG on the answer", specs: def, qname: "example.test.", qtype: mdns.TypeMX,
			attack: on("example.test.", mdns.TypeMX, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				filter(m, func(rr mdns.RR) bool { return isSigOver(rr, mdns.TypeMX) })
			}), want: dns.Bogus, ede: edeRRSIGsMissing},
		{name: "stripped DNSKEY RRset", specs: def, qname: "example.test.", qtype: mdns.TypeMX,
			attack: on("example.test.", mdns.TypeDNSKEY, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Answer = nil
				m.Ns = tr.zones["example.test."].soa()
			}), want: dns.Bogus, ede: edeDNSKEYMissing},
		{name: "DNSKEY RRset without signatures", specs: def, qname: "example.test.", qtype: mdns.TypeMX,
			attack: on("example.test.", mdns.TypeDNSKEY, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				filter(m, func(rr mdns.RR) bool { return isSigOver(rr, mdns.TypeDNSKEY) })
			}), want: dns.Bogus, ede: edeRRSIGsMissing},
		{name: "forged unsigned answer in a signed zone", specs: def, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				a, _ := mdns.NewRR("mx.example.test. 3600 IN A 203.0.113.66")
				m.Answer = []mdns.RR{a}
			}), want: dns.Bogus, ede: edeRRSIGsMissing},
		{name: "forged unsigned NXDOMAIN in a signed zone", specs: def, qname: "example.test.", qtype: mdns.TypeMX,
			attack: on("example.test.", mdns.TypeMX, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Rcode, m.Answer = mdns.RcodeNameError, nil
				filter(m, func(rr mdns.RR) bool { _, sig := rr.(*mdns.RRSIG); return sig })
				m.Ns = []mdns.RR{tr.zones["example.test."].soa()[0]}
			}), want: dns.Bogus, ede: edeNSECMissing},
		{name: "forged unsigned NODATA for the DS of a signed zone", specs: def, qname: "example.test.", qtype: mdns.TypeMX,
			attack: on("example.test.", mdns.TypeDS, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Answer = nil
				m.Ns = []mdns.RR{tr.zones["test."].soa()[0]}
			}), want: dns.Bogus},
		{name: "parent NSEC3 for a secure delegation cannot deny its DS", specs: def, qname: "example.test.", qtype: mdns.TypeMX,
			attack: on("example.test.", mdns.TypeDS, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["test."]
				m.Answer = nil
				m.Ns = append(p.soa(), p.nsec3Match("example.test.")...)
			}), want: dns.Bogus},
		{name: "child apex NSEC cannot deny the child's DS", specs: def, qname: "sub.example.test.", qtype: mdns.TypeMX,
			attack: on("sub.example.test.", mdns.TypeDS, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				c := tr.zones["sub.example.test."]
				m.Answer = nil
				m.Ns = append(c.soa(), c.nsecAt("sub.example.test.")...)
			}), want: dns.Bogus},
		{name: "parent's NSEC at a delegation cannot deny the child's data (RFC 6840 §4.1)", specs: def, qname: "sub.example.test.", qtype: mdns.TypeA,
			attack: on("sub.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["example.test."]
				m.Ns = append(p.soa(), p.nsecAt("sub.example.test.")...)
			}), want: dns.Bogus},
		{name: "parent's NSEC at a delegation cannot prove names below it absent", specs: def, qname: "www.sub.example.test.", qtype: mdns.TypeA,
			attack: on("www.sub.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				p := tr.zones["example.test."]
				m.Rcode, m.Answer = mdns.RcodeNameError, nil
				m.Ns = append(append(p.soa(), p.nsecAt("sub.example.test.")...), p.nsecCovering("*.example.test.")...)
			}), want: dns.Bogus},

		// Denial proofs that do not prove.
		{name: "NSEC that does not cover the name", specs: def, qname: "nx.example.test.", qtype: mdns.TypeA,
			attack: on("nx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["example.test."]
				m.Ns = append(z.soa(), z.nsecAt("mx.example.test.")...)
			}), want: dns.Bogus, ede: edeNSECMissing},
		{name: "NSEC denial without the wildcard proof", specs: def, qname: "nx.example.test.", qtype: mdns.TypeA,
			attack: on("nx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["example.test."]
				m.Ns = append(z.soa(), z.nsecCovering("nx.example.test.")...)
			}), want: dns.Bogus, ede: edeNSECMissing},
		{name: "NODATA whose NSEC lists the type", specs: def, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["example.test."]
				m.Answer, m.Ns = nil, append(z.soa(), z.nsecAt("mx.example.test.")...)
			}), want: dns.Bogus, ede: edeDNSSECBogus},
		{name: "NODATA without NSEC records", specs: def, qname: "example.test.", qtype: mdns.TypeA,
			attack: on("example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Ns = tr.zones["example.test."].soa()
			}), want: dns.Bogus, ede: edeNSECMissing},
		{name: "NSEC3 that does not cover the name", specs: def, qname: "nx.nsec3.test.", qtype: mdns.TypeA,
			attack: on("nx.nsec3.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["nsec3.test."]
				m.Ns = append(append(z.soa(), z.nsec3Match("nsec3.test.")...), z.nsec3Match("mx.nsec3.test.")...)
			}), want: dns.Bogus},
		{name: "NSEC3 exact hash match is not coverage", specs: def, qname: "mx.nsec3.test.", qtype: mdns.TypeA,
			attack: on("mx.nsec3.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				// Claim mx.nsec3.test. does not exist, offering its own NSEC3 record
				// (which mdns.NSEC3.Cover counts as covering) as the next closer proof.
				z := tr.zones["nsec3.test."]
				own := z.nsec3Match("mx.nsec3.test.")
				if !own[0].(*mdns.NSEC3).Cover("mx.nsec3.test.") {
					tb.Fatal("the trap is gone: mdns.NSEC3.Cover no longer counts a match as coverage")
				}
				m.Rcode, m.Answer = mdns.RcodeNameError, nil
				m.Ns = dedupe(append(append(append(z.soa(), z.nsec3Match("nsec3.test.")...), own...), z.nsec3Cover("*.nsec3.test.")...))
			}), want: dns.Bogus},
		{name: "NSEC3 NXDOMAIN without the wildcard proof", specs: def, qname: "gone.nsec3.test.", qtype: mdns.TypeA,
			attack: on("gone.nsec3.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["nsec3.test."]
				if z.nsec3Cover("*.nsec3.test.")[0].String() == z.nsec3Cover("gone.nsec3.test.")[0].String() {
					tb.Fatal("one NSEC3 record covers both names: pick another name")
				}
				m.Ns = dedupe(append(append(z.soa(), z.nsec3Match("nsec3.test.")...), z.nsec3Cover("gone.nsec3.test.")...))
			}), want: dns.Bogus, ede: edeNSECMissing},
		{name: "unsigned high-iteration NSEC3 cannot make a denial insecure", specs: def, qname: "nx.example.test.", qtype: mdns.TypeA,
			attack: on("nx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				n3, _ := mdns.NewRR("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.test. 300 IN NSEC3 1 0 500 - 0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TON A")
				m.Ns = append(tr.zones["example.test."].soa(), n3)
			}), want: dns.Bogus},

		// Signer names, RFC 4035 §5.3.1.
		{name: "signer name that is only a string suffix (ample.test. for example.test.)", specs: withAmple, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["ample.test."]
				resignAnswer(tb, m, "mx.example.test.", mdns.TypeA, z.zsk, "ample.test.", before, after)
			}), want: dns.Bogus},
		{name: "signature by a sibling zone", specs: def, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["secure2.test."]
				resignAnswer(tb, m, "mx.example.test.", mdns.TypeA, z.zsk, "secure2.test.", before, after)
			}), want: dns.Bogus},
		{name: "child zone's key signing the parent's data", specs: def, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["sub.example.test."]
				resignAnswer(tb, m, "mx.example.test.", mdns.TypeA, z.zsk, "sub.example.test.", before, after)
			}), want: dns.Bogus},
		{name: "child zone's key signing in the parent's name", specs: def, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["sub.example.test."]
				resignAnswer(tb, m, "mx.example.test.", mdns.TypeA, z.zsk, "example.test.", before, after)
			}), want: dns.Bogus},
		{name: "signer that is no zone apex", specs: def, qname: "_25._tcp.mx.example.test.", qtype: mdns.TypeTLSA,
			attack: on("_25._tcp.mx.example.test.", mdns.TypeTLSA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["example.test."]
				resignAnswer(tb, m, "_25._tcp.mx.example.test.", mdns.TypeTLSA, z.zsk, "mx.example.test.", before, after)
			}), want: dns.Bogus},
		{name: "RRSIG labels field larger than the owner's labels", specs: def, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["example.test."]
				a, _ := mdns.NewRR("x.mx.example.test. 3600 IN A 192.0.2.25")
				sig := signWith(tb, z.zsk, z.name, []mdns.RR{a}, before, after)
				sig.Hdr.Name = "mx.example.test."
				filter(m, func(rr mdns.RR) bool { _, ok := rr.(*mdns.RRSIG); return ok })
				m.Answer = append(m.Answer, sig)
			}), want: dns.Bogus, reason: "more labels"},

		// Algorithms and digests, RFC 4035 §5.2, RFC 6840 §5.2, RFC 4509 §3.
		{name: "zone signed only with RSA/SHA-1 (algorithm 5) is insecure", qname: "sha1.test.", qtype: mdns.TypeA,
			specs: plus(def, zoneSpec{name: "sha1.test.", alg: mdns.RSASHA1, records: []string{"@ A 192.0.2.5"}}),
			want:  dns.Insecure, ede: edeUnsupportedDNSKEYAlg},
		{name: "DS only for Ed448 (algorithm 16) is insecure", qname: "ed448.test.", qtype: mdns.TypeA,
			specs: plus(def, zoneSpec{name: "ed448.test.", unsigned: true, records: []string{"@ A 192.0.2.16"},
				ds: func(_, _ *testKey) []*mdns.DS { return []*mdns.DS{fakeDS(4711, mdns.ED448, mdns.SHA256, 32)} }}),
			want: dns.Insecure, ede: edeUnsupportedDNSKEYAlg},
		{name: "DS only with an unsupported digest (GOST, 3) is insecure", qname: "gost.test.", qtype: mdns.TypeA,
			specs: plus(def, zoneSpec{name: "gost.test.", records: []string{"@ A 192.0.2.3"},
				ds: func(ksk, _ *testKey) []*mdns.DS { return []*mdns.DS{fakeDS(ksk.rr.KeyTag(), ksk.rr.Algorithm, 3, 32)} }}),
			want: dns.Insecure, ede: edeUnsupportedDSDigest},
		{name: "SHA-1 DS alone is accepted (RFC 4509 §3)", qname: "example.test.", qtype: mdns.TypeMX,
			specs: withZone(def, "example.test.", func(s *zoneSpec) {
				s.ds = func(ksk, _ *testKey) []*mdns.DS { return []*mdns.DS{dsOf(ksk, mdns.SHA1)} }
			}), want: dns.Secure},
		{name: "SHA-1 DS is ignored beside a SHA-256 DS (RFC 4509 §3)", qname: "example.test.", qtype: mdns.TypeMX,
			specs: withZone(def, "example.test.", func(s *zoneSpec) {
				s.ds = func(ksk, _ *testKey) []*mdns.DS {
					wrong := fakeDS(ksk.rr.KeyTag(), ksk.rr.Algorithm, mdns.SHA256, 32)
					return []*mdns.DS{dsOf(ksk, mdns.SHA1), wrong}
				}
			}), want: dns.Bogus, ede: edeDNSKEYMissing},
		{name: "SHA-384 DS", qname: "example.test.", qtype: mdns.TypeMX,
			specs: withZone(def, "example.test.", func(s *zoneSpec) {
				s.ds = func(ksk, _ *testKey) []*mdns.DS { return []*mdns.DS{dsOf(ksk, mdns.SHA384)} }
			}), want: dns.Secure},
		{name: "a supported DS beside an unsupported one", qname: "example.test.", qtype: mdns.TypeMX,
			specs: withZone(def, "example.test.", func(s *zoneSpec) {
				s.ds = func(ksk, _ *testKey) []*mdns.DS {
					return []*mdns.DS{fakeDS(1, mdns.ED448, mdns.SHA256, 32), dsOf(ksk, mdns.SHA256)}
				}
			}), want: dns.Secure},

		// NSEC3 iterations, RFC 9276 §3.2.
		{name: "NSEC3 iterations above the limit make a denial insecure", qname: "nx.iter.test.", qtype: mdns.TypeA,
			specs: plus(def, zoneSpec{name: "iter.test.", denial: "nsec3", iterations: 151, records: []string{"@ A 192.0.2.151"}}),
			want:  dns.Insecure, ede: edeUnsupportedNSEC3Iters},
		{name: "NSEC3 iterations at the limit are checked", qname: "nx.iter.test.", qtype: mdns.TypeA,
			specs: plus(def, zoneSpec{name: "iter.test.", denial: "nsec3", iterations: 150, records: []string{"@ A 192.0.2.150"}}),
			want:  dns.Secure},
		{name: "positive answers in a high-iteration zone stay secure", qname: "iter.test.", qtype: mdns.TypeA,
			specs: plus(def, zoneSpec{name: "iter.test.", denial: "nsec3", iterations: 500, records: []string{"@ A 192.0.2.150"}}),
			want:  dns.Secure},

		// Keys, RFC 4034 §2.1.1, RFC 5011 §3.
		{name: "data signed by a revoked key", qname: "example.test.", qtype: mdns.TypeMX,
			specs: withZone(def, "example.test.", func(s *zoneSpec) {
				s.keys = func(tb testing.TB, z *testZone) { z.zsk.rr.Flags |= mdns.REVOKE }
			}), want: dns.Bogus},
		{name: "DS pointing at a revoked key", qname: "example.test.", qtype: mdns.TypeMX,
			specs: withZone(def, "example.test.", func(s *zoneSpec) {
				s.keys = func(tb testing.TB, z *testZone) { z.ksk.rr.Flags |= mdns.REVOKE }
			}), want: dns.Bogus, ede: edeDNSKEYMissing},
		{name: "key without the zone flag cannot sign", qname: "example.test.", qtype: mdns.TypeMX,
			specs: withZone(def, "example.test.", func(s *zoneSpec) {
				s.keys = func(tb testing.TB, z *testZone) { z.zsk.rr.Flags = 0 }
			}), want: dns.Bogus},

		// Trust anchors.
		{name: "trust anchor given as a DNSKEY", specs: def, qname: "example.test.", qtype: mdns.TypeMX, want: dns.Secure,
			anchors: func(tr *testTree) []mdns.RR { return []mdns.RR{tr.zones["."].ksk.rr} }},
		{name: "root trust anchor that matches no key", specs: def, qname: "example.test.", qtype: mdns.TypeMX, want: dns.Bogus,
			anchors: func(tr *testTree) []mdns.RR { return []mdns.RR{fakeDS(tr.zones["."].ksk.rr.KeyTag(), 13, 2, 32)} }},
		{name: "non-root trust anchor: names below it", specs: def, qname: "mx.example.test.", qtype: mdns.TypeA, want: dns.Secure,
			anchors: func(tr *testTree) []mdns.RR { return []mdns.RR{dsOf(tr.zones["example.test."].ksk, mdns.SHA256)} }},
		{name: "non-root trust anchor: names outside it are indeterminate", specs: def, qname: "secure2.test.", qtype: mdns.TypeMX,
			want:    dns.Indeterminate,
			anchors: func(tr *testTree) []mdns.RR { return []mdns.RR{dsOf(tr.zones["example.test."].ksk, mdns.SHA256)} }},
		{name: "closest of two trust anchors is used", specs: def, qname: "mx.example.test.", qtype: mdns.TypeA, want: dns.Secure,
			anchors: func(tr *testTree) []mdns.RR {
				return []mdns.RR{fakeDS(1, 13, 2, 32), dsOf(tr.zones["example.test."].ksk, mdns.SHA256)}
			}},

		// Oddities of the reply itself.
		{name: "NXDOMAIN that carries the answer", specs: def, qname: "mx.example.test.", qtype: mdns.TypeA,
			attack: on("mx.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) { m.Rcode = mdns.RcodeNameError }),
			want:   dns.Bogus},
		{name: "referral-like reply from a signed zone", specs: def, qname: "www.sub.example.test.", qtype: mdns.TypeA,
			attack: on("www.sub.example.test.", mdns.TypeA, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				m.Answer = nil
				m.Ns = tr.zones["example.test."].set("sub.example.test.", mdns.TypeNS)
			}), want: dns.Bogus},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runValidateCase(t, tc)
		})
	}
}

func runValidateCase(t *testing.T, tc validateCase) {
	t.Helper()
	tr := newTree(t, tc.specs)
	r := newResolver(tr)
	if tc.attack != nil {
		r.mutate = func(q question, m *mdns.Msg) { tc.attack(t, tr, q, m) }
	}
	anchors := tr.rootAnchor()
	if tc.anchors != nil {
		anchors = tc.anchors(tr)
	}
	v, err := New(Config{Anchors: anchors, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	resp := r.ask(t, tc.qname, tc.qtype)
	got := v.Validate(context.Background(), r, resp)
	if got.Status != tc.want {
		t.Fatalf("status %s, want %s (reason %q, EDE %v)", got.Status, tc.want, got.Reason, got.EDE)
	}
	if tc.want != dns.Secure && got.Reason == "" {
		t.Errorf("no reason for status %s", got.Status)
	}
	if tc.want == dns.Secure && (got.Reason != "" || len(got.EDE) > 0) {
		t.Errorf("secure with reason %q, EDE %v", got.Reason, got.EDE)
	}
	// Every secure verdict, and every insecure one in these trees, rests on signatures
	// that expire; a bogus one is not cached (RFC 4035 §5.3.3).
	switch {
	case (got.Status == dns.Secure || got.Status == dns.Insecure) && !got.Expires.After(testNow):
		t.Errorf("%s verdict expires %v, want a time after %v", got.Status, got.Expires, testNow)
	case got.Status == dns.Bogus && !got.Expires.IsZero():
		t.Errorf("bogus verdict expires %v, want no expiration", got.Expires)
	}
	if tc.ede != 0 && !hasEDE(got.EDE, tc.ede) {
		t.Errorf("EDE %v, want code %d (reason %q)", got.EDE, tc.ede, got.Reason)
	}
	if tc.reason != "" && !strings.Contains(got.Reason, tc.reason) {
		t.Errorf("reason %q, want it to mention %q", got.Reason, tc.reason)
	}
	for name, want := range tc.links {
		if got.Links[name] != want {
			t.Errorf("link %s: %q, want %q (links %v)", name, got.Links[name], want, got.Links)
		}
	}
	if tc.links != nil && len(got.Links) != len(tc.links) {
		t.Errorf("links %v, want %v", got.Links, tc.links)
	}
	// Validation is deterministic: a second validator, same clock and replies, agrees.
	v2, _ := New(Config{Anchors: anchors, Now: func() time.Time { return testNow }})
	if again := v2.Validate(context.Background(), r, resp); again.Status != got.Status || again.Reason != got.Reason {
		t.Errorf("second run: %s %q, first: %s %q", again.Status, again.Reason, got.Status, got.Reason)
	}
	t.Logf("%s: %s", got.Status, got.Reason)
}

func hasEDE(ede []dns.EDE, code uint16) bool {
	for _, e := range ede {
		if e.Code == code {
			return true
		}
	}
	return false
}

// corrupt flips bits in the middle of a base64 signature.
func corrupt(sig string) string {
	b, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(b) == 0 {
		return sig
	}
	b[len(b)/2] ^= 0x5a
	return base64.StdEncoding.EncodeToString(b)
}
