package delivery

// DANE for SMTP in the outbound engine (RFC 7672), against receivers on loopback and
// the in-process DNS server marking zones secure. Rule ids (DANE-xx) refer to the
// reference semantics §3; decisions (14.x) to its §14.

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"mxward/internal/dns/dnstest"
	"mxward/internal/spool"
	"mxward/internal/tlspolicy"
)

// spkiSHA256 is the hex SHA2-256 digest of a certificate's public key, as a 3 1 1 record
// carries it.
func spkiSHA256(c tls.Certificate) string {
	sum := sha256.Sum256(c.Leaf.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// tlsaRR is a TLSA record for host on port in zone-file syntax.
func tlsaRR(port int, host, rdata string) string {
	return fmt.Sprintf("_%d._tcp.%s. 300 IN TLSA %s", port, host, rdata)
}

// daneHarness is example.net in a signed zone with one receiver on 127.0.0.1, the
// engine at level dane.
type daneHarness struct {
	*remoteHarness
	rv   *receiver
	r    *Remote
	cert tls.Certificate

	mu  sync.Mutex
	sni []string
}

func newDANEHarness(t *testing.T, cfg receiverConfig, signed bool) *daneHarness {
	t.Helper()
	dh := &daneHarness{remoteHarness: newRemoteHarness(t), cert: (*testCA)(nil).issue(t, "mx1.example.net")}
	if signed {
		dh.dns.Secure("example.net")
	}
	if cfg.users == nil {
		cfg.users = []string{"bob@example.net"}
	}
	if cfg.cert == nil {
		cfg.cert = &dh.cert
	} else if cfg.cert.Leaf == nil {
		cfg.cert = nil // a receiver without STARTTLS
	}
	cfg.onHello = func(hi *tls.ClientHelloInfo) {
		dh.mu.Lock()
		dh.sni = append(dh.sni, hi.ServerName)
		dh.mu.Unlock()
	}
	dh.rv = startReceiver(t, cfg)
	dh.r = dh.newRemote(dh.rv.port)
	dh.r.DefaultLevel = tlspolicy.LevelDANE
	return dh
}

func (dh *daneHarness) servernames() []string {
	dh.mu.Lock()
	defer dh.mu.Unlock()
	return append([]string(nil), dh.sni...)
}

// noSTARTTLS is a receiverConfig.cert that makes newDANEHarness start a receiver
// without STARTTLS.
var noSTARTTLS = &tls.Certificate{}

// TestRemoteDANE is the table of TLSA outcomes for a single MX host (RFC 7672 §2.2,
// reference semantics §3.4), each checked in the record, at the receiver and in DNS.
func TestRemoteDANE(t *testing.T) {
	otherKey := (*testCA)(nil).issue(t, "mx1.example.net")
	ca := newTestCA(t)
	caMX := ca.issue(t, "mx1.example.net")
	caNextHop := ca.issue(t, "example.net")
	caElsewhere := ca.issue(t, "mx.attacker.test")
	anchor := "2 0 0 " + hex.EncodeToString(ca.cert.Raw) // a trust anchor the server need not send (DANE-21)
	tests := []struct {
		name     string
		cfg      receiverConfig
		unsigned bool // example.net is not a signed zone
		tlsa     func(dh *daneHarness) []string
		setup    func(dh *daneHarness)
		waited   time.Duration // how long the message has waited: a plaintext retry would be allowed for may
		want     expect
		// sessions the receiver must accept; messages it must get.
		sessions, msgs int
		sni            string // "" : not checked
		tlsaQueries    int
	}{
		// DANE-20: the leaf's key is published; delivered, authenticated, and the record
		// names the matching TLSA record. DANE-24: SNI is the TLSA base domain.
		{name: "dane-ee", tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", "3 1 1 "+spkiSHA256(dh.cert))}
		}, want: expect{"result": "delivered", "reply": "~250 2.0.0", "policy": "dane", "tls": "verified", "auth": "dane-ee",
			"reason": "~dane-ee 3 1 1 "}, sessions: 1, msgs: 1, sni: "mx1.example.net", tlsaQueries: 1},
		// DANE-21, DANE-22: a chain to the published trust anchor, with a reference
		// identifier: the base domain, or after a secure MX lookup the next-hop domain.
		{name: "dane-ta/mx-name", cfg: receiverConfig{cert: &caMX}, tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", anchor)}
		}, want: expect{"result": "delivered", "policy": "dane", "tls": "verified", "auth": "dane-ta",
			"reason": "~, trust anchor from the record, name mx1.example.net"}, sessions: 1, msgs: 1, sni: "mx1.example.net", tlsaQueries: 1},
		{name: "dane-ta/next-hop-name", cfg: receiverConfig{cert: &caNextHop}, tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", anchor)}
		}, want: expect{"result": "delivered", "policy": "dane", "tls": "verified", "auth": "dane-ta",
			"reason": "~name example.net"}, sessions: 1, msgs: 1, tlsaQueries: 1},
		{name: "dane-ta/wrong-name", cfg: receiverConfig{cert: &caElsewhere}, tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", anchor)}
		}, want: expect{"result": "deferred", "reply": "~451 4.7.5", "policy": "dane", "tls": "none",
			"reason": "verify_failed: dane name"}, sessions: 1, msgs: 0, tlsaQueries: 1},
		// DANE-19: a chain that matches no usable record never receives mail; 4.7.5 and
		// no plaintext retry although the message has waited (§9.1 may rule).
		{name: "wrong-digest", tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", "3 1 1 "+spkiSHA256(otherKey))}
		}, waited: 10 * time.Minute, want: expect{"result": "deferred", "reply": "~451 4.7.5", "policy": "dane", "tls": "none", "auth": "none",
			"reason": "verify_failed: dane no_match"}, sessions: 1, msgs: 0, tlsaQueries: 1},
		// RFC 7672 §2.2: a failed handshake with a DANE host is not a reason for plaintext.
		{name: "handshake-failure", cfg: receiverConfig{minTLS: tls.VersionTLS10, maxTLS: tls.VersionTLS11}, tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", "3 1 1 "+spkiSHA256(dh.cert))}
		}, waited: 10 * time.Minute, want: expect{"result": "deferred", "reply": "~451 4.7.5", "policy": "dane", "tls": "none",
			"reason": "handshake_failed"}, sessions: 1, msgs: 0, tlsaQueries: 1},
		// §3.4 row 1: no STARTTLS on a DANE host defers (4.7.4, as encrypt does).
		{name: "starttls-not-offered", cfg: receiverConfig{cert: noSTARTTLS}, tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", "3 1 1 "+spkiSHA256(dh.cert))}
		}, want: expect{"result": "deferred", "reply": "~451 4.7.4", "policy": "dane", "tls": "none",
			"reason": "starttls_not_offered"}, sessions: 1, msgs: 0, tlsaQueries: 1},
		// DANE-18: records that are all unusable still promise STARTTLS: TLS without
		// authentication.
		{name: "all-unusable", tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", "1 1 1 "+spkiSHA256(dh.cert))}
		}, want: expect{"result": "delivered", "policy": "dane", "tls": "untrusted", "auth": "none",
			"reason": "~DANE-18"}, sessions: 1, msgs: 1, sni: "mx1.example.net", tlsaQueries: 1},
		{name: "all-unusable/handshake-failure", cfg: receiverConfig{minTLS: tls.VersionTLS10, maxTLS: tls.VersionTLS11}, tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", "1 1 1 "+spkiSHA256(dh.cert))}
		}, waited: 10 * time.Minute, want: expect{"result": "deferred", "reply": "~451 4.7.5", "policy": "dane", "tls": "none",
			"reason": "handshake_failed"}, sessions: 1, msgs: 0, tlsaQueries: 1},
		{name: "all-unusable/starttls-not-offered", cfg: receiverConfig{cert: noSTARTTLS}, tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", "0 0 1 "+spkiSHA256(dh.cert))}
		}, want: expect{"result": "deferred", "reply": "~451 4.7.4", "policy": "dane", "tls": "none",
			"reason": "starttls_not_offered"}, sessions: 1, msgs: 0, tlsaQueries: 1},
		// DANE-04: a failed TLSA lookup makes the only host unreachable: no connection.
		{name: "tlsa-servfail", setup: func(dh *daneHarness) {
			dh.dns.Fail(fmt.Sprintf("_%d._tcp.mx1.example.net", dh.rv.port), mdns.TypeTLSA, dnstest.ServFail)
		}, want: expect{"result": "deferred", "reply": "~451 4.7.5 TLSA lookup failed for mx1.example.net", "policy": "dane",
			"ip": "", "tls": "none", "reason": "tlsa_lookup_failed"}, sessions: 0, msgs: 0, tlsaQueries: 1},
		// §3.4 row 3: secure NODATA, DANE does not apply; opportunistic TLS.
		{name: "no-tlsa", want: expect{"result": "delivered", "policy": "opportunistic", "tls": "untrusted", "auth": "none",
			"reason": "~DANE does not apply: DANE-13: no secure TLSA RRset"},
			sessions: 1, msgs: 1, tlsaQueries: 1},
		{name: "no-tlsa/no-starttls", cfg: receiverConfig{cert: noSTARTTLS},
			want: expect{"result": "delivered", "policy": "opportunistic", "tls": "none",
				"reason": "~plaintext: STARTTLS not offered; DANE does not apply: DANE-13"},
			sessions: 1, msgs: 1, tlsaQueries: 1},
		// DANE-10: the host's addresses are insecure, so no TLSA lookup at all, and the
		// records published there do not count.
		{name: "insecure-zone", unsigned: true, tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", "3 1 1 "+spkiSHA256(otherKey))}
		}, want: expect{"result": "delivered", "policy": "opportunistic", "tls": "untrusted", "auth": "none",
			"reason": "~DANE does not apply: DANE-10"}, sessions: 1, msgs: 1, tlsaQueries: 0},
		// DANE-26: dane-only defers when DANE does not apply, without connecting.
		{name: "dane-only/no-tlsa", setup: func(dh *daneHarness) {
			dh.r.Policies = tlspolicy.Table{"example.net": {Level: tlspolicy.LevelDANEOnly}}
		}, want: expect{"result": "deferred", "reply": "~451 4.7.5 dane-only", "policy": "local", "ip": "", "tls": "none",
			"reason": "policy_unsatisfiable"}, sessions: 0, msgs: 0, tlsaQueries: 1},
		{name: "dane-only/insecure-mx", unsigned: true, setup: func(dh *daneHarness) {
			dh.r.Policies = tlspolicy.Table{"example.net": {Level: tlspolicy.LevelDANEOnly}}
		}, tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", "3 1 1 "+spkiSHA256(dh.cert))}
		}, want: expect{"result": "deferred", "reply": "~451 4.7.5", "policy": "local", "ip": "", "tls": "none",
			"reason": "policy_unsatisfiable"}, sessions: 0, msgs: 0, tlsaQueries: 0},
		{name: "dane-only/dane-ee", setup: func(dh *daneHarness) {
			dh.r.Policies = tlspolicy.Table{"example.net": {Level: tlspolicy.LevelDANEOnly}}
		}, tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", "3 1 1 "+spkiSHA256(dh.cert))}
		}, want: expect{"result": "delivered", "policy": "dane", "tls": "verified", "auth": "dane-ee"}, sessions: 1, msgs: 1, tlsaQueries: 1},
		// DANE-19: audit mode delivers despite the mismatch and says what DANE would
		// have done; the session is the opportunistic one.
		{name: "audit/wrong-digest", setup: func(dh *daneHarness) {
			dh.r.Policies = tlspolicy.Table{"example.net": {Level: tlspolicy.LevelDANE, Audit: true}}
		}, tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", "3 1 1 "+spkiSHA256(otherKey))}
		}, want: expect{"result": "delivered", "policy": "local", "tls": "untrusted", "auth": "none",
			"reason": "~audit: DANE would have required authentication; the certificate does not match"}, sessions: 1, msgs: 1, tlsaQueries: 1},
		{name: "audit/match", setup: func(dh *daneHarness) {
			dh.r.Policies = tlspolicy.Table{"example.net": {Level: tlspolicy.LevelDANE, Audit: true}}
		}, tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", "3 1 1 "+spkiSHA256(dh.cert))}
		}, want: expect{"result": "delivered", "policy": "local", "tls": "untrusted", "auth": "none",
			"reason": "~audit: DANE would have required authentication; the certificate matches: dane-ee 3 1 1"}, sessions: 1, msgs: 1, tlsaQueries: 1},
		{name: "audit/tlsa-servfail", setup: func(dh *daneHarness) {
			dh.r.Policies = tlspolicy.Table{"example.net": {Level: tlspolicy.LevelDANE, Audit: true}}
			dh.dns.Fail(fmt.Sprintf("_%d._tcp.mx1.example.net", dh.rv.port), mdns.TypeTLSA, dnstest.ServFail)
		}, want: expect{"result": "delivered", "policy": "local", "tls": "untrusted",
			"reason": "~audit: DANE would have skipped the host: DANE-"}, sessions: 1, msgs: 1, tlsaQueries: 1},
		// §14.8: an explicit may is the per-destination opt-out; no TLSA lookup.
		{name: "opt-out", setup: func(dh *daneHarness) {
			dh.r.Policies = tlspolicy.Table{"example.net": {Level: tlspolicy.LevelMay}}
		}, tlsa: func(dh *daneHarness) []string {
			return []string{tlsaRR(dh.rv.port, "mx1.example.net", "3 1 1 "+spkiSHA256(otherKey))}
		}, want: expect{"result": "delivered", "policy": "local", "tls": "untrusted", "auth": "none", "reason": ""},
			sessions: 1, msgs: 1, tlsaQueries: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dh := newDANEHarness(t, tt.cfg, !tt.unsigned)
			if tt.tlsa != nil {
				dh.dns.Add(tt.tlsa(dh)...)
			}
			if tt.setup != nil {
				tt.setup(dh)
			}
			reg := prometheus.NewRegistry()
			dh.r.Metrics = NewMetrics(reg, nil)
			id := dh.enqueue(senderAddr, "bob@example.net", keepAddr)
			dh.clock.Advance(tt.waited)
			start := dh.clock.Now()
			dh.round(dh.r)

			want := expect{"domain": "example.net", "mx": "mx1.example.net", "ip": "127.0.0.1", "rcpt": "bob@example.net"}
			for k, v := range tt.want {
				want[k] = v
			}
			dh.checkAttempt(id, "bob@example.net", 1, want)
			dh.checkLog(id, "bob@example.net", want)
			_, rc := dh.recipient(id, "bob@example.net")
			switch want["result"] {
			case "delivered":
				if rc.State != spool.StateDelivered {
					t.Errorf("state %s, want delivered", rc.State)
				}
			case "deferred":
				// 14.7: transport-security failures defer, never bounce.
				if rc.State != spool.StateQueued || !rc.NextAttempt.Equal(start.Add(5*time.Minute)) {
					t.Errorf("state %s next %v, want queued for +5m", rc.State, rc.NextAttempt)
				}
				if d := dh.dsns(); len(d) != 0 {
					t.Errorf("%d DSNs for a deferral", len(d))
				}
			}
			if accepted, _ := dh.rv.ln.counts(); accepted != tt.sessions {
				t.Errorf("receiver accepted %d sessions, want %d", accepted, tt.sessions)
			}
			if got := len(dh.rv.messages()); got != tt.msgs {
				t.Errorf("receiver got %d messages, want %d", got, tt.msgs)
			}
			if n := dh.dns.Count(fmt.Sprintf("_%d._tcp.mx1.example.net", dh.rv.port), mdns.TypeTLSA); n != tt.tlsaQueries {
				t.Errorf("%d TLSA queries, want %d", n, tt.tlsaQueries)
			}
			if tt.sni != "" {
				if sni := dh.servernames(); len(sni) == 0 || sni[0] != tt.sni {
					t.Errorf("SNI %q, want %q (DANE-24)", sni, tt.sni)
				}
			}
			// The counter follows the record's policy and tls fields.
			if n := counterValue(t, reg, "mxward_deliveries_total", map[string]string{
				"result": want["result"], "policy": want["policy"], "tls": want["tls"]}); n != 1 {
				t.Errorf("mxward_deliveries_total{result=%q,policy=%q,tls=%q} = %v, want 1", want["result"], want["policy"], want["tls"], n)
			}
		})
	}
}

// counterValue reads one series of a counter from reg; 0 when it does not exist.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// Two MX hosts on 127.0.0.1 and 127.0.0.2 with the same port, each with its own
// receiver and certificate: the TLSA step is per host (RFC 7672 §2.2.2).
func TestRemoteDANETwoHosts(t *testing.T) {
	tests := []struct {
		name string
		// setup publishes or breaks each host's TLSA records; cert1 and cert2 are the
		// receivers' certificates.
		setup                func(h *remoteHarness, port int, cert1, cert2 tls.Certificate)
		want                 expect
		sessions1, sessions2 int
	}{
		// DANE-04: the first host's TLSA lookup fails, so it is skipped and the second
		// one, authenticated, takes the message.
		{"first-unreachable", func(h *remoteHarness, port int, _, cert2 tls.Certificate) {
			h.dns.Fail(fmt.Sprintf("_%d._tcp.mx1.example.net", port), mdns.TypeTLSA, dnstest.ServFail)
			h.dns.Add(tlsaRR(port, "mx2.example.net", "3 1 1 "+spkiSHA256(cert2)))
		}, expect{"result": "delivered", "mx": "mx2.example.net", "ip": "127.0.0.2", "policy": "dane", "tls": "verified",
			"auth": "dane-ee", "reason": "~dane-ee 3 1 1"}, 0, 1},
		// DANE-04, 14.7: no host left; deferred with 4.7.5 and the last reason.
		{"both-unreachable", func(h *remoteHarness, port int, _, _ tls.Certificate) {
			h.dns.Fail(fmt.Sprintf("_%d._tcp.mx1.example.net", port), mdns.TypeTLSA, dnstest.ServFail)
			h.dns.Fail(fmt.Sprintf("_%d._tcp.mx2.example.net", port), mdns.TypeTLSA, dnstest.Refused)
		}, expect{"result": "deferred", "reply": "~451 4.7.5 TLSA lookup failed for mx2.example.net", "mx": "mx2.example.net", "ip": "",
			"policy": "dane", "tls": "none", "auth": "none", "reason": "tlsa_lookup_failed"}, 0, 0},
		// A certificate mismatch at the first host: the next host is tried (§9.1 dane).
		{"first-mismatch", func(h *remoteHarness, port int, cert1, cert2 tls.Certificate) {
			h.dns.Add(tlsaRR(port, "mx1.example.net", "3 1 1 "+spkiSHA256(cert2)),
				tlsaRR(port, "mx2.example.net", "3 1 1 "+spkiSHA256(cert2)))
		}, expect{"result": "delivered", "mx": "mx2.example.net", "ip": "127.0.0.2", "policy": "dane", "auth": "dane-ee"}, 1, 1},
		// DANE-08: preference wins over security; the better MX without TLSA records
		// is used although the worse one has them.
		{"preference-wins", func(h *remoteHarness, port int, _, cert2 tls.Certificate) {
			h.dns.Add(tlsaRR(port, "mx2.example.net", "3 1 1 "+spkiSHA256(cert2)))
		}, expect{"result": "delivered", "mx": "mx1.example.net", "ip": "127.0.0.1", "policy": "opportunistic", "tls": "untrusted",
			"auth": "none", "reason": "~DANE does not apply: DANE-13"}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRemoteHarness(t)
			h.dns.Secure("example.net")
			h.dns.Add("example.net. 300 IN MX 20 mx2.example.net.", "mx2.example.net. 300 IN A 127.0.0.2")
			cert1 := (*testCA)(nil).issue(t, "mx1.example.net")
			cert2 := (*testCA)(nil).issue(t, "mx2.example.net")
			rv1 := startReceiver(t, receiverConfig{cert: &cert1, users: []string{"bob@example.net"}})
			rv2 := startReceiver(t, receiverConfig{cert: &cert2, users: []string{"bob@example.net"},
				addr: net.JoinHostPort("127.0.0.2", strconv.Itoa(rv1.port))})
			r := h.newRemote(rv1.port)
			r.DefaultLevel = tlspolicy.LevelDANE
			tt.setup(h, rv1.port, cert1, cert2)
			id := h.enqueue(senderAddr, "bob@example.net", keepAddr)
			h.round(r)

			want := expect{"domain": "example.net", "rcpt": "bob@example.net"}
			for k, v := range tt.want {
				want[k] = v
			}
			h.checkAttempt(id, "bob@example.net", 1, want)
			h.checkLog(id, "bob@example.net", want)
			a1, _ := rv1.ln.counts()
			a2, _ := rv2.ln.counts()
			if a1 != tt.sessions1 || a2 != tt.sessions2 {
				t.Errorf("sessions %d at mx1, %d at mx2; want %d, %d", a1, a2, tt.sessions1, tt.sessions2)
			}
			if got := len(rv1.messages()); got != 0 && tt.want["mx"] != "mx1.example.net" {
				t.Errorf("mx1 got %d messages", got)
			}
			if _, rc := h.recipient(id, "bob@example.net"); tt.want["result"] == "deferred" && rc.State != spool.StateQueued {
				t.Errorf("state %s, want queued (never bounced, 14.7)", rc.State)
			}
		})
	}
}

// Half-DANE (DANE-07): the MX RRset of example.com is insecure, but its MX host lies in
// a signed zone and publishes TLSA records. They are enforced, and the record says the
// delivery was authenticated for the host only: tls "trusted", reason "half-dane:".
func TestRemoteHalfDANE(t *testing.T) {
	for _, match := range []bool{true, false} {
		t.Run(fmt.Sprint("match=", match), func(t *testing.T) {
			h := newRemoteHarness(t)
			h.dns.Secure("hosting.test")
			h.dns.Add(
				"example.com. 3600 IN SOA ns.example.com. hostmaster.example.com. 1 7200 900 1209600 300",
				"hosting.test. 3600 IN SOA ns.hosting.test. hostmaster.hosting.test. 1 7200 900 1209600 300",
				"example.com. 300 IN MX 10 mx.hosting.test.",
				"mx.hosting.test. 300 IN A 127.0.0.1",
			)
			cert := (*testCA)(nil).issue(t, "mx.hosting.test")
			published := cert
			if !match {
				published = (*testCA)(nil).issue(t, "mx.hosting.test")
			}
			rv := startReceiver(t, receiverConfig{cert: &cert, users: []string{"bob@example.com"}})
			h.dns.Add(tlsaRR(rv.port, "mx.hosting.test", "3 1 1 "+spkiSHA256(published)))
			r := h.newRemote(rv.port)
			r.DefaultLevel = tlspolicy.LevelDANE
			id := h.enqueue(senderAddr, "bob@example.com", keepAddr)
			h.clock.Advance(time.Hour) // a plaintext retry would be allowed for may
			h.round(r)

			want := expect{"domain": "example.com", "mx": "mx.hosting.test", "ip": "127.0.0.1", "policy": "dane",
				"result": "delivered", "tls": "trusted", "auth": "dane-ee", "reason": "~half-dane: dane-ee 3 1 1"}
			sessions, msgs := 1, 1
			if !match {
				want = expect{"domain": "example.com", "mx": "mx.hosting.test", "ip": "127.0.0.1", "policy": "dane",
					"result": "deferred", "reply": "~451 4.7.5", "tls": "none", "auth": "none", "reason": "verify_failed: dane no_match"}
				msgs = 0
			}
			h.checkAttempt(id, "bob@example.com", 1, want)
			rec := h.checkLog(id, "bob@example.com", want)
			if pr, _ := rec["policy_reason"].(string); !strings.HasPrefix(pr, "half-dane:") {
				t.Errorf("policy_reason %q does not say half-dane", pr)
			}
			if a, _ := rv.ln.counts(); a != sessions || len(rv.messages()) != msgs {
				t.Errorf("receiver accepted %d sessions, got %d messages; want %d, %d", a, len(rv.messages()), sessions, msgs)
			}
		})
	}
}

// A kept session carries the next message only if its handshake meets that message's
// requirement as decided now: an opportunistic session is reused for a message that
// needs DANE only when its certificate matches the TLSA records.
func TestRemoteDANESessionReuse(t *testing.T) {
	for _, match := range []bool{true, false} {
		t.Run(fmt.Sprint("match=", match), func(t *testing.T) {
			dh := newDANEHarness(t, receiverConfig{}, true)
			published := dh.cert
			if !match {
				published = (*testCA)(nil).issue(t, "mx1.example.net")
			}
			dh.dns.Add(tlsaRR(dh.rv.port, "mx1.example.net", "3 1 1 "+spkiSHA256(published)))
			// The first route knows no DNS for its host (no TLSA step, opportunistic);
			// later ones do.
			var mu sync.Mutex
			calls := 0
			route := dh.r.Route
			dh.r.Route = func(ctx context.Context, domain string) (string, []Hop, error) {
				nh, hops, err := route(ctx, domain)
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls == 1 {
					for i := range hops {
						hops[i].DANE = nil
					}
				}
				return nh, hops, err
			}
			dh.r.MaxPerDomain = 1
			id1 := dh.enqueue(senderAddr, "bob@example.net", keepAddr)
			id2 := dh.enqueue(senderAddr, "bob@example.net", keepAddr)
			dh.round(dh.r)

			var first, second spool.ID
			for _, id := range []spool.ID{id1, id2} {
				m, _ := dh.recipient(id, "bob@example.net")
				for _, a := range m.Attempts {
					if a.Rcpt == "bob@example.net" && a.Fields["policy"] == "opportunistic" {
						first = id
					}
				}
			}
			second = id1
			if first == id1 {
				second = id2
			}
			if first == "" {
				t.Fatal("no message went out opportunistically first")
			}
			dh.checkAttempt(first, "bob@example.net", 1, expect{"result": "delivered", "tls": "untrusted", "auth": "none"})
			accepted, _ := dh.rv.ln.counts()
			if match {
				dh.checkAttempt(second, "bob@example.net", 1, expect{"result": "delivered", "policy": "dane", "tls": "verified",
					"auth": "dane-ee", "reason": "~dane-ee 3 1 1"})
				if accepted != 1 || len(dh.rv.messages()) != 2 {
					t.Errorf("receiver accepted %d sessions, got %d messages; want the session reused for both", accepted, len(dh.rv.messages()))
				}
				return
			}
			dh.checkAttempt(second, "bob@example.net", 1, expect{"result": "deferred", "reply": "~4.7.5", "policy": "dane",
				"reason": "verify_failed: dane no_match"})
			if accepted != 2 || len(dh.rv.messages()) != 1 {
				t.Errorf("receiver accepted %d sessions, got %d messages; want a new session for the DANE message, refused", accepted, len(dh.rv.messages()))
			}
		})
	}
}
