package delivery

// MTA-STS (RFC 8461) and the static policy list in the outbound engine, against
// receivers on loopback with certificates from a test CA that Remote.Roots trusts. The
// policy lookups are stubs: what they answer is internal/mtasts's and
// internal/policylist's business; how delivery applies the answer is tested here. Rule
// ids (STS-xx, LIST-xx) refer to the reference semantics §4 and §7; decisions (14.x) to
// its §14.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/mtasts"
	"mxward/internal/policylist"
	"mxward/internal/spool"
	"mxward/internal/tlspolicy"
)

// stsStub answers MTA-STS and list lookups with fixed values and counts them.
type stsStub struct {
	mu        sync.Mutex
	sts       *mtasts.Result // nil: no policy
	stsErr    error
	list      *policylist.Entry
	listErr   error
	stsCalls  int
	listCalls int
	domains   []string
}

func (s *stsStub) lookupSTS(_ context.Context, domain string) (mtasts.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stsCalls++
	s.domains = append(s.domains, domain)
	if s.sts == nil {
		return mtasts.Result{Reason: "no MTA-STS policy: no record"}, s.stsErr
	}
	r := *s.sts
	return r, s.stsErr
}

func (s *stsStub) lookupList(domain string, now time.Time) (policylist.Entry, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listCalls++
	if s.listErr != nil {
		return policylist.Entry{}, false, s.listErr
	}
	if s.list == nil || s.list.Domain != domain {
		return policylist.Entry{}, false, nil
	}
	return *s.list, true, nil
}

func (s *stsStub) calls() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stsCalls, s.listCalls
}

func stsPolicy(mode mtasts.Mode, mx ...string) *mtasts.Result {
	return &mtasts.Result{Policy: &mtasts.Policy{Version: "STSv1", Mode: mode, MX: mx, MaxAge: 24 * time.Hour},
		Source: mtasts.SourceLive, ID: "20260301", Reason: "policy fetched"}
}

// TestRemoteMTASTS is the table of MTA-STS and list outcomes for one MX host, each
// checked in the attempt record, the log, at the receiver and in the lookup counts.
func TestRemoteMTASTS(t *testing.T) {
	ca := newTestCA(t)
	caMX := ca.issue(t, "mx1.example.net")
	caImplicit := ca.issue(t, "implicit.test")
	selfSigned := (*testCA)(nil).issue(t, "mx1.example.net")
	tests := []struct {
		name   string
		cert   *tls.Certificate // the receiver's; noSTARTTLS for none
		level  tlspolicy.Level  // default level; "" means dane
		table  tlspolicy.Table
		stub   *stsStub
		setup  func(h *remoteHarness, port int)
		domain string        // "": example.net
		waited time.Duration // a plaintext retry would be allowed for may
		want   expect
		// sessions the receiver must accept, messages it must get, lookups made.
		sessions, msgs, stsCalls, listCalls int
		sni                                 string
		errorLogs                           int // "static TLS policy list not applied" records
	}{
		// STS-18, STS-19: a chain to a trusted root valid for the MX host name; SNI is
		// the MX host name.
		{name: "enforce/valid", cert: &caMX, stub: &stsStub{sts: stsPolicy(mtasts.ModeEnforce, "mx1.example.net")},
			want: expect{"result": "delivered", "policy": "mta-sts", "tls": "verified", "auth": "webpki",
				"reason": `mta-sts policy "20260301" (live), mode enforce, mx mx1.example.net matches "mx1.example.net"`},
			sessions: 1, msgs: 1, stsCalls: 1, sni: "mx1.example.net"},
		// STS-20, 14.7: a self-signed certificate defers with 4.7.5, never plaintext,
		// although the message has waited long enough for may's plaintext retry.
		{name: "enforce/self-signed", cert: &selfSigned, stub: &stsStub{sts: stsPolicy(mtasts.ModeEnforce, "mx1.example.net")},
			waited: time.Hour,
			want: expect{"result": "deferred", "reply": "~451 4.7.5 smtp starttls: verify_failed", "policy": "mta-sts", "tls": "none",
				"auth": "none", "reason": `~verify_failed: mta-sts policy "20260301" (live), mode enforce`},
			sessions: 1, msgs: 0, stsCalls: 1},
		// STS-17, STS-20: the forged-MX attack. The MX record names a host the policy does
		// not list; that host has a valid certificate for its own name, and still gets no
		// connection.
		{name: "enforce/mx-not-in-policy", cert: &caMX, stub: &stsStub{sts: stsPolicy(mtasts.ModeEnforce, "mx.example.net", "*.mail.example.net")},
			want: expect{"result": "deferred", "reply": "~451 4.7.5 MX host matches no pattern", "policy": "mta-sts", "ip": "",
				"tls": "none", "reason": "~mx_not_in_policy: mta-sts policy \"20260301\" (live), mode enforce, mx mx1.example.net matches no pattern"},
			sessions: 0, msgs: 0, stsCalls: 1},
		// STS-17: a wildcard covers exactly one label.
		{name: "enforce/wildcard-one-label", cert: &caMX, stub: &stsStub{sts: stsPolicy(mtasts.ModeEnforce, "*.example.net")},
			want:     expect{"result": "delivered", "policy": "mta-sts", "tls": "verified", "auth": "webpki", "reason": `~matches "*.example.net"`},
			sessions: 1, msgs: 1, stsCalls: 1},
		{name: "enforce/wildcard-two-labels", cert: &caMX, stub: &stsStub{sts: stsPolicy(mtasts.ModeEnforce, "*.net")},
			want: expect{"result": "deferred", "reply": "~451 4.7.5", "policy": "mta-sts", "ip": "", "tls": "none",
				"reason": "~mx_not_in_policy"},
			sessions: 0, msgs: 0, stsCalls: 1},
		// STS-18: the certificate must be valid for the MX host, not only for the domain.
		{name: "enforce/next-hop-certificate", cert: ptr(ca.issue(t, "example.net")), stub: &stsStub{sts: stsPolicy(mtasts.ModeEnforce, "mx1.example.net")},
			want:     expect{"result": "deferred", "reply": "~451 4.7.5", "policy": "mta-sts", "reason": "~verify_failed"},
			sessions: 1, msgs: 0, stsCalls: 1},
		// STS-20: no STARTTLS is no delivery (4.7.4, as for every level that requires TLS).
		{name: "enforce/no-starttls", cert: noSTARTTLS, stub: &stsStub{sts: stsPolicy(mtasts.ModeEnforce, "mx1.example.net")},
			waited: time.Hour,
			want: expect{"result": "deferred", "reply": "~451 4.7.4", "policy": "mta-sts", "tls": "none",
				"reason": "~starttls_not_offered: mta-sts policy"},
			sessions: 1, msgs: 0, stsCalls: 1},
		// Decision 3: for an implicit MX the domain itself is matched.
		{name: "enforce/implicit-mx", cert: &caImplicit, domain: "implicit.test",
			stub: &stsStub{sts: stsPolicy(mtasts.ModeEnforce, "implicit.test")},
			setup: func(h *remoteHarness, _ int) {
				h.dns.Add("implicit.test. 3600 IN SOA ns.implicit.test. hostmaster.implicit.test. 1 7200 900 1209600 300",
					"implicit.test. 300 IN A 127.0.0.1")
			},
			want: expect{"result": "delivered", "mx": "implicit.test", "policy": "mta-sts", "tls": "verified", "auth": "webpki",
				"reason": `~mx implicit.test matches "implicit.test"`},
			sessions: 1, msgs: 1, stsCalls: 1, sni: "implicit.test"},
		// STS-23: testing delivers as opportunistic TLS would, and records what enforce
		// would have failed.
		{name: "testing/self-signed", cert: &selfSigned, stub: &stsStub{sts: stsPolicy(mtasts.ModeTesting, "mx1.example.net")},
			want: expect{"result": "delivered", "policy": "mta-sts", "tls": "untrusted", "auth": "none",
				"reason": "~mode testing, mx mx1.example.net matches \"mx1.example.net\"; enforce would have failed: server certificate not verified"},
			sessions: 1, msgs: 1, stsCalls: 1, sni: "mx1.example.net"},
		{name: "testing/valid", cert: &caMX, stub: &stsStub{sts: stsPolicy(mtasts.ModeTesting, "mx1.example.net")},
			want: expect{"result": "delivered", "policy": "mta-sts", "tls": "untrusted", "auth": "none",
				"reason": "~enforce would have passed (webpki)"},
			sessions: 1, msgs: 1, stsCalls: 1},
		{name: "testing/mx-not-in-policy", cert: &caMX, stub: &stsStub{sts: stsPolicy(mtasts.ModeTesting, "mx.example.net")},
			want: expect{"result": "delivered", "policy": "mta-sts", "tls": "untrusted",
				"reason": "~enforce would have skipped the host"},
			sessions: 1, msgs: 1, stsCalls: 1},
		{name: "testing/no-starttls", cert: noSTARTTLS, stub: &stsStub{sts: stsPolicy(mtasts.ModeTesting, "mx1.example.net")},
			want: expect{"result": "delivered", "policy": "mta-sts", "tls": "none",
				"reason": "~plaintext: STARTTLS not offered; mta-sts policy \"20260301\" (live), mode testing"},
			sessions: 1, msgs: 1, stsCalls: 1},
		// STS-24: mode none is no policy.
		{name: "none", cert: &selfSigned, stub: &stsStub{sts: stsPolicy(mtasts.ModeNone)},
			want:     expect{"result": "delivered", "policy": "opportunistic", "tls": "untrusted", "reason": "~DANE does not apply"},
			sessions: 1, msgs: 1, stsCalls: 1, listCalls: 1},
		// A temporary failure with nothing cached: delivered without MTA-STS, and said.
		{name: "temporary", cert: &selfSigned,
			stub: &stsStub{sts: &mtasts.Result{Temporary: true, Reason: "TXT lookup failed and no policy is cached: SERVFAIL"}, stsErr: errors.New("SERVFAIL")},
			want: expect{"result": "delivered", "policy": "opportunistic", "tls": "untrusted",
				"reason": "~mta-sts: policy unknown, delivering without it"},
			sessions: 1, msgs: 1, stsCalls: 1, listCalls: 1},
		// STS-25: DANE decides; MTA-STS, which would refuse this certificate, is not
		// even looked up.
		{name: "dane-beats-sts", cert: &selfSigned, stub: &stsStub{sts: stsPolicy(mtasts.ModeEnforce, "mx1.example.net")},
			setup: func(h *remoteHarness, port int) {
				h.dns.Secure("example.net")
				h.dns.Add(tlsaRR(port, "mx1.example.net", "3 1 1 "+spkiSHA256(selfSigned)))
			},
			want:     expect{"result": "delivered", "policy": "dane", "tls": "verified", "auth": "dane-ee", "reason": "~dane-ee 3 1 1"},
			sessions: 1, msgs: 1, stsCalls: 0},
		// STS-25: a failed TLSA lookup is not rescued by MTA-STS.
		{name: "dane-unreachable-not-rescued", cert: &caMX, stub: &stsStub{sts: stsPolicy(mtasts.ModeEnforce, "mx1.example.net")},
			setup: func(h *remoteHarness, port int) {
				h.dns.Secure("example.net")
				h.dns.Fail(fmt.Sprintf("_%d._tcp.mx1.example.net", port), mdns.TypeTLSA, 2)
			},
			want:     expect{"result": "deferred", "reply": "~451 4.7.5 TLSA lookup failed", "policy": "dane", "ip": "", "reason": "tlsa_lookup_failed"},
			sessions: 0, msgs: 0, stsCalls: 0},
		// DANE does not apply (a signed zone without TLSA records): MTA-STS decides.
		{name: "dane-not-applicable", cert: &caMX, stub: &stsStub{sts: stsPolicy(mtasts.ModeEnforce, "mx1.example.net")},
			setup:    func(h *remoteHarness, _ int) { h.dns.Secure("example.net") },
			want:     expect{"result": "delivered", "policy": "mta-sts", "tls": "verified", "auth": "webpki"},
			sessions: 1, msgs: 1, stsCalls: 1},
		// §14.8: the operator's table decides alone; nothing is looked up.
		{name: "table-overrides", cert: &selfSigned, table: tlspolicy.Table{"example.net": {Level: tlspolicy.LevelMay}},
			stub:     &stsStub{sts: stsPolicy(mtasts.ModeEnforce, "mx1.example.net"), list: &policylist.Entry{Domain: "example.net", Mode: policylist.ModeEnforce, MXs: []string{".example.net"}}},
			want:     expect{"result": "delivered", "policy": "local", "tls": "untrusted", "reason": ""},
			sessions: 1, msgs: 1, stsCalls: 0, listCalls: 0},
		// LIST-03: an entry in enforce mode with a self-signed MX defers.
		{name: "list/enforce/self-signed", cert: &selfSigned, waited: time.Hour,
			stub: &stsStub{list: &policylist.Entry{Domain: "example.net", Mode: policylist.ModeEnforce, MXs: []string{".example.net"}, MinTLS: policylist.LevelSecure}},
			want: expect{"result": "deferred", "reply": "~451 4.7.5 smtp starttls: verify_failed", "policy": "list", "tls": "none",
				"reason": `~verify_failed: static list entry for example.net, mode enforce, mx mx1.example.net matches ".example.net"`},
			sessions: 1, msgs: 0, stsCalls: 1, listCalls: 1},
		{name: "list/enforce/valid", cert: &caMX,
			stub: &stsStub{list: &policylist.Entry{Domain: "example.net", Mode: policylist.ModeEnforce, MXs: []string{".example.net"}, MinTLS: policylist.LevelSecure}},
			want: expect{"result": "delivered", "policy": "list", "tls": "verified", "auth": "webpki",
				"reason": `static list entry for example.net, mode enforce, mx mx1.example.net matches ".example.net"`},
			sessions: 1, msgs: 1, stsCalls: 1, listCalls: 1},
		// LIST-06: the list never overrides an MTA-STS policy.
		{name: "list/under-sts", cert: &selfSigned,
			stub: &stsStub{sts: stsPolicy(mtasts.ModeTesting, "mx1.example.net"),
				list: &policylist.Entry{Domain: "example.net", Mode: policylist.ModeEnforce, MXs: []string{".example.net"}, MinTLS: policylist.LevelSecure}},
			want:     expect{"result": "delivered", "policy": "mta-sts", "tls": "untrusted", "reason": "~enforce would have failed"},
			sessions: 1, msgs: 1, stsCalls: 1, listCalls: 0},
		// LIST-04: an expired list does not apply; opportunistic TLS, an error log.
		{name: "list/expired", cert: &selfSigned,
			stub: &stsStub{listErr: &policylist.ExpiredError{Expires: remoteEpoch.Add(-time.Hour), Now: remoteEpoch, Author: "test"}},
			want: expect{"result": "delivered", "policy": "opportunistic", "tls": "untrusted",
				"reason": "~static policy list not applied (LIST-04): static TLS policy list by \"test\" expired"},
			sessions: 1, msgs: 1, stsCalls: 1, listCalls: 1, errorLogs: 1},
		{name: "list/testing", cert: &selfSigned,
			stub:     &stsStub{list: &policylist.Entry{Domain: "example.net", Mode: policylist.ModeTesting, MXs: []string{"mx1.example.net"}, MinTLS: policylist.LevelSecure}},
			want:     expect{"result": "delivered", "policy": "list", "tls": "untrusted", "reason": "~mode testing, mx mx1.example.net matches \"mx1.example.net\"; enforce would have failed"},
			sessions: 1, msgs: 1, stsCalls: 1, listCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRemoteHarness(t)
			domain := tt.domain
			if domain == "" {
				domain = "example.net"
			}
			rcpt := "bob@" + domain
			cfg := receiverConfig{cert: tt.cert, users: []string{rcpt}}
			if tt.cert == noSTARTTLS {
				cfg.cert = nil
			}
			var mu sync.Mutex
			var sni []string
			cfg.onHello = func(hi *tls.ClientHelloInfo) {
				mu.Lock()
				sni = append(sni, hi.ServerName)
				mu.Unlock()
			}
			rv := startReceiver(t, cfg)
			if tt.setup != nil {
				tt.setup(h, rv.port)
			}
			r := h.newRemote(rv.port)
			r.DefaultLevel = tt.level
			if r.DefaultLevel == "" {
				r.DefaultLevel = tlspolicy.LevelDANE
			}
			r.Policies, r.Roots = tt.table, ca.pool
			stub := tt.stub
			r.MTASTS, r.PolicyList = stub.lookupSTS, stub.lookupList
			id := h.enqueue(senderAddr, rcpt, keepAddr)
			h.clock.Advance(tt.waited)
			start := h.clock.Now()
			h.round(r)

			want := expect{"domain": domain, "mx": "mx1.example.net", "ip": "127.0.0.1", "rcpt": rcpt}
			if tt.domain != "" {
				want["mx"] = tt.domain
			}
			for k, v := range tt.want {
				want[k] = v
			}
			a := h.checkAttempt(id, rcpt, 1, want)
			t.Logf("reply %q, reason %q", a.Reply, a.Fields["reason"])
			h.checkLog(id, rcpt, want)
			_, rc := h.recipient(id, rcpt)
			if want["result"] == "deferred" {
				// 14.7, STS-22: transport-security failures defer, never bounce.
				if rc.State != spool.StateQueued || !rc.NextAttempt.Equal(start.Add(5*time.Minute)) {
					t.Errorf("state %s next %v, want queued for +5m", rc.State, rc.NextAttempt)
				}
				if d := h.dsns(); len(d) != 0 {
					t.Errorf("%d DSNs for a deferral", len(d))
				}
			}
			if accepted, _ := rv.ln.counts(); accepted != tt.sessions {
				t.Errorf("receiver accepted %d sessions, want %d", accepted, tt.sessions)
			}
			if got := len(rv.messages()); got != tt.msgs {
				t.Errorf("receiver got %d messages, want %d", got, tt.msgs)
			}
			if s, l := stub.calls(); s != tt.stsCalls || l != tt.listCalls {
				t.Errorf("MTA-STS looked up %d times, list %d times; want %d, %d", s, l, tt.stsCalls, tt.listCalls)
			}
			for _, d := range stub.domains {
				if d != domain {
					t.Errorf("MTA-STS looked up for %q, want the next hop %q (STS-01)", d, domain)
				}
			}
			if tt.sni != "" {
				mu.Lock()
				got := append([]string(nil), sni...)
				mu.Unlock()
				if len(got) == 0 || got[0] != tt.sni {
					t.Errorf("SNI %q, want %q (STS-19)", got, tt.sni)
				}
			}
			if n := len(h.logs.records(t, "static TLS policy list not applied")); n != tt.errorLogs {
				t.Errorf("%d list error logs, want %d", n, tt.errorLogs)
			}
			for _, rec := range h.logs.records(t, "static TLS policy list not applied") {
				if rec["level"] != "ERROR" {
					t.Errorf("list error logged at %v, want ERROR (LIST-04)", rec["level"])
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// STS-20, STS-21: the MX list is walked in preference order; a host the enforce policy
// does not list is skipped as unreachable, the next one tried, and the policy is looked
// up once for the attempt.
func TestRemoteMTASTSTwoHosts(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name     string
		patterns []string
		want     expect
		s1, s2   int
	}{
		{"first-not-in-policy", []string{"mx2.example.net"},
			expect{"result": "delivered", "mx": "mx2.example.net", "ip": "127.0.0.2", "policy": "mta-sts", "tls": "verified", "auth": "webpki"}, 0, 1},
		{"both-in-policy", []string{"*.example.net"},
			expect{"result": "delivered", "mx": "mx1.example.net", "ip": "127.0.0.1", "policy": "mta-sts", "tls": "verified", "auth": "webpki"}, 1, 0},
		{"none-in-policy", []string{"mx.example.net"},
			expect{"result": "deferred", "reply": "~451 4.7.5", "mx": "mx2.example.net", "ip": "", "policy": "mta-sts", "reason": "~mx_not_in_policy"}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRemoteHarness(t)
			h.dns.Add("example.net. 300 IN MX 20 mx2.example.net.", "mx2.example.net. 300 IN A 127.0.0.2")
			cert1, cert2 := ca.issue(t, "mx1.example.net"), ca.issue(t, "mx2.example.net")
			rv1 := startReceiver(t, receiverConfig{cert: &cert1, users: []string{"bob@example.net"}})
			rv2 := startReceiver(t, receiverConfig{cert: &cert2, users: []string{"bob@example.net"},
				addr: net.JoinHostPort("127.0.0.2", strconv.Itoa(rv1.port))})
			r := h.newRemote(rv1.port)
			r.DefaultLevel, r.Roots = tlspolicy.LevelDANE, ca.pool
			stub := &stsStub{sts: stsPolicy(mtasts.ModeEnforce, tt.patterns...)}
			r.MTASTS = stub.lookupSTS
			id := h.enqueue(senderAddr, "bob@example.net", keepAddr)
			h.round(r)

			want := expect{"domain": "example.net", "rcpt": "bob@example.net"}
			for k, v := range tt.want {
				want[k] = v
			}
			h.checkAttempt(id, "bob@example.net", 1, want)
			a1, _ := rv1.ln.counts()
			a2, _ := rv2.ln.counts()
			if a1 != tt.s1 || a2 != tt.s2 {
				t.Errorf("sessions %d at mx1, %d at mx2; want %d, %d", a1, a2, tt.s1, tt.s2)
			}
			if n, _ := stub.calls(); n != 1 {
				t.Errorf("MTA-STS looked up %d times in one attempt, want 1", n)
			}
			if tt.s1 == 0 && len(h.logs.records(t, "mx host skipped")) == 0 {
				t.Error("the skipped host is not logged")
			}
		})
	}
}

// A kept session carries the next message of an enforce destination only after the
// policy's check of its handshake passes again; a testing destination's next message
// gets the check recorded as well.
func TestRemoteMTASTSSessionReuse(t *testing.T) {
	for _, mode := range []mtasts.Mode{mtasts.ModeEnforce, mtasts.ModeTesting} {
		t.Run(string(mode), func(t *testing.T) {
			h := newRemoteHarness(t)
			ca := newTestCA(t)
			cert := ca.issue(t, "mx1.example.net")
			rv := startReceiver(t, receiverConfig{cert: &cert, users: []string{"bob@example.net"}})
			r := h.newRemote(rv.port)
			r.DefaultLevel, r.Roots, r.MaxPerDomain = tlspolicy.LevelDANE, ca.pool, 1
			stub := &stsStub{sts: stsPolicy(mode, "mx1.example.net")}
			r.MTASTS = stub.lookupSTS
			ids := []spool.ID{h.enqueue(senderAddr, "bob@example.net", keepAddr), h.enqueue(senderAddr, "bob@example.net", keepAddr)}
			h.round(r)

			want := expect{"result": "delivered", "policy": "mta-sts", "tls": "verified", "auth": "webpki", "reason": "~mode enforce"}
			if mode == mtasts.ModeTesting {
				want = expect{"result": "delivered", "policy": "mta-sts", "tls": "untrusted", "auth": "none", "reason": "~enforce would have passed (webpki)"}
			}
			for _, id := range ids {
				h.checkAttempt(id, "bob@example.net", 1, want)
			}
			if accepted, _ := rv.ln.counts(); accepted != 1 || len(rv.messages()) != 2 {
				t.Errorf("receiver accepted %d sessions, got %d messages; want one session for both", accepted, len(rv.messages()))
			}
			if n, _ := stub.calls(); n != 2 {
				t.Errorf("MTA-STS looked up %d times, want once per attempt (2)", n)
			}
		})
	}
}

// TestRemoteMTASTSRecheck: after an enforce failure the engine looks for an updated
// policy before the failure could ever become permanent (RFC 8461 §5.1, STS-22); a
// changed policy is tried in the same attempt, an unchanged one leaves the deferral.
func TestRemoteMTASTSRecheck(t *testing.T) {
	ca := newTestCA(t)
	for _, tt := range []struct {
		name    string
		changed bool
		want    expect
	}{
		{"policy-changed", true, expect{"result": "delivered", "policy": "mta-sts", "tls": "verified", "auth": "webpki"}},
		{"policy-unchanged", false, expect{"result": "deferred", "reply": "~451 4.7.5", "reason": "~mx_not_in_policy"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newRemoteHarness(t)
			cert := ca.issue(t, "mx1.example.net")
			rv := startReceiver(t, receiverConfig{cert: &cert, users: []string{"bob@example.net"}})
			r := h.newRemote(rv.port)
			r.DefaultLevel, r.Roots = tlspolicy.LevelDANE, ca.pool
			// The cached policy names a host the domain has since left.
			stub := &stsStub{sts: stsPolicy(mtasts.ModeEnforce, "old-mx.example.net")}
			r.MTASTS = stub.lookupSTS
			rechecks := 0
			r.MTASTSRecheck = func(_ context.Context, domain string) (bool, error) {
				rechecks++
				if domain != "example.net" {
					t.Errorf("recheck of %q", domain)
				}
				if tt.changed {
					stub.mu.Lock()
					stub.sts = stsPolicy(mtasts.ModeEnforce, "mx1.example.net")
					stub.mu.Unlock()
				}
				return tt.changed, nil
			}
			id := h.enqueue(senderAddr, "bob@example.net", keepAddr)
			h.round(r)
			want := expect{"domain": "example.net", "rcpt": "bob@example.net"}
			for k, v := range tt.want {
				want[k] = v
			}
			h.checkAttempt(id, "bob@example.net", 1, want)
			if rechecks != 1 {
				t.Errorf("%d rechecks, want 1", rechecks)
			}
		})
	}
}
