package tlspolicy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"mxward/internal/dane"
	"mxward/internal/dns"
	"mxward/internal/smtpclient"
)

// tlsaEE is a DANE-EE(3) SPKI(1) SHA2-256(1) record for the leaf of cs.
func tlsaEE(cs tls.ConnectionState) dns.TLSA {
	sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
	return dns.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: sum[:]}
}

// tlsaTA is a DANE-TA(2) Cert(0) SHA2-256(1) record for the certificate c.
func tlsaTA(c *x509.Certificate) dns.TLSA {
	sum := sha256.Sum256(c.Raw)
	return dns.TLSA{Usage: 2, Selector: 0, MatchingType: 1, Data: sum[:]}
}

// withIssuer appends the issuer to the presented chain, as a server configured for
// DANE-TA must send it (DANE-21).
func withIssuer(cs tls.ConnectionState, issuer *x509.Certificate) tls.ConnectionState {
	cs.PeerCertificates = append(append([]*x509.Certificate(nil), cs.PeerCertificates...), issuer)
	return cs
}

// TestDecideDANE is the table of the DANE levels (§9.1, RFC 7672 §2.2): one row per
// outcome of the TLSA step, MX security and policy source, with the handshakes each
// requirement must accept or refuse.
func TestDecideDANE(t *testing.T) {
	p := newPKI(t)
	selfSigned := p.leaf(t, []string{"mx1.example.com"}, true, false)
	expiredSelf := p.leaf(t, []string{"mx1.example.com"}, true, true)
	other := p.leaf(t, []string{"mx1.example.com"}, true, false)
	caMX := withIssuer(p.leaf(t, []string{"mx1.example.com"}, false, false), p.root)
	caNextHop := withIssuer(p.leaf(t, []string{"example.com"}, false, false), p.root)
	caElsewhere := withIssuer(p.leaf(t, []string{"mx.attacker.test"}, false, false), p.root)
	caExpired := withIssuer(p.leaf(t, []string{"mx1.example.com"}, false, true), p.root)

	ee := tlsaEE(selfSigned)
	ta := tlsaTA(p.root)
	authEE := dane.Host{Outcome: dane.Authenticate, BaseDomain: "mx1.example.com", RRset: []dns.TLSA{ee}, Records: []dns.TLSA{ee},
		Reason: "DANE-13: secure TLSA RRset at _25._tcp.mx1.example.com"}
	authTA := dane.Host{Outcome: dane.Authenticate, BaseDomain: "mx1.example.com", RRset: []dns.TLSA{ta}, Records: []dns.TLSA{ta},
		Reason: "DANE-13: secure TLSA RRset at _25._tcp.mx1.example.com"}
	encryptOnly := dane.Host{Outcome: dane.EncryptOnly, BaseDomain: "mx1.example.com",
		RRset: []dns.TLSA{{Usage: 1, Selector: 1, MatchingType: 1, Data: ee.Data}}, Reason: "DANE-18: no usable record"}
	unreachable := dane.Host{Outcome: dane.Unreachable, Err: errors.New("SERVFAIL"),
		Reason: "DANE-04: TLSA lookup for _25._tcp.mx1.example.com failed"}
	notApplicable := dane.Host{Outcome: dane.NotApplicable, Reason: "DANE-10: the address response for mx1.example.com is insecure"}

	type check struct {
		cs   tls.ConnectionState
		auth string // "" means verification must fail
		// match is a fragment of the matched record as the attempt record shows it.
		match string
	}
	tests := []struct {
		name      string
		def       Level
		table     Table
		host      *dane.Host // nil: Input.DANE is nil
		mxSecure  bool
		literal   bool
		lookups   int // how often the TLSA step may run
		mode      smtpclient.TLSMode
		source    Source
		level     Level
		sni       string
		deferIs   error // nil: no deferral
		half      bool
		reason    string // a fragment of Reason
		checks    []check
		auditSeen []check // audit: handshakes that must be accepted whatever DANE says
	}{
		// RFC 7672 §3.1.1, DANE-20: the leaf's key matches; names and dates are not checked.
		{name: "dane/ee/secure-mx", def: LevelDANE, host: &authEE, mxSecure: true, lookups: 1,
			mode: smtpclient.TLSRequired, source: SourceDANE, level: LevelDANE, sni: "mx1.example.com", reason: "DANE-13",
			checks: []check{{selfSigned, dane.AuthDANEEE, "dane-ee 3 1 1"}, {expiredSelf, "", ""}, {other, "", ""}, {caMX, "", ""}}},
		// DANE-20: an expired certificate whose key is published is fine.
		{name: "dane/ee/expired-leaf", def: LevelDANE, host: &dane.Host{Outcome: dane.Authenticate, BaseDomain: "mx1.example.com",
			Records: []dns.TLSA{tlsaEE(expiredSelf)}}, mxSecure: true, lookups: 1,
			mode: smtpclient.TLSRequired, source: SourceDANE, level: LevelDANE, sni: "mx1.example.com",
			checks: []check{{expiredSelf, dane.AuthDANEEE, "dane-ee"}, {selfSigned, "", ""}}},
		// DANE-21, DANE-22: the chain to the published issuer, and a reference
		// identifier: the base domain, or after a secure MX lookup the next-hop domain.
		{name: "dane/ta/secure-mx", def: LevelDANE, host: &authTA, mxSecure: true, lookups: 1,
			mode: smtpclient.TLSRequired, source: SourceDANE, level: LevelDANE, sni: "mx1.example.com",
			checks: []check{{caMX, dane.AuthDANETA, "name mx1.example.com"}, {caNextHop, dane.AuthDANETA, "name example.com"},
				{caElsewhere, "", ""}, {caExpired, "", ""}, {selfSigned, "", ""}}},
		// DANE-07, DANE-22: over an insecure MX the MX host name is the only identifier,
		// and the decision says so.
		{name: "dane/ta/half-dane", def: LevelDANE, host: &authTA, mxSecure: false, lookups: 1,
			mode: smtpclient.TLSRequired, source: SourceDANE, level: LevelDANE, sni: "mx1.example.com", half: true, reason: "half-dane:",
			checks: []check{{caMX, dane.AuthDANETA, "name mx1.example.com"}, {caNextHop, "", ""}}},
		{name: "dane/ee/half-dane", def: LevelDANE, host: &authEE, mxSecure: false, lookups: 1,
			mode: smtpclient.TLSRequired, source: SourceDANE, level: LevelDANE, sni: "mx1.example.com", half: true, reason: "half-dane:",
			checks: []check{{selfSigned, dane.AuthDANEEE, "dane-ee"}, {other, "", ""}}},
		// DANE-18: TLS required, any certificate.
		{name: "dane/encrypt-only", def: LevelDANE, host: &encryptOnly, mxSecure: true, lookups: 1,
			mode: smtpclient.TLSRequired, source: SourceDANE, level: LevelEncrypt, sni: "mx1.example.com", reason: "DANE-18"},
		// DANE-04: the host is skipped, never used without DANE.
		{name: "dane/unreachable", def: LevelDANE, host: &unreachable, mxSecure: true, lookups: 1,
			mode: smtpclient.TLSRequired, source: SourceDANE, level: LevelDANE, deferIs: ErrTLSAUnreachable, reason: "DANE-04"},
		{name: "dane/unreachable/half-dane", def: LevelDANE, host: &unreachable, mxSecure: false, lookups: 1,
			mode: smtpclient.TLSRequired, source: SourceDANE, level: LevelDANE, deferIs: ErrTLSAUnreachable},
		// RFC 7672 §2.2.1 ¶7: no secure TLSA RRset, pre-DANE opportunistic TLS.
		{name: "dane/not-applicable", def: LevelDANE, host: &notApplicable, mxSecure: true, lookups: 1,
			mode: smtpclient.TLSOpportunistic, source: SourceOpportunistic, level: LevelMay, reason: "DANE does not apply: DANE-10"},
		// DANE-14: an address literal gets no TLSA lookup.
		{name: "dane/literal", def: LevelDANE, host: &authEE, literal: true, lookups: 0,
			mode: smtpclient.TLSOpportunistic, source: SourceOpportunistic, level: LevelMay, reason: "DANE-14"},
		{name: "dane/no-lookup-available", def: LevelDANE, mxSecure: true,
			mode: smtpclient.TLSOpportunistic, source: SourceOpportunistic, level: LevelMay, reason: "DANE does not apply"},
		// §14.8: an operator's dane entry is a local source until the records decide.
		{name: "local-dane/ee", table: Table{"example.com": {Level: LevelDANE}}, host: &authEE, mxSecure: true, lookups: 1,
			mode: smtpclient.TLSRequired, source: SourceDANE, level: LevelDANE, sni: "mx1.example.com", reason: `local policy "dane"`,
			checks: []check{{selfSigned, dane.AuthDANEEE, "dane-ee"}}},
		{name: "local-dane/not-applicable", table: Table{"example.com": {Level: LevelDANE}}, host: &notApplicable, mxSecure: true, lookups: 1,
			mode: smtpclient.TLSOpportunistic, source: SourceLocal, level: LevelMay},
		// DANE-26: mandatory DANE.
		{name: "dane-only/ee", table: Table{"example.com": {Level: LevelDANEOnly}}, host: &authEE, mxSecure: true, lookups: 1,
			mode: smtpclient.TLSRequired, source: SourceDANE, level: LevelDANEOnly, sni: "mx1.example.com",
			checks: []check{{selfSigned, dane.AuthDANEEE, "dane-ee"}, {other, "", ""}}},
		{name: "dane-only/insecure-mx", table: Table{"example.com": {Level: LevelDANEOnly}}, host: &authEE, mxSecure: false, lookups: 0,
			mode: smtpclient.TLSRequired, source: SourceLocal, level: LevelDANEOnly, deferIs: ErrDANEUnavailable, reason: "DANE-07"},
		{name: "dane-only/not-applicable", table: Table{"example.com": {Level: LevelDANEOnly}}, host: &notApplicable, mxSecure: true, lookups: 1,
			mode: smtpclient.TLSRequired, source: SourceLocal, level: LevelDANEOnly, deferIs: ErrDANEUnavailable},
		{name: "dane-only/encrypt-only", table: Table{"example.com": {Level: LevelDANEOnly}}, host: &encryptOnly, mxSecure: true, lookups: 1,
			mode: smtpclient.TLSRequired, source: SourceDANE, level: LevelDANEOnly, deferIs: ErrDANEUnavailable},
		{name: "dane-only/unreachable", table: Table{"example.com": {Level: LevelDANEOnly}}, host: &unreachable, mxSecure: true, lookups: 1,
			mode: smtpclient.TLSRequired, source: SourceDANE, level: LevelDANEOnly, deferIs: ErrTLSAUnreachable},
		{name: "default-dane-only/literal", def: LevelDANEOnly, host: &authEE, literal: true, lookups: 0,
			mode: smtpclient.TLSRequired, source: SourceLocal, level: LevelDANEOnly, deferIs: ErrDANEUnavailable, reason: "DANE-14"},
		// §14.8 and DANE-19: an explicit entry overrides DANE (the per-destination
		// opt-out), and no TLSA lookup is made for it.
		{name: "opt-out/may", def: LevelDANE, table: Table{"example.com": {Level: LevelMay}}, host: &authEE, mxSecure: true, lookups: 0,
			mode: smtpclient.TLSOpportunistic, source: SourceLocal, level: LevelMay, reason: `local policy "may"`},
		{name: "opt-out/encrypt", def: LevelDANE, table: Table{"example.com": {Level: LevelEncrypt}}, host: &authEE, mxSecure: true, lookups: 0,
			mode: smtpclient.TLSRequired, source: SourceLocal, level: LevelEncrypt},
		{name: "default-may/no-lookup", def: "", host: &authEE, mxSecure: true, lookups: 0,
			mode: smtpclient.TLSOpportunistic, source: SourceOpportunistic, level: LevelMay},
		// DANE-19: audit logs what DANE would do and delivers as may would.
		{name: "audit/ee", table: Table{"example.com": {Level: LevelDANE, Audit: true}}, host: &authEE, mxSecure: true, lookups: 1,
			mode: smtpclient.TLSOpportunistic, source: SourceLocal, level: LevelMay, sni: "mx1.example.com",
			reason:    "audit: DANE would have required TLS authenticated by TLSA records",
			auditSeen: []check{{selfSigned, "", "dane-ee 3 1 1"}, {other, "", ""}}},
		{name: "audit/half-dane", table: Table{"example.com": {Level: LevelDANE, Audit: true}}, host: &authEE, mxSecure: false, lookups: 1,
			mode: smtpclient.TLSOpportunistic, source: SourceLocal, level: LevelMay, sni: "mx1.example.com",
			reason:    "of the MX host only (half-dane, DANE-07)",
			auditSeen: []check{{selfSigned, "", "dane-ee"}}},
		{name: "audit/unreachable", table: Table{"example.com": {Level: LevelDANE, Audit: true}}, host: &unreachable, mxSecure: true, lookups: 1,
			mode: smtpclient.TLSOpportunistic, source: SourceLocal, level: LevelMay, reason: "audit: DANE would have skipped the host: DANE-04"},
		{name: "audit/dane-only/insecure-mx", table: Table{"example.com": {Level: LevelDANEOnly, Audit: true}}, host: &authEE, mxSecure: false, lookups: 1,
			mode: smtpclient.TLSOpportunistic, source: SourceLocal, level: LevelMay, reason: "audit: DANE would have deferred"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			in := Input{NextHop: "example.com", MXHost: "mx1.example.com", Literal: tt.literal, Default: tt.def, Table: tt.table,
				Roots: p.pool, Now: func() time.Time { return now },
				DANEDest: dane.Destination{NextHop: "example.com", MXSecure: tt.mxSecure, MXHost: "mx1.example.com"}}
			if tt.literal {
				in.NextHop, in.MXHost, in.DANEDest = "[192.0.2.1]", "", dane.Destination{}
			}
			if tt.host != nil {
				in.DANE = func() dane.Host { calls++; return *tt.host }
			}
			d := Decide(in)
			if calls != tt.lookups {
				t.Errorf("TLSA step taken %d times, want %d", calls, tt.lookups)
			}
			if d.Security.Mode != tt.mode || d.Source != tt.source || d.Level != tt.level || d.Security.ServerName != tt.sni || d.HalfDANE != tt.half {
				t.Fatalf("decision mode %v source %s level %s sni %q half %v; want %v %s %s %q %v (reason %q)",
					d.Security.Mode, d.Source, d.Level, d.Security.ServerName, d.HalfDANE, tt.mode, tt.source, tt.level, tt.sni, tt.half, d.Reason)
			}
			switch {
			case tt.deferIs == nil && d.Defer != nil:
				t.Fatalf("deferred: %v", d.Defer)
			case tt.deferIs != nil && !errors.Is(d.Defer, tt.deferIs):
				t.Fatalf("defer %v, want %v", d.Defer, tt.deferIs)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q lacks %q", d.Reason, tt.reason)
			}
			if tt.half != strings.HasPrefix(d.Reason, "half-dane:") {
				t.Errorf("half-DANE %v but reason %q", tt.half, d.Reason)
			}
			if tt.checks == nil && tt.auditSeen == nil && d.Security.Verify != nil {
				t.Error("a requirement without authentication has a Verify")
			}
			if (tt.checks != nil || tt.auditSeen != nil) != (d.Result != nil) {
				t.Errorf("Result %v with checks %v", d.Result, tt.checks != nil)
			}
			for i, c := range tt.checks {
				auth, err := d.Security.Verify(c.cs)
				m, merr, checked := d.Result.Get()
				if !checked || !errors.Is(merr, err) {
					t.Errorf("check %d: result not kept: %v %v", i, merr, checked)
				}
				if c.auth == "" {
					if err == nil || !errors.Is(err, dane.ErrNotAuthenticated) {
						t.Errorf("check %d: accepted (%s), want a DANE failure", i, auth)
					}
					continue
				}
				if err != nil || auth != c.auth || !strings.Contains(m.String(), c.match) {
					t.Errorf("check %d: %q, %v, match %q; want %q with %q", i, auth, err, m, c.auth, c.match)
				}
			}
			for i, c := range tt.auditSeen {
				auth, err := d.Security.Verify(c.cs)
				if err != nil || auth != "" {
					t.Errorf("audit check %d: %q, %v; audit must accept every certificate unauthenticated", i, auth, err)
				}
				m, merr, _ := d.Result.Get()
				if (c.match != "") != (merr == nil) || !strings.Contains(m.String(), c.match) {
					t.Errorf("audit check %d: kept %q, %v; want match %q", i, m, merr, c.match)
				}
			}
		})
	}
}

func TestParsePolicyAudit(t *testing.T) {
	tests := []struct {
		in    string
		audit bool
		err   string
	}{
		{"dane audit", true, ""},
		{"DANE-ONLY, AUDIT", true, ""},
		{"dane", false, ""},
		{"may audit", false, "audit applies only"},
		{"secure audit", false, "audit applies only"},
		{"dane audit=yes", false, "unknown attribute"},
	}
	for _, tt := range tests {
		p, err := ParsePolicy(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParsePolicy(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || p.Audit != tt.audit {
			t.Errorf("ParsePolicy(%q) = %+v, %v; want audit %v", tt.in, p, err, tt.audit)
		}
	}
}
