package tlspolicy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"mxward/internal/dane"
	"mxward/internal/dns"
	"mxward/internal/mtasts"
	"mxward/internal/pin"
	"mxward/internal/policylist"
	"mxward/internal/smtpclient"
)

// TestDecidePin is the table of where a pin stands in the precedence of decision 14.8:
// below the operator's table, DANE, an MTA-STS policy and a list entry in mode
// enforce; above opportunistic TLS, and above a policy in mode testing, which asks for
// nothing (STS-23). A pin requires TLS with any certificate (level encrypt), so a
// stripped STARTTLS fails the session (4.7.4 in delivery) and no plaintext retry is
// possible.
func TestDecidePin(t *testing.T) {
	p := newPKI(t)
	selfSigned := p.leaf(t, []string{"mx1.example.com"}, true, false)
	ee := tlsaEE(selfSigned)
	authEE := dane.Host{Outcome: dane.Authenticate, BaseDomain: "mx1.example.com", RRset: []dns.TLSA{ee}, Records: []dns.TLSA{ee},
		Reason: "DANE-13: secure TLSA RRset"}
	encryptOnly := dane.Host{Outcome: dane.EncryptOnly, BaseDomain: "mx1.example.com", Reason: "DANE-18: no usable record"}
	notApplicable := dane.Host{Outcome: dane.NotApplicable, Reason: "DANE-13: no secure TLSA RRset"}

	live := pin.Entry{Domain: "example.com", FirstSeen: time.Date(2026, 5, 2, 10, 0, 0, 0, time.UTC), Count: 5,
		Expires: time.Date(2026, 6, 28, 10, 0, 0, 0, time.UTC)}
	tests := []struct {
		name    string
		def     Level
		table   Table
		literal bool
		host    *dane.Host
		sts     *mtasts.Result
		list    *policylist.Entry
		pinLive bool
		pinErr  error
		pins    int // pin lookups expected

		source Source
		level  Level
		mode   smtpclient.TLSMode
		reason string
		note   string
	}{
		{name: "live pin requires TLS", pinLive: true, pins: 1,
			source: SourcePin, level: LevelEncrypt, mode: smtpclient.TLSRequired,
			reason: "pinned: STARTTLS completed 5 times since 2026-05-02, expires 2026-06-28 (decision 14.8)"},
		{name: "live pin at default level may", def: LevelMay, pinLive: true, pins: 1,
			source: SourcePin, level: LevelEncrypt, mode: smtpclient.TLSRequired, reason: "pinned:"},
		{name: "DANE not applicable, pin decides", host: &notApplicable, pinLive: true, pins: 1,
			source: SourcePin, level: LevelEncrypt, mode: smtpclient.TLSRequired, reason: "DANE does not apply"},
		{name: "observed or expired: opportunistic", pinLive: false, pins: 1,
			source: SourceOpportunistic, level: LevelMay, mode: smtpclient.TLSOpportunistic},
		// A broken pin store must not stop mail: no pin, and the record says so.
		{name: "lookup error is no pin", pinErr: errors.New("read pin entry: permission denied"), pins: 1,
			source: SourceOpportunistic, level: LevelMay, mode: smtpclient.TLSOpportunistic,
			reason: "pin: lookup failed, delivering without it", note: "permission denied"},
		// 14.8: everything above the pin decides alone, and the pin is not even read.
		{name: "DANE beats pin", host: &authEE, pinLive: true, pins: 0,
			source: SourceDANE, level: LevelDANE, mode: smtpclient.TLSRequired},
		{name: "DANE encrypt-only beats pin", host: &encryptOnly, pinLive: true, pins: 0,
			source: SourceDANE, level: LevelEncrypt, mode: smtpclient.TLSRequired},
		{name: "MTA-STS enforce beats pin", sts: stsResult(mtasts.ModeEnforce, mtasts.SourceLive, "mx1.example.com"), pinLive: true, pins: 0,
			source: SourceMTASTS, level: LevelSecure, mode: smtpclient.TLSRequired},
		{name: "list enforce beats pin", list: listEntry(policylist.ModeEnforce, policylist.LevelSecure, "mx1.example.com"), pinLive: true, pins: 0,
			source: SourceList, level: LevelSecure, mode: smtpclient.TLSRequired},
		{name: "local table beats pin", table: Table{"example.com": {Level: LevelMay}}, pinLive: true, pins: 0,
			source: SourceLocal, level: LevelMay, mode: smtpclient.TLSOpportunistic},
		{name: "local none beats pin", table: Table{".com": {Level: LevelNone}}, pinLive: true, pins: 0,
			source: SourceLocal, level: LevelNone, mode: smtpclient.TLSDisabled},
		{name: "global default encrypt is the operator's", def: LevelEncrypt, pinLive: true, pins: 0,
			source: SourceLocal, level: LevelEncrypt, mode: smtpclient.TLSRequired},
		{name: "global default none is the operator's", def: LevelNone, pinLive: true, pins: 0,
			source: SourceLocal, level: LevelNone, mode: smtpclient.TLSDisabled},
		// STS-23: testing asks for nothing, so the pin still requires TLS; what testing
		// records is kept.
		{name: "MTA-STS testing does not stand in the way", sts: stsResult(mtasts.ModeTesting, mtasts.SourceLive, "mx1.example.com"),
			pinLive: true, pins: 1, source: SourcePin, level: LevelEncrypt, mode: smtpclient.TLSRequired,
			reason: `mode testing, mx mx1.example.com matches "mx1.example.com"`},
		{name: "list testing does not stand in the way", list: listEntry(policylist.ModeTesting, policylist.LevelSecure, "mx1.example.com"),
			pinLive: true, pins: 1, source: SourcePin, level: LevelEncrypt, mode: smtpclient.TLSRequired},
		{name: "MTA-STS testing without pin", sts: stsResult(mtasts.ModeTesting, mtasts.SourceLive, "mx1.example.com"),
			pinLive: false, pins: 1, source: SourceMTASTS, level: LevelMay, mode: smtpclient.TLSOpportunistic},
		// An address literal has no domain to pin.
		{name: "literal", literal: true, pinLive: true, pins: 0,
			source: SourceOpportunistic, level: LevelMay, mode: smtpclient.TLSOpportunistic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := tt.def
			if def == "" {
				def = LevelDANE
			}
			pins := 0
			in := Input{NextHop: "example.com", MXHost: "mx1.example.com", Literal: tt.literal, Default: def,
				Table: tt.table, Roots: p.pool, Now: func() time.Time { return now },
				Pin: func() (pin.Entry, bool, error) {
					pins++
					return live, tt.pinLive, tt.pinErr
				}}
			if tt.literal {
				in.MXHost = ""
			}
			if tt.host != nil {
				h := *tt.host
				in.DANE = func() dane.Host { return h }
				in.DANEDest = dane.Destination{MXSecure: true}
			}
			if tt.sts != nil {
				r := *tt.sts
				in.MTASTS = func() (mtasts.Result, error) { return r, nil }
			}
			if tt.list != nil {
				e := *tt.list
				in.List = func() (policylist.Entry, bool, error) { return e, true, nil }
			}
			d := Decide(in)
			if pins != tt.pins {
				t.Errorf("pin looked up %d times, want %d", pins, tt.pins)
			}
			if d.Source != tt.source || d.Level != tt.level || d.Security.Mode != tt.mode {
				t.Fatalf("source %s level %s mode %v; want %s %s %v (reason %q)", d.Source, d.Level, d.Security.Mode,
					tt.source, tt.level, tt.mode, d.Reason)
			}
			if d.Defer != nil {
				t.Fatalf("deferred: %v", d.Defer)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q lacks %q", d.Reason, tt.reason)
			}
			if notes := strings.Join(d.Notes, "; "); !strings.Contains(notes, tt.note) || (tt.note == "" && notes != "") {
				t.Errorf("notes %q, want %q", notes, tt.note)
			}
			if (d.Pin != nil) != (tt.source == SourcePin) {
				t.Fatalf("Pin %+v for source %s", d.Pin, d.Source)
			}
			if d.Pin != nil {
				if !strings.Contains(d.Reason, d.Pin.Summary) || d.Pin.Entry.Domain != "example.com" {
					t.Errorf("pin use %+v, reason %q", d.Pin, d.Reason)
				}
				// A pin authenticates nothing: any certificate passes whatever check
				// the session carries (testing only records).
				if d.Security.Verify != nil {
					if _, err := d.Security.Verify(selfSigned); err != nil {
						t.Errorf("a pinned session refused a self-signed certificate: %v", err)
					}
				}
				if !d.RequiresTLS() {
					t.Error("a pin that allows plaintext")
				}
			}
		})
	}
}
