package delivery

import (
	"context"
	"testing"
	"time"
)

// Enqueue hands a just-queued message to the workers without a scan, leases it so that
// scans skip it while it is in flight, and the outcome replaces the lease.
func TestEnqueueFastPath(t *testing.T) {
	h := newRemoteHarness(t)
	rv := startReceiver(t, receiverConfig{users: []string{"bob@example.net"}})
	r := h.newRemote(rv.port)
	r.Poll = time.Hour // no timer scans: only Enqueue can deliver
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// Run's first scan finds an empty queue; wait for it so Enqueue takes the fast path.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		started := r.runCtx != nil
		r.mu.Unlock()
		if started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	id := h.enqueue(senderAddr, "bob@example.net", "keep@origin.test")
	m, _ := h.recipient(id, "bob@example.net")
	r.Enqueue(id, &m.Envelope)
	for len(rv.messages()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("message not delivered through Enqueue")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Wait()
	h.checkAttempt(id, "bob@example.net", 1, expect{"result": "delivered"})
	// A second Enqueue of the same message while nothing is due does nothing harmful:
	// the recipient is final, and a scan finds nothing.
	if n := r.Scan(h.ctx); n != 0 {
		t.Errorf("scan after delivery handed out %d jobs", n)
	}
}

// A destination whose every address refuses connections is treated as down for a
// minute: the messages behind the first are deferred without connecting again.
func TestDeadDestination(t *testing.T) {
	h := newRemoteHarness(t)
	r := h.newRemote(closedPort(t))
	r.MaxPerDomain = 1
	first := h.enqueue(senderAddr, "bob@example.net", "keep@origin.test")
	second := h.enqueue(senderAddr, "bob@example.net", "keep@origin.test")
	h.round(r)
	h.checkAttempt(first, "bob@example.net", 1, expect{"result": "deferred", "reason": "connect_failed"})
	h.checkAttempt(second, "bob@example.net", 1, expect{"result": "deferred", "reason": "destination_down"})
	// A minute later the destination is tried again.
	h.clock.Advance(10 * time.Minute)
	h.round(r)
	h.checkAttempt(first, "bob@example.net", 2, expect{"result": "deferred", "reason": "connect_failed"})
}

// An internationalized destination domain (SMTPUTF8 mail) is routed by its A-labels; a
// domain with no valid A-label form bounces as an invalid domain.
func TestIDNDestination(t *testing.T) {
	h := newRemoteHarness(t)
	h.dns.Add(
		"xn--bcher-kva.example. 3600 IN SOA ns.example.net. hostmaster.example.net. 1 7200 900 1209600 300",
		"xn--bcher-kva.example. 300 IN MX 10 mx1.example.net.",
	)
	rv := startReceiver(t, receiverConfig{users: []string{"bob@bücher.example"}})
	r := h.newRemote(rv.port)
	id := h.enqueue(senderAddr, "bob@bücher.example", "keep@origin.test")
	h.round(r)
	h.checkAttempt(id, "bob@bücher.example", 1, expect{"result": "delivered", "mx": "mx1.example.net"})
	bad := h.enqueue(senderAddr, "bob@a\u200d.example", "keep@origin.test")
	h.round(r)
	h.checkAttempt(bad, "bob@a\u200d.example", 1, expect{"result": "bounced", "reason": "invalid_domain"})
}

// With Linger, a session stays open for mail that follows shortly: two messages handed
// over one after the other use one connection.
func TestLingerReusesSession(t *testing.T) {
	h := newRemoteHarness(t)
	rv := startReceiver(t, receiverConfig{users: []string{"bob@example.net"}})
	r := h.newRemote(rv.port)
	r.Linger = 2 * time.Second
	first := h.enqueue(senderAddr, "bob@example.net", "keep@origin.test")
	r.Scan(h.ctx)
	deadline := time.Now().Add(5 * time.Second)
	for len(rv.messages()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("first message not delivered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	second := h.enqueue(senderAddr, "bob@example.net", "keep@origin.test")
	r.Scan(h.ctx)
	r.Wait()
	h.checkAttempt(first, "bob@example.net", 1, expect{"result": "delivered"})
	h.checkAttempt(second, "bob@example.net", 1, expect{"result": "delivered"})
	if accepted, _ := rv.ln.counts(); accepted != 1 {
		t.Errorf("%d connections, want 1", accepted)
	}
}
