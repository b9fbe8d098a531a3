package delivery

// Tests of the outbound engine against receivers on 127.0.0.1. Rule ids (MX-xx, ST-xx,
// PF-xx) and decisions (14.x) refer to the reference semantics.

import (
	"context"
	"crypto/tls"
	"io"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns/dnstest"
	"mxward/internal/spool"
	"mxward/internal/tlspolicy"
)

// Opportunistic TLS (level "may", §9.1): a receiver offering STARTTLS with a self-signed
// certificate gets the message over TLS, logged as untrusted and unauthenticated.
func TestRemoteOpportunisticTLS(t *testing.T) {
	h := newRemoteHarness(t)
	cert := (*testCA)(nil).issue(t, "mx1.example.net")
	rv := startReceiver(t, receiverConfig{cert: &cert, users: []string{"bob@example.net"}})
	r := h.newRemote(rv.port)
	id := h.enqueue(senderAddr, "bob@example.net", keepAddr)

	if n := h.round(r); n != 1 {
		t.Fatalf("scan handed out %d jobs, want 1", n)
	}
	want := expect{
		"result": "delivered", "reply": "~250 2.0.0", "queue_id": string(id), "rcpt": "bob@example.net",
		"domain": "example.net", "mx": "mx1.example.net", "ip": "127.0.0.1", "policy": "opportunistic",
		"tls": "untrusted", "tls_version": "TLSv1.3", "cipher": "~TLS_", "auth": "none", "reason": "",
	}
	h.checkAttempt(id, "bob@example.net", 1, want)
	h.checkLog(id, "bob@example.net", want)
	if _, rc := h.recipient(id, "bob@example.net"); rc.State != spool.StateDelivered || rc.Attempts != 1 {
		t.Errorf("recipient state %s after %d attempts, want delivered after 1", rc.State, rc.Attempts)
	}
	got := rv.messages()
	if len(got) != 1 || got[0].From != senderAddr || len(got[0].Recipients) != 1 || got[0].Recipients[0].Addr != "bob@example.net" {
		t.Fatalf("receiver got %+v", got)
	}
	body := rv.body(t, 0)
	if !strings.Contains(body, "\r\n.leading dot\r\n") || !strings.Contains(body, "Subject: outbound test") {
		t.Errorf("receiver stored a different message:\n%s", body)
	}
	if !strings.Contains(body, "TLSv1.3") {
		t.Errorf("receiver's Received header does not show TLS:\n%s", body)
	}
	// The receiver offered DSN, so it, not mxward, owes any success notice; nothing
	// failed or was delayed.
	if d := h.dsns(); len(d) != 0 {
		t.Errorf("%d DSNs queued, want none", len(d))
	}
}

// One transaction, three answers at RCPT: 550 bounces that recipient with a DSN, 250
// delivers, 452 defers with the first retry interval (MX-12).
func TestRemotePerRecipientOutcomes(t *testing.T) {
	h := newRemoteHarness(t)
	// With one recipient allowed per transaction, the one after the accepted one gets
	// 452 4.5.3 (RFC 5321 §4.5.3.1.10); the unknown one, tried first, gets 550 5.1.1.
	rv := startReceiver(t, receiverConfig{users: []string{"ok@example.net", "full@example.net"}, maxRecipients: 1})
	r := h.newRemote(rv.port)
	id := h.enqueue(senderAddr, "gone@example.net", "ok@example.net", "full@example.net", keepAddr)
	start := h.clock.Now()
	h.round(r)

	common := expect{"domain": "example.net", "mx": "mx1.example.net", "ip": "127.0.0.1",
		"policy": "opportunistic", "tls": "none", "tls_version": "", "cipher": "", "auth": "none"}
	tests := []struct {
		rcpt  string
		state spool.State
		want  expect
	}{
		{"gone@example.net", spool.StateBounced, expect{"result": "bounced", "reply": "550 5.1.1 No such user here", "reason": "rejected by the server"}},
		{"ok@example.net", spool.StateDelivered, expect{"result": "delivered", "reply": "~250 2.0.0", "reason": "plaintext: STARTTLS not offered"}},
		{"full@example.net", spool.StateQueued, expect{"result": "deferred", "reply": "452 4.5.3 Too many recipients", "reason": "temporary failure"}},
	}
	for _, tt := range tests {
		for k, v := range common {
			tt.want[k] = v
		}
		tt.want["rcpt"] = tt.rcpt
		h.checkAttempt(id, tt.rcpt, 1, tt.want)
		h.checkLog(id, tt.rcpt, tt.want)
		_, rc := h.recipient(id, tt.rcpt)
		if rc.State != tt.state || rc.Attempts != 1 {
			t.Errorf("%s: state %s after %d attempts, want %s after 1", tt.rcpt, rc.State, rc.Attempts, tt.state)
		}
		if tt.state == spool.StateQueued {
			// Jitter 0.5 scales the first interval by exactly 1.
			if want := start.Add(5 * time.Minute); !rc.NextAttempt.Equal(want) {
				t.Errorf("%s: next attempt %v, want %v", tt.rcpt, rc.NextAttempt, want)
			}
		}
	}

	got := rv.messages()
	if len(got) != 1 || len(got[0].Recipients) != 1 || got[0].Recipients[0].Addr != "ok@example.net" {
		t.Fatalf("receiver got %+v, want one message for ok@example.net", got)
	}
	ds := h.dsns()
	if len(ds) != 1 {
		t.Fatalf("%d DSNs queued, want 1", len(ds))
	}
	checkDSN(t, ds[0], "gone@example.net", "failed", "5.1.1")
	g := ds[0].recipients[0]
	if d := g.Get("Diagnostic-Code"); d != "smtp; 550 5.1.1 No such user here" {
		t.Errorf("Diagnostic-Code %q", d)
	}
	if m := g.Get("Remote-MTA"); m != "dns; mx1.example.net" {
		t.Errorf("Remote-MTA %q", m)
	}
	if m := ds[0].perMessage.Get("Reporting-MTA"); m != "dns; mxward.origin.test" {
		t.Errorf("Reporting-MTA %q", m)
	}

	// The deferred recipient is not due again before its time, and is tried alone when
	// it is.
	h.clock.Set(start.Add(5*time.Minute - time.Second))
	if n := h.round(r); n != 0 {
		t.Errorf("scan before the retry time handed out %d jobs", n)
	}
	h.clock.Set(start.Add(5 * time.Minute))
	if n := h.round(r); n != 1 {
		t.Fatalf("scan at the retry time handed out %d jobs, want 1", n)
	}
	h.checkAttempt(id, "full@example.net", 2, expect{"result": "delivered", "reply": "~250 2.0.0"})
	got = rv.messages()
	if len(got) != 2 || len(got[1].Recipients) != 1 || got[1].Recipients[0].Addr != "full@example.net" {
		t.Errorf("receiver got %+v, want a second message for full@example.net alone", got)
	}
	if m, _ := h.recipient(id, "gone@example.net"); len(m.Attempts) != 4 {
		t.Errorf("%d attempts recorded, want 4: %+v", len(m.Attempts), m.Attempts)
	}
}

// The STARTTLS stripping attack (ST-10): a man in the middle removes STARTTLS from the EHLO reply, or rewrites it to "XXXXXXXA". Level "may" cannot
// tell and delivers in plaintext (ST-09), as Postfix does; a local policy that requires
// TLS defers with 4.7.4 (§9.1 "encrypt") before any MAIL, and never bounces (14.7).
func TestRemoteStartTLSStripping(t *testing.T) {
	cert := (*testCA)(nil).issue(t, "mx1.example.net")
	local := func(l tlspolicy.Level) func(*Remote) {
		return func(r *Remote) { r.Policies = tlspolicy.Table{"example.net": {Level: l}} }
	}
	tests := []struct {
		name      string
		proxy     bool
		rewrite   bool
		setup     func(*Remote)
		delivered bool
		want      expect
	}{
		{"direct/encrypt", false, false, local(tlspolicy.LevelEncrypt), true,
			expect{"result": "delivered", "policy": "local", "tls": "untrusted", "tls_version": "TLSv1.3", "reason": ""}},
		{"removed/may", true, false, nil, true,
			expect{"result": "delivered", "policy": "opportunistic", "tls": "none", "tls_version": "", "cipher": "", "reason": "plaintext: STARTTLS not offered"}},
		{"rewritten/may", true, true, nil, true,
			expect{"result": "delivered", "policy": "opportunistic", "tls": "none", "tls_version": "", "cipher": "", "reason": "plaintext: STARTTLS not offered"}},
		{"removed/encrypt", true, false, local(tlspolicy.LevelEncrypt), false, nil},
		{"rewritten/encrypt", true, true, local(tlspolicy.LevelEncrypt), false, nil},
		{"removed/verify", true, false, local(tlspolicy.LevelVerify), false, nil},
		{"rewritten/verify", true, true, local(tlspolicy.LevelVerify), false, nil},
		{"removed/default-encrypt", true, false, func(r *Remote) { r.DefaultLevel = tlspolicy.LevelEncrypt }, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRemoteHarness(t)
			rv := startReceiver(t, receiverConfig{cert: &cert, users: []string{"bob@example.net"}})
			port := rv.port
			var p *stripProxy
			if tt.proxy {
				p = startStripProxy(t, rv.port, tt.rewrite)
				port = p.port
			}
			r := h.newRemote(port)
			if tt.setup != nil {
				tt.setup(r)
			}
			id := h.enqueue(senderAddr, "bob@example.net", keepAddr)
			start := h.clock.Now()
			h.round(r)

			want := tt.want
			if !tt.delivered {
				want = expect{"result": "deferred", "reply": "~4.7.4", "reason": "starttls_not_offered",
					"policy": "local", "tls": "none", "tls_version": "", "cipher": ""}
			}
			for k, v := range (expect{"domain": "example.net", "mx": "mx1.example.net", "ip": "127.0.0.1", "auth": "none"}) {
				want[k] = v
			}
			h.checkAttempt(id, "bob@example.net", 1, want)
			h.checkLog(id, "bob@example.net", want)
			_, rc := h.recipient(id, "bob@example.net")
			got := rv.messages()
			if tt.delivered {
				if rc.State != spool.StateDelivered || len(got) != 1 {
					t.Fatalf("state %s, receiver got %d messages; want delivered once", rc.State, len(got))
				}
				if p != nil && (!p.clientSent("MAIL FROM:") || p.clientSent("STARTTLS")) {
					t.Errorf("the proxy did not see the transaction in plaintext:\n%s", p.sent())
				}
				return
			}
			if rc.State != spool.StateQueued || !rc.NextAttempt.Equal(start.Add(5*time.Minute)) {
				t.Errorf("state %s, next attempt %v; want queued for %v", rc.State, rc.NextAttempt, start.Add(5*time.Minute))
			}
			if accepted, _ := rv.ln.counts(); accepted != 1 {
				t.Errorf("receiver accepted %d sessions through the proxy, want 1", accepted)
			}
			if p.clientSent("MAIL FROM:") || p.clientSent("RCPT TO:") || p.clientSent("STARTTLS") {
				t.Errorf("client went on after STARTTLS was missing:\n%s", p.sent())
			}
			if !p.clientSent("QUIT") {
				t.Error("client did not end the session with QUIT")
			}
			if len(got) != 0 {
				t.Errorf("receiver got %d messages, want none", len(got))
			}
			if d := h.dsns(); len(d) != 0 {
				t.Errorf("%d DSNs queued for a fresh deferral, want none", len(d))
			}
		})
	}
}

// verify, secure and fingerprint (§9.1): what authenticates the peer, and the forged-MX
// weakness of verify that secure closes (§11.7).
func TestRemoteTLSAuthentication(t *testing.T) {
	ca := newTestCA(t)
	selfSigned := (*testCA)(nil).issue(t, "mx1.example.net")
	mx1 := ca.issue(t, "mx1.example.net")
	hosting := ca.issue(t, "mx.hosting.test")
	deferred := expect{"result": "deferred", "reply": "~451 4.7.5", "reason": "verify_failed",
		"tls": "none", "tls_version": "", "cipher": "", "auth": "none"}
	tests := []struct {
		name   string
		domain string // example.net's MX is mx1.example.net; example.com's is mx.hosting.test
		cert   tls.Certificate
		policy string
		want   expect
	}{
		{"verify/self-signed", "example.net", selfSigned, "verify", deferred},
		{"verify/ca", "example.net", mx1, "verify",
			expect{"result": "delivered", "tls": "verified", "auth": "webpki", "tls_version": "TLSv1.3"}},
		// secure matches the next-hop domain and its subdomains (dot-nexthop).
		{"secure/ca-under-nexthop", "example.net", mx1, "secure",
			expect{"result": "delivered", "tls": "verified", "auth": "webpki"}},
		// The MX name came from unauthenticated DNS: verify accepts a certificate for
		// whatever host the MX record names...
		{"verify/ca-mx-elsewhere", "example.com", hosting, "verify",
			expect{"result": "delivered", "tls": "verified", "auth": "webpki"}},
		// ...secure does not, since the name it checks is the next hop's.
		{"secure/ca-mx-elsewhere", "example.com", hosting, "secure", deferred},
		{"fingerprint/match", "example.net", selfSigned, "fingerprint match=" + fingerprint(selfSigned),
			expect{"result": "delivered", "tls": "verified", "auth": "fingerprint", "tls_version": "TLSv1.3"}},
		{"fingerprint/other", "example.net", selfSigned, "fingerprint match=" + fingerprint(mx1), deferred},
		// A requirement that cannot be met at all defers without connecting.
		{"dane-only/unavailable", "example.net", mx1, "dane-only",
			expect{"result": "deferred", "reply": "~451 4.7.5", "reason": "policy_unsatisfiable", "ip": "", "tls": "none", "auth": "none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRemoteHarness(t)
			h.dns.Add("example.com. 300 IN MX 10 mx.hosting.test.", "mx.hosting.test. 300 IN A 127.0.0.1")
			rcpt := "bob@" + tt.domain
			rv := startReceiver(t, receiverConfig{cert: &tt.cert, users: []string{rcpt}})
			r := h.newRemote(rv.port)
			r.Roots = ca.pool
			pol, err := tlspolicy.ParsePolicy(tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			r.Policies = tlspolicy.Table{tt.domain: pol}
			id := h.enqueue(senderAddr, rcpt, keepAddr)
			h.round(r)

			want := expect{"domain": tt.domain, "ip": "127.0.0.1", "policy": "local", "mx": "mx1.example.net"}
			if tt.domain == "example.com" {
				want["mx"] = "mx.hosting.test"
			}
			for k, v := range tt.want {
				want[k] = v
			}
			h.checkAttempt(id, rcpt, 1, want)
			h.checkLog(id, rcpt, want)
			_, rc := h.recipient(id, rcpt)
			n := len(rv.messages())
			if want["result"] == "delivered" {
				if rc.State != spool.StateDelivered || n != 1 {
					t.Errorf("state %s, receiver got %d messages; want delivered once", rc.State, n)
				}
				return
			}
			// ST-06: judged before MAIL; 14.7: deferred, not bounced.
			if rc.State != spool.StateQueued || n != 0 {
				t.Errorf("state %s, receiver got %d messages; want queued and nothing sent", rc.State, n)
			}
			if accepted, _ := rv.ln.counts(); (want["ip"] == "") != (accepted == 0) {
				t.Errorf("receiver accepted %d sessions, attempt ip %q", accepted, want["ip"])
			}
		})
	}
}

// A failed handshake at level "may" (§9.1): reconnect in plaintext, but only for a
// message that has already waited one retry interval (§11.12, Postfix's
// PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE), and never when TLS is required.
func TestRemoteHandshakeFailure(t *testing.T) {
	cert := (*testCA)(nil).issue(t, "mx1.example.net")
	tests := []struct {
		name     string
		waited   time.Duration
		level    tlspolicy.Level
		sessions int
		want     expect
	}{
		{"fresh/may", 0, "", 1, expect{"result": "deferred", "reply": "~451 4.7.5", "reason": "handshake_failed", "policy": "opportunistic"}},
		{"waited/may", 5 * time.Minute, "", 2, expect{"result": "delivered", "reply": "~250 2.0.0", "reason": "tls handshake failed; plaintext fallback", "policy": "opportunistic"}},
		{"waited/encrypt", 5 * time.Minute, tlspolicy.LevelEncrypt, 1, expect{"result": "deferred", "reply": "~451 4.7.5", "reason": "handshake_failed", "policy": "local"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRemoteHarness(t)
			rv := startReceiver(t, receiverConfig{cert: &cert, users: []string{"bob@example.net"},
				// Only TLS versions the client refuses: every handshake fails.
				minTLS: tls.VersionTLS10, maxTLS: tls.VersionTLS11})
			r := h.newRemote(rv.port)
			if tt.level != "" {
				r.Policies = tlspolicy.Table{"example.net": {Level: tt.level}}
			}
			id := h.enqueue(senderAddr, "bob@example.net", keepAddr)
			h.clock.Advance(tt.waited)
			h.round(r)
			want := expect{"domain": "example.net", "mx": "mx1.example.net", "ip": "127.0.0.1", "tls": "none",
				"tls_version": "", "cipher": "", "auth": "none"}
			for k, v := range tt.want {
				want[k] = v
			}
			h.checkAttempt(id, "bob@example.net", 1, want)
			h.checkLog(id, "bob@example.net", want)
			if accepted, _ := rv.ln.counts(); accepted != tt.sessions {
				t.Errorf("receiver accepted %d sessions, want %d", accepted, tt.sessions)
			}
			wantMsgs := 0
			if want["result"] == "delivered" {
				wantMsgs = 1
			}
			if got := len(rv.messages()); got != wantMsgs {
				t.Errorf("receiver got %d messages, want %d", got, wantMsgs)
			}
		})
	}
}

// Routing outcomes (§1): null MX and NXDOMAIN bounce at once with a DSN, a temporary DNS
// failure defers without falling back to address records, an implicit MX delivers.
func TestRemoteRouting(t *testing.T) {
	tests := []struct {
		name      string
		domain    string
		zone      []string
		servfail  bool
		want      expect
		dsnStatus string
		noAddrQ   bool // no A or AAAA query may be made for the domain
	}{
		{"null-mx", "null.test", []string{"null.test. 300 IN MX 0 .", "null.test. 300 IN A 127.0.0.1"}, false,
			expect{"result": "bounced", "reply": "~556 5.1.10", "reason": "null_mx"}, "5.1.10", true}, // MX-13
		{"nxdomain", "nosuch.test", nil, false,
			expect{"result": "bounced", "reply": "~550 5.1.2", "reason": "nxdomain"}, "5.1.2", true}, // MX-03
		{"servfail", "broken.test", []string{"broken.test. 300 IN MX 10 mx1.example.net.", "broken.test. 300 IN A 127.0.0.1"}, true,
			expect{"result": "deferred", "reply": "~451 4.4.3", "reason": "dns_temporary"}, "", true}, // MX-04
		{"implicit-mx", "implicit.test", []string{"implicit.test. 300 IN A 127.0.0.1"}, false,
			expect{"result": "delivered", "reply": "~250 2.0.0", "reason": "plaintext: STARTTLS not offered", "mx": "implicit.test", "ip": "127.0.0.1"}, "", false}, // MX-05
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRemoteHarness(t)
			h.dns.Add("test. 3600 IN SOA ns.test. hostmaster.test. 1 7200 900 1209600 300")
			h.dns.Add(tt.zone...)
			if tt.servfail {
				h.dns.Fail(tt.domain, mdns.TypeMX, dnstest.ServFail)
			}
			rcpt := "bob@" + tt.domain
			// A receiver is there, so that any fallback to the domain's address would
			// deliver and show.
			rv := startReceiver(t, receiverConfig{users: []string{rcpt}})
			r := h.newRemote(rv.port)
			id := h.enqueue(senderAddr, rcpt, keepAddr)
			start := h.clock.Now()
			h.round(r)

			want := expect{"domain": tt.domain, "mx": "", "ip": "", "policy": "opportunistic", "tls": "none",
				"tls_version": "", "cipher": "", "auth": "none"}
			for k, v := range tt.want {
				want[k] = v
			}
			h.checkAttempt(id, rcpt, 1, want)
			h.checkLog(id, rcpt, want)
			_, rc := h.recipient(id, rcpt)
			got := rv.messages()
			switch want["result"] {
			case "delivered":
				if rc.State != spool.StateDelivered || len(got) != 1 {
					t.Errorf("state %s, receiver got %d; want delivered", rc.State, len(got))
				}
			case "bounced":
				if rc.State != spool.StateBounced || len(got) != 0 {
					t.Errorf("state %s, receiver got %d; want bounced, nothing sent", rc.State, len(got))
				}
			case "deferred":
				if rc.State != spool.StateQueued || !rc.NextAttempt.Equal(start.Add(5*time.Minute)) || len(got) != 0 {
					t.Errorf("state %s next %v, receiver got %d; want queued for +5m, nothing sent", rc.State, rc.NextAttempt, len(got))
				}
			}
			if tt.noAddrQ {
				if a, aaaa := h.dns.Count(tt.domain, mdns.TypeA), h.dns.Count(tt.domain, mdns.TypeAAAA); a+aaaa != 0 {
					t.Errorf("%d A and %d AAAA queries for %s: fell back to address records", a, aaaa, tt.domain)
				}
				if n := h.dns.Count(tt.domain, mdns.TypeMX); n == 0 {
					t.Errorf("no MX query for %s", tt.domain)
				}
			}
			ds := h.dsns()
			if tt.dsnStatus == "" {
				if len(ds) != 0 {
					t.Errorf("%d DSNs queued, want none", len(ds))
				}
				return
			}
			if len(ds) != 1 {
				t.Fatalf("%d DSNs queued, want 1", len(ds))
			}
			checkDSN(t, ds[0], rcpt, "failed", tt.dsnStatus)
			if m := ds[0].recipients[0].Get("Remote-MTA"); m != "" {
				t.Errorf("Remote-MTA %q for a message that reached no host", m)
			}
		})
	}
}

// The retry schedule with the injected clock (MX-12): 5, 10, 20, 40 minutes, then the
// 1 h cap; one "delayed" DSN once the message is older than DelayWarning; after the
// lifetime, a bounce with reason "expired" and status 4.4.7.
func TestRemoteRetryAndExpiry(t *testing.T) {
	h := newRemoteHarness(t)
	r := h.newRemote(closedPort(t))
	r.DelayWarning = 30 * time.Minute
	const rcpt = "bob@example.net"
	id := h.enqueue(senderAddr, rcpt, keepAddr)
	t0 := h.clock.Now()

	delays := []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour, time.Hour}
	deferred := expect{"result": "deferred", "reply": "~451 4.4.1 smtp connect", "reason": "connect_failed",
		"domain": "example.net", "mx": "mx1.example.net", "ip": "127.0.0.1", "policy": "opportunistic",
		"tls": "none", "tls_version": "", "cipher": "", "auth": "none"}
	for i, d := range delays {
		n := i + 1
		if got := h.round(r); got != 1 {
			t.Fatalf("attempt %d at +%v: scan handed out %d jobs", n, h.clock.Now().Sub(t0), got)
		}
		a := h.checkAttempt(id, rcpt, n, deferred)
		rec := h.checkLog(id, rcpt, deferred)
		if rec["attempt"] != float64(n) {
			t.Errorf("attempt %d logged as attempt %v", n, rec["attempt"])
		}
		_, rc := h.recipient(id, rcpt)
		now := h.clock.Now()
		if rc.State != spool.StateQueued || rc.Attempts != n || !rc.NextAttempt.Equal(now.Add(d)) {
			t.Fatalf("after attempt %d at +%v: state %s, attempts %d, next +%v; want queued, %d, next +%v",
				n, now.Sub(t0), rc.State, rc.Attempts, rc.NextAttempt.Sub(now), n, d)
		}
		// The first attempt older than DelayWarning (the 4th, at +35m) warns; no later one.
		wantDelayed := 0
		if now.Sub(t0) >= r.DelayWarning {
			wantDelayed = 1
		}
		if got := len(h.dsnsWith("delayed")); got != wantDelayed {
			t.Fatalf("after attempt %d at +%v: %d delayed DSNs, want %d", n, now.Sub(t0), got, wantDelayed)
		}
		if sent := a.Fields["delay_dsn"] == "sent"; sent != (n == 4) {
			t.Errorf("attempt %d: delay_dsn %q", n, a.Fields["delay_dsn"])
		}
		// Not due a moment early.
		h.clock.Set(rc.NextAttempt.Add(-time.Second))
		if got := h.round(r); got != 0 {
			t.Fatalf("scan 1s before attempt %d is due handed out %d jobs", n+1, got)
		}
		h.clock.Set(rc.NextAttempt)
	}
	delayed := h.dsnsWith("delayed")
	checkDSN(t, delayed[0], rcpt, "delayed", "4.4.1")
	if u := delayed[0].recipients[0].Get("Will-Retry-Until"); !strings.Contains(u, t0.Add(5*24*time.Hour).Format("2 Jan 2006")) {
		t.Errorf("Will-Retry-Until %q, want the end of the lifetime", u)
	}

	// The lifetime is over: one last attempt, then the bounce.
	h.clock.Set(t0.Add(5 * 24 * time.Hour))
	h.round(r)
	expired := expect{}
	for k, v := range deferred {
		expired[k] = v
	}
	expired["result"], expired["reason"] = "bounced", "expired"
	h.checkAttempt(id, rcpt, len(delays)+1, expired)
	h.checkLog(id, rcpt, expired)
	if _, rc := h.recipient(id, rcpt); rc.State != spool.StateBounced {
		t.Errorf("state %s after expiry, want bounced", rc.State)
	}
	failed := h.dsnsWith("failed")
	if len(failed) != 1 {
		t.Fatalf("%d failure DSNs, want 1", len(failed))
	}
	checkDSN(t, failed[0], rcpt, "failed", "4.4.7")
	if n := len(h.dsnsWith("delayed")); n != 1 {
		t.Errorf("%d delayed DSNs in the end, want 1", n)
	}
	h.clock.Advance(24 * time.Hour)
	if n := h.round(r); n != 0 {
		t.Errorf("a bounced recipient was scheduled again (%d jobs)", n)
	}
}

// Session reuse and concurrency: MaxPerConn messages per session, no more than
// MaxPerDomain sessions at once to one destination, counted at the receiver.
func TestRemoteConnectionReuse(t *testing.T) {
	tests := []struct {
		name               string
		perDomain, perConn int
		msgs               int
		minConns, maxConns int
		maxOpen            int
	}{
		{"one-session-at-a-time", 1, 3, 5, 2, 2, 1},
		{"two-sessions", 2, 3, 6, 2, 3, 2},
		{"no-reuse", 3, 1, 6, 6, 6, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRemoteHarness(t)
			// Slow transactions make the sessions of one round overlap, so that the
			// limit, not luck, is what keeps their number down.
			rv := startReceiver(t, receiverConfig{users: []string{"bob@example.net"}, slow: 30 * time.Millisecond})
			r := h.newRemote(rv.port)
			r.MaxPerDomain, r.MaxPerConn = tt.perDomain, tt.perConn
			var ids []spool.ID
			for range tt.msgs {
				ids = append(ids, h.enqueue(senderAddr, "bob@example.net"))
			}
			if n := h.round(r); n != tt.msgs {
				t.Fatalf("scan handed out %d jobs, want %d", n, tt.msgs)
			}
			conns, maxOpen := rv.ln.counts()
			if conns < tt.minConns || conns > tt.maxConns {
				t.Errorf("receiver accepted %d sessions, want %d..%d", conns, tt.minConns, tt.maxConns)
			}
			if maxOpen != tt.maxOpen {
				t.Errorf("at most %d sessions open at once, want %d", maxOpen, tt.maxOpen)
			}
			if got := len(rv.messages()); got != tt.msgs {
				t.Errorf("receiver got %d messages, want %d", got, tt.msgs)
			}
			for _, id := range ids {
				h.checkLog(id, "bob@example.net", expect{"result": "delivered", "reply": "~250 2.0.0"})
				h.gone(id)
			}
		})
	}
}

// The receiver closes the connection after the final dot (or the last BDAT chunk)
// without a reply: the message may or may not have been taken, so it is deferred —
// never bounced, never counted as delivered. A duplicate is the worst case, not a loss.
func TestRemoteDropAfterData(t *testing.T) {
	for _, chunking := range []bool{false, true} {
		name := "data"
		if chunking {
			name = "bdat"
		}
		t.Run(name, func(t *testing.T) {
			h := newRemoteHarness(t)
			fake := startScripted(t, "drop", chunking)
			r := h.newRemote(fake.port)
			id := h.enqueue(senderAddr, "bob@example.net", keepAddr)
			start := h.clock.Now()
			h.round(r)
			want := expect{"result": "deferred", "reply": "~451 4.4.2 smtp data", "reason": "session_data",
				"domain": "example.net", "mx": "mx1.example.net", "ip": "127.0.0.1", "tls": "none", "auth": "none"}
			h.checkAttempt(id, "bob@example.net", 1, want)
			h.checkLog(id, "bob@example.net", want)
			_, rc := h.recipient(id, "bob@example.net")
			if rc.State != spool.StateQueued || rc.Attempts != 1 || !rc.NextAttempt.Equal(start.Add(5*time.Minute)) {
				t.Errorf("state %s, attempts %d, next %v; want queued for +5m", rc.State, rc.Attempts, rc.NextAttempt)
			}
			if _, bodies, accepted := fake.stats(); bodies != 1 || accepted != 0 {
				t.Errorf("receiver saw %d complete messages and answered %d, want 1 and 0", bodies, accepted)
			}
			if d := h.dsns(); len(d) != 0 {
				t.Errorf("%d DSNs queued, want none", len(d))
			}
		})
	}
}

// A shutdown in the middle of a delivery: the receiver has the whole message but has not
// answered the final dot when the engine's context ends. The interrupted attempt is
// recorded as a deferral (the message may have arrived), the messages waiting behind it
// are left untouched, and a new engine on the reopened spool (a restarted process)
// delivers everything: the interrupted message exactly once more, the others once.
// Nothing is lost and the queue ends empty.
func TestRemoteRestartMidDelivery(t *testing.T) {
	h := newRemoteHarness(t)
	fake := startScripted(t, "stall", false)
	const rcpt = "bob@example.net"
	ids := []spool.ID{h.enqueue(senderAddr, rcpt), h.enqueue(senderAddr, rcpt), h.enqueue(senderAddr, rcpt)}
	t0 := h.clock.Now()

	r1 := h.newRemote(fake.port)
	r1.MaxPerDomain = 1 // the second and third message wait for the first
	ctx, cancel := context.WithCancel(h.ctx)
	if n := r1.Scan(ctx); n != len(ids) {
		t.Fatalf("scan handed out %d jobs, want %d", n, len(ids))
	}
	select {
	case <-fake.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the message never reached its end at the receiver")
	}
	cancel()
	r1.Wait()

	h.checkAttempt(ids[0], rcpt, 1, expect{"result": "deferred", "reply": "~451 4.4.2 smtp data", "reason": "session_data"})
	if _, rc := h.recipient(ids[0], rcpt); rc.State != spool.StateQueued || rc.Attempts != 1 || !rc.NextAttempt.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("interrupted message: state %s, attempts %d, next %v; want queued, 1, +5m", rc.State, rc.Attempts, rc.NextAttempt)
	}
	for _, id := range ids[1:] {
		m, rc := h.recipient(id, rcpt)
		if rc.State != spool.StateQueued || rc.Attempts != 0 || len(m.Attempts) != 0 || !rc.NextAttempt.Equal(t0) {
			t.Errorf("waiting message %s: state %s, attempts %d %v, next %v; want untouched",
				id, rc.State, rc.Attempts, m.Attempts, rc.NextAttempt)
		}
	}
	if mails, bodies, accepted := fake.stats(); mails != 1 || bodies != 1 || accepted != 0 {
		t.Fatalf("receiver saw %d transactions, %d messages, answered %d; want 1, 1, 0", mails, bodies, accepted)
	}

	// The restart: the spool is closed and opened again, a new engine takes over. The
	// messages that were never tried go at once, the interrupted one at its retry time.
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	h.openStore()
	fake.setMode("answer")
	r2 := h.newRemote(fake.port)
	if n := h.round(r2); n != 2 {
		t.Fatalf("the restarted engine handed out %d jobs, want 2", n)
	}
	h.clock.Set(t0.Add(5 * time.Minute))
	if n := h.round(r2); n != 1 {
		t.Fatalf("at the retry time the restarted engine handed out %d jobs, want 1", n)
	}
	if mails, bodies, accepted := fake.stats(); mails != 4 || bodies != 4 || accepted != 3 {
		t.Errorf("receiver saw %d transactions, %d messages, answered %d; want 4, 4, 3", mails, bodies, accepted)
	}
	for _, id := range ids {
		h.checkLog(id, rcpt, expect{"result": "delivered", "reply": "250 2.0.0 queued", "reason": "plaintext: STARTTLS not offered"})
		h.gone(id)
	}
	if msgs, err := h.store.List(h.ctx, spool.Filter{}); err != nil || len(msgs) != 0 {
		t.Errorf("queue holds %d messages (%v), want none", len(msgs), err)
	}
	h.clock.Advance(time.Hour)
	if n := h.round(r2); n != 0 {
		t.Errorf("a delivered message was scheduled again (%d jobs)", n)
	}
}

// A shutdown that arrives just after the receiver acknowledged the message: the
// delivery is still recorded, so that a restarted engine does not send it again.
func TestRemoteShutdownAfterAcknowledgement(t *testing.T) {
	h := newRemoteHarness(t)
	fake := startScripted(t, "answer", false)
	const rcpt = "bob@example.net"
	id := h.enqueue(senderAddr, rcpt)

	r1 := h.newRemote(fake.port)
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	r1.Store = cancelingStore{Store: h.store, cancel: cancel}
	r1.Scan(ctx)
	r1.Wait()
	if ctx.Err() == nil {
		t.Fatal("the engine never closed the message body")
	}
	h.checkLog(id, rcpt, expect{"result": "delivered", "reply": "250 2.0.0 queued"})
	h.gone(id)
	for _, rec := range h.logs.records(t, "recording delivery failed") {
		t.Errorf("outcome not recorded: %v", rec)
	}

	r2 := h.newRemote(fake.port)
	h.clock.Advance(time.Hour)
	if n := h.round(r2); n != 0 {
		t.Errorf("the restarted engine handed out %d jobs for a delivered message", n)
	}
	if mails, _, accepted := fake.stats(); mails != 1 || accepted != 1 {
		t.Errorf("receiver saw %d transactions and answered %d, want 1 and 1", mails, accepted)
	}
}

// cancelingStore ends a context when the engine closes a message body, which it does as
// soon as the transaction that sent it is over: a shutdown arriving at that moment.
type cancelingStore struct {
	spool.Store
	cancel context.CancelFunc
}

func (s cancelingStore) Open(ctx context.Context, id spool.ID) (io.ReadCloser, error) {
	rc, err := s.Store.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return cancelOnClose{ReadCloser: rc, cancel: s.cancel}, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// Mail from the null sender (a bounce itself) that bounces gets no DSN (RFC 5321 §6.1).
func TestRemoteNullSenderNoDSN(t *testing.T) {
	tests := []struct {
		name  string
		rcpt  string
		reply string
	}{
		{"rejected-at-rcpt", "gone@example.net", "550 5.1.1 No such user here"},
		{"null-mx", "bob@null.test", "~556 5.1.10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRemoteHarness(t)
			h.dns.Add("null.test. 300 IN MX 0 .")
			rv := startReceiver(t, receiverConfig{users: []string{"ok@example.net"}})
			r := h.newRemote(rv.port)
			id := h.enqueue("", tt.rcpt, keepAddr)
			h.round(r)
			h.checkAttempt(id, tt.rcpt, 1, expect{"result": "bounced", "reply": tt.reply})
			if _, rc := h.recipient(id, tt.rcpt); rc.State != spool.StateBounced {
				t.Errorf("state %s, want bounced", rc.State)
			}
			if d := h.dsns(); len(d) != 0 {
				t.Errorf("%d DSNs queued for a null-sender message, want none", len(d))
			}
			msgs, err := h.store.List(h.ctx, spool.Filter{})
			if err != nil || len(msgs) != 1 || msgs[0].ID != id {
				t.Errorf("queue holds %+v (%v), want only the original", msgs, err)
			}
		})
	}
}
