package main

import (
	"strings"
	"testing"
	"time"

	"mxward/internal/testpeer"
)

// A real Postfix relays into mxward with mandatory TLS (smtp_tls_security_level =
// encrypt): the STARTTLS handshake, pipelining and DATA of a production MTA are accepted,
// and the message lands in the local Maildir.
func TestPostfixRelaysIntoMxward(t *testing.T) {
	testpeer.RequireTool(t, testpeer.PostfixPath)
	in := startInstance(t, "")
	pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{
		Hostname:  "relay.remote.test",
		RelayHost: "[127.0.0.1]:" + strings.Split(in.addr("inbound"), ":")[1],
		ClientTLS: "encrypt",
	})
	msg := []byte("From: someone@remote.test\nTo: alice@example.test, bob@example.test\nSubject: via postfix\n\nHello through Postfix.\n.\nA lone dot above.\n")
	pf.Send(t, "someone@remote.test", []string{"alice@example.test", "bob@example.test"}, msg)
	pf.WaitLog(t, "TLS connection established to", 30*time.Second)
	pf.WaitLog(t, "status=sent", 30*time.Second)
	for _, user := range []string{"alice", "bob"} {
		got := in.maildir(user, 1)[0]
		for _, want := range []string{"Subject: via postfix", "\n.\nA lone dot above.\n", "from relay.remote.test", "with ESMTPS"} {
			if !strings.Contains(got, want) {
				t.Errorf("%s's copy lacks %q:\n%s", user, want, got)
			}
		}
	}
	// Postfix pipelined both RCPTs into one transaction: one queue entry for both.
	if recs := in.logRecords("queued"); len(recs) != 1 || recs[0]["rcpts"] != float64(2) {
		t.Errorf("queued records: %v", recs)
	}
}

// Postfix as a plaintext client (smtp_tls_security_level = none) works too: STARTTLS is
// offered, never required, on the inbound port (ST-09).
func TestPostfixPlaintextIntoMxward(t *testing.T) {
	testpeer.RequireTool(t, testpeer.PostfixPath)
	in := startInstance(t, "")
	pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{
		Hostname:  "relay.remote.test",
		RelayHost: "[127.0.0.1]:" + strings.Split(in.addr("inbound"), ":")[1],
		ClientTLS: "none",
	})
	pf.Send(t, "someone@remote.test", []string{"alice@example.test"}, []byte("Subject: plain\n\nbody\n"))
	pf.WaitLog(t, "status=sent", 30*time.Second)
	if got := in.maildir("alice", 1)[0]; !strings.Contains(got, "with ESMTP id") {
		t.Errorf("Received header:\n%s", got)
	}
}
