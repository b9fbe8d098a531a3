package dnslab

import (
	mdns "github.com/miekg/dns"
)

// A Case is one question to put to the lab, with the verdict the lab is built to
// produce. A differential test asks the same question of Unbound and of mxward's
// validator and requires the same Status.
type Case struct {
	Name string
	Type uint16
	// Want is the status the lab intends Unbound to report.
	Want Status
	// EDE, when not zero, is the Extended DNS Error code Unbound is expected to
	// give for a bogus answer: it shows the damage failed validation the way it
	// was meant to, not by accident.
	EDE  uint16
	Note string
}

// tlsaDigest is the association data of the lab's TLSA records: 32 arbitrary
// bytes, the length of a SHA-256 digest. The lab proves DNSSEC status, not
// certificate matching.
const tlsaDigest = "8f6e2c1a0b9d4e3f7a5c6b8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b"

// mailDomain returns the records of a complete DANE-ready mail domain: an MX, the
// MX host's A and AAAA records, its TLSA record for port 25 (RFC 7672 §3) and a
// TXT record at the apex.
func mailDomain() []string {
	return []string{
		"@ MX 10 mx",
		`@ TXT "v=spf1 mx -all"`,
		"mx A 192.0.2.25",
		"mx AAAA 2001:db8::25",
		"_25._tcp.mx TLSA 3 1 1 " + tlsaDigest,
		"www A 192.0.2.80",
	}
}

// DefaultTree returns the lab's standard tree and the questions to ask it.
//
// Both signers and all five algorithms are spread over the zones, with KSK/ZSK
// pairs and single CSKs, NSEC and NSEC3 (with and without salt and opt-out):
//
//	.                 ldns  8  NSEC        KSK+ZSK   the trust anchor
//	test.             bind 13  NSEC3       KSK+ZSK
//	example.          ldns 15  NSEC3 opt-out flags  CSK
//	secure.test.      ldns  8  NSEC        KSK+ZSK   mail domain, CNAMEs, wildcard
//	plain.secure.test.         unsigned              insecure below NSEC
//	unsigned.test.             unsigned              insecure below NSEC3
//	ed.test.          bind 15  NSEC        CSK       mail domain
//	nsec3.example.    bind 14  NSEC3 salt  KSK+ZSK   mail domain, CNAMEs, wildcard
//	island.example.            unsigned              insecure below opt-out flags (ldns)
//	rsa.example.      bind 10  NSEC3 opt-out  KSK+ZSK
//	island.rsa.example.        unsigned              insecure below opt-out (bind)
//	iter200.example.  ldns 13  NSEC3, 200 iterations
//	expired.test.     bind 13  signatures expired two days ago
//	future.test.      ldns 14  signatures valid from two days ahead
//	wrongds.test.     bind  8  parent's DS matches no key
//	nokey.test.       ldns 13  CSK, served without its DNSKEY RRset
//	corrupt.example.  ldns 10  one RRSIG with a flipped bit
//	dropsig.example.  bind 14  one RRset without its RRSIGs
//	forged.example.   ldns 15  CSK, an unsigned record added after signing
//	mitm.test.        bind 13  NSEC,  behind a forging proxy
//	mitm3.example.    ldns 13  NSEC3, behind a forging proxy
//
// The cases cover positive answers, CNAME chains inside a signed zone and out of
// it into an unsigned one, NXDOMAIN and NODATA (also at an empty non-terminal)
// under NSEC and NSEC3, wildcard answers and wildcard NODATA, insecure delegations
// of all three kinds, the opt-out rule of RFC 5155 §9.2, NSEC3 iterations above
// Unbound's limit, and one bogus answer for each kind of damage. Every zone that
// is damaged in one RRset also has a sound RRset asked about, which proves the
// damage is as narrow as intended.
func DefaultTree() ([]Zone, []Case) {
	wildcard := []string{`*.wild TXT "wildcard"`}
	zones := []Zone{
		{Name: ".", Signer: LDNS, Algorithm: mdns.RSASHA256, Denial: NSEC},
		{Name: "test.", Signer: BIND, Algorithm: mdns.ECDSAP256SHA256, Denial: NSEC3},
		{Name: "example.", Signer: LDNS, Algorithm: mdns.ED25519, CSK: true, Denial: NSEC3OptOut},

		{Name: "secure.test.", Signer: LDNS, Algorithm: mdns.RSASHA256, Denial: NSEC,
			Records: concat(mailDomain(), wildcard, []string{
				"chain CNAME chain2",
				"chain2 CNAME mx",
				"out CNAME www.unsigned.test.",
			})},
		{Name: "plain.secure.test.", Unsigned: true, Records: []string{"www A 192.0.2.81"}},
		{Name: "unsigned.test.", Unsigned: true, Records: []string{"www A 192.0.2.82"}},
		{Name: "ed.test.", Signer: BIND, Algorithm: mdns.ED25519, CSK: true, Denial: NSEC,
			Records: mailDomain()},
		{Name: "nsec3.example.", Signer: BIND, Algorithm: mdns.ECDSAP384SHA384, Denial: NSEC3, Salt: "c0ffee00",
			Records: concat(mailDomain(), wildcard, []string{
				"chain CNAME mx",
				"out CNAME www.island.example.",
			})},
		{Name: "island.example.", Unsigned: true, Records: []string{"www A 192.0.2.83"}},
		{Name: "rsa.example.", Signer: BIND, Algorithm: mdns.RSASHA512, Denial: NSEC3OptOut, Salt: "abcd",
			Records: []string{"www A 192.0.2.84"}},
		{Name: "island.rsa.example.", Unsigned: true, Records: []string{"www A 192.0.2.85"}},
		{Name: "iter200.example.", Signer: LDNS, Algorithm: mdns.ECDSAP256SHA256, Denial: NSEC3, Iterations: 200,
			Records: []string{"www A 192.0.2.86"}},

		{Name: "expired.test.", Signer: BIND, Algorithm: mdns.ECDSAP256SHA256,
			Records: []string{"www A 192.0.2.90"}, Break: Break{ExpiredSigs: true}},
		{Name: "future.test.", Signer: LDNS, Algorithm: mdns.ECDSAP384SHA384,
			Records: []string{"www A 192.0.2.91"}, Break: Break{FutureSigs: true}},
		{Name: "wrongds.test.", Signer: BIND, Algorithm: mdns.RSASHA256,
			Records: []string{"www A 192.0.2.92"}, Break: Break{WrongDS: true}},
		{Name: "nokey.test.", Signer: LDNS, Algorithm: mdns.ECDSAP256SHA256, CSK: true,
			Records: []string{"www A 192.0.2.93"}, Break: Break{StripDNSKEY: true}},
		{Name: "corrupt.example.", Signer: LDNS, Algorithm: mdns.RSASHA512,
			Records: []string{"www A 192.0.2.94", "mail A 192.0.2.95"},
			Break:   Break{CorruptSig: "www.corrupt.example. A"}},
		{Name: "dropsig.example.", Signer: BIND, Algorithm: mdns.ECDSAP384SHA384,
			Records: []string{"@ MX 10 mail", "mail A 192.0.2.96"},
			Break:   Break{DropSig: "dropsig.example. MX"}},
		{Name: "forged.example.", Signer: LDNS, Algorithm: mdns.ED25519, CSK: true,
			Records: []string{"www A 192.0.2.97"},
			Break:   Break{AddUnsigned: []string{"evil A 192.0.2.66", `www TXT "forged"`}}},

		{Name: "mitm.test.", Signer: BIND, Algorithm: mdns.ECDSAP256SHA256, Denial: NSEC,
			Records: concat(mailDomain(), wildcard), Rewrite: mitmRewrite("mitm.test.")},
		{Name: "mitm3.example.", Signer: LDNS, Algorithm: mdns.ECDSAP256SHA256, Denial: NSEC3,
			Records: concat(mailDomain(), wildcard), Rewrite: mitmRewrite("mitm3.example.")},
	}

	var cases []Case
	add := func(name string, qtype uint16, want Status, ede uint16, note string) {
		cases = append(cases, Case{Name: name, Type: qtype, Want: want, EDE: ede, Note: note})
	}
	// The root and the TLDs.
	add(".", mdns.TypeSOA, Secure, 0, "root apex, signed by the trust anchor's key")
	add(".", mdns.TypeDNSKEY, Secure, 0, "root DNSKEY RRset matches the trust anchor")
	add("nonexistent.", mdns.TypeA, Secure, 0, "NXDOMAIN at the root, NSEC (ldns)")
	add("test.", mdns.TypeDS, Secure, 0, "DS of a TLD at the root")
	add("nx.test.", mdns.TypeA, Secure, 0, "NXDOMAIN, NSEC3 without salt (bind)")
	add("test.", mdns.TypeTXT, Secure, 0, "NODATA at an NSEC3 apex (bind)")

	// Mail domains.
	for _, d := range []string{"secure.test.", "ed.test.", "nsec3.example."} {
		add(d, mdns.TypeMX, Secure, 0, "MX of a signed mail domain")
		add("mx."+d, mdns.TypeA, Secure, 0, "address of the MX host")
		add("mx."+d, mdns.TypeAAAA, Secure, 0, "IPv6 address of the MX host")
		add("_25._tcp.mx."+d, mdns.TypeTLSA, Secure, 0, "TLSA of the MX host (RFC 7672 §3)")
		add(d, mdns.TypeTXT, Secure, 0, "TXT at the apex")
		add("nx."+d, mdns.TypeA, Secure, 0, "NXDOMAIN")
		add("mx."+d, mdns.TypeTXT, Secure, 0, "NODATA")
		add("_tcp.mx."+d, mdns.TypeA, Secure, 0, "NODATA at an empty non-terminal")
	}
	add("chain.secure.test.", mdns.TypeA, Secure, 0, "CNAME → CNAME → A, all in one NSEC zone")
	add("chain.nsec3.example.", mdns.TypeA, Secure, 0, "CNAME → A in an NSEC3 zone")
	add("out.secure.test.", mdns.TypeA, Insecure, 0, "secure CNAME into an unsigned zone below NSEC3: the answer is as weak as its last link")
	add("out.nsec3.example.", mdns.TypeA, Insecure, 0, "secure CNAME into an unsigned zone below NSEC3 opt-out")
	add("host.wild.secure.test.", mdns.TypeTXT, Secure, 0, "wildcard answer with its NSEC proof (RFC 4035 §5.3.4)")
	add("host.wild.secure.test.", mdns.TypeA, Secure, 0, "wildcard NODATA, NSEC")
	add("host.wild.nsec3.example.", mdns.TypeTXT, Secure, 0, "wildcard answer with its NSEC3 proof (RFC 5155 §8.8)")
	add("host.wild.nsec3.example.", mdns.TypeA, Secure, 0, "wildcard NODATA, NSEC3 (RFC 5155 §8.7)")

	// Insecure delegations.
	add("www.plain.secure.test.", mdns.TypeA, Insecure, 0, "unsigned zone, no DS proven by NSEC")
	add("plain.secure.test.", mdns.TypeDS, Secure, 0, "the NSEC proof that plain.secure.test. has no DS")
	add("www.unsigned.test.", mdns.TypeA, Insecure, 0, "unsigned zone, no DS proven by NSEC3 (bind)")
	add("unsigned.test.", mdns.TypeDS, Secure, 0, "the NSEC3 proof that unsigned.test. has no DS")
	add("www.island.example.", mdns.TypeA, Insecure, 0, "unsigned zone in an ldns opt-out chain, which still has its NSEC3")
	add("www.island.rsa.example.", mdns.TypeA, Insecure, 0, "unsigned zone left out of a bind opt-out chain")
	// ldns-signzone -p sets the opt-out flag but keeps unsigned delegations in the
	// chain; dnssec-signzone -A leaves them out. RFC 5155 §9.2 forbids the AD bit
	// on an answer whose closest encloser proof has an opt-out NSEC3 covering the
	// next closer name.
	add("island.example.", mdns.TypeDS, Secure, 0, "no DS proven by an NSEC3 that matches the delegation, opt-out flag or not (ldns)")
	add("island.rsa.example.", mdns.TypeDS, Insecure, 0, "no DS proven only by an opt-out NSEC3 covering the delegation (bind; RFC 5155 §9.2)")
	add("www.rsa.example.", mdns.TypeA, Secure, 0, "positive answer in an opt-out zone, algorithm 10")
	add("www.rsa.example.", mdns.TypeTXT, Secure, 0, "NODATA at a signed name in an opt-out zone: its NSEC3 matches")
	add("nx.rsa.example.", mdns.TypeA, Insecure, 0, "NXDOMAIN whose next closer name is covered by an opt-out NSEC3 (bind; RFC 5155 §9.2)")
	add("nx.example.", mdns.TypeA, Insecure, 0, "NXDOMAIN whose next closer name is covered by an opt-out NSEC3 (ldns; RFC 5155 §9.2)")

	// NSEC3 iterations above Unbound's limit.
	add("www.iter200.example.", mdns.TypeA, Secure, 0, "positive answers need no NSEC3, whatever its iterations")
	add("nx.iter200.example.", mdns.TypeA, Insecure, 0, "NSEC3 with 200 iterations is above the limit of 150: insecure (RFC 9276 §3.2)")

	// Damage.
	add("www.expired.test.", mdns.TypeA, Bogus, mdns.ExtendedErrorCodeSignatureExpired, "signatures expired two days ago")
	add("www.future.test.", mdns.TypeA, Bogus, mdns.ExtendedErrorCodeSignatureNotYetValid, "signatures valid only from two days ahead")
	add("www.wrongds.test.", mdns.TypeA, Bogus, mdns.ExtendedErrorCodeDNSKEYMissing, "the parent's DS matches no DNSKEY")
	add("www.nokey.test.", mdns.TypeA, Bogus, mdns.ExtendedErrorCodeDNSKEYMissing, "DS at the parent, no DNSKEY in the zone")
	add("www.corrupt.example.", mdns.TypeA, Bogus, mdns.ExtendedErrorCodeDNSBogus, "RRSIG with a flipped bit")
	add("mail.corrupt.example.", mdns.TypeA, Secure, 0, "sound RRset next to the corrupted one")
	add("dropsig.example.", mdns.TypeMX, Bogus, mdns.ExtendedErrorCodeRRSIGsMissing, "RRset served without its RRSIGs")
	add("mail.dropsig.example.", mdns.TypeA, Secure, 0, "sound RRset next to the unsigned one")
	add("evil.forged.example.", mdns.TypeA, Bogus, 0, "unsigned record at a new name added to a signed zone (Unbound: EDE 9, from probing for a zone cut there)")
	add("www.forged.example.", mdns.TypeTXT, Bogus, mdns.ExtendedErrorCodeRRSIGsMissing, "unsigned RRset added at a signed name")
	add("www.forged.example.", mdns.TypeA, Secure, 0, "sound RRset next to the forged one")

	// The man in the middle.
	for _, d := range []string{"mitm.test.", "mitm3.example."} {
		add("_25._tcp.mx."+d, mdns.TypeTLSA, Bogus, mdns.ExtendedErrorCodeDNSBogus, "TLSA denied by an NXDOMAIN proof made for another name")
		add("mx."+d, mdns.TypeAAAA, Bogus, mdns.ExtendedErrorCodeDNSBogus, "AAAA denied by the NODATA proof of another name")
		add("host.wild."+d, mdns.TypeTXT, Bogus, mdns.ExtendedErrorCodeDNSBogus, "wildcard answer stripped of its proof")
		add("mx."+d, mdns.TypeA, Secure, 0, "answer the proxy leaves alone")
		add("nx."+d, mdns.TypeA, Secure, 0, "NXDOMAIN the proxy leaves alone")
	}
	return zones, cases
}

// mitmRewrite is the forging proxy of the mitm zones: it denies the TLSA record
// with the NXDOMAIN proof of nx.<zone>, denies mx.<zone> AAAA with the NODATA proof
// of www.<zone> (which has only an A record), and strips wildcard proofs.
func mitmRewrite(zone string) Rewrite {
	return chain(
		SpliceDenial("_25._tcp.mx."+zone, mdns.TypeTLSA, "nx."+zone, mdns.TypeA),
		SpliceDenial("mx."+zone, mdns.TypeAAAA, "www."+zone, mdns.TypeAAAA),
		DropWildcardProof(),
	)
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
