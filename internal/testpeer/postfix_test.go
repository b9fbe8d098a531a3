package testpeer

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// deliveryTimeout bounds how long a message may take through a local Postfix.
// Deliveries take well under a second; the margin is for a loaded machine.
const deliveryTimeout = 30 * time.Second

// marker returns a string unique to this test run, to find a message body by.
func marker(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
}

// TestPostfixRelaysToSinkOverTLS checks relay mode end to end: swaks submits to
// Postfix, Postfix relays to the sink with opportunistic STARTTLS.
func TestPostfixRelaysToSinkOverTLS(t *testing.T) {
	t.Parallel()
	RequireTool(t, SwaksPath)
	cert, err := NewCert("sink.test")
	if err != nil {
		t.Fatal(err)
	}
	sk := startSink(t, "sink.test", cert)
	pf := StartPostfix(t, PostfixOptions{
		Hostname:  "relay.postfix.test",
		RelayHost: "[127.0.0.1]:" + strconv.Itoa(sk.Port()),
		ClientTLS: "may",
	})

	body := marker(t)
	out, err := Swaks(t, "--server", pf.Addr(), "--helo", "client.test",
		"--from", "alice@client.test", "--to", "bob@remote.test",
		"--header", "Subject: relay test", "--body", body)
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}

	msgs := sk.wait(t, 1, deliveryTimeout)
	if len(msgs) != 1 {
		t.Fatalf("sink got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "alice@client.test" {
		t.Errorf("MAIL FROM = %q, want alice@client.test", m.From)
	}
	if len(m.To) != 1 || m.To[0] != "bob@remote.test" {
		t.Errorf("RCPT TO = %q, want [bob@remote.test]", m.To)
	}
	if m.Helo != "relay.postfix.test" {
		t.Errorf("EHLO name = %q, want relay.postfix.test", m.Helo)
	}
	if !m.TLS {
		t.Errorf("message was relayed without STARTTLS")
	}
	if !strings.Contains(string(m.Data), body) {
		t.Errorf("relayed data lacks body %q:\n%s", body, m.Data)
	}
	if !strings.Contains(string(m.Data), "Subject: relay test") {
		t.Errorf("relayed data lacks the Subject header:\n%s", m.Data)
	}

	tlsLine := pf.WaitLog(t, "TLS connection established to", deliveryTimeout)
	if !strings.Contains(tlsLine, sk.Addr()[len("127.0.0.1:"):]) {
		t.Errorf("TLS log line does not name the sink's port %d: %s", sk.Port(), tlsLine)
	}
	sent := pf.WaitLog(t, "status=sent", deliveryTimeout)
	wantRelay := fmt.Sprintf("relay=127.0.0.1[127.0.0.1]:%d", sk.Port())
	if !strings.Contains(sent, "to=<bob@remote.test>") || !strings.Contains(sent, wantRelay) {
		t.Errorf("delivery log line lacks to=<bob@remote.test> or %s: %s", wantRelay, sent)
	}
	pf.WaitQueueEmpty(t, deliveryTimeout)
}

// TestPostfixDeliversToMaildir checks receiver mode: swaks sends over STARTTLS to
// a Deliver instance, and the message lands in the recipient's Maildir.
func TestPostfixDeliversToMaildir(t *testing.T) {
	t.Parallel()
	RequireTool(t, SwaksPath)
	pf := StartPostfix(t, PostfixOptions{
		Hostname:  "mx.example.test",
		Deliver:   true,
		Domains:   []string{"example.test"},
		ServerTLS: true,
	})

	body := marker(t)
	out, err := Swaks(t, "--server", pf.Addr(), "--helo", "client.test", "--tls",
		"--from", "sender@client.test", "--to", "alice@example.test",
		"--header", "Subject: delivery test", "--body", body)
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	msgs := pf.WaitMaildir(t, "alice@example.test", 1, deliveryTimeout)
	if len(msgs) != 1 {
		t.Fatalf("Maildir holds %d messages, want 1", len(msgs))
	}
	for _, want := range []string{
		body,
		"Subject: delivery test",
		"Return-Path: <sender@client.test>",
		"Delivered-To: alice@example.test",
		"(using TLS", // smtpd_tls_received_header: the submission used STARTTLS
	} {
		if !strings.Contains(msgs[0], want) {
			t.Errorf("delivered message lacks %q:\n%s", want, msgs[0])
		}
	}

	// Local parts that cannot name a Maildir, and other domains without a relay
	// host, are refused or bounced, never written anywhere.
	tests := []struct {
		rcpt string
		want string // in swaks output
	}{
		{".hidden@example.test", "550"},
		{"a/b@example.test", "550"},
	}
	for _, tc := range tests {
		out, err := Swaks(t, "--server", pf.Addr(), "--helo", "client.test",
			"--from", "sender@client.test", "--to", tc.rcpt, "--body", body)
		if err == nil {
			t.Errorf("swaks to %s succeeded, want rejection:\n%s", tc.rcpt, out)
			continue
		}
		if !strings.Contains(out, "<** "+tc.want) {
			t.Errorf("swaks to %s: want a %s reply:\n%s", tc.rcpt, tc.want, out)
		}
	}
	if got := pf.WaitMaildir(t, "alice@example.test", 1, 0); len(got) != 1 {
		t.Errorf("Maildir holds %d messages after the refusals, want 1", len(got))
	}
}

// TestTwoInstancesAndCleanup runs two instances at once, one relaying to the other
// with mandatory TLS and local injection through sendmail, and then checks that
// cleanup left none of their processes behind.
func TestTwoInstancesAndCleanup(t *testing.T) {
	t.Parallel()
	type instance struct {
		masterPID int
		dir       string
		addr      string
	}
	var started []instance
	t.Run("pair", func(t *testing.T) {
		receiver := StartPostfix(t, PostfixOptions{
			Hostname:  "mx.example.test",
			Deliver:   true,
			Domains:   []string{"example.test", "other.test"},
			ServerTLS: true,
		})
		sender := StartPostfix(t, PostfixOptions{
			Hostname:  "out.sender.test",
			RelayHost: "[127.0.0.1]:" + strconv.Itoa(receiver.Port()),
			ClientTLS: "encrypt",
		})
		for _, p := range []*Postfix{receiver, sender} {
			started = append(started, instance{p.MasterPID(), p.layout.dir, p.Addr()})
		}
		if receiver.Addr() == sender.Addr() || receiver.ConfigDir() == sender.ConfigDir() {
			t.Fatalf("instances share an address or directory: %s %s, %s %s",
				receiver.Addr(), receiver.ConfigDir(), sender.Addr(), sender.ConfigDir())
		}

		body := marker(t)
		msg := []byte("From: Carol <carol@sender.test>\nTo: dave@example.test\nSubject: pair test\n\n" +
			body + "\n.\nafter a lone dot\n")
		sender.Send(t, "carol@sender.test", []string{"Dave@Example.test", "erin@other.test"}, msg)

		for _, rcpt := range []string{"dave@example.test", "erin@other.test"} {
			got := receiver.WaitMaildir(t, rcpt, 1, deliveryTimeout)
			if !strings.Contains(got[0], body+"\n.\nafter a lone dot\n") {
				t.Errorf("message for %s lost its body or lone dot line:\n%s", rcpt, got[0])
			}
			if !strings.Contains(got[0], "Return-Path: <carol@sender.test>") {
				t.Errorf("message for %s has the wrong envelope sender:\n%s", rcpt, got[0])
			}
		}
		sender.WaitLog(t, "TLS connection established to", deliveryTimeout)
		sender.WaitLog(t, "status=sent", deliveryTimeout)
		receiver.WaitLog(t, "TLS connection established from", deliveryTimeout)
		sender.WaitQueueEmpty(t, deliveryTimeout)
		receiver.WaitQueueEmpty(t, deliveryTimeout)
		if !sender.QueueEmpty() {
			t.Errorf("QueueEmpty = false after WaitQueueEmpty")
		}
	})
	if len(started) != 2 {
		return // the subtest was skipped or failed before both were up
	}
	for _, in := range started {
		if !processGone(in.masterPID) {
			t.Errorf("master %d of %s still runs after cleanup", in.masterPID, in.addr)
		}
		if left := processesIn(in.dir); len(left) > 0 {
			t.Errorf("processes %v of %s still run after cleanup", left, in.addr)
		}
		if _, err := os.Stat(in.dir); !os.IsNotExist(err) {
			t.Errorf("instance directory %s still exists after cleanup (%v)", in.dir, err)
		}
		if c, err := net.DialTimeout("tcp", in.addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after cleanup", in.addr)
		}
	}
}

// TestPostfixDefersAndFlushes checks the retry path tests of a late peer rely on:
// with the relay host down the message is deferred and stays queued, and once the
// host is up a flush delivers it.
func TestPostfixDefersAndFlushes(t *testing.T) {
	t.Parallel()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	relay := "127.0.0.1:" + strconv.Itoa(port)
	pf := StartPostfix(t, PostfixOptions{RelayHost: "[127.0.0.1]:" + strconv.Itoa(port), ClientTLS: "none"})

	body := marker(t)
	pf.Send(t, "late@postfix.test", []string{"someone@remote.test"}, []byte("Subject: late\n\n"+body+"\n"))
	deferred := pf.WaitLog(t, "status=deferred", deliveryTimeout)
	if !strings.Contains(deferred, "to=<someone@remote.test>") {
		t.Errorf("deferral line names another recipient: %s", deferred)
	}
	if pf.QueueEmpty() {
		t.Errorf("QueueEmpty = true with a deferred message")
	}

	sk := startSinkAt(t, relay, "late.test", nil)
	pf.Flush(t)
	m := sk.wait(t, 1, deliveryTimeout)[0]
	if m.From != "late@postfix.test" || !strings.Contains(string(m.Data), body) {
		t.Errorf("sink recorded %+v", m)
	}
	pf.WaitQueueEmpty(t, deliveryTimeout)
}
