package dnssec

import (
	"context"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
)

// expiring returns a signer for zoneSpec.sign that signs as the tree does by default,
// except that the RRsets named in at expire at the times given. An empty name in a key
// stands for every owner of that type.
func expiring(at map[setKey]time.Time) func(tb testing.TB, z *testZone, set []mdns.RR) []*mdns.RRSIG {
	return func(tb testing.TB, z *testZone, set []mdns.RR) []*mdns.RRSIG {
		h := set[0].Header()
		k := z.zsk
		if h.Rrtype == mdns.TypeDNSKEY {
			k = z.ksk
		}
		exp := z.spec.expiration
		if t, ok := at[setKey{name: "", typ: h.Rrtype}]; ok {
			exp = t
		}
		if t, ok := at[setKey{name: canonical(h.Name), typ: h.Rrtype}]; ok {
			exp = t
		}
		return []*mdns.RRSIG{signWith(tb, k, z.name, set, z.spec.inception, exp)}
	}
}

// signedUntil returns the default tree with the given RRsets of zone expiring early.
func signedUntil(zone string, at map[setKey]time.Time) []zoneSpec {
	return withZone(defaultSpecs(), zone, func(s *zoneSpec) { s.sign = expiring(at) })
}

// TestExpires checks Validation.Expires: the earliest expiration of the signatures a
// verdict rests on, those of the reply and those of the chain of trust (RFC 4035
// §5.3.3), for every kind of verdict that may be cached.
func TestExpires(t *testing.T) {
	const day = 24 * time.Hour
	full := testNow.Add(30 * day) // the tree's default expiration
	in := func(d time.Duration) time.Time { return testNow.Add(d) }
	for _, tc := range []struct {
		name  string
		specs []zoneSpec
		qname string
		qtype uint16
		want  dns.Status
		exp   time.Time // zero: must be zero
	}{
		{name: "every signature of the default tree", specs: defaultSpecs(),
			qname: "example.test.", qtype: mdns.TypeMX, want: dns.Secure, exp: full},
		{name: "the answer's own signature", qname: "example.test.", qtype: mdns.TypeMX, want: dns.Secure, exp: in(5 * day),
			specs: signedUntil("example.test.", map[setKey]time.Time{{"example.test.", mdns.TypeMX}: in(5 * day)})},
		{name: "the zone's DNSKEY RRset", qname: "example.test.", qtype: mdns.TypeMX, want: dns.Secure, exp: in(3 * day),
			specs: signedUntil("example.test.", map[setKey]time.Time{{"example.test.", mdns.TypeDNSKEY}: in(3 * day)})},
		{name: "the zone's DS RRset, signed by the parent", qname: "example.test.", qtype: mdns.TypeMX, want: dns.Secure, exp: in(2 * day),
			specs: signedUntil("test.", map[setKey]time.Time{{"example.test.", mdns.TypeDS}: in(2 * day)})},
		{name: "the root's DNSKEY RRset", qname: "example.test.", qtype: mdns.TypeMX, want: dns.Secure, exp: in(day),
			specs: signedUntil(".", map[setKey]time.Time{{".", mdns.TypeDNSKEY}: in(day)})},
		{name: "the root's DS for the TLD", qname: "mx.example.test.", qtype: mdns.TypeA, want: dns.Secure, exp: in(36 * time.Hour),
			specs: signedUntil(".", map[setKey]time.Time{{"test.", mdns.TypeDS}: in(36 * time.Hour)})},
		{name: "a DS question rests on the parent's signature", qname: "example.test.", qtype: mdns.TypeDS, want: dns.Secure, exp: in(2 * day),
			specs: signedUntil("test.", map[setKey]time.Time{{"example.test.", mdns.TypeDS}: in(2 * day)})},
		{name: "an NSEC denial rests on its NSEC records", qname: "nx.example.test.", qtype: mdns.TypeA, want: dns.Secure, exp: in(4 * day),
			specs: signedUntil("example.test.", map[setKey]time.Time{{"", mdns.TypeNSEC}: in(4 * day)})},
		{name: "a denial rests on its SOA", qname: "nx.example.test.", qtype: mdns.TypeA, want: dns.Secure, exp: in(4 * day),
			specs: signedUntil("example.test.", map[setKey]time.Time{{"example.test.", mdns.TypeSOA}: in(4 * day)})},
		{name: "an NSEC3 denial rests on its NSEC3 records", qname: "nx.nsec3.test.", qtype: mdns.TypeA, want: dns.Secure, exp: in(4 * day),
			specs: signedUntil("nsec3.test.", map[setKey]time.Time{{"", mdns.TypeNSEC3}: in(4 * day)})},
		{name: "a wildcard answer rests on its NSEC proof", qname: "x.wild.example.test.", qtype: mdns.TypeA, want: dns.Secure, exp: in(4 * day),
			specs: signedUntil("example.test.", map[setKey]time.Time{{"", mdns.TypeNSEC}: in(4 * day)})},
		{name: "a wildcard answer rests on its NSEC3 proof", qname: "x.wild.nsec3.test.", qtype: mdns.TypeA, want: dns.Secure, exp: in(4 * day),
			specs: signedUntil("nsec3.test.", map[setKey]time.Time{{"", mdns.TypeNSEC3}: in(4 * day)})},
		{name: "a CNAME link bounds the reply", qname: "alias2.example.test.", qtype: mdns.TypeA, want: dns.Secure, exp: in(2 * day),
			specs: signedUntil("example.test.", map[setKey]time.Time{{"alias.example.test.", mdns.TypeCNAME}: in(2 * day)})},
		{name: "a DNAME bounds the CNAME synthesised from it", qname: "mx.dn.example.test.", qtype: mdns.TypeA, want: dns.Secure, exp: in(2 * day),
			specs: signedUntil("example.test.", map[setKey]time.Time{{"dn.example.test.", mdns.TypeDNAME}: in(2 * day)})},
		{name: "insecure delegation: the NSEC that proves it", qname: "unsigned.example.test.", qtype: mdns.TypeMX, want: dns.Insecure, exp: in(6 * day),
			specs: signedUntil("example.test.", map[setKey]time.Time{{"", mdns.TypeNSEC}: in(6 * day)})},
		{name: "insecure delegation: the chain above the proof", qname: "unsigned.example.test.", qtype: mdns.TypeMX, want: dns.Insecure, exp: in(3 * day),
			specs: signedUntil("example.test.", map[setKey]time.Time{{"example.test.", mdns.TypeDNSKEY}: in(3 * day)})},
		{name: "insecure by NSEC3 opt-out: the NSEC3 records", qname: "insecure.test.", qtype: mdns.TypeMX, want: dns.Insecure, exp: in(6 * day),
			specs: signedUntil("test.", map[setKey]time.Time{{"", mdns.TypeNSEC3}: in(6 * day)})},
		{name: "secure link into an insecure zone: the link bounds it", qname: "out.example.test.", qtype: mdns.TypeA, want: dns.Insecure, exp: in(2 * day),
			specs: signedUntil("example.test.", map[setKey]time.Time{{"out.example.test.", mdns.TypeCNAME}: in(2 * day)})},
		{name: "NSEC3 iterations beyond the limit: insecure, bounded by the record", qname: "nx.iter.test.", qtype: mdns.TypeA, want: dns.Insecure, exp: in(6 * day),
			specs: plus(defaultSpecs(), zoneSpec{name: "iter.test.", denial: "nsec3", iterations: 151, records: []string{"@ A 192.0.2.151"},
				sign: expiring(map[setKey]time.Time{{"", mdns.TypeNSEC3}: in(6 * day)})})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.specs, Config{})
			got, _, _ := f.validate(t, tc.qname, tc.qtype)
			if got.Status != tc.want {
				t.Fatalf("status %s (%s), want %s", got.Status, got.Reason, tc.want)
			}
			if !got.Expires.Equal(tc.exp) {
				t.Fatalf("expires %v, want %v", got.Expires, tc.exp)
			}
			// Warm, from the key cache, the bound is the same.
			if again, _, _ := f.validate(t, tc.qname, tc.qtype); !again.Expires.Equal(tc.exp) {
				t.Errorf("warm: expires %v, want %v", again.Expires, tc.exp)
			}
		})
	}
}

// TestExpiresZero checks that verdicts that rest on no signature, or are not to be
// cached, carry no expiration.
func TestExpiresZero(t *testing.T) {
	f := newFixture(t, defaultSpecs(), Config{})
	f.r.mutate = func(q question, m *mdns.Msg) {
		if q.name == "mx.example.test." && q.qtype == mdns.TypeA {
			filter(m, func(rr mdns.RR) bool { _, sig := rr.(*mdns.RRSIG); return sig })
		}
	}
	if got, _, _ := f.validate(t, "mx.example.test.", mdns.TypeA); got.Status != dns.Bogus || !got.Expires.IsZero() {
		t.Errorf("bogus: %s, expires %v; want bogus without expiration", got.Status, got.Expires)
	}

	// Outside every trust anchor.
	g := newFixture(t, defaultSpecs(), Config{Anchors: []mdns.RR{dsOf(newTree(t, defaultSpecs()).zones["example.test."].ksk, mdns.SHA256)}})
	if got, _, _ := g.validate(t, "secure2.test.", mdns.TypeMX); got.Status != dns.Indeterminate || !got.Expires.IsZero() {
		t.Errorf("indeterminate: %s, expires %v; want indeterminate without expiration", got.Status, got.Expires)
	}

	// A trust anchor of an algorithm mxward does not implement: insecure, but no
	// signature bounds it.
	ed448 := &mdns.DNSKEY{Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeDNSKEY, Class: mdns.ClassINET, Ttl: 3600},
		Flags: 257, Protocol: 3, Algorithm: mdns.ED448, PublicKey: "AAAA"}
	h := newFixture(t, defaultSpecs(), Config{Anchors: []mdns.RR{ed448}})
	if got, _, _ := h.validate(t, "example.test.", mdns.TypeMX); got.Status != dns.Insecure || !got.Expires.IsZero() {
		t.Errorf("unsupported anchor: %s (%s), expires %v; want insecure without expiration", got.Status, got.Reason, got.Expires)
	}
}

// TestClientCacheCappedByExpires runs the DNS client with the validator: a reply whose
// signatures expire in ten minutes is not served from the client's cache after that,
// although its TTL says an hour.
func TestClientCacheCappedByExpires(t *testing.T) {
	specs := withZone(defaultSpecs(), "example.test.", func(s *zoneSpec) {
		s.sign = expiring(map[setKey]time.Time{{"example.test.", mdns.TypeMX}: testNow.Add(10 * time.Minute)})
	})
	tree := newTree(t, specs)
	srv := serveTree(t, tree)
	clock := &testClock{t: testNow}
	v, err := New(Config{Anchors: tree.rootAnchor(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	c, err := dns.NewClient(dns.Config{Servers: []string{srv.addr}, Validator: v, Now: clock.Now, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mx, err := c.LookupMX(ctx, "example.test")
	if err != nil || mx.Status != dns.Secure {
		t.Fatalf("MX: %+v, %v", mx, err)
	}
	asked := srv.count(mdns.TypeMX)
	clock.Advance(5 * time.Minute)
	if mx, err := c.LookupMX(ctx, "example.test"); err != nil || mx.Status != dns.Secure || srv.count(mdns.TypeMX) != asked {
		t.Fatalf("after 5 min: %s, %v, %d MX queries; want secure from the cache", mx.Status, err, srv.count(mdns.TypeMX)-asked)
	}
	clock.Advance(6 * time.Minute)
	_, err = c.LookupMX(ctx, "example.test")
	if srv.count(mdns.TypeMX) == asked {
		t.Fatal("after 11 min the reply still came from the cache, past its signature's expiration")
	}
	if !dns.IsTemporary(err) {
		t.Fatalf("after 11 min: %v, want a temporary error for the expired signature", err)
	}
}
