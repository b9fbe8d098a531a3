package dnssec

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
)

// collidingKeys returns n DNSKEY records of zone that are not real keys but share the
// key tag tag: the last two octets of each public key are chosen so that the checksum
// of RFC 4034 Appendix B comes out right.
func collidingKeys(tb testing.TB, zone string, flags uint16, alg uint8, tag uint16, n int) []*mdns.DNSKEY {
	tb.Helper()
	var out []*mdns.DNSKEY
	for i := range n {
		pub := make([]byte, 0, 64)
		for j := 0; len(pub) < 64; j++ {
			s := sha256.Sum256(binary.BigEndian.AppendUint32([]byte(zone), uint32(i<<8|j)))
			pub = append(pub, s[:]...)
		}
		pub = pub[:64]
		// The checksum adds the RDATA as 16-bit words; the last word is free.
		rdata := append([]byte{byte(flags >> 8), byte(flags), 3, alg}, pub[:62]...)
		var sum uint32
		for k, b := range rdata {
			if k&1 == 0 {
				sum += uint32(b) << 8
			} else {
				sum += uint32(b)
			}
		}
		found := false
		for w := uint32(0); w < 1<<16; w++ {
			ac := sum + w
			ac += ac >> 16 & 0xFFFF
			if uint16(ac) == tag {
				pub[62], pub[63] = byte(w>>8), byte(w)
				found = true
				break
			}
		}
		if !found {
			tb.Fatalf("no word gives key tag %d", tag)
		}
		k := &mdns.DNSKEY{Hdr: mdns.RR_Header{Name: zone, Rrtype: mdns.TypeDNSKEY, Class: mdns.ClassINET, Ttl: 3600},
			Flags: flags, Protocol: 3, Algorithm: alg, PublicKey: base64.StdEncoding.EncodeToString(pub)}
		if k.KeyTag() != tag {
			tb.Fatalf("colliding key has tag %d, want %d", k.KeyTag(), tag)
		}
		out = append(out, k)
	}
	return out
}

// junkSigs returns n signatures over set claiming key tag tag, with random contents.
func junkSigs(set []mdns.RR, signer string, alg uint8, tag uint16, n int) []*mdns.RRSIG {
	var out []*mdns.RRSIG
	h := set[0].Header()
	for i := range n {
		s := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		sig := append(s[:], s[:]...)
		out = append(out, &mdns.RRSIG{Hdr: mdns.RR_Header{Name: h.Name, Rrtype: mdns.TypeRRSIG, Class: mdns.ClassINET, Ttl: h.Ttl},
			TypeCovered: h.Rrtype, Algorithm: alg, Labels: uint8(mdns.CountLabel(h.Name)), OrigTtl: h.Ttl,
			Expiration: uint32(testNow.Add(time.Hour).Unix()), Inception: uint32(testNow.Add(-time.Hour).Unix()),
			KeyTag: tag, SignerName: signer, Signature: base64.StdEncoding.EncodeToString(sig)})
	}
	return out
}

// keyTrapZone is the zone keytrap.test.: 40 published keys share the ZSK's tag (and
// 40 the KSK's); the A RRset of victim carries 40 junk signatures with the ZSK's tag
// before its real one, and with dnskeyTrap the DNSKEY RRset 40 junk signatures before
// the KSK's.
func keyTrapZone(dnskeyTrap bool) zoneSpec {
	return zoneSpec{
		name:    "keytrap.test.",
		records: []string{"victim A 192.0.2.66", "@ MX 10 victim.keytrap.test."},
		keys: func(tb testing.TB, z *testZone) {
			z.extra = append(collidingKeys(tb, z.name, mdns.ZONE, z.zsk.rr.Algorithm, z.zsk.rr.KeyTag(), 40),
				collidingKeys(tb, z.name, mdns.ZONE|mdns.SEP, z.ksk.rr.Algorithm, z.ksk.rr.KeyTag(), 40)...)
		},
		sign: func(tb testing.TB, z *testZone, set []mdns.RR) []*mdns.RRSIG {
			k := z.zsk
			h := set[0].Header()
			if h.Rrtype == mdns.TypeDNSKEY {
				k = z.ksk
			}
			real := signWith(tb, k, z.name, set, z.spec.inception, z.spec.expiration)
			if h.Rrtype == mdns.TypeDNSKEY && dnskeyTrap || h.Name == "victim.keytrap.test." {
				return append(junkSigs(set, z.name, k.rr.Algorithm, k.rr.KeyTag(), 40), real)
			}
			return []*mdns.RRSIG{real}
		},
	}
}

func TestKeyTrapBounded(t *testing.T) {
	for _, tc := range []struct {
		name       string
		dnskeyTrap bool
		mx         dns.Status // of keytrap.test. MX, signed once
	}{
		{"junk signatures on the answer", false, dns.Secure},
		{"junk signatures on the answer and the DNSKEY RRset", true, dns.Bogus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, plus(defaultSpecs(), keyTrapZone(tc.dnskeyTrap)), Config{})
			start := time.Now()
			before := f.v.verifications.Load()
			got, _, _ := f.validate(t, "victim.keytrap.test.", mdns.TypeA)
			spent := f.v.verifications.Load() - before
			t.Logf("%s after %d verifications in %v: %s", got.Status, spent, time.Since(start), got.Reason)
			if got.Status != dns.Bogus {
				t.Fatalf("status %s, want bogus", got.Status)
			}
			if !strings.Contains(got.Reason, "gave up") {
				t.Errorf("reason %q does not say validation gave up", got.Reason)
			}
			// The chain above costs a few verifications; each trapped RRset at most
			// maxFailuresPerRRset, as only keys the DS vouches for sign the DNSKEY RRset.
			if limit := int64(2*maxFailuresPerRRset + 6); spent > limit {
				t.Errorf("%d signature verifications, want at most %d", spent, limit)
			}
			if got, _, _ := f.validate(t, "keytrap.test.", mdns.TypeMX); got.Status != tc.mx {
				t.Errorf("keytrap.test. MX: %s (%s), want %s", got.Status, got.Reason, tc.mx)
			}
		})
	}
}

func TestKeyTagCollisionsBounded(t *testing.T) {
	// One junk signature, but 40 keys with its tag: only maxKeysPerTag are tried.
	specs := plus(defaultSpecs(), zoneSpec{
		name:    "collide.test.",
		records: []string{"victim A 192.0.2.67"},
		keys: func(tb testing.TB, z *testZone) {
			z.extra = collidingKeys(tb, z.name, mdns.ZONE, z.zsk.rr.Algorithm, z.zsk.rr.KeyTag(), 40)
		},
		sign: func(tb testing.TB, z *testZone, set []mdns.RR) []*mdns.RRSIG {
			if set[0].Header().Name == "victim.collide.test." {
				// The colliding keys come first in the DNSKEY RRset; the real ZSK
				// follows, beyond the keys tried.
				return junkSigs(set, z.name, z.zsk.rr.Algorithm, z.zsk.rr.KeyTag(), 1)
			}
			k := z.zsk
			if set[0].Header().Rrtype == mdns.TypeDNSKEY {
				k = z.ksk
			}
			return []*mdns.RRSIG{signWith(tb, k, z.name, set, z.spec.inception, z.spec.expiration)}
		},
	})
	f := newFixture(t, specs, Config{})
	f.validate(t, "collide.test.", mdns.TypeA) // warm the chain
	before := f.v.verifications.Load()
	got, _, _ := f.validate(t, "victim.collide.test.", mdns.TypeA)
	if spent := f.v.verifications.Load() - before; got.Status != dns.Bogus || spent > maxKeysPerTag {
		t.Fatalf("%s after %d verifications; want bogus after at most %d", got.Status, spent, maxKeysPerTag)
	}
}

func TestValidationBudget(t *testing.T) {
	f := newFixture(t, defaultSpecs(), Config{MaxValidations: 3})
	got, _, _ := f.validate(t, "_25._tcp.mx.example.test.", mdns.TypeTLSA)
	if got.Status != dns.Bogus || !strings.Contains(got.Reason, "limit of 3") {
		t.Fatalf("%s (%s), want bogus for the verification limit", got.Status, got.Reason)
	}
}

func TestNSEC3HashBudget(t *testing.T) {
	// A name deep below an NSEC3 zone needs one hash per label for its closest encloser
	// proof: fine within the budget, bogus beyond it.
	f := newFixture(t, defaultSpecs(), Config{})
	deep := strings.Repeat("a.", 100) + "nsec3.test."
	resp := f.r.ask(t, deep, mdns.TypeA)
	start := time.Now()
	if got := f.v.Validate(context.Background(), f.r, resp); got.Status != dns.Secure {
		t.Fatalf("100 labels deep: %s (%s)", got.Status, got.Reason)
	}
	t.Logf("100 labels deep: %v", time.Since(start))

	// The same proof with a budget of 20 hashes.
	z := f.tr.zones["nsec3.test."]
	chk := f.v.Validate(context.Background(), f.r, f.r.ask(t, "nsec3.test.", mdns.TypeMX)) // warm the keys
	if chk.Status != dns.Secure {
		t.Fatal(chk.Status)
	}
	c := &call{v: f.v, ex: f.r, now: testNow, verifyLeft: 64, hashBudget: 20,
		hashes: make(map[hashKey]string), chains: make(map[string]chain)}
	ch := c.chainTo(context.Background(), z.name)
	if !ch.v.ok() {
		t.Fatal(ch.v.reason)
	}
	d := c.deny(ch.z, canonical(deep), mdns.TypeA, true, newSection(resp.Ns))
	if d.kind != denyFailed || !strings.Contains(d.v.reason, "hash computations") {
		t.Fatalf("with 20 hashes: kind %d (%s), want a failure for the hash limit", d.kind, d.v.reason)
	}
}
