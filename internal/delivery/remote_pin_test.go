package delivery

// TLS pinning in the outbound engine: which deliveries create and refresh pins, and
// what a pin does against a man in the middle who strips STARTTLS (ST-10), against
// receivers on loopback. Decisions (14.x) refer to the reference semantics §14.

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"mxward/internal/mtasts"
	"mxward/internal/pin"
	"mxward/internal/spool"
	"mxward/internal/tlspolicy"
)

const pinRcpt = "bob@example.net"

// openPins opens a pin store in a temporary directory with the defaults of
// [pinning]: two TLS deliveries at least an hour apart pin a domain for 30 days.
func (h *remoteHarness) openPins() *pin.Store {
	h.t.Helper()
	s, err := pin.Open(h.t.TempDir(), pin.Options{Log: h.log})
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// pinState is the store's state for example.net now.
func (h *remoteHarness) pinState(s *pin.Store) (pin.State, pin.Entry) {
	h.t.Helper()
	e, _, err := s.Lookup("example.net", h.clock.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	if e.Domain == "" {
		return pin.StateNone, e
	}
	return e.State(h.clock.Now()), e
}

// sendOne queues one message to pinRcpt (and keepAddr, so its history stays), runs a
// round through r, and returns its id.
func (h *remoteHarness) sendOne(r *Remote) spool.ID {
	h.t.Helper()
	id := h.enqueue(senderAddr, pinRcpt, keepAddr)
	h.round(r)
	return id
}

// TestRemotePinStrip: two TLS deliveries an hour apart pin example.net; a man in the
// middle who then strips STARTTLS (or rewrites it) gets a 4.7.4 deferral and not one
// byte of mail, even for a message old enough for opportunistic TLS's plaintext retry,
// and the pin survives. Without pinning, the same attack gets the mail in clear.
func TestRemotePinStrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pinning bool
		rewrite bool
	}{
		{name: "pinned/stripped", pinning: true},
		{name: "pinned/rewritten", pinning: true, rewrite: true},
		{name: "no pinning/stripped", pinning: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newRemoteHarness(t)
			cert := (*testCA)(nil).issue(t, "mx1.example.net")
			rv := startReceiver(t, receiverConfig{cert: &cert, users: []string{pinRcpt}})
			direct := h.newRemote(rv.port)
			direct.DefaultLevel = tlspolicy.LevelDANE
			var pins *pin.Store
			if tc.pinning {
				pins = h.openPins()
				direct.Pins = pins
			}

			// Two TLS deliveries, an hour apart, under the opportunistic decision.
			first := h.sendOne(direct)
			h.checkAttempt(first, pinRcpt, 1, expect{"result": "delivered", "policy": "opportunistic", "tls": "untrusted"})
			if pins != nil {
				if st, e := h.pinState(pins); st != pin.StateObserved || e.Count != 1 {
					t.Fatalf("after one TLS delivery: %s %+v, want observed", st, e)
				}
			}
			h.clock.Advance(time.Hour)
			h.sendOne(direct)
			if pins != nil {
				st, e := h.pinState(pins)
				if st != pin.StatePinned || e.Count != 2 || e.MXHosts[0] != "mx1.example.net" || e.TLSVersions[0] != "TLSv1.3" {
					t.Fatalf("after two TLS deliveries an hour apart: %s %+v, want pinned", st, e)
				}
				if n := len(h.logs.records(t, "tls pin created")); n != 1 {
					t.Errorf("%d 'tls pin created' records, want 1", n)
				}
			}

			// The attacker strips STARTTLS between us and the receiver.
			mitm := startStripProxy(t, rv.port, tc.rewrite)
			attacked := h.newRemote(mitm.port)
			attacked.DefaultLevel = tlspolicy.LevelDANE
			if pins != nil {
				attacked.Pins = pins
			}
			id := h.enqueue(senderAddr, pinRcpt, keepAddr)
			// Old enough for the plaintext retry of "may" (Retry.First is 5 minutes).
			h.clock.Advance(time.Hour)
			start := h.clock.Now()
			h.round(attacked)

			if !tc.pinning {
				h.checkAttempt(id, pinRcpt, 1, expect{"result": "delivered", "policy": "opportunistic", "tls": "none",
					"reason": "~plaintext: STARTTLS"})
				if !mitm.clientSent("MAIL FROM") || len(rv.messages()) != 3 {
					t.Fatalf("without pinning the stripped session should deliver in clear (got %d messages)", len(rv.messages()))
				}
				return
			}
			want := expect{"result": "deferred", "reply": "~451 4.7.4", "policy": "pin", "tls": "none", "auth": "none",
				"domain": "example.net", "mx": "mx1.example.net", "ip": "127.0.0.1", "rcpt": pinRcpt,
				"reason": "~: pinned: STARTTLS completed 2 times since 2026-03-02, expires 2026-04-01"}
			a := h.checkAttempt(id, pinRcpt, 1, want)
			t.Logf("reply %q, reason %q", a.Reply, a.Fields["reason"])
			rec := h.checkLog(id, pinRcpt, want)
			if pr, _ := rec["policy_reason"].(string); !strings.Contains(pr, "pinned: STARTTLS completed 2 times") {
				t.Errorf("policy_reason %q does not name the pin", pr)
			}
			// Nothing in clear: no envelope, no body crossed the attacker.
			if mitm.clientSent("MAIL FROM") || mitm.clientSent("DATA") || strings.Contains(mitm.sent(), "Hello from mxward") {
				t.Errorf("the client sent mail through the stripping proxy:\n%s", mitm.sent())
			}
			if got := len(rv.messages()); got != 2 {
				t.Errorf("receiver got %d messages, want the 2 sent before the attack", got)
			}
			// 14.7: deferred for a retry, never bounced.
			_, rc := h.recipient(id, pinRcpt)
			if rc.State != spool.StateQueued || !rc.NextAttempt.Equal(start.Add(5*time.Minute)) {
				t.Errorf("state %s next %v, want queued for +5m", rc.State, rc.NextAttempt)
			}
			if d := h.dsns(); len(d) != 0 {
				t.Errorf("%d DSNs for a deferral", len(d))
			}
			// The failed session neither lowers nor removes the pin.
			if st, e := h.pinState(pins); st != pin.StatePinned || e.Count != 2 {
				t.Errorf("after the attack: %s %+v, want still pinned with count 2", st, e)
			}

			// The attacker leaves: the retry delivers under the pin, which it refreshes.
			h.clock.Advance(5 * time.Minute)
			h.round(direct)
			h.checkAttempt(id, pinRcpt, 2, expect{"result": "delivered", "policy": "pin", "tls": "untrusted",
				"reason": "pinned: STARTTLS completed 2 times since 2026-03-02, expires 2026-04-01"})
			if st, e := h.pinState(pins); st != pin.StatePinned || e.Count != 3 || !e.Expires.Equal(h.clock.Now().Add(pin.DefaultMaxAge)) {
				t.Errorf("after a delivery under the pin: %s %+v, want refreshed", st, e)
			}
		})
	}
}

// TestRemotePinNoPlaintextRetry: a pinned host whose handshake fails gets no plaintext
// session, although opportunistic TLS would retry in clear for a message this old.
func TestRemotePinNoPlaintextRetry(t *testing.T) {
	h := newRemoteHarness(t)
	cert := (*testCA)(nil).issue(t, "mx1.example.net")
	rv := startReceiver(t, receiverConfig{cert: &cert, users: []string{pinRcpt}})
	pins := h.openPins()
	r := h.newRemote(rv.port)
	r.Pins = pins
	h.sendOne(r)
	h.clock.Advance(time.Hour)
	h.sendOne(r)
	if st, _ := h.pinState(pins); st != pin.StatePinned {
		t.Fatalf("state %s, want pinned", st)
	}
	// The same name now answers with a server that only speaks TLS 1.1, which the
	// client refuses: the handshake fails.
	old := startReceiver(t, receiverConfig{cert: &cert, users: []string{pinRcpt}, maxTLS: tls.VersionTLS11})
	r2 := h.newRemote(old.port)
	r2.Pins = pins
	id := h.enqueue(senderAddr, pinRcpt, keepAddr)
	h.clock.Advance(time.Hour)
	h.round(r2)
	h.checkAttempt(id, pinRcpt, 1, expect{"result": "deferred", "reply": "~451 4.7.5", "policy": "pin", "tls": "none",
		"reason": "~: pinned: STARTTLS completed 2 times"})
	if got := len(old.messages()); got != 0 {
		t.Errorf("the pinned host got %d messages after a failed handshake", got)
	}
	if n := len(h.logs.records(t, "tls handshake failed, retrying without TLS")); n != 0 {
		t.Errorf("%d plaintext retries for a pinned host", n)
	}
}

// TestRemotePinObservedOnly: one TLS delivery (or several within min_interval) does not
// pin; a stripped session then delivers in clear as opportunistic TLS does, and that
// clear delivery neither counts nor removes the observation.
func TestRemotePinObservedOnly(t *testing.T) {
	h := newRemoteHarness(t)
	cert := (*testCA)(nil).issue(t, "mx1.example.net")
	rv := startReceiver(t, receiverConfig{cert: &cert, users: []string{pinRcpt}})
	pins := h.openPins()
	r := h.newRemote(rv.port)
	r.Pins = pins
	h.sendOne(r)
	h.clock.Advance(59 * time.Minute)
	h.sendOne(r)
	if st, e := h.pinState(pins); st != pin.StateObserved || e.Count != 2 || e.Counted != 1 {
		t.Fatalf("two deliveries 59 minutes apart: %s %+v, want observed, counted once", st, e)
	}
	mitm := startStripProxy(t, rv.port, false)
	attacked := h.newRemote(mitm.port)
	attacked.Pins = pins
	id := h.enqueue(senderAddr, pinRcpt, keepAddr)
	h.round(attacked)
	h.checkAttempt(id, pinRcpt, 1, expect{"result": "delivered", "policy": "opportunistic", "tls": "none"})
	if st, e := h.pinState(pins); st != pin.StateObserved || e.Count != 2 {
		t.Errorf("after a clear delivery: %s %+v, want unchanged", st, e)
	}
}

// TestRemotePinNotFromPolicies: deliveries decided by DANE, an enforcing MTA-STS policy
// or the operator's table neither create nor refresh pins (those already protect the
// destination), and the pin store is not even read for them. A testing-mode policy asks
// for nothing, so its TLS deliveries do count.
func TestRemotePinNotFromPolicies(t *testing.T) {
	ca := newTestCA(t)
	caMX := ca.issue(t, "mx1.example.net")
	selfSigned := (*testCA)(nil).issue(t, "mx1.example.net")
	tests := []struct {
		name   string
		cert   tls.Certificate
		setup  func(h *remoteHarness, r *Remote, port int)
		policy string
		want   pin.State
	}{
		{name: "dane", cert: selfSigned, policy: "dane", want: pin.StateNone,
			setup: func(h *remoteHarness, _ *Remote, port int) {
				h.dns.Secure("example.net")
				h.dns.Add(tlsaRR(port, "mx1.example.net", "3 1 1 "+spkiSHA256(selfSigned)))
			}},
		{name: "mta-sts enforce", cert: caMX, policy: "mta-sts", want: pin.StateNone,
			setup: func(_ *remoteHarness, r *Remote, _ int) {
				r.MTASTS = (&stsStub{sts: stsPolicy(mtasts.ModeEnforce, "mx1.example.net")}).lookupSTS
			}},
		{name: "local encrypt", cert: selfSigned, policy: "local", want: pin.StateNone,
			setup: func(_ *remoteHarness, r *Remote, _ int) {
				r.Policies = tlspolicy.Table{"example.net": {Level: tlspolicy.LevelEncrypt}}
			}},
		{name: "mta-sts testing", cert: caMX, policy: "mta-sts", want: pin.StatePinned,
			setup: func(_ *remoteHarness, r *Remote, _ int) {
				r.MTASTS = (&stsStub{sts: stsPolicy(mtasts.ModeTesting, "mx1.example.net")}).lookupSTS
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRemoteHarness(t)
			rv := startReceiver(t, receiverConfig{cert: &tt.cert, users: []string{pinRcpt}})
			r := h.newRemote(rv.port)
			r.DefaultLevel, r.Roots = tlspolicy.LevelDANE, ca.pool
			pins := h.openPins()
			lookups := &countingPins{PinStore: pins}
			r.Pins = lookups
			tt.setup(h, r, rv.port)
			first := h.sendOne(r)
			h.clock.Advance(time.Hour)
			h.sendOne(r)
			h.checkAttempt(first, pinRcpt, 1, expect{"result": "delivered", "policy": tt.policy})
			if st, e := h.pinState(pins); st != tt.want {
				t.Errorf("state %s (%+v), want %s", st, e, tt.want)
			}
			if tt.want == pin.StateNone && lookups.lookups != 0 {
				t.Errorf("pin store read %d times for a destination %s decides", lookups.lookups, tt.policy)
			}
		})
	}
}

// countingPins counts lookups of the pin store.
type countingPins struct {
	PinStore
	lookups int
}

func (c *countingPins) Lookup(domain string, now time.Time) (pin.Entry, bool, error) {
	c.lookups++
	return c.PinStore.Lookup(domain, now)
}

// brokenPins is a pin store that cannot be read or written.
type brokenPins struct{ observed int }

func (b *brokenPins) Lookup(string, time.Time) (pin.Entry, bool, error) {
	return pin.Entry{}, false, errors.New("read pin entry: permission denied")
}

func (b *brokenPins) Observe(context.Context, string, pin.Observation, time.Time) (pin.Entry, error) {
	b.observed++
	return pin.Entry{}, errors.New("record TLS delivery for pinning: read-only file system")
}

// TestRemotePinStoreBroken: a pin store that cannot be read must not stop mail. The
// attempt goes on as if there were no pin, says so in its policy reason, and the
// failures are logged for the operator.
func TestRemotePinStoreBroken(t *testing.T) {
	h := newRemoteHarness(t)
	cert := (*testCA)(nil).issue(t, "mx1.example.net")
	rv := startReceiver(t, receiverConfig{cert: &cert, users: []string{pinRcpt}})
	r := h.newRemote(rv.port)
	broken := &brokenPins{}
	r.Pins = broken
	id := h.sendOne(r)
	want := expect{"result": "delivered", "policy": "opportunistic", "tls": "untrusted"}
	h.checkAttempt(id, pinRcpt, 1, want)
	rec := h.checkLog(id, pinRcpt, want)
	if pr, _ := rec["policy_reason"].(string); !strings.Contains(pr, "pin: lookup failed, delivering without it: read pin entry: permission denied") {
		t.Errorf("policy_reason %q does not say the pin store failed", pr)
	}
	if n := len(h.logs.records(t, "tls pin lookup failed")); n != 1 {
		t.Errorf("%d 'tls pin lookup failed' records, want 1", n)
	}
	if n := len(h.logs.records(t, "tls pin not updated")); n != 1 || broken.observed != 1 {
		t.Errorf("%d 'tls pin not updated' records after %d observations, want 1", n, broken.observed)
	}
}
