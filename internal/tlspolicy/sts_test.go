package tlspolicy

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"mxward/internal/dane"
	"mxward/internal/dns"
	"mxward/internal/mtasts"
	"mxward/internal/policylist"
	"mxward/internal/smtpclient"
)

func stsResult(mode mtasts.Mode, source string, mx ...string) *mtasts.Result {
	return &mtasts.Result{Policy: &mtasts.Policy{Version: "STSv1", Mode: mode, MX: mx, MaxAge: 24 * time.Hour},
		Source: source, ID: "20260301", Reason: "policy fetched"}
}

func listEntry(mode policylist.Mode, level string, mxs ...string) *policylist.Entry {
	return &policylist.Entry{Domain: "example.com", Mode: mode, MXs: mxs, MinTLS: level, MinVersion: tls.VersionTLS12}
}

// TestDecideSTS is the table of the precedence of §14.8 below the operator's table and
// of the MTA-STS (STS-17 … STS-25) and static list (LIST-03 … LIST-06) rules, for one
// host: which source decides, how often each lazy lookup runs, and which handshakes the
// requirement accepts.
func TestDecideSTS(t *testing.T) {
	p := newPKI(t)
	caMX := p.leaf(t, []string{"mx1.example.com"}, false, false)
	caWildcard := p.leaf(t, []string{"*.example.com"}, false, false)
	caNextHop := p.leaf(t, []string{"example.com"}, false, false)
	caAttacker := p.leaf(t, []string{"mx.attacker.test"}, false, false)
	selfSigned := p.leaf(t, []string{"mx1.example.com"}, true, false)
	expired := p.leaf(t, []string{"mx1.example.com"}, false, true)
	old := caMX
	old.Version = tls.VersionTLS11

	ee := tlsaEE(selfSigned)
	authEE := dane.Host{Outcome: dane.Authenticate, BaseDomain: "mx1.example.com", RRset: []dns.TLSA{ee}, Records: []dns.TLSA{ee},
		Reason: "DANE-13: secure TLSA RRset"}
	encryptOnly := dane.Host{Outcome: dane.EncryptOnly, BaseDomain: "mx1.example.com", Reason: "DANE-18: no usable record"}
	unreachable := dane.Host{Outcome: dane.Unreachable, Err: errors.New("SERVFAIL"), Reason: "DANE-04: TLSA lookup failed"}
	notApplicable := dane.Host{Outcome: dane.NotApplicable, Reason: "DANE-13: no secure TLSA RRset"}

	expiredList := &policylist.ExpiredError{Expires: now.Add(-time.Hour), Now: now, Author: "test"}

	type check struct {
		cs   tls.ConnectionState
		auth string // "" means the requirement must refuse it (enforce) or record a failure (testing)
	}
	tests := []struct {
		name     string
		def      Level
		table    Table
		mx       string // "": mx1.example.com
		literal  bool
		host     *dane.Host // nil: no TLSA step possible
		sts      *mtasts.Result
		stsErr   error
		list     *policylist.Entry
		listErr  error
		stsCalls int
		lists    int

		source  Source
		level   Level
		mode    smtpclient.TLSMode
		sni     string
		deferIs error
		testing bool
		fail    bool   // testing: enforce would have skipped the host
		reason  string // a fragment of Reason
		note    string // a fragment of Notes
		checks  []check
	}{
		// STS-17, STS-18, STS-19: the MX name matches; a Web PKI chain valid for the MX
		// host name, over TLS 1.2 or later, with the MX host name as SNI.
		{name: "sts/enforce/exact", def: LevelDANE, host: &notApplicable,
			sts: stsResult(mtasts.ModeEnforce, mtasts.SourceLive, "mx1.example.com"), stsCalls: 1,
			source: SourceMTASTS, level: LevelSecure, mode: smtpclient.TLSRequired, sni: "mx1.example.com",
			reason: `mta-sts policy "20260301" (live), mode enforce, mx mx1.example.com matches "mx1.example.com"`,
			checks: []check{{caMX, "webpki"}, {caWildcard, "webpki"}, {caNextHop, ""}, {caAttacker, ""}, {selfSigned, ""}, {expired, ""}, {old, ""}}},
		// STS-17: a wildcard covers one label.
		{name: "sts/enforce/wildcard-one-label", def: LevelDANE, host: &notApplicable,
			sts: stsResult(mtasts.ModeEnforce, mtasts.SourceCache, "*.example.com"), stsCalls: 1,
			source: SourceMTASTS, level: LevelSecure, mode: smtpclient.TLSRequired, sni: "mx1.example.com",
			reason: `(cache), mode enforce, mx mx1.example.com matches "*.example.com"`, checks: []check{{caMX, "webpki"}}},
		{name: "sts/enforce/wildcard-two-labels", def: LevelDANE, mx: "a.mx1.example.com", host: &notApplicable,
			sts: stsResult(mtasts.ModeEnforce, mtasts.SourceLive, "*.example.com"), stsCalls: 1,
			source: SourceMTASTS, level: LevelSecure, mode: smtpclient.TLSRequired, sni: "a.mx1.example.com", deferIs: ErrMXNotInPolicy,
			reason: "matches no pattern"},
		{name: "sts/enforce/wildcard-not-the-parent", def: LevelDANE, mx: "example.com", host: &notApplicable,
			sts: stsResult(mtasts.ModeEnforce, mtasts.SourceLive, "*.example.com"), stsCalls: 1,
			source: SourceMTASTS, level: LevelSecure, mode: smtpclient.TLSRequired, sni: "example.com", deferIs: ErrMXNotInPolicy},
		// STS-20, decision 3: a forged MX is skipped, whatever certificate it has.
		{name: "sts/enforce/forged-mx", def: LevelDANE, mx: "mx.attacker.test", host: &notApplicable,
			sts: stsResult(mtasts.ModeEnforce, mtasts.SourceLive, "mx1.example.com", "*.example.com"), stsCalls: 1,
			source: SourceMTASTS, level: LevelSecure, mode: smtpclient.TLSRequired, sni: "mx.attacker.test", deferIs: ErrMXNotInPolicy,
			reason: "mx mx.attacker.test matches no pattern"},
		// Matching ignores case and a trailing dot.
		{name: "sts/enforce/case-and-dot", def: LevelDANE, mx: "MX1.Example.COM.", host: &notApplicable,
			sts: stsResult(mtasts.ModeEnforce, mtasts.SourceLive, "mx1.example.com"), stsCalls: 1,
			source: SourceMTASTS, level: LevelSecure, mode: smtpclient.TLSRequired, sni: "mx1.example.com", checks: []check{{caMX, "webpki"}}},
		// STS-23: testing delivers as opportunistic TLS would, and records the check.
		{name: "sts/testing/match", def: LevelDANE, host: &notApplicable,
			sts: stsResult(mtasts.ModeTesting, mtasts.SourceLive, "mx1.example.com"), stsCalls: 1,
			source: SourceMTASTS, level: LevelMay, mode: smtpclient.TLSOpportunistic, sni: "mx1.example.com", testing: true,
			reason: "mode testing", checks: []check{{caMX, "webpki"}, {selfSigned, ""}, {caAttacker, ""}}},
		{name: "sts/testing/forged-mx", def: LevelDANE, mx: "mx.attacker.test", host: &notApplicable,
			sts: stsResult(mtasts.ModeTesting, mtasts.SourceLive, "mx1.example.com"), stsCalls: 1,
			source: SourceMTASTS, level: LevelMay, mode: smtpclient.TLSOpportunistic, sni: "mx.attacker.test", testing: true, fail: true},
		// STS-24: mode none is no policy; the list, then opportunistic TLS.
		{name: "sts/none", def: LevelDANE, host: &notApplicable,
			sts: stsResult(mtasts.ModeNone, mtasts.SourceLive), stsCalls: 1,
			source: SourceOpportunistic, level: LevelMay, mode: smtpclient.TLSOpportunistic, reason: "mode none (STS-24)"},
		{name: "sts/none/list", def: LevelDANE, host: &notApplicable,
			sts: stsResult(mtasts.ModeNone, mtasts.SourceLive), stsCalls: 1,
			list: listEntry(policylist.ModeEnforce, policylist.LevelSecure, "mx1.example.com"), lists: 1,
			source: SourceList, level: LevelSecure, mode: smtpclient.TLSRequired, sni: "mx1.example.com", checks: []check{{caMX, "webpki"}}},
		// STS-10: a failed fetch with nothing cached is no policy, and the record says so.
		{name: "sts/fetch-failed", def: LevelDANE, host: &notApplicable,
			sts:      &mtasts.Result{Reason: "policy fetch failed, treating the domain as without MTA-STS (STS-10)", FetchError: errors.New("connection refused")},
			stsCalls: 1, source: SourceOpportunistic, level: LevelMay, mode: smtpclient.TLSOpportunistic, note: "STS-10"},
		// The TXT lookup failed and nothing is cached: deliver without, and say so.
		{name: "sts/temporary", def: LevelDANE, host: &notApplicable,
			sts: &mtasts.Result{Temporary: true, Reason: "TXT lookup failed and no policy is cached: SERVFAIL"}, stsErr: errors.New("SERVFAIL"),
			stsCalls: 1, source: SourceOpportunistic, level: LevelMay, mode: smtpclient.TLSOpportunistic, note: "mta-sts: policy unknown"},
		{name: "sts/temporary/list", def: LevelDANE, host: &notApplicable,
			sts: &mtasts.Result{Temporary: true, Reason: "TXT lookup failed"}, stsErr: errors.New("SERVFAIL"), stsCalls: 1,
			list: listEntry(policylist.ModeEnforce, policylist.LevelSecure, ".example.com"), lists: 1,
			source: SourceList, level: LevelSecure, mode: smtpclient.TLSRequired, sni: "mx1.example.com", note: "mta-sts: policy unknown"},
		// STS-25: DANE decides whenever its TLSA step says anything; MTA-STS is not
		// even looked up.
		{name: "dane-authenticate-beats-sts", def: LevelDANE, host: &authEE,
			sts:    stsResult(mtasts.ModeEnforce, mtasts.SourceLive, "mx1.example.com"),
			source: SourceDANE, level: LevelDANE, mode: smtpclient.TLSRequired, sni: "mx1.example.com",
			checks: []check{{selfSigned, dane.AuthDANEEE}, {caMX, ""}}},
		{name: "dane-unreachable-not-rescued", def: LevelDANE, host: &unreachable,
			sts:    stsResult(mtasts.ModeEnforce, mtasts.SourceLive, "mx1.example.com"),
			list:   listEntry(policylist.ModeEnforce, policylist.LevelSecure, "mx1.example.com"),
			source: SourceDANE, level: LevelDANE, mode: smtpclient.TLSRequired, deferIs: ErrTLSAUnreachable},
		{name: "dane-encrypt-only-beats-sts", def: LevelDANE, host: &encryptOnly,
			sts:    stsResult(mtasts.ModeEnforce, mtasts.SourceLive, "mx1.example.com"),
			source: SourceDANE, level: LevelEncrypt, mode: smtpclient.TLSRequired, sni: "mx1.example.com"},
		// DANE does not apply: MTA-STS decides.
		{name: "dane-not-applicable/sts", def: LevelDANE, host: &notApplicable,
			sts: stsResult(mtasts.ModeEnforce, mtasts.SourceLive, "mx1.example.com"), stsCalls: 1,
			source: SourceMTASTS, level: LevelSecure, mode: smtpclient.TLSRequired, sni: "mx1.example.com",
			reason: "DANE does not apply: DANE-13", checks: []check{{caMX, "webpki"}}},
		// No TLSA step at level may; MTA-STS still applies.
		{name: "default-may/sts", def: LevelMay,
			sts: stsResult(mtasts.ModeEnforce, mtasts.SourceCache, "mx1.example.com"), stsCalls: 1,
			source: SourceMTASTS, level: LevelSecure, mode: smtpclient.TLSRequired, sni: "mx1.example.com"},
		// LIST-06: the list never overrides MTA-STS; it is not consulted.
		{name: "list-under-sts", def: LevelDANE, host: &notApplicable,
			sts: stsResult(mtasts.ModeTesting, mtasts.SourceLive, "mx1.example.com"), stsCalls: 1,
			list:   listEntry(policylist.ModeEnforce, policylist.LevelSecure, "mx9.example.com"),
			source: SourceMTASTS, level: LevelMay, mode: smtpclient.TLSOpportunistic, sni: "mx1.example.com", testing: true},
		// LIST-03, decision 5: suffixes match at any depth; the certificate must be
		// valid for the MX host name.
		{name: "list/enforce/suffix-any-depth", def: LevelDANE, mx: "a.mx1.example.com", host: &notApplicable,
			list: listEntry(policylist.ModeEnforce, policylist.LevelSecure, ".example.com"), lists: 1,
			source: SourceList, level: LevelSecure, mode: smtpclient.TLSRequired, sni: "a.mx1.example.com",
			reason: `static list entry for example.com, mode enforce, mx a.mx1.example.com matches ".example.com"`,
			checks: []check{{p.leaf(t, []string{"a.mx1.example.com"}, false, false), "webpki"}, {caMX, ""}}},
		{name: "list/enforce/verify", def: LevelDANE, host: &notApplicable,
			list: listEntry(policylist.ModeEnforce, policylist.LevelVerify, "mx1.example.com"), lists: 1,
			source: SourceList, level: LevelSecure, mode: smtpclient.TLSRequired, sni: "mx1.example.com",
			checks: []check{{caMX, "webpki"}, {selfSigned, ""}, {old, ""}}},
		{name: "list/enforce/forged-mx", def: LevelDANE, mx: "mx.attacker.test", host: &notApplicable,
			list: listEntry(policylist.ModeEnforce, policylist.LevelSecure, ".example.com"), lists: 1,
			source: SourceList, level: LevelSecure, mode: smtpclient.TLSRequired, sni: "mx.attacker.test", deferIs: ErrMXNotInPolicy},
		// An encrypt entry requires TLS and nothing more.
		{name: "list/enforce/encrypt", def: LevelDANE, host: &notApplicable,
			list: listEntry(policylist.ModeEnforce, policylist.LevelEncrypt, "mx1.example.com"), lists: 1,
			source: SourceList, level: LevelEncrypt, mode: smtpclient.TLSRequired, sni: "mx1.example.com",
			checks: []check{{selfSigned, "none"}, {old, ""}}},
		{name: "list/enforce/tls13", def: LevelDANE, host: &notApplicable,
			list: &policylist.Entry{Domain: "example.com", Mode: policylist.ModeEnforce, MXs: []string{"mx1.example.com"},
				MinTLS: policylist.LevelSecure, MinVersion: tls.VersionTLS13}, lists: 1,
			source: SourceList, level: LevelSecure, mode: smtpclient.TLSRequired, sni: "mx1.example.com",
			checks: []check{{tls13(caMX), "webpki"}, {tls12(caMX), ""}}},
		{name: "list/testing", def: LevelDANE, host: &notApplicable,
			list: listEntry(policylist.ModeTesting, policylist.LevelSecure, "mx1.example.com"), lists: 1,
			source: SourceList, level: LevelMay, mode: smtpclient.TLSOpportunistic, sni: "mx1.example.com", testing: true,
			checks: []check{{caMX, "webpki"}, {selfSigned, ""}}},
		// LIST-04: an expired list does not apply, and the record says why.
		{name: "list/expired", def: LevelDANE, host: &notApplicable, listErr: expiredList, lists: 1,
			source: SourceOpportunistic, level: LevelMay, mode: smtpclient.TLSOpportunistic, note: "LIST-04"},
		// §14.8: the operator's table decides alone; nothing is looked up.
		{name: "table-overrides-all", def: LevelDANE, table: Table{"example.com": {Level: LevelMay}}, host: &authEE,
			sts:    stsResult(mtasts.ModeEnforce, mtasts.SourceLive, "mx9.example.com"),
			list:   listEntry(policylist.ModeEnforce, policylist.LevelSecure, "mx9.example.com"),
			source: SourceLocal, level: LevelMay, mode: smtpclient.TLSOpportunistic},
		{name: "table-dane-not-applicable", def: LevelDANE, table: Table{"example.com": {Level: LevelDANE}}, host: &notApplicable,
			sts:    stsResult(mtasts.ModeEnforce, mtasts.SourceLive, "mx9.example.com"),
			source: SourceLocal, level: LevelMay, mode: smtpclient.TLSOpportunistic},
		// A global level other than dane and may is the operator's word for every
		// destination.
		{name: "default-encrypt", def: LevelEncrypt,
			sts:    stsResult(mtasts.ModeEnforce, mtasts.SourceLive, "mx9.example.com"),
			source: SourceLocal, level: LevelEncrypt, mode: smtpclient.TLSRequired},
		// STS-01: an address literal has no policy.
		{name: "literal", def: LevelDANE, literal: true,
			sts:    stsResult(mtasts.ModeEnforce, mtasts.SourceLive, "mx9.example.com"),
			list:   listEntry(policylist.ModeEnforce, policylist.LevelSecure, "mx9.example.com"),
			source: SourceOpportunistic, level: LevelMay, mode: smtpclient.TLSOpportunistic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mx := tt.mx
			if mx == "" {
				mx = "mx1.example.com"
			}
			in := Input{NextHop: "example.com", MXHost: mx, Literal: tt.literal, Default: tt.def, Table: tt.table,
				Roots: p.pool, Now: func() time.Time { return now },
				DANEDest: dane.Destination{NextHop: "example.com", MXSecure: true, MXHost: mx}}
			if tt.literal {
				in.NextHop, in.MXHost, in.DANEDest = "[192.0.2.1]", "", dane.Destination{}
			}
			if tt.host != nil {
				in.DANE = func() dane.Host { return *tt.host }
			}
			stsCalls, lists := 0, 0
			if tt.sts != nil {
				in.MTASTS = func() (mtasts.Result, error) { stsCalls++; return *tt.sts, tt.stsErr }
			}
			if tt.list != nil || tt.listErr != nil {
				in.List = func() (policylist.Entry, bool, error) {
					lists++
					if tt.listErr != nil {
						return policylist.Entry{}, false, tt.listErr
					}
					return *tt.list, true, nil
				}
			}
			d := Decide(in)
			if stsCalls != tt.stsCalls || lists != tt.lists {
				t.Errorf("MTA-STS looked up %d times, list %d times; want %d, %d", stsCalls, lists, tt.stsCalls, tt.lists)
			}
			if d.Source != tt.source || d.Level != tt.level || d.Security.Mode != tt.mode || d.Security.ServerName != tt.sni {
				t.Fatalf("decision source %s level %s mode %v sni %q; want %s %s %v %q (reason %q, defer %v)",
					d.Source, d.Level, d.Security.Mode, d.Security.ServerName, tt.source, tt.level, tt.mode, tt.sni, d.Reason, d.Defer)
			}
			switch {
			case tt.deferIs == nil && d.Defer != nil:
				t.Fatalf("deferred: %v", d.Defer)
			case tt.deferIs != nil && !errors.Is(d.Defer, tt.deferIs):
				t.Fatalf("defer %v, want %v", d.Defer, tt.deferIs)
			}
			if d.Defer != nil && d.Security.Mode != smtpclient.TLSRequired {
				t.Error("a deferral that would allow plaintext")
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q lacks %q", d.Reason, tt.reason)
			}
			if notes := strings.Join(d.Notes, "; "); !strings.Contains(notes, tt.note) || (tt.note == "" && notes != "") {
				t.Errorf("notes %q, want %q", notes, tt.note)
			}
			isPolicy := tt.source == SourceMTASTS || tt.source == SourceList
			if (d.Policy != nil) != isPolicy {
				t.Fatalf("Policy %+v for source %s", d.Policy, d.Source)
			}
			if isPolicy {
				if d.Policy.Source != tt.source || d.Policy.Testing != tt.testing || (d.Policy.Fail != "") != tt.fail || d.Policy.Summary == "" {
					t.Errorf("policy use %+v; want testing %v fail %v", d.Policy, tt.testing, tt.fail)
				}
				if !strings.Contains(d.Reason, d.Policy.Summary) {
					t.Errorf("reason %q lacks the summary %q", d.Reason, d.Policy.Summary)
				}
			}
			if tt.checks == nil && d.Security.Verify != nil && d.Source != SourceDANE && !isPolicy {
				t.Error("a requirement without a check has a Verify")
			}
			for i, c := range tt.checks {
				auth, err := d.Security.Verify(c.cs)
				if tt.testing {
					// Never refused, never authenticated (decision 2); the check is recorded.
					if err != nil || auth != "" {
						t.Errorf("check %d: testing returned %q, %v", i, auth, err)
					}
					gotAuth, gotErr, checked := d.Policy.Check.Get()
					if !checked || (c.auth == "") != (gotErr != nil) || (c.auth != "" && gotAuth != c.auth) {
						t.Errorf("check %d: recorded %q, %v (checked %v); want %q", i, gotAuth, gotErr, checked, c.auth)
					}
					continue
				}
				if c.auth == "" {
					if err == nil {
						t.Errorf("check %d: accepted (%s)", i, auth)
					} else if d.Source != SourceDANE && !errors.Is(err, ErrVerify) {
						t.Errorf("check %d: %v is not ErrVerify", i, err)
					}
				} else if err != nil || auth != c.auth {
					t.Errorf("check %d: %q, %v; want %q", i, auth, err, c.auth)
				}
			}
		})
	}
}

// FuzzDecideSTS checks the safety properties of MTA-STS enforce for any MX name and
// pattern: never plaintext, and a host is usable only if it matches a pattern (STS-17,
// STS-20); and a list entry the same way with its own matching (LIST-03).
func FuzzDecideSTS(f *testing.F) {
	for _, s := range [][2]string{{"mx1.example.com", "*.example.com"}, {"a.b.example.com", "*.example.com"},
		{"example.com", "*.example.com"}, {"MX.EXAMPLE.COM.", "mx.example.com"}, {"", "*."}, {"x..example.com", "*..example.com"}} {
		f.Add(s[0], s[1], true)
		f.Add(s[0], s[1], false)
	}
	f.Fuzz(func(t *testing.T, mx, pattern string, list bool) {
		in := Input{NextHop: "example.com", MXHost: mx, Default: LevelDANE,
			DANE: func() dane.Host { return dane.Host{Outcome: dane.NotApplicable, Reason: "none"} }}
		pol := mtasts.Policy{Mode: mtasts.ModeEnforce, MX: []string{pattern}}
		entry := policylist.Entry{Domain: "example.com", Mode: policylist.ModeEnforce, MXs: []string{pattern}, MinTLS: policylist.LevelSecure}
		var matches bool
		if list {
			in.List = func() (policylist.Entry, bool, error) { return entry, true, nil }
			matches = entry.MatchesMX(mx)
		} else {
			in.MTASTS = func() (mtasts.Result, error) {
				return mtasts.Result{Policy: &pol, Source: mtasts.SourceLive, ID: "1"}, nil
			}
			matches = pol.Matches(mx)
		}
		d := Decide(in)
		if d.Security.Mode != smtpclient.TLSRequired {
			t.Fatalf("enforce policy allows mode %v for %q / %q", d.Security.Mode, mx, pattern)
		}
		if matches == (d.Defer != nil) {
			t.Fatalf("mx %q pattern %q: matches %v but defer %v", mx, pattern, matches, d.Defer)
		}
		if d.Defer == nil && d.Security.Verify == nil {
			t.Fatalf("mx %q pattern %q: usable without a certificate check", mx, pattern)
		}
	})
}

func tls12(cs tls.ConnectionState) tls.ConnectionState { cs.Version = tls.VersionTLS12; return cs }
func tls13(cs tls.ConnectionState) tls.ConnectionState { cs.Version = tls.VersionTLS13; return cs }
