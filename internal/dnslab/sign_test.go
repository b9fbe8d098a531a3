package dnslab

import (
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func TestSigningWindow(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name       string
		b          Break
		inc, exp   time.Time
		validAtNow bool
	}{
		{"sound", Break{}, now.Add(-day), now.Add(30 * day), true},
		{"expired", Break{ExpiredSigs: true}, now.Add(-30 * day), now.Add(-2 * day), false},
		{"future", Break{FutureSigs: true}, now.Add(2 * day), now.Add(30 * day), false},
	}
	for _, tc := range tests {
		w := signingWindow(now, tc.b)
		if !w.inception.Equal(tc.inc) || !w.expiration.Equal(tc.exp) {
			t.Errorf("%s: window %v – %v, want %v – %v", tc.name, w.inception, w.expiration, tc.inc, tc.exp)
		}
		sig := &mdns.RRSIG{Inception: uint32(w.inception.Unix()), Expiration: uint32(w.expiration.Unix())}
		if got := sig.ValidityPeriod(now); got != tc.validAtNow {
			t.Errorf("%s: valid at Now = %v, want %v", tc.name, got, tc.validAtNow)
		}
	}
	if got := sigTime(time.Date(2026, 3, 1, 12, 4, 5, 0, time.FixedZone("x", 3600))); got != "20260301110405" {
		t.Errorf("sigTime = %s, want UTC 20260301110405", got)
	}
}

func TestZoneText(t *testing.T) {
	z := &Zone{Name: "a.test.", Records: []string{"www A 192.0.2.1"}}
	ds := &mdns.DS{Hdr: mdns.RR_Header{Name: "b.a.test.", Rrtype: mdns.TypeDS, Class: mdns.ClassINET, Ttl: 300},
		KeyTag: 1234, Algorithm: 13, DigestType: 2, Digest: strings.Repeat("ab", 32)}
	text := zoneText(z, nil, []delegation{{child: "b.a.test.", ds: []*mdns.DS{ds}}, {child: "c.a.test."}})
	rrs, err := parseZone(text, z.Name, "")
	if err != nil {
		t.Fatalf("zone text does not parse: %v\n%s", err, text)
	}
	want := []string{
		"a.test.\t300\tIN\tSOA\tns.a.test. hostmaster.a.test. 1 3600 600 86400 300",
		"a.test.\t300\tIN\tNS\tns.a.test.",
		"ns.a.test.\t300\tIN\tA\t127.0.0.1",
		"www.a.test.\t300\tIN\tA\t192.0.2.1",
		"b.a.test.\t300\tIN\tNS\tns.b.a.test.",
		"ns.b.a.test.\t300\tIN\tA\t127.0.0.1",
		"b.a.test.\t300\tIN\tDS\t1234 13 2 " + strings.Repeat("AB", 32),
		"c.a.test.\t300\tIN\tNS\tns.c.a.test.",
		"ns.c.a.test.\t300\tIN\tA\t127.0.0.1",
	}
	if len(rrs) != len(want) {
		t.Fatalf("zone text has %d records, want %d:\n%s", len(rrs), len(want), text)
	}
	for i, rr := range rrs {
		if rr.String() != want[i] {
			t.Errorf("record %d = %q, want %q", i, rr.String(), want[i])
		}
	}

	root := zoneText(&Zone{Name: "."}, nil, nil)
	if !strings.Contains(root, ". 300 IN SOA ns.root-servers.test. hostmaster. 1 ") {
		t.Errorf("root zone text:\n%s", root)
	}
}
