package dane

import (
	"bytes"
	"strings"
	"testing"

	"mxward/internal/dns"
)

func TestUsable(t *testing.T) {
	p := testPKI()
	ee11 := rec(3, 1, 1, p.self.cert)
	ee12 := rec(3, 1, 2, p.self.cert)
	ee01 := rec(3, 0, 1, p.self.cert)
	ee10 := rec(3, 1, 0, p.self.cert)
	ee00 := rec(3, 0, 0, p.self.cert)
	ta01 := rec(2, 0, 1, p.inter.cert)
	ta02 := rec(2, 0, 2, p.inter.cert)
	ta00 := rec(2, 0, 0, p.root.cert)
	short := dns.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: make([]byte, 31)}
	long512 := dns.TLSA{Usage: 3, Selector: 1, MatchingType: 2, Data: make([]byte, 65)}
	sha256as512 := dns.TLSA{Usage: 3, Selector: 1, MatchingType: 2, Data: ee11.Data}
	garbageCert := dns.TLSA{Usage: 3, Selector: 0, MatchingType: 0, Data: []byte("not a certificate")}
	garbageSPKI := dns.TLSA{Usage: 2, Selector: 1, MatchingType: 0, Data: []byte{0x30, 0x03, 0x02, 0x01, 0x01}}
	spkiTrailing := dns.TLSA{Usage: 3, Selector: 1, MatchingType: 0, Data: append(bytes.Clone(ee10.Data), 0)}
	certForSPKI := dns.TLSA{Usage: 3, Selector: 1, MatchingType: 0, Data: p.self.cert.Raw}
	empty := dns.TLSA{Usage: 3, Selector: 0, MatchingType: 0}

	tests := []struct {
		name    string
		recs    []dns.TLSA
		pref    []uint8
		usable  []dns.TLSA
		reasons []string // one substring per dropped record, in order
	}{
		{name: "all-usable-kinds", recs: []dns.TLSA{ee11, ee01, ee10, ee00, ta01, ta00},
			usable: []dns.TLSA{ee11, ee01, ee10, ee00, ta01, ta00}},
		{name: "DANE-15/PKIX-TA-and-PKIX-EE",
			recs: []dns.TLSA{rec(0, 0, 1, p.root.cert), rec(1, 1, 1, p.self.cert), ee11}, usable: []dns.TLSA{ee11},
			reasons: []string{"DANE-15: usage PKIX-TA(0)", "DANE-15: usage PKIX-EE(1)"}},
		{name: "DANE-16/unknown-usage", recs: []dns.TLSA{{Usage: 4, Selector: 1, MatchingType: 1, Data: ee11.Data}},
			reasons: []string{"DANE-16: unknown certificate usage 4"}},
		{name: "DANE-16/private-usage", recs: []dns.TLSA{{Usage: 255, Selector: 1, MatchingType: 1, Data: ee11.Data}},
			reasons: []string{"DANE-16: unknown certificate usage 255"}},
		{name: "DANE-16/unknown-selector", recs: []dns.TLSA{{Usage: 3, Selector: 2, MatchingType: 1, Data: ee11.Data}},
			reasons: []string{"DANE-16: unknown selector 2"}},
		{name: "DANE-16/unknown-matching-type", recs: []dns.TLSA{{Usage: 3, Selector: 1, MatchingType: 3, Data: ee11.Data}},
			reasons: []string{"DANE-16: unknown matching type 3"}},
		{name: "DANE-15/private-matching-type", recs: []dns.TLSA{{Usage: 3, Selector: 1, MatchingType: 255, Data: ee11.Data}},
			reasons: []string{"DANE-15: private-use matching type"}},
		{name: "DANE-16/short-SHA2-256", recs: []dns.TLSA{short}, reasons: []string{"SHA2-256 digest is 31 bytes, want 32"}},
		{name: "DANE-16/long-SHA2-512", recs: []dns.TLSA{long512}, reasons: []string{"SHA2-512 digest is 65 bytes, want 64"}},
		{name: "DANE-16/SHA2-256-data-labelled-SHA2-512", recs: []dns.TLSA{sha256as512, ee11}, usable: []dns.TLSA{ee11},
			reasons: []string{"SHA2-512 digest is 32 bytes, want 64"}},
		{name: "DANE-16/garbage-full-cert", recs: []dns.TLSA{garbageCert}, reasons: []string{"DANE-16: malformed Cert Full(0)"}},
		{name: "DANE-16/garbage-full-SPKI", recs: []dns.TLSA{garbageSPKI}, reasons: []string{"DANE-16: malformed SPKI Full(0)"}},
		{name: "DANE-16/SPKI-trailing-data", recs: []dns.TLSA{spkiTrailing}, reasons: []string{"after the SubjectPublicKeyInfo"}},
		{name: "DANE-16/certificate-given-as-SPKI", recs: []dns.TLSA{certForSPKI}, reasons: []string{"DANE-16: malformed SPKI"}},
		{name: "DANE-16/empty-full", recs: []dns.TLSA{empty}, reasons: []string{"no data"}},

		// DANE-17: per (usage, selector), Full(0) plus the strongest digest present.
		{name: "DANE-17/SHA2-512-wins", recs: []dns.TLSA{ee11, ee12}, usable: []dns.TLSA{ee12},
			reasons: []string{"DANE-17: digest agility: SHA2-256 ignored"}},
		{name: "DANE-17/preference-reversed", recs: []dns.TLSA{ee11, ee12}, pref: []uint8{1, 2}, usable: []dns.TLSA{ee11},
			reasons: []string{"SHA2-512 ignored"}},
		{name: "DANE-17/per-usage-and-selector", recs: []dns.TLSA{ee11, ee12, ee01, ta01, ta02},
			usable: []dns.TLSA{ee12, ee01, ta02}, reasons: []string{"SHA2-256 ignored", "SHA2-256 ignored"}},
		{name: "DANE-17/full-kept-beside-digests", recs: []dns.TLSA{ee10, ee11, ee12}, usable: []dns.TLSA{ee10, ee12},
			reasons: []string{"SHA2-256 ignored"}},
		{name: "DANE-17/SHA2-256-only-client", recs: []dns.TLSA{ee12, ee11}, pref: []uint8{1}, usable: []dns.TLSA{ee11},
			reasons: []string{"DANE-17: digest SHA2-512 is not enabled"}},
		{name: "DANE-17/only-weak-digest-published", recs: []dns.TLSA{ee11}, usable: []dns.TLSA{ee11}},
		{name: "DANE-17/malformed-strong-digest-does-not-win", recs: []dns.TLSA{long512, ee11}, usable: []dns.TLSA{ee11},
			reasons: []string{"want 64"}},
		{name: "DANE-17/unsupported-preference-entries-ignored", recs: []dns.TLSA{ee11, ee12}, pref: []uint8{0, 7, 255},
			usable: []dns.TLSA{ee12}, reasons: []string{"SHA2-256 ignored"}},
		{name: "DANE-18/all-unusable", recs: []dns.TLSA{rec(1, 1, 1, p.self.cert), short, garbageCert},
			reasons: []string{"DANE-15", "DANE-16", "DANE-16"}},
		{name: "empty-RRset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			usable, dropped := Usable(tt.recs, tt.pref)
			if len(usable) != len(tt.usable) {
				t.Fatalf("usable = %v, want %v", formatAll(usable), formatAll(tt.usable))
			}
			for i := range usable {
				if !containsRecord(tt.usable[i:i+1], usable[i]) {
					t.Errorf("usable[%d] = %s, want %s", i, Format(usable[i]), Format(tt.usable[i]))
				}
			}
			if len(dropped) != len(tt.reasons) {
				t.Fatalf("dropped = %v, want %d with reasons %q", dropped, len(tt.reasons), tt.reasons)
			}
			for i, d := range dropped {
				if !strings.Contains(d.Reason, tt.reasons[i]) {
					t.Errorf("dropped[%d].Reason = %q, want it to contain %q", i, d.Reason, tt.reasons[i])
				}
				if d.Ignored != strings.Contains(d.Reason, "ignored") {
					t.Errorf("dropped[%d].Ignored = %v for %q", i, d.Ignored, d.Reason)
				}
			}
			if len(usable)+len(dropped) != len(tt.recs) {
				t.Errorf("%d usable + %d dropped != %d records", len(usable), len(dropped), len(tt.recs))
			}
		})
	}
}

func formatAll(recs []dns.TLSA) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = Format(r)
	}
	return out
}
