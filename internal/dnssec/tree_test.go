package dnssec

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// This file builds the world the tests validate: a tree of zones (root, test., …),
// signed in memory with NSEC or NSEC3 chains, and a resolver that answers from it the
// way a recursive resolver asked with DO+CD does: following CNAMEs, answering DS from
// the parent side of a zone cut, putting RRSIGs, NSEC/NSEC3 and SOA records where an
// authoritative server would. Hooks change replies to play the attacker.

// testNow is the frozen clock of the tests.
var testNow = time.Date(2030, time.June, 1, 12, 0, 0, 0, time.UTC)

// rsaTestKeys are 1024-bit RSA keys made with openssl for these tests only, so that
// RSA zones need no slow key generation and sign the same way every run.
var rsaTestKeys = sync.OnceValues(func() ([]*rsa.PrivateKey, error) {
	files, err := filepath.Glob("testdata/rsa/*.pem")
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no RSA test keys: %v", err)
	}
	sort.Strings(files)
	var keys []*rsa.PrivateKey
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM block", f)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		keys = append(keys, k.(*rsa.PrivateKey))
	}
	return keys, nil
})

// testKey is a DNSKEY record with its private key.
type testKey struct {
	rr   *mdns.DNSKEY
	priv crypto.Signer
}

// newTestKey derives a key for zone, flags and algorithm deterministically, so that
// fixtures (and fuzz seeds) are the same on every run.
func newTestKey(tb testing.TB, zone string, flags uint16, alg uint8, variant int) *testKey {
	tb.Helper()
	seed := sha256.Sum256(fmt.Appendf(nil, "%s|%d|%d|%d", zone, flags, alg, variant))
	k := &mdns.DNSKEY{Hdr: mdns.RR_Header{Name: zone, Rrtype: mdns.TypeDNSKEY, Class: mdns.ClassINET, Ttl: 3600},
		Flags: flags, Protocol: 3, Algorithm: alg}
	var priv crypto.Signer
	switch alg {
	case mdns.ED25519:
		p := ed25519.NewKeyFromSeed(seed[:])
		priv = p
		k.PublicKey = base64.StdEncoding.EncodeToString(p.Public().(ed25519.PublicKey))
	case mdns.ECDSAP256SHA256, mdns.ECDSAP384SHA384:
		curve, raw := elliptic.P256(), seed[:]
		if alg == mdns.ECDSAP384SHA384 {
			s := sha512.Sum384(seed[:])
			curve, raw = elliptic.P384(), s[:]
		}
		p, err := ecdsa.ParseRawPrivateKey(curve, raw)
		if err != nil {
			tb.Fatalf("ecdsa key for %s: %v", zone, err)
		}
		pub, err := p.PublicKey.Bytes()
		if err != nil {
			tb.Fatal(err)
		}
		priv = p
		k.PublicKey = base64.StdEncoding.EncodeToString(pub[1:]) // X || Y without the 0x04 prefix
	case mdns.RSASHA256, mdns.RSASHA512, mdns.RSASHA1, mdns.RSASHA1NSEC3SHA1:
		keys, err := rsaTestKeys()
		if err != nil {
			tb.Fatal(err)
		}
		p := keys[int(seed[0])%len(keys)]
		priv = p
		e := big.NewInt(int64(p.E)).Bytes()
		buf := append([]byte{byte(len(e))}, e...)
		k.PublicKey = base64.StdEncoding.EncodeToString(append(buf, p.N.Bytes()...))
	default:
		tb.Fatalf("no test keys for algorithm %d", alg)
	}
	return &testKey{rr: k, priv: priv}
}

// zoneSpec describes one zone of a test tree.
type zoneSpec struct {
	name       string
	unsigned   bool
	alg        uint8  // default ECDSAP256SHA256
	denial     string // "nsec" (default), "nsec3", "optout"
	iterations uint16
	salt       string
	records    []string // zone-file lines; relative owners are relative to the zone
	// Deliberate damage and oddities.
	noDS       bool                                                          // the parent publishes no DS
	ds         func(ksk, zsk *testKey) []*mdns.DS                            // the DS records the parent publishes instead
	inception  time.Time                                                     // signature inception, default testNow-24h
	expiration time.Time                                                     // signature expiration, default testNow+30d
	keys       func(tb testing.TB, z *testZone)                              // adjusts z.ksk, z.zsk and z.extra before signing
	sign       func(tb testing.TB, z *testZone, set []mdns.RR) []*mdns.RRSIG // replaces the signer
}

// testZone is a zone of the tree, signed.
type testZone struct {
	spec     zoneSpec
	name     string
	signed   bool
	parent   *testZone
	ksk, zsk *testKey
	extra    []*mdns.DNSKEY // published besides ksk and zsk
	data     map[string]map[uint16][]mdns.RR
	sigs     map[string]map[uint16][]*mdns.RRSIG
	cuts     map[string]bool // delegation points
	names    []string        // owners of data, canonical order
	ents     map[string]bool // empty non-terminals
	nsec     map[string]*mdns.NSEC
	nsec3    []*mdns.NSEC3 // in hash order
	nsec3Of  map[string]*mdns.NSEC3
	nsec3Set map[string]bool // names with an NSEC3 record
}

// testTree is the zones of a test, root first.
type testTree struct {
	zones map[string]*testZone
}

// defaultSpecs is the usual tree: a signed root, an NSEC3 opt-out TLD, an NSEC zone
// with mail records, an NSEC3 zone, and insecure delegations from each.
func defaultSpecs() []zoneSpec {
	return []zoneSpec{
		{name: "."},
		{name: "test.", denial: "optout"},
		{name: "example.test.", records: []string{
			"@ MX 10 mx.example.test.",
			"@ TXT \"v=spf1 -all\"",
			"mx A 192.0.2.25",
			"mx AAAA 2001:db8::25",
			"_25._tcp.mx TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			"alias CNAME mx.example.test.",
			"alias2 CNAME alias.example.test.",
			"out CNAME host.insecure.test.",
			"n3 CNAME mx.nsec3.test.",
			"*.wild A 192.0.2.80",
			"*.wild TXT \"wild\"",
			"real.wild A 192.0.2.82",
			"*.wildcname CNAME mx.example.test.",
			"a.b.c.ent A 192.0.2.1",
			"dn DNAME nsec3.test.",
		}},
		{name: "sub.example.test.", records: []string{"@ MX 10 mx.example.test.", "www A 192.0.2.8"}},
		{name: "unsigned.example.test.", unsigned: true, records: []string{"@ MX 10 mx.unsigned.example.test.", "mx A 192.0.2.9"}},
		{name: "nsec3.test.", denial: "nsec3", salt: "ABCD", iterations: 5, records: []string{
			"@ MX 10 mx.nsec3.test.",
			"mx A 192.0.2.35",
			"_25._tcp.mx TLSA 3 1 1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
			"*.wild A 192.0.2.81",
			"real.wild A 192.0.2.83",
			"x.y.ent A 192.0.2.2",
		}},
		{name: "unsigned.nsec3.test.", unsigned: true, records: []string{"@ MX 10 mx.unsigned.nsec3.test.", "mx A 192.0.2.10"}},
		{name: "insecure.test.", unsigned: true, records: []string{
			"@ MX 10 mx.insecure.test.", "mx A 192.0.2.11", "host A 192.0.2.12", "back CNAME mx.example.test.",
		}},
		{name: "secure2.test.", denial: "nsec3", records: []string{"@ MX 10 mx.secure2.test.", "mx A 192.0.2.13"}},
	}
}

// newTree builds and signs the zones. Parents must be listed before children.
func newTree(tb testing.TB, specs []zoneSpec) *testTree {
	tb.Helper()
	tr := &testTree{zones: make(map[string]*testZone)}
	var zones []*testZone
	for _, s := range specs {
		s.name = canonical(s.name)
		if s.alg == 0 {
			s.alg = mdns.ECDSAP256SHA256
		}
		if s.denial == "" {
			s.denial = "nsec"
		}
		if s.inception.IsZero() {
			s.inception = testNow.Add(-24 * time.Hour)
		}
		if s.expiration.IsZero() {
			s.expiration = testNow.Add(30 * 24 * time.Hour)
		}
		z := &testZone{spec: s, name: s.name, signed: !s.unsigned,
			data: make(map[string]map[uint16][]mdns.RR), sigs: make(map[string]map[uint16][]*mdns.RRSIG),
			cuts: make(map[string]bool), ents: make(map[string]bool)}
		for _, other := range zones {
			if isProperSubdomain(z.name, other.name) && (z.parent == nil || mdns.CountLabel(other.name) > mdns.CountLabel(z.parent.name)) {
				z.parent = other
			}
		}
		if z.name != "." && z.parent == nil {
			tb.Fatalf("zone %s has no parent in the tree", z.name)
		}
		if z.signed {
			z.ksk = newTestKey(tb, z.name, mdns.ZONE|mdns.SEP, s.alg, 0)
			z.zsk = newTestKey(tb, z.name, mdns.ZONE, s.alg, 0)
			if s.keys != nil {
				s.keys(tb, z)
			}
		}
		z.add(tb, fmt.Sprintf("%s 3600 IN SOA ns.%s hostmaster.%s 1 7200 3600 1209600 300", z.name, strings.TrimPrefix(z.name, "."), strings.TrimPrefix(z.name, ".")))
		z.add(tb, fmt.Sprintf("%s 3600 IN NS ns.%s", z.name, strings.TrimPrefix(z.name, ".")))
		for _, r := range s.records {
			z.addRelative(tb, r)
		}
		zones = append(zones, z)
		tr.zones[z.name] = z
	}
	// Delegations: NS in the parent, and DS for signed children.
	for _, z := range zones {
		if z.parent == nil {
			continue
		}
		p := z.parent
		p.add(tb, fmt.Sprintf("%s 3600 IN NS ns.%s", z.name, z.name))
		p.cuts[z.name] = true
		var ds []*mdns.DS
		switch {
		case z.spec.ds != nil:
			ds = z.spec.ds(z.ksk, z.zsk) // keys are nil for an unsigned zone
		case z.signed && !z.spec.noDS:
			ds = []*mdns.DS{z.ksk.rr.ToDS(mdns.SHA256)}
		}
		for _, d := range ds {
			d.Hdr.Name, d.Hdr.Ttl = z.name, 3600
			p.addRR(d)
		}
	}
	for _, z := range zones {
		z.finish(tb)
	}
	return tr
}

func (z *testZone) addRR(rr mdns.RR) {
	h := rr.Header()
	h.Name = canonical(h.Name)
	if z.data[h.Name] == nil {
		z.data[h.Name] = make(map[uint16][]mdns.RR)
	}
	z.data[h.Name][h.Rrtype] = append(z.data[h.Name][h.Rrtype], rr)
}

func (z *testZone) add(tb testing.TB, s string) {
	tb.Helper()
	rr, err := mdns.NewRR(s)
	if err != nil || rr == nil {
		tb.Fatalf("record %q: %v", s, err)
	}
	z.addRR(rr)
}

// addRelative adds a zone-file line whose owner is relative to the zone.
func (z *testZone) addRelative(tb testing.TB, s string) {
	tb.Helper()
	zp := mdns.NewZoneParser(strings.NewReader(s), z.name, "")
	zp.SetDefaultTTL(3600)
	rr, ok := zp.Next()
	if !ok || zp.Err() != nil {
		tb.Fatalf("record %q in %s: %v", s, z.name, zp.Err())
	}
	z.addRR(rr)
}

// finish adds DNSKEY, NSEC/NSEC3 and signatures.
func (z *testZone) finish(tb testing.TB) {
	tb.Helper()
	if z.signed {
		z.addRR(z.ksk.rr)
		z.addRR(z.zsk.rr)
		for _, k := range z.extra {
			z.addRR(k)
		}
		if z.spec.denial != "nsec" {
			flags := uint8(0)
			z.addRR(&mdns.NSEC3PARAM{Hdr: mdns.RR_Header{Name: z.name, Rrtype: mdns.TypeNSEC3PARAM, Class: mdns.ClassINET},
				Hash: mdns.SHA1, Flags: flags, Iterations: z.spec.iterations, SaltLength: uint8(len(z.spec.salt) / 2), Salt: z.spec.salt})
		}
	}
	for name := range z.data {
		z.names = append(z.names, name)
		for a := parent(name); isProperSubdomain(a, z.name); a = parent(a) {
			if z.data[a] == nil {
				z.ents[a] = true
			}
		}
	}
	sortCanonical(z.names)
	if !z.signed {
		return
	}
	switch z.spec.denial {
	case "nsec":
		z.nsec = make(map[string]*mdns.NSEC)
		for i, name := range z.names {
			next := z.names[(i+1)%len(z.names)]
			types := []uint16{mdns.TypeNSEC, mdns.TypeRRSIG}
			for t := range z.data[name] {
				types = append(types, t)
			}
			n := &mdns.NSEC{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeNSEC, Class: mdns.ClassINET, Ttl: 300},
				NextDomain: next, TypeBitMap: sortedTypes(types)}
			z.nsec[name] = n
		}
	default:
		z.buildNSEC3()
	}
	// Sign every authoritative RRset: not the NS records at a cut (RFC 4035 §2.2).
	for _, name := range z.names {
		types := make([]uint16, 0, len(z.data[name]))
		for t := range z.data[name] {
			types = append(types, t)
		}
		slices.Sort(types)
		for _, t := range types {
			if z.cuts[name] && t == mdns.TypeNS {
				continue
			}
			z.signSet(tb, z.data[name][t])
		}
		if n := z.nsec[name]; n != nil {
			z.signSet(tb, []mdns.RR{n})
		}
	}
	for _, n := range z.nsec3 {
		z.signSet(tb, []mdns.RR{n})
	}
}

func (z *testZone) buildNSEC3() {
	optOut := z.spec.denial == "optout"
	insecureCut := func(name string) bool { return z.cuts[name] && z.data[name][mdns.TypeDS] == nil }
	include := make(map[string]bool)
	for _, name := range z.names {
		if optOut && insecureCut(name) {
			continue
		}
		include[name] = true
		for a := parent(name); isProperSubdomain(a, z.name); a = parent(a) {
			include[a] = true // empty non-terminals above included names
		}
	}
	z.nsec3Of = make(map[string]*mdns.NSEC3)
	z.nsec3Set = include
	type hashed struct {
		hash string
		name string
	}
	var hs []hashed
	for name := range include {
		hs = append(hs, hashed{mdns.HashName(name, mdns.SHA1, z.spec.iterations, z.spec.salt), name})
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].hash < hs[j].hash })
	var flags uint8
	if optOut {
		flags = 1
	}
	for i, h := range hs {
		var types []uint16
		signed := false
		for t := range z.data[h.name] {
			types = append(types, t)
			if !(z.cuts[h.name] && t == mdns.TypeNS) {
				signed = true
			}
		}
		if signed {
			types = append(types, mdns.TypeRRSIG)
		}
		n := &mdns.NSEC3{Hdr: mdns.RR_Header{Name: strings.ToLower(h.hash) + "." + z.name, Rrtype: mdns.TypeNSEC3, Class: mdns.ClassINET, Ttl: 300},
			Hash: mdns.SHA1, Flags: flags, Iterations: z.spec.iterations, SaltLength: uint8(len(z.spec.salt) / 2), Salt: z.spec.salt,
			HashLength: 20, NextDomain: hs[(i+1)%len(hs)].hash, TypeBitMap: sortedTypes(types)}
		z.nsec3 = append(z.nsec3, n)
		z.nsec3Of[h.name] = n
	}
}

func sortedTypes(ts []uint16) []uint16 {
	slices.Sort(ts)
	return slices.Compact(ts)
}

func sortCanonical(names []string) {
	sort.Slice(names, func(i, j int) bool {
		c, _ := canonicalCompare(names[i], names[j])
		return c < 0
	})
}

// signSet signs one RRset with the zone's keys: DNSKEY with the KSK, the rest with
// the ZSK, unless the spec replaces the signer.
func (z *testZone) signSet(tb testing.TB, set []mdns.RR) {
	tb.Helper()
	var sigs []*mdns.RRSIG
	if z.spec.sign != nil {
		sigs = z.spec.sign(tb, z, set)
	} else {
		k := z.zsk
		if set[0].Header().Rrtype == mdns.TypeDNSKEY {
			k = z.ksk
		}
		sigs = []*mdns.RRSIG{signWith(tb, k, z.name, set, z.spec.inception, z.spec.expiration)}
	}
	h := set[0].Header()
	if z.sigs[h.Name] == nil {
		z.sigs[h.Name] = make(map[uint16][]*mdns.RRSIG)
	}
	z.sigs[h.Name][h.Rrtype] = append(z.sigs[h.Name][h.Rrtype], sigs...)
}

// signWith signs set with k as signer, valid from inception to expiration.
func signWith(tb testing.TB, k *testKey, signer string, set []mdns.RR, inception, expiration time.Time) *mdns.RRSIG {
	tb.Helper()
	sig := &mdns.RRSIG{Hdr: mdns.RR_Header{Ttl: set[0].Header().Ttl}, Algorithm: k.rr.Algorithm, KeyTag: k.rr.KeyTag(),
		SignerName: signer, Inception: uint32(inception.Unix()), Expiration: uint32(expiration.Unix())}
	if err := sig.Sign(k.priv, set); err != nil {
		tb.Fatalf("signing %s %s: %v", set[0].Header().Name, mdns.TypeToString[set[0].Header().Rrtype], err)
	}
	return sig
}

// zoneFor returns the zone that answers name and qtype: the deepest zone containing
// name, except that DS records at a zone apex come from the parent.
func (tr *testTree) zoneFor(name string, qtype uint16) *testZone {
	var best *testZone
	for _, z := range tr.zones {
		if isSubdomain(name, z.name) && (best == nil || mdns.CountLabel(z.name) > mdns.CountLabel(best.name)) {
			best = z
		}
	}
	if best != nil && qtype == mdns.TypeDS && best.name == name && best.parent != nil {
		best = best.parent
	}
	return best
}

// answer is what one zone says about one name.
type answer struct {
	answer, auth []mdns.RR
	rcode        int
	cname        string
}

// answer builds the reply a recursive resolver would give for name and qtype.
func (tr *testTree) answer(name string, qtype uint16) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	m.Response, m.RecursionAvailable = true, true
	m.SetEdns0(1232, true)
	cur := canonical(name)
	seen := map[string]bool{}
	var proofs []mdns.RR // of wildcard CNAMEs on the way, kept as resolvers do
	for range 10 {
		z := tr.zoneFor(cur, qtype)
		if z == nil {
			m.Rcode = mdns.RcodeRefused
			return m
		}
		a := z.lookup(cur, qtype)
		m.Answer = append(m.Answer, a.answer...)
		m.Ns, m.Rcode = append(append([]mdns.RR(nil), proofs...), a.auth...), a.rcode
		if a.cname != "" {
			proofs = append(proofs, a.auth...)
		}
		if a.cname == "" || seen[a.cname] {
			break
		}
		seen[cur] = true
		cur = a.cname
	}
	return m
}

// set returns the records of name and t with their signatures.
func (z *testZone) set(name string, t uint16) []mdns.RR {
	var out []mdns.RR
	for _, rr := range z.data[name][t] {
		out = append(out, mdns.Copy(rr))
	}
	for _, s := range z.sigs[name][t] {
		out = append(out, mdns.Copy(s))
	}
	return out
}

func (z *testZone) soa() []mdns.RR { return z.set(z.name, mdns.TypeSOA) }

// exists reports whether name exists in the zone (data or empty non-terminal).
func (z *testZone) exists(name string) bool { return z.data[name] != nil || z.ents[name] }

// closestEncloser returns the longest existing ancestor of name.
func (z *testZone) closestEncloser(name string) string {
	for a := parent(name); ; a = parent(a) {
		if z.exists(a) || a == z.name {
			return a
		}
	}
}

func (z *testZone) lookup(name string, qtype uint16) answer {
	var a answer
	if rs := z.data[name]; rs != nil {
		switch {
		case rs[qtype] != nil:
			a.answer = z.set(name, qtype)
		case rs[mdns.TypeCNAME] != nil:
			a.answer = z.set(name, mdns.TypeCNAME)
			a.cname = canonical(rs[mdns.TypeCNAME][0].(*mdns.CNAME).Target)
		default:
			a.auth = append(z.soa(), z.proveNoData(name)...)
		}
		return a
	}
	if z.ents[name] {
		a.auth = append(z.soa(), z.proveNoData(name)...)
		return a
	}
	// DNAME at an ancestor: synthesise the CNAME (RFC 6672 §3.1).
	for anc := parent(name); isSubdomain(anc, z.name); anc = parent(anc) {
		if d := z.data[anc][mdns.TypeDNAME]; d != nil {
			target := strings.TrimSuffix(name, anc) + canonical(d[0].(*mdns.DNAME).Target)
			a.answer = append(z.set(anc, mdns.TypeDNAME), &mdns.CNAME{
				Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeCNAME, Class: mdns.ClassINET, Ttl: 3600}, Target: target})
			a.cname = target
			return a
		}
		if anc == "." {
			break
		}
	}
	ce := z.closestEncloser(name)
	wild := "*." + ce
	if ws := z.data[wild]; ws != nil {
		t := qtype
		if ws[t] == nil && ws[mdns.TypeCNAME] != nil {
			t = mdns.TypeCNAME
		}
		if ws[t] == nil {
			a.auth = append(z.soa(), z.proveWildcardNoData(name, ce)...)
			return a
		}
		for _, rr := range z.set(wild, t) {
			rr.Header().Name = name
			a.answer = append(a.answer, rr)
		}
		if t == mdns.TypeCNAME {
			a.cname = canonical(ws[t][0].(*mdns.CNAME).Target)
		}
		a.auth = z.proveWildcardAnswer(name, ce)
		return a
	}
	a.rcode = mdns.RcodeNameError
	a.auth = append(z.soa(), z.proveNXDomain(name, ce)...)
	return a
}

// The proofs. Unsigned zones prove nothing.

func (z *testZone) nsecAt(name string) []mdns.RR {
	if n := z.nsec[name]; n != nil {
		return z.withSigs(n)
	}
	return nil
}

func (z *testZone) withSigs(rr mdns.RR) []mdns.RR {
	h := rr.Header()
	out := []mdns.RR{mdns.Copy(rr)}
	for _, s := range z.sigs[h.Name][h.Rrtype] {
		out = append(out, mdns.Copy(s))
	}
	return out
}

// nsecCovering returns the NSEC whose span contains name.
func (z *testZone) nsecCovering(name string) []mdns.RR {
	var best string
	for _, n := range z.names {
		if c, _ := canonicalCompare(n, name); c < 0 {
			best = n
		}
	}
	return z.nsecAt(best)
}

func (z *testZone) nsec3Match(name string) []mdns.RR {
	if n := z.nsec3Of[name]; n != nil {
		return z.withSigs(n)
	}
	return nil
}

func (z *testZone) nsec3Cover(name string) []mdns.RR {
	h := mdns.HashName(name, mdns.SHA1, z.spec.iterations, z.spec.salt)
	for _, n := range z.nsec3 {
		owner := strings.ToUpper(strings.SplitN(n.Hdr.Name, ".", 2)[0])
		if nsec3Covers(owner, n.NextDomain, h) {
			return z.withSigs(n)
		}
	}
	return nil
}

// nsec3Encloser returns the closest ancestor of name with an NSEC3 record, and the
// next closer name.
func (z *testZone) nsec3Encloser(name string) (ce, nc string) {
	nc = name
	for a := parent(name); ; a = parent(a) {
		if z.nsec3Set[a] {
			return a, nc
		}
		nc = a
	}
}

func (z *testZone) proveNoData(name string) []mdns.RR {
	switch {
	case !z.signed:
		return nil
	case z.nsec != nil:
		if z.ents[name] {
			return z.nsecCovering(name)
		}
		return z.nsecAt(name)
	case z.nsec3Set[name]:
		return z.nsec3Match(name)
	}
	ce, nc := z.nsec3Encloser(name) // opt-out: name has no record of its own
	return dedupe(append(z.nsec3Match(ce), z.nsec3Cover(nc)...))
}

func (z *testZone) proveNXDomain(name, ce string) []mdns.RR {
	switch {
	case !z.signed:
		return nil
	case z.nsec != nil:
		return dedupe(append(z.nsecCovering(name), z.nsecCovering("*."+ce)...))
	}
	ce, nc := z.nsec3Encloser(name)
	return dedupe(append(append(z.nsec3Match(ce), z.nsec3Cover(nc)...), z.nsec3Cover("*."+ce)...))
}

func (z *testZone) proveWildcardAnswer(name, ce string) []mdns.RR {
	switch {
	case !z.signed:
		return nil
	case z.nsec != nil:
		return z.nsecCovering(name)
	}
	return z.nsec3Cover(ancestor(name, mdns.CountLabel(ce)+1))
}

func (z *testZone) proveWildcardNoData(name, ce string) []mdns.RR {
	switch {
	case !z.signed:
		return nil
	case z.nsec != nil:
		return dedupe(append(z.nsecCovering(name), z.nsecAt("*."+ce)...))
	}
	nc := ancestor(name, mdns.CountLabel(ce)+1)
	return dedupe(append(append(z.nsec3Match(ce), z.nsec3Cover(nc)...), z.nsec3Match("*."+ce)...))
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

// question is one query the resolver received.
type question struct {
	name  string
	qtype uint16
}

// testResolver answers from a tree; it implements dns.Exchanger.
type testResolver struct {
	tree *testTree
	// mutate, if set, changes each reply before it is returned: the attacker.
	mutate func(q question, m *mdns.Msg)
	// fail, if set, makes queries fail.
	fail func(q question) error

	mu      sync.Mutex
	queries []question
}

func newResolver(tree *testTree) *testResolver { return &testResolver{tree: tree} }

func (r *testResolver) Exchange(ctx context.Context, name string, qtype uint16) (*mdns.Msg, error) {
	q := question{name: canonical(name), qtype: qtype}
	r.mu.Lock()
	r.queries = append(r.queries, q)
	r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.fail != nil {
		if err := r.fail(q); err != nil {
			return nil, err
		}
	}
	m := r.tree.answer(name, qtype)
	if r.mutate != nil {
		r.mutate(q, m)
	}
	return m, nil
}

// count returns how many queries of type qtype were received (0: all types).
func (r *testResolver) count(qtype uint16) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, q := range r.queries {
		if qtype == 0 || q.qtype == qtype {
			n++
		}
	}
	return n
}

func (r *testResolver) reset() {
	r.mu.Lock()
	r.queries = nil
	r.mu.Unlock()
}

// ask fetches the reply to a question, as the client would before validating it.
func (r *testResolver) ask(tb testing.TB, name string, qtype uint16) *mdns.Msg {
	tb.Helper()
	m, err := r.Exchange(context.Background(), name, qtype)
	if err != nil {
		tb.Fatalf("asking %s %s: %v", name, mdns.TypeToString[qtype], err)
	}
	return m
}

// rootAnchor returns the DS record of the tree's root KSK.
func (tr *testTree) rootAnchor() []mdns.RR {
	return []mdns.RR{tr.zones["."].ksk.rr.ToDS(mdns.SHA256)}
}

// Reply surgery for the attacks.

// filter removes the records for which drop reports true, from every section.
func filter(m *mdns.Msg, drop func(rr mdns.RR) bool) {
	keep := func(rrs []mdns.RR) []mdns.RR {
		var out []mdns.RR
		for _, rr := range rrs {
			if !drop(rr) {
				out = append(out, rr)
			}
		}
		return out
	}
	m.Answer, m.Ns, m.Extra = keep(m.Answer), keep(m.Ns), keep(m.Extra)
}

// isSigOver reports whether rr is an RRSIG covering type t (any owner).
func isSigOver(rr mdns.RR, t uint16) bool {
	s, ok := rr.(*mdns.RRSIG)
	return ok && s.TypeCovered == t
}

var errTestTimeout = errors.New("i/o timeout")
