package dane

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"mxward/internal/dns"
)

func TestCheck(t *testing.T) {
	p := testPKI()
	mx := []string{"mx.example.test"}
	wrong := rec(3, 1, 1, p.self.cert)
	wrong.Data[0] ^= 0xff

	tests := []struct {
		name   string
		chain  []*x509.Certificate
		recs   []dns.TLSA
		refIDs []string
		want   string // Auth; "" means the chain must not authenticate
		fail   string // VerifyError.Reason when want is ""
		depth  int    // Match.Depth when want is AuthDANETA
		errHas string // a substring of the error, when want is ""
	}{
		// DANE-20: DANE-EE matches the leaf by certificate or SPKI, with any matching type.
		{name: "DANE-20/3-1-1", chain: chain(p.self), recs: []dns.TLSA{rec(3, 1, 1, p.self.cert)}, want: AuthDANEEE},
		{name: "DANE-20/3-0-1", chain: chain(p.self), recs: []dns.TLSA{rec(3, 0, 1, p.self.cert)}, want: AuthDANEEE},
		{name: "DANE-20/3-1-2", chain: chain(p.self), recs: []dns.TLSA{rec(3, 1, 2, p.self.cert)}, want: AuthDANEEE},
		{name: "DANE-20/3-0-2", chain: chain(p.self), recs: []dns.TLSA{rec(3, 0, 2, p.self.cert)}, want: AuthDANEEE},
		{name: "DANE-20/3-1-0-full-SPKI", chain: chain(p.self), recs: []dns.TLSA{rec(3, 1, 0, p.self.cert)}, want: AuthDANEEE},
		{name: "DANE-20/3-0-0-full-cert", chain: chain(p.self), recs: []dns.TLSA{rec(3, 0, 0, p.self.cert)}, want: AuthDANEEE},
		{name: "DANE-20/RSA-leaf", chain: chain(p.selfRSA), recs: []dns.TLSA{rec(3, 1, 1, p.selfRSA.cert)}, want: AuthDANEEE},
		// DANE-20: no name or expiry checks; p.self is expired and named localhost.invalid.
		{name: "DANE-20/expired-misnamed-self-signed", chain: chain(p.self), recs: []dns.TLSA{rec(3, 1, 1, p.self.cert)},
			refIDs: mx, want: AuthDANEEE},
		{name: "DANE-20/expired-CA-issued", chain: chain(p.leafExpired, p.inter), recs: []dns.TLSA{rec(3, 1, 1, p.leafExpired.cert)},
			refIDs: []string{"elsewhere.example.net"}, want: AuthDANEEE},
		{name: "DANE-20/wrong-digest", chain: chain(p.self), recs: []dns.TLSA{wrong}, fail: FailNoMatch},
		{name: "DANE-20/EE-record-of-issuer", chain: chain(p.leaf, p.inter), recs: []dns.TLSA{rec(3, 1, 1, p.inter.cert)}, refIDs: mx,
			fail: FailNoMatch},
		{name: "DANE-20/other-cert-same-name", chain: chain(p.leaf, p.inter), recs: []dns.TLSA{rec(3, 0, 1, p.leafClientEKU.cert)},
			refIDs: mx, fail: FailNoMatch},

		// DANE-21: DANE-TA names an issuer; PKIX validation and name checks follow.
		{name: "DANE-21/2-0-1-intermediate", chain: chain(p.leaf, p.inter), recs: []dns.TLSA{rec(2, 0, 1, p.inter.cert)}, refIDs: mx,
			want: AuthDANETA, depth: 1},
		{name: "DANE-21/2-1-1-intermediate", chain: chain(p.leaf, p.inter, p.root), recs: []dns.TLSA{rec(2, 1, 1, p.inter.cert)},
			refIDs: mx, want: AuthDANETA, depth: 1},
		{name: "DANE-21/2-0-2-root-presented", chain: chain(p.leaf, p.inter, p.root), recs: []dns.TLSA{rec(2, 0, 2, p.root.cert)},
			refIDs: mx, want: AuthDANETA, depth: 2},
		{name: "DANE-21/2-0-0-not-presented", chain: chain(p.leaf, p.inter), recs: []dns.TLSA{rec(2, 0, 0, p.root.cert)}, refIDs: mx,
			want: AuthDANETA, depth: -1},
		{name: "DANE-21/2-0-0-intermediate-not-presented", chain: chain(p.leaf), recs: []dns.TLSA{rec(2, 0, 0, p.inter.cert)},
			refIDs: mx, want: AuthDANETA, depth: -1},
		{name: "DANE-21/2-1-1-not-presented", chain: chain(p.leaf, p.inter), recs: []dns.TLSA{rec(2, 1, 1, p.root.cert)}, refIDs: mx,
			fail: FailNoMatch},
		{name: "DANE-21/2-1-0-not-presented", chain: chain(p.leaf), recs: []dns.TLSA{rec(2, 1, 0, p.inter.cert)}, refIDs: mx,
			fail: FailNoMatch},
		{name: "DANE-21/TA-matches-only-leaf", chain: chain(p.leaf, p.inter), recs: []dns.TLSA{rec(2, 0, 1, p.leaf.cert)}, refIDs: mx,
			fail: FailNoMatch},
		{name: "DANE-21/TA-2-0-0-of-leaf", chain: chain(p.leaf), recs: []dns.TLSA{rec(2, 0, 0, p.leaf.cert)}, refIDs: mx,
			fail: FailNoMatch},
		{name: "DANE-21/TA-self-signed-leaf-presented-twice", chain: chain(p.self, p.self), recs: []dns.TLSA{rec(2, 0, 1, p.self.cert)},
			refIDs: []string{"localhost.invalid"}, fail: FailNoMatch},
		{name: "DANE-21/expired-leaf", chain: chain(p.leafExpired, p.inter), recs: []dns.TLSA{rec(2, 0, 1, p.inter.cert)}, refIDs: mx,
			fail: FailChain, errHas: "expired"},
		{name: "DANE-21/missing-link", chain: chain(p.leaf, p.root), recs: []dns.TLSA{rec(2, 0, 1, p.root.cert)}, refIDs: mx,
			fail: FailChain},
		{name: "DANE-21/path-length-violated", chain: chain(p.strictLeaf, p.strictInter, p.strictRoot),
			recs: []dns.TLSA{rec(2, 0, 1, p.strictRoot.cert)}, refIDs: mx, fail: FailChain, errHas: "path length"},
		{name: "DANE-21/path-length-violated-2-0-0", chain: chain(p.strictLeaf, p.strictInter),
			recs: []dns.TLSA{rec(2, 0, 0, p.strictRoot.cert)}, refIDs: mx, fail: FailChain, errHas: "path length"},
		{name: "DANE-21/path-length-fine-below-intermediate", chain: chain(p.strictLeaf, p.strictInter),
			recs: []dns.TLSA{rec(2, 0, 1, p.strictInter.cert)}, refIDs: mx, want: AuthDANETA, depth: 1},
		{name: "DANE-21/client-auth-only-leaf", chain: chain(p.leafClientEKU, p.inter), recs: []dns.TLSA{rec(2, 0, 1, p.inter.cert)},
			refIDs: mx, fail: FailChain, errHas: "key usage"},
		{name: "DANE-21/wrong-anchor", chain: chain(p.leaf, p.inter), recs: []dns.TLSA{rec(2, 0, 0, p.strictRoot.cert)}, refIDs: mx,
			fail: FailChain},

		// DANE-22, DANE-23: names are checked for DANE-TA.
		{name: "DANE-23/wrong-name", chain: chain(p.leafMisnamed, p.inter), recs: []dns.TLSA{rec(2, 0, 1, p.inter.cert)}, refIDs: mx,
			fail: FailName},
		{name: "DANE-23/second-reference-id", chain: chain(p.leafMisnamed, p.inter), recs: []dns.TLSA{rec(2, 0, 1, p.inter.cert)},
			refIDs: []string{"mx.example.test", "Other.Example.Net."}, want: AuthDANETA, depth: 1},
		{name: "DANE-23/no-reference-ids", chain: chain(p.leaf, p.inter), recs: []dns.TLSA{rec(2, 0, 1, p.inter.cert)}, fail: FailName},
		{name: "DANE-23/wildcard-one-label", chain: chain(p.leafWild, p.inter), recs: []dns.TLSA{rec(2, 0, 1, p.inter.cert)}, refIDs: mx,
			want: AuthDANETA, depth: 1},
		{name: "DANE-23/wildcard-not-two-labels", chain: chain(p.leafWild, p.inter), recs: []dns.TLSA{rec(2, 0, 1, p.inter.cert)},
			refIDs: []string{"a.mx.example.test"}, fail: FailName},
		{name: "DANE-23/wildcard-not-base", chain: chain(p.leafWild, p.inter), recs: []dns.TLSA{rec(2, 0, 1, p.inter.cert)},
			refIDs: []string{"example.test"}, fail: FailName},
		{name: "DANE-23/CN-without-SAN", chain: chain(p.leafCNOnly, p.inter), recs: []dns.TLSA{rec(2, 0, 1, p.inter.cert)}, refIDs: mx,
			want: AuthDANETA, depth: 1},
		{name: "DANE-23/CN-ignored-with-SAN", chain: chain(p.leafCNAndSAN, p.inter), recs: []dns.TLSA{rec(2, 0, 1, p.inter.cert)},
			refIDs: mx, fail: FailName},

		// Several records: any match authenticates; DANE-EE is preferred.
		{name: "DANE-20/EE-before-TA", chain: chain(p.leaf, p.inter),
			recs: []dns.TLSA{rec(2, 0, 1, p.inter.cert), rec(3, 1, 1, p.leaf.cert)}, refIDs: mx, want: AuthDANEEE},
		{name: "DANE-21/TA-after-EE-mismatch", chain: chain(p.leaf, p.inter),
			recs: []dns.TLSA{wrong, rec(2, 0, 1, p.inter.cert)}, refIDs: mx, want: AuthDANETA, depth: 1},
		{name: "DANE-21/second-anchor-validates", chain: chain(p.leaf, p.inter),
			recs: []dns.TLSA{rec(2, 0, 0, p.strictRoot.cert), rec(2, 1, 1, p.inter.cert)}, refIDs: mx, want: AuthDANETA, depth: 1},

		// Records the client cannot use never match, even when Usable was skipped.
		{name: "DANE-15/PKIX-EE-ignored", chain: chain(p.leaf, p.inter), recs: []dns.TLSA{rec(1, 1, 1, p.leaf.cert)}, refIDs: mx,
			fail: FailNoMatch},
		{name: "DANE-16/unknown-matching-type-ignored", chain: chain(p.self),
			recs: []dns.TLSA{{Usage: 3, Selector: 1, MatchingType: 9, Data: p.self.cert.RawSubjectPublicKeyInfo}}, fail: FailNoMatch},
		{name: "DANE-16/empty-full-data", chain: chain(p.self), recs: []dns.TLSA{{Usage: 3, Selector: 0, MatchingType: 0}}, fail: FailNoMatch},

		{name: "no-records", chain: chain(p.self), fail: FailNoRecords},
		{name: "no-certificate", recs: []dns.TLSA{rec(3, 1, 1, p.self.cert)}, fail: FailNoCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Check(tt.chain, tt.recs, tt.refIDs, testNow)
			if tt.want == "" {
				var ve *VerifyError
				if !errors.As(err, &ve) {
					t.Fatalf("Check = %v, %v; want a *VerifyError %q", m, err, tt.fail)
				}
				if ve.Reason != tt.fail {
					t.Errorf("Reason = %q, want %q (%v)", ve.Reason, tt.fail, err)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("error %q lacks %q", err, tt.errHas)
				}
				if !errors.Is(err, ErrNotAuthenticated) {
					t.Errorf("error %v does not match ErrNotAuthenticated", err)
				}
				if m.Auth != "" {
					t.Errorf("failed Check returned Auth %q", m.Auth)
				}
				return
			}
			if err != nil {
				t.Fatalf("Check: %v; want %s", err, tt.want)
			}
			if m.Auth != tt.want {
				t.Errorf("Auth = %q, want %q", m.Auth, tt.want)
			}
			if m.Auth == AuthDANETA && m.Depth != tt.depth {
				t.Errorf("Depth = %d, want %d", m.Depth, tt.depth)
			}
			if m.Auth == AuthDANETA && m.Name == "" {
				t.Errorf("DANE-TA match without a name: %v", m)
			}
			if !containsRecord(tt.recs, m.Record) {
				t.Errorf("matched record %s is not one of the records", Format(m.Record))
			}
		})
	}
}

func containsRecord(recs []dns.TLSA, r dns.TLSA) bool {
	for _, x := range recs {
		if x.Usage == r.Usage && x.Selector == r.Selector && x.MatchingType == r.MatchingType && string(x.Data) == string(r.Data) {
			return true
		}
	}
	return false
}

// TestCheckRollover: during a key rollover the RRset holds the current and the next
// key (RFC 7671 §8.1); either authenticates, a third does not.
func TestCheckRollover(t *testing.T) {
	p := testPKI()
	recs := []dns.TLSA{rec(3, 1, 1, p.self.cert), rec(3, 1, 1, p.selfNext.cert)}
	for _, kc := range []*keyCert{p.self, p.selfNext} {
		m, err := Check(chain(kc), recs, nil, testNow)
		if err != nil || m.Auth != AuthDANEEE {
			t.Errorf("%s: Check = %v, %v; want dane-ee", kc.cert.Subject.CommonName, m, err)
		}
	}
	if _, err := Check(chain(p.selfRSA), recs, nil, testNow); err == nil {
		t.Errorf("a key outside the rollover pair authenticated")
	}
}

// TestDigestAgility (DANE-17, RFC 7671 §9): with 3 1 1 and 3 1 2 published, only the
// strongest digest the client prefers is used, so a stale SHA2-256 record that alone
// matches does not authenticate; with the preference reversed it does.
func TestDigestAgility(t *testing.T) {
	p := testPKI()
	stale := rec(3, 1, 2, p.selfNext.cert) // SHA2-512 of another key
	rrset := []dns.TLSA{rec(3, 1, 1, p.self.cert), stale}
	tests := []struct {
		name string
		pref []uint8
		ok   bool
	}{
		{"default-prefers-SHA2-512", nil, false},
		{"explicit-SHA2-512-first", []uint8{MatchSHA512, MatchSHA256}, false},
		{"SHA2-256-first", []uint8{MatchSHA256, MatchSHA512}, true},
		{"SHA2-256-only", []uint8{MatchSHA256}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			usable, dropped := Usable(rrset, tt.pref)
			if len(usable) != 1 || len(dropped) != 1 {
				t.Fatalf("Usable = %d usable, %d dropped; want 1 and 1", len(usable), len(dropped))
			}
			_, err := Verifier(usable, nil, func() time.Time { return testNow })(tls.ConnectionState{PeerCertificates: chain(p.self)})
			if (err == nil) != tt.ok {
				t.Errorf("verification error = %v, want success %v", err, tt.ok)
			}
		})
	}
}

func TestVerifier(t *testing.T) {
	p := testPKI()
	recs := []dns.TLSA{rec(2, 0, 1, p.inter.cert)}
	ids := []string{"mx.example.test"}
	v := Verifier(recs, ids, func() time.Time { return testNow })
	// The closure keeps its own copies: changing the caller's slices changes nothing.
	recs[0].Data[0] ^= 0xff
	ids[0] = "changed.example.test"

	auth, err := v(tls.ConnectionState{PeerCertificates: chain(p.leaf, p.inter)})
	if err != nil || auth != AuthDANETA {
		t.Fatalf("Verifier = %q, %v; want dane-ta", auth, err)
	}
	// Time comes from now() at each call (DANE-21: the leaf's expiry is checked).
	later := Verifier([]dns.TLSA{rec(2, 0, 1, p.inter.cert)}, []string{"mx.example.test"},
		func() time.Time { return testNow.Add(2 * 365 * 24 * time.Hour) })
	if _, err := later(tls.ConnectionState{PeerCertificates: chain(p.leaf, p.inter)}); err == nil {
		t.Errorf("verification succeeded after the leaf expired")
	}
	// nil now means the real clock; the test certificates are dated around testNow.
	if _, err := Verifier(recs, nil, nil)(tls.ConnectionState{}); err == nil {
		t.Errorf("empty connection state authenticated")
	}
}

// TestVerifyErrorText: the error tells the operator what was compared (the engine logs
// it and defers with 4.7.5, decision 7).
func TestVerifyErrorText(t *testing.T) {
	p := testPKI()
	r := rec(3, 1, 1, p.selfNext.cert)
	_, err := Check(chain(p.self), []dns.TLSA{r}, nil, testNow)
	if err == nil {
		t.Fatal("mismatch authenticated")
	}
	for _, want := range []string{"no TLSA record matches", Format(r), "SPKI sha256", "localhost"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	_, err = Check(chain(p.leafMisnamed, p.inter), []dns.TLSA{rec(2, 0, 1, p.inter.cert)}, []string{"mx.example.test"}, testNow)
	for _, want := range []string{"other.example.net", "mx.example.test", "2 0 1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	_, err = Check(chain(p.leafExpired, p.inter), []dns.TLSA{rec(2, 0, 1, p.inter.cert)}, []string{"mx.example.test"}, testNow)
	var inv x509.CertificateInvalidError
	if !errors.As(err, &inv) || inv.Reason != x509.Expired {
		t.Errorf("expired leaf: error %v does not wrap x509 Expired", err)
	}
}

func TestMatchString(t *testing.T) {
	p := testPKI()
	m, err := Check(chain(p.leaf, p.inter), []dns.TLSA{rec(2, 0, 1, p.inter.cert)}, []string{"mx.example.test"}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	s := m.String()
	for _, want := range []string{"dane-ta", "2 0 1 ", "depth 1", "mx.example.test"} {
		if !strings.Contains(s, want) {
			t.Errorf("Match.String() = %q lacks %q", s, want)
		}
	}
}
