package dnssec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
)

// exhaustionCeiling is the wall-clock time a hostile reply may cost: a normal cold
// validation takes a few milliseconds, so this is generous for slow, loaded machines
// with the race detector on, and still far from a stalled delivery worker.
const exhaustionCeiling = 3 * time.Second

// TestResourceExhaustion feeds the validator replies built to make it work: each must
// end quickly, within the verification budget, and never Secure for what the attacker
// added.
func TestResourceExhaustion(t *testing.T) {
	const n = 3000
	for _, tc := range []struct {
		name   string
		specs  []zoneSpec
		qname  string
		qtype  uint16
		reply  func(tb testing.TB, tr *testTree, m *mdns.Msg) // builds the hostile reply to the question
		want   dns.Status
		maxVer int64 // signature verifications allowed for the whole call
	}{
		{name: "thousands of junk RRSIGs with the zone's key tag over the answer", specs: defaultSpecs(),
			qname: "mx.example.test.", qtype: mdns.TypeA, want: dns.Bogus, maxVer: 5 + maxFailuresPerRRset,
			reply: func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["example.test."]
				junk := junkSigs(rrsOf(m.Answer, "mx.example.test.", mdns.TypeA), z.name, z.zsk.rr.Algorithm, z.zsk.rr.KeyTag(), n)
				for _, s := range junk {
					m.Answer = append([]mdns.RR{s}, m.Answer...)
				}
			}},
		{name: "thousands of RRSIGs naming unknown keys and signers before the real one", specs: defaultSpecs(),
			qname: "mx.example.test.", qtype: mdns.TypeA, want: dns.Secure, maxVer: 6,
			reply: func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["example.test."]
				set := rrsOf(m.Answer, "mx.example.test.", mdns.TypeA)
				var pad []mdns.RR
				for i := range n {
					tag := uint16(i)
					if tag == z.zsk.rr.KeyTag() || tag == z.ksk.rr.KeyTag() {
						continue
					}
					s := junkSigs(set, z.name, z.zsk.rr.Algorithm, tag, 1)[0]
					if i%2 == 1 {
						s.SignerName = fmt.Sprintf("s%d.example.test.", i) // no ancestor of the owner
					}
					pad = append(pad, s)
				}
				m.Answer = append(pad, m.Answer...)
			}},
		{name: "thousands of junk NSEC3 records covering everything", specs: defaultSpecs(),
			qname: "nx.nsec3.test.", qtype: mdns.TypeA, want: dns.Bogus, maxVer: int64(defaultMaxValidations),
			reply: func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["nsec3.test."]
				var pad []mdns.RR
				for i := range n {
					r := &mdns.NSEC3{Hdr: mdns.RR_Header{Name: fmt.Sprintf("%032d.nsec3.test.", i+1), Rrtype: mdns.TypeNSEC3, Class: mdns.ClassINET, Ttl: 300},
						Hash: mdns.SHA1, Iterations: z.spec.iterations, SaltLength: uint8(len(z.spec.salt) / 2), Salt: z.spec.salt,
						HashLength: 20, NextDomain: strings.Repeat("V", 32), TypeBitMap: []uint16{mdns.TypeA}}
					pad = append(pad, r, junkSigs([]mdns.RR{r}, z.name, z.zsk.rr.Algorithm, z.zsk.rr.KeyTag(), 1)[0])
				}
				m.Ns = append(pad, m.Ns...)
			}},
		{name: "thousands of junk NSEC records covering the name", specs: defaultSpecs(),
			qname: "nx.example.test.", qtype: mdns.TypeA, want: dns.Bogus, maxVer: int64(defaultMaxValidations),
			reply: func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["example.test."]
				var pad []mdns.RR
				for i := range n {
					r := &mdns.NSEC{Hdr: mdns.RR_Header{Name: fmt.Sprintf("j%05d.example.test.", i), Rrtype: mdns.TypeNSEC, Class: mdns.ClassINET, Ttl: 300},
						NextDomain: "zzzz.example.test.", TypeBitMap: []uint16{mdns.TypeA}}
					pad = append(pad, r, junkSigs([]mdns.RR{r}, z.name, z.zsk.rr.Algorithm, z.zsk.rr.KeyTag(), 1)[0])
				}
				m.Ns = append(pad, m.Ns...)
			}},
		{name: "a chain of a thousand signed CNAMEs in one reply",
			specs: plus(defaultSpecs(), chainZone(1000)), qname: "c0.chain.test.", qtype: mdns.TypeA, want: dns.Bogus,
			maxVer: 5 + maxChainLinks,
			reply: func(tb testing.TB, tr *testTree, m *mdns.Msg) {
				z := tr.zones["chain.test."]
				m.Answer = nil
				for i := range 1000 {
					m.Answer = append(m.Answer, z.set(fmt.Sprintf("c%d.chain.test.", i), mdns.TypeCNAME)...)
				}
				m.Answer = append(m.Answer, z.set("c1000.chain.test.", mdns.TypeA)...)
			}},
		{name: "a DS RRset of hundreds of records for forty colliding keys, none right",
			specs: plus(defaultSpecs(), manyDSZone(300, false)), qname: "manyds.test.", qtype: mdns.TypeA, want: dns.Bogus, maxVer: 8},
		{name: "a DS RRset of hundreds of records for forty colliding keys, the right one last",
			specs: plus(defaultSpecs(), manyDSZone(300, true)), qname: "manyds.test.", qtype: mdns.TypeA, want: dns.Secure, maxVer: 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.specs, Config{})
			resp := f.r.ask(t, tc.qname, tc.qtype)
			if tc.reply != nil {
				tc.reply(t, f.tr, resp)
			}
			start := time.Now()
			got := f.v.Validate(context.Background(), f.r, resp)
			took := time.Since(start)
			spent := f.v.verifications.Load()
			t.Logf("%s after %d verifications in %v: %s", got.Status, spent, took, got.Reason)
			if got.Status != tc.want {
				t.Errorf("status %s (%s), want %s", got.Status, got.Reason, tc.want)
			}
			if spent > tc.maxVer {
				t.Errorf("%d signature verifications, want at most %d", spent, tc.maxVer)
			}
			if took > exhaustionCeiling {
				t.Errorf("validation took %v, more than %v", took, exhaustionCeiling)
			}
		})
	}
}

// defaultMaxValidations is the default of Config.MaxValidations.
const defaultMaxValidations = 64

// chainZone is a zone whose names c0 … c<n-1> are CNAMEs, each to the next, and c<n>
// has an address.
func chainZone(n int) zoneSpec {
	recs := make([]string, 0, n+1)
	for i := range n {
		recs = append(recs, fmt.Sprintf("c%d CNAME c%d.chain.test.", i, i+1))
	}
	recs = append(recs, fmt.Sprintf("c%d A 192.0.2.77", n))
	return zoneSpec{name: "chain.test.", records: recs}
}

// manyDSZone is a zone that publishes forty keys sharing its KSK's key tag and
// algorithm, whose parent publishes n DS records with that tag and algorithm and
// digests of nothing, and, if right, the KSK's true DS last.
func manyDSZone(n int, right bool) zoneSpec {
	return zoneSpec{
		name:    "manyds.test.",
		records: []string{"@ A 192.0.2.88"},
		keys: func(tb testing.TB, z *testZone) {
			z.extra = collidingKeys(tb, z.name, mdns.ZONE|mdns.SEP, z.ksk.rr.Algorithm, z.ksk.rr.KeyTag(), 40)
		},
		ds: func(ksk, _ *testKey) []*mdns.DS {
			var out []*mdns.DS
			for i := range n {
				sum := sha256.Sum256(fmt.Appendf(nil, "ds %d", i))
				out = append(out, &mdns.DS{Hdr: mdns.RR_Header{Rrtype: mdns.TypeDS, Class: mdns.ClassINET},
					KeyTag: ksk.rr.KeyTag(), Algorithm: ksk.rr.Algorithm, DigestType: mdns.SHA256, Digest: hex.EncodeToString(sum[:])})
			}
			if right {
				out = append(out, ksk.rr.ToDS(mdns.SHA256))
			}
			return out
		},
	}
}

// TestRevokedTrustAnchor checks RFC 5011 §2.1: a trust anchor key the zone publishes
// with the REVOKE flag is not used any more, whatever it still signs; and a configured
// anchor key that is revoked, or no zone key, makes its zone bogus, not insecure.
func TestRevokedTrustAnchor(t *testing.T) {
	// The root KSK published revoked, still signing the DNSKEY RRset: once under its
	// former key tag (as if nothing had happened) and once under the new one (its
	// revocation's self-signature).
	revokedRoot := withZone(defaultSpecs(), ".", func(s *zoneSpec) {
		s.keys = func(tb testing.TB, z *testZone) { z.ksk.rr.Flags |= mdns.REVOKE }
		s.sign = func(tb testing.TB, z *testZone, set []mdns.RR) []*mdns.RRSIG {
			if set[0].Header().Rrtype != mdns.TypeDNSKEY {
				return []*mdns.RRSIG{signWith(tb, z.zsk, z.name, set, z.spec.inception, z.spec.expiration)}
			}
			former := &testKey{rr: unrevokedCopy(z.ksk.rr), priv: z.ksk.priv}
			return []*mdns.RRSIG{
				signWith(tb, former, z.name, set, z.spec.inception, z.spec.expiration),
				signWith(tb, z.ksk, z.name, set, z.spec.inception, z.spec.expiration),
			}
		}
	})
	// A rollover: the old KSK (variant 7) published revoked, the new one in use.
	rolled := withZone(defaultSpecs(), ".", func(s *zoneSpec) {
		s.keys = func(tb testing.TB, z *testZone) {
			old := newTestKey(tb, z.name, mdns.ZONE|mdns.SEP, z.ksk.rr.Algorithm, 7)
			old.rr.Flags |= mdns.REVOKE
			z.extra = append(z.extra, old.rr)
		}
	})
	oldRootKey := func(tb testing.TB) *mdns.DNSKEY {
		return newTestKey(tb, ".", mdns.ZONE|mdns.SEP, mdns.ECDSAP256SHA256, 7).rr
	}
	for _, tc := range []validateCase{
		{name: "anchor key published revoked but still signing under its former tag", specs: revokedRoot,
			qname: "example.test.", qtype: mdns.TypeMX, want: dns.Bogus, ede: edeDNSKEYMissing,
			anchors: func(tr *testTree) []mdns.RR { return []mdns.RR{unrevokedCopy(tr.zones["."].ksk.rr)} }},
		{name: "DS anchor of a key published revoked", specs: revokedRoot,
			qname: "example.test.", qtype: mdns.TypeMX, want: dns.Bogus, ede: edeDNSKEYMissing,
			anchors: func(tr *testTree) []mdns.RR { return []mdns.RR{unrevokedCopy(tr.zones["."].ksk.rr).ToDS(mdns.SHA256)} }},
		{name: "anchor key configured with the REVOKE flag is bogus, not insecure", specs: defaultSpecs(),
			qname: "example.test.", qtype: mdns.TypeMX, want: dns.Bogus, ede: edeDNSKEYMissing,
			anchors: func(tr *testTree) []mdns.RR {
				k := mdns.Copy(tr.zones["."].ksk.rr).(*mdns.DNSKEY)
				k.Flags |= mdns.REVOKE
				return []mdns.RR{k}
			}},
		{name: "anchor key configured without the zone flag is bogus, not insecure", specs: defaultSpecs(),
			qname: "example.test.", qtype: mdns.TypeMX, want: dns.Bogus, ede: edeDNSKEYMissing,
			anchors: func(tr *testTree) []mdns.RR {
				k := mdns.Copy(tr.zones["."].ksk.rr).(*mdns.DNSKEY)
				k.Flags &^= mdns.ZONE
				return []mdns.RR{k}
			}},
		{name: "after a rollover the revoked old anchor is dropped and the new one used", specs: rolled,
			qname: "example.test.", qtype: mdns.TypeMX, want: dns.Secure,
			anchors: func(tr *testTree) []mdns.RR { return []mdns.RR{oldRootKey(t), tr.zones["."].ksk.rr.ToDS(mdns.SHA256)} }},
		{name: "after a rollover the revoked old anchor alone is bogus", specs: rolled,
			qname: "example.test.", qtype: mdns.TypeMX, want: dns.Bogus, ede: edeDNSKEYMissing,
			anchors: func(tr *testTree) []mdns.RR { return []mdns.RR{oldRootKey(t)} }},
	} {
		t.Run(tc.name, func(t *testing.T) { runValidateCase(t, tc) })
	}
}

// unrevokedCopy returns k without the REVOKE flag: the key as it was before.
func unrevokedCopy(k *mdns.DNSKEY) *mdns.DNSKEY {
	c := mdns.Copy(k).(*mdns.DNSKEY)
	c.Flags &^= mdns.REVOKE
	return c
}

// TestAlgorithmChoice checks RFC 6840 §5.11 and RFC 4035 §5.2: one signature by a key
// that some DS record authenticates is enough, whatever other algorithms the DS RRset
// lists; a key that no DS record authenticates never is.
func TestAlgorithmChoice(t *testing.T) {
	// multi.test. has an ECDSA P-256 KSK (algorithm 13) and ZSK, and an RSA/SHA-256
	// KSK (algorithm 8). ds picks the DS records its parent publishes; dnskeySigners
	// the KSKs (and "zsk") that sign its DNSKEY RRset; dataAlg8, whether the rest is
	// signed by an algorithm 8 ZSK instead.
	zone := func(ds func(k13, k8 *testKey) []*mdns.DS, dnskeySigners string, dataAlg8 bool) zoneSpec {
		var k8, z8 *testKey
		return zoneSpec{
			name:    "multi.test.",
			records: []string{"@ A 192.0.2.90"},
			keys: func(tb testing.TB, z *testZone) {
				k8 = newTestKey(tb, z.name, mdns.ZONE|mdns.SEP, mdns.RSASHA256, 1)
				z.extra = append(z.extra, k8.rr)
				if dataAlg8 {
					z8 = newTestKey(tb, z.name, mdns.ZONE, mdns.RSASHA256, 2)
					z.extra = append(z.extra, z8.rr)
				}
			},
			ds: func(ksk, _ *testKey) []*mdns.DS { return ds(ksk, k8) },
			sign: func(tb testing.TB, z *testZone, set []mdns.RR) []*mdns.RRSIG {
				var keys []*testKey
				if set[0].Header().Rrtype == mdns.TypeDNSKEY {
					for _, s := range strings.Fields(dnskeySigners) {
						keys = append(keys, map[string]*testKey{"13": z.ksk, "8": k8, "zsk": z.zsk}[s])
					}
				} else if dataAlg8 {
					keys = []*testKey{z8}
				} else {
					keys = []*testKey{z.zsk}
				}
				var sigs []*mdns.RRSIG
				for _, k := range keys {
					sigs = append(sigs, signWith(tb, k, z.name, set, z.spec.inception, z.spec.expiration))
				}
				return sigs
			},
		}
	}
	both := func(k13, k8 *testKey) []*mdns.DS {
		return []*mdns.DS{k13.rr.ToDS(mdns.SHA256), k8.rr.ToDS(mdns.SHA256)}
	}
	only13 := func(k13, _ *testKey) []*mdns.DS { return []*mdns.DS{k13.rr.ToDS(mdns.SHA256)} }
	only8 := func(_, k8 *testKey) []*mdns.DS { return []*mdns.DS{k8.rr.ToDS(mdns.SHA256)} }
	thirteenAndGhost8 := func(k13, _ *testKey) []*mdns.DS {
		return []*mdns.DS{k13.rr.ToDS(mdns.SHA256), fakeDS(4242, mdns.RSASHA256, mdns.SHA256, 32)}
	}
	// stripSigs removes the DNSKEY RRset's signatures of algorithm alg, or all for 0.
	stripSigs := func(alg uint8) attack {
		return on("multi.test.", mdns.TypeDNSKEY, func(tb testing.TB, tr *testTree, m *mdns.Msg) {
			filter(m, func(rr mdns.RR) bool { s, ok := rr.(*mdns.RRSIG); return ok && (alg == 0 || s.Algorithm == alg) })
		})
	}
	cases := []struct {
		name string
		zone zoneSpec
		atk  attack
		want dns.Status
	}{
		{"DS for 13 and 8, DNSKEY signed by the algorithm 13 KSK only", zone(both, "13", false), nil, dns.Secure},
		{"DS for 13 and 8, DNSKEY signed by the algorithm 8 KSK only", zone(both, "8", false), nil, dns.Secure},
		{"DS for 13 and 8, signed by both, algorithm 13 signature stripped", zone(both, "13 8", false), stripSigs(mdns.ECDSAP256SHA256), dns.Secure},
		{"DS for 13 and 8, signed by both, every signature stripped", zone(both, "13 8", false), stripSigs(0), dns.Bogus},
		{"DS for 13 and a key of 8 that is not published", zone(thirteenAndGhost8, "13", false), nil, dns.Secure},
		{"DS for 13 only, DNSKEY signed by the algorithm 8 KSK only", zone(only13, "8", false), nil, dns.Bogus},
		{"DS for 13 and 8, DNSKEY signed by the ZSK only", zone(both, "zsk", false), nil, dns.Bogus},
		{"DS for 8 only, data signed by an algorithm 8 ZSK", zone(only8, "8", true), nil, dns.Secure},
		{"DS for 13 only, data signed by an algorithm 8 ZSK in the authenticated key set", zone(only13, "13", true), nil, dns.Secure},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runValidateCase(t, validateCase{name: tc.name, specs: plus(defaultSpecs(), tc.zone), attack: tc.atk,
				qname: "multi.test.", qtype: mdns.TypeA, want: tc.want})
		})
	}
}
