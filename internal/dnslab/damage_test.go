package dnslab

import (
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

const fixtureZone = "fixture.test."

// loadFixture reads testdata/fixture.signed.zone, a small zone signed by
// ldns-signzone.
func loadFixture(t *testing.T) []mdns.RR {
	t.Helper()
	rrs, err := readZoneFile("testdata/fixture.signed.zone", fixtureZone)
	if err != nil {
		t.Fatal(err)
	}
	return rrs
}

// rrsetOf returns the records of owner/t, and the RRSIGs over it.
func rrsetOf(rrs []mdns.RR, owner string, t uint16) (set []mdns.RR, sigs []*mdns.RRSIG) {
	for _, rr := range rrs {
		if mdns.CanonicalName(rr.Header().Name) != owner {
			continue
		}
		if sig, ok := rr.(*mdns.RRSIG); ok {
			if sig.TypeCovered == t {
				sigs = append(sigs, sig)
			}
		} else if rr.Header().Rrtype == t {
			set = append(set, rr)
		}
	}
	return set, sigs
}

func fixtureKey(t *testing.T, rrs []mdns.RR) *mdns.DNSKEY {
	t.Helper()
	set, _ := rrsetOf(rrs, fixtureZone, mdns.TypeDNSKEY)
	if len(set) != 1 {
		t.Fatalf("fixture has %d DNSKEYs, want 1", len(set))
	}
	return set[0].(*mdns.DNSKEY)
}

func TestFixtureVerifies(t *testing.T) {
	rrs := loadFixture(t)
	key := fixtureKey(t, rrs)
	set, sigs := rrsetOf(rrs, "www.fixture.test.", mdns.TypeA)
	if len(sigs) != 1 {
		t.Fatalf("www A has %d RRSIGs, want 1", len(sigs))
	}
	if err := sigs[0].Verify(key, set); err != nil {
		t.Fatalf("fixture signature does not verify: %v", err)
	}
}

func TestDamage(t *testing.T) {
	orig := loadFixture(t)
	key := fixtureKey(t, orig)
	tests := []struct {
		name    string
		b       Break
		check   func(t *testing.T, out []mdns.RR)
		wantErr string
	}{
		{"none", Break{}, func(t *testing.T, out []mdns.RR) {
			if len(out) != len(orig) {
				t.Errorf("%d records, want %d", len(out), len(orig))
			}
		}, ""},
		{"strip DNSKEY", Break{StripDNSKEY: true}, func(t *testing.T, out []mdns.RR) {
			if set, sigs := rrsetOf(out, fixtureZone, mdns.TypeDNSKEY); len(set)+len(sigs) != 0 {
				t.Errorf("DNSKEY RRset or its RRSIGs left: %v %v", set, sigs)
			}
			if _, sigs := rrsetOf(out, fixtureZone, mdns.TypeSOA); len(sigs) != 1 {
				t.Errorf("SOA lost its RRSIG")
			}
		}, ""},
		{"drop signature", Break{DropSig: "www.fixture.test. A"}, func(t *testing.T, out []mdns.RR) {
			set, sigs := rrsetOf(out, "www.fixture.test.", mdns.TypeA)
			if len(set) != 1 || len(sigs) != 0 {
				t.Errorf("www A: %d records and %d RRSIGs, want 1 and 0", len(set), len(sigs))
			}
			if _, sigs := rrsetOf(out, "www.fixture.test.", mdns.TypeAAAA); len(sigs) != 1 {
				t.Errorf("the RRSIG over www AAAA went too")
			}
			if len(out) != len(orig)-1 {
				t.Errorf("%d records, want %d", len(out), len(orig)-1)
			}
		}, ""},
		{"corrupt signature", Break{CorruptSig: "WWW.fixture.test AAAA"}, func(t *testing.T, out []mdns.RR) {
			set, sigs := rrsetOf(out, "www.fixture.test.", mdns.TypeAAAA)
			if len(sigs) != 1 {
				t.Fatalf("www AAAA has %d RRSIGs, want 1", len(sigs))
			}
			if err := sigs[0].Verify(key, set); err == nil {
				t.Errorf("corrupted signature still verifies")
			}
			_, origSigs := rrsetOf(orig, "www.fixture.test.", mdns.TypeAAAA)
			if err := origSigs[0].Verify(key, set); err != nil {
				t.Errorf("damage changed the caller's records: %v", err)
			}
			if bits := bitsDiffer(t, origSigs[0].Signature, sigs[0].Signature); bits != 1 {
				t.Errorf("%d bits differ, want 1", bits)
			}
			c := *sigs[0]
			c.Signature = origSigs[0].Signature
			if c.String() != origSigs[0].String() {
				t.Errorf("fields other than the signature changed:\n%s\n%s", sigs[0], origSigs[0])
			}
		}, ""},
		{"add unsigned", Break{AddUnsigned: []string{"evil A 192.0.2.66", `www TXT "forged"`}}, func(t *testing.T, out []mdns.RR) {
			if set, sigs := rrsetOf(out, "evil.fixture.test.", mdns.TypeA); len(set) != 1 || len(sigs) != 0 {
				t.Errorf("evil A: %d records, %d RRSIGs; want 1, 0", len(set), len(sigs))
			}
			if set, _ := rrsetOf(out, "www.fixture.test.", mdns.TypeTXT); len(set) != 1 {
				t.Errorf("www TXT not added")
			}
		}, ""},
		{"drop missing", Break{DropSig: "nope.fixture.test. A"}, nil, "no RRSIG over"},
		{"corrupt missing", Break{CorruptSig: "www.fixture.test. MX"}, nil, "no RRSIG over"},
		{"glue has no signature", Break{DropSig: "ns.child.fixture.test. A"}, nil, "no RRSIG over"},
		{"bad spec", Break{DropSig: "www"}, nil, "owner TYPE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := damage(fixtureZone, orig, tc.b)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("damage() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, out)
			// Whatever the damage, NSD must be able to read the result.
			if _, err := parseZone(formatZone(out), fixtureZone, ""); err != nil {
				t.Errorf("damaged zone does not parse back: %v", err)
			}
		})
	}
}

func bitsDiffer(t *testing.T, a, b string) int {
	t.Helper()
	ra, err1 := decodeSig(a)
	rb, err2 := decodeSig(b)
	if err1 != nil || err2 != nil || len(ra) != len(rb) {
		t.Fatalf("signatures not comparable: %v %v", err1, err2)
	}
	n := 0
	for i := range ra {
		for x := ra[i] ^ rb[i]; x != 0; x &= x - 1 {
			n++
		}
	}
	return n
}
