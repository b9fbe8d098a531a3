package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"mxward/internal/testpeer"
)

// pfPort returns a testpeer Postfix's port as a string.
func pfPort(pf *testpeer.Postfix) string { return fmt.Sprint(pf.Port()) }

// deliveryRecord waits for a "delivery" log record for rcpt with the given result.
func (in *instance) deliveryRecord(rcpt, result string) map[string]any {
	in.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range in.logRecords("delivery") {
			if r["rcpt"] == rcpt && r["result"] == result {
				return r
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	in.t.Fatalf("no %s delivery record for %s:\n%s", result, rcpt, in.log.String())
	return nil
}

// mxward delivers to a real Postfix receiver, with STARTTLS when Postfix offers it (an
// opportunistic, untrusted session: Postfix's certificate is self-signed) and in
// plaintext when it does not.
func TestDeliverToPostfix(t *testing.T) {
	testpeer.RequireTool(t, testpeer.PostfixPath)
	for _, tc := range []struct {
		name      string
		serverTLS bool
		wantTLS   string
	}{
		{"starttls", true, "untrusted"},
		{"plaintext", false, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{Hostname: "mx.example.net", Deliver: true,
				Domains: []string{"example.net"}, ServerTLS: tc.serverTLS})
			in := startInstance(t, fmt.Sprintf("\n[delivery.transport]\n\"example.net\" = \"[127.0.0.1]:%s\"\n", pfPort(pf)))
			out, err := in.mxward("Subject: to postfix\n\nHello Postfix.\n", "sendmail", "-f", "alice@example.test", "bob@example.net")
			if err != nil {
				t.Fatalf("sendmail: %v %s", err, out)
			}
			msgs := pf.WaitMaildir(t, "bob@example.net", 1, 30*time.Second)
			if !strings.Contains(msgs[0], "Hello Postfix.") || !strings.Contains(msgs[0], "Subject: to postfix") {
				t.Errorf("Postfix stored:\n%s", msgs[0])
			}
			rec := in.deliveryRecord("bob@example.net", "delivered")
			if rec["tls"] != tc.wantTLS || rec["policy"] != "opportunistic" || rec["mx"] != "127.0.0.1" || rec["ip"] != "127.0.0.1" ||
				rec["domain"] != "example.net" || !strings.HasPrefix(fmt.Sprint(rec["reply"]), "250") {
				t.Errorf("delivery record %v", rec)
			}
			if tc.serverTLS && (rec["tls_version"] == "" || rec["cipher"] == "") {
				t.Errorf("TLS details missing: %v", rec)
			}
			if tc.serverTLS {
				pf.WaitLog(t, "TLS connection established from", 10*time.Second)
			}
		})
	}
}

// A level that demands TLS (delivery.tls_policy "encrypt") never sends in plaintext: to
// a Postfix without STARTTLS the message is deferred with 4.7.4, not delivered or bounced.
func TestEncryptPolicyDefersWithoutTLS(t *testing.T) {
	testpeer.RequireTool(t, testpeer.PostfixPath)
	pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{Hostname: "mx.example.net", Deliver: true, Domains: []string{"example.net"}})
	in := startInstance(t, fmt.Sprintf("\n[delivery.transport]\n\"example.net\" = \"[127.0.0.1]:%s\"\n[delivery.tls_policy]\n\"example.net\" = \"encrypt\"\n", pfPort(pf)))
	if out, err := in.mxward("Subject: secret\n\nx\n", "sendmail", "-f", "alice@example.test", "bob@example.net"); err != nil {
		t.Fatalf("sendmail: %v %s", err, out)
	}
	rec := in.deliveryRecord("bob@example.net", "deferred")
	if rec["policy"] != "local" || rec["reason"] != "starttls_not_offered" || !strings.Contains(fmt.Sprint(rec["reply"]), "4.7.4") {
		t.Errorf("delivery record %v", rec)
	}
	if strings.Contains(pf.Log(), "status=sent") || strings.Contains(pf.Log(), "from=<alice@example.test>") {
		t.Errorf("Postfix received the message:\n%s", pf.Log())
	}
}

// Through a Postfix relay (mxward's smarthost), on to a Postfix receiver.
func TestDeliverThroughPostfixRelay(t *testing.T) {
	testpeer.RequireTool(t, testpeer.PostfixPath)
	final := testpeer.StartPostfix(t, testpeer.PostfixOptions{Hostname: "mx.example.net", Deliver: true, Domains: []string{"example.net"}, ServerTLS: true})
	relay := testpeer.StartPostfix(t, testpeer.PostfixOptions{Hostname: "relay.example.test", RelayHost: "[127.0.0.1]:" + pfPort(final),
		ServerTLS: true, ClientTLS: "may"})
	// The extra text lands inside baseConfig's [delivery] table.
	in := startInstance(t, fmt.Sprintf("smarthost = \"[127.0.0.1]:%s\"\n", pfPort(relay)))
	if out, err := in.mxward("Subject: relayed\n\nvia the relay\n", "sendmail", "-f", "alice@example.test", "carol@example.net"); err != nil {
		t.Fatalf("sendmail: %v %s", err, out)
	}
	msgs := final.WaitMaildir(t, "carol@example.net", 1, 30*time.Second)
	if !strings.Contains(msgs[0], "via the relay") || !strings.Contains(msgs[0], "relay.example.test") {
		t.Errorf("final receiver got:\n%s", msgs[0])
	}
	if rec := in.deliveryRecord("carol@example.net", "delivered"); rec["tls"] != "untrusted" {
		t.Errorf("delivery record %v", rec)
	}
}

// mxward's DSN is accepted by a real Postfix and parses as multipart/report with
// go-message: a message from a Postfix user to an unknown local mailbox at mxward...
// arrives through a local alias to a recipient Postfix rejects, so mxward bounces it.
func TestDSNAcceptedByPostfix(t *testing.T) {
	testpeer.RequireTool(t, testpeer.PostfixPath)
	pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{Hostname: "mx.example.net", Deliver: true, Domains: []string{"example.net"}, ServerTLS: true})
	in := startInstance(t, fmt.Sprintf("\n[delivery.transport]\n\"example.net\" = \"[127.0.0.1]:%s\"\n", pfPort(pf)))
	// dave@example.net sends to a mailbox at example.net that Postfix refuses (its
	// virtual map only has the names tests use): mxward bounces, and the DSN goes back
	// to dave through Postfix.
	if out, err := in.mxward("Subject: will bounce\n\nx\n", "sendmail", "-f", "dave@example.net", "nobody+x/y@example.net"); err != nil {
		t.Fatalf("sendmail: %v %s", err, out)
	}
	in.deliveryRecord("nobody+x/y@example.net", "bounced")
	msgs := pf.WaitMaildir(t, "dave@example.net", 1, 30*time.Second)
	raw := msgs[0]
	mr, err := mail.CreateReader(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("go-message cannot read the DSN: %v\n%s", err, raw)
	}
	ct, params, _ := mr.Header.ContentType()
	if ct != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %s %v", ct, params)
	}
	var types []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("part: %v", err)
		}
		var pt string
		switch h := p.Header.(type) {
		case *mail.InlineHeader:
			pt, _, _ = h.ContentType()
		case *mail.AttachmentHeader:
			pt, _, _ = h.ContentType()
		}
		types = append(types, pt)
		io.Copy(io.Discard, p.Body)
	}
	if len(types) != 3 || types[1] != "message/delivery-status" {
		t.Errorf("parts %v", types)
	}
	if !strings.Contains(raw, "Action: failed") || !strings.Contains(raw, "Final-Recipient: rfc822; nobody+x/y@example.net") {
		t.Errorf("DSN:\n%s", raw)
	}
}

// A smarthost that requires AUTH: one mxward relays everything through another mxward's
// submission port, logging in with AUTH PLAIN after STARTTLS.
func TestSmarthostWithAuth(t *testing.T) {
	smarthost := startInstance(t, "")
	pwFile := t.TempDir() + "/smarthost.pw"
	if err := os.WriteFile(pwFile, []byte(testPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sender := startInstance(t, fmt.Sprintf("smarthost = %q\nsmarthost_user = \"alice@example.test\"\nsmarthost_password_file = %q\n",
		"["+strings.Replace(smarthost.addr("submission"), ":", "]:", 1), pwFile))
	if out, err := sender.mxward("Subject: via smarthost\n\nx\n", "sendmail", "-f", "alice@example.test", "zoe@elsewhere.test"); err != nil {
		t.Fatalf("sendmail: %v %s", err, out)
	}
	rec := sender.deliveryRecord("zoe@elsewhere.test", "delivered")
	if rec["tls"] != "untrusted" || rec["reason"] != "" {
		t.Errorf("delivery record %v", rec)
	}
	out, _ := smarthost.mxward("", "queue", "list", "--json")
	var msgs []msgJSON
	if err := json.Unmarshal([]byte(out), &msgs); err != nil || len(msgs) != 1 || msgs[0].AuthUser != "alice@example.test" ||
		msgs[0].Recipients[0].Addr != "zoe@elsewhere.test" {
		t.Fatalf("smarthost queue: %v %s", err, out)
	}
}

// A TLS policy added to the configuration applies after SIGHUP, without a restart.
func TestTLSPolicyReload(t *testing.T) {
	testpeer.RequireTool(t, testpeer.PostfixPath)
	pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{Hostname: "mx.example.net", Deliver: true, Domains: []string{"example.net"}})
	in := startInstance(t, fmt.Sprintf("\n[delivery.transport]\n\"example.net\" = \"[127.0.0.1]:%s\"\n", pfPort(pf)))
	cfg, _ := os.ReadFile(in.cfgPath)
	cfg = append(cfg, []byte("\n[delivery.tls_policy]\n\"example.net\" = \"encrypt\"\n")...)
	os.WriteFile(in.cfgPath, cfg, 0o644)
	in.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for len(in.logRecords("configuration reloaded")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no reload:\n%s", in.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := in.mxward("Subject: after reload\n\nx\n", "sendmail", "-f", "alice@example.test", "bob@example.net"); err != nil {
		t.Fatalf("sendmail: %v %s", err, out)
	}
	if rec := in.deliveryRecord("bob@example.net", "deferred"); rec["reason"] != "starttls_not_offered" || rec["policy"] != "local" {
		t.Errorf("delivery record %v", rec)
	}
}
