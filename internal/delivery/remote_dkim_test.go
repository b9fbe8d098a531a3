package delivery

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"mxward/internal/dkim"
	"mxward/internal/spool"
)

// dkimSigner returns a Remote.Sign hook that signs mail From the domains of keys, and
// the key lookup a verifier needs for them. Every key has the selector "s1".
func dkimSigner(t *testing.T, domains ...string) (func(context.Context, *spool.Envelope, io.Reader) ([]byte, error), dkim.LookupTXT, *[]spool.Envelope) {
	t.Helper()
	signers := map[string]*dkim.Signer{}
	records := map[string]string{}
	for _, d := range domains {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		signers[d] = &dkim.Signer{Domain: d, Selector: "s1", Key: k}
		rec, err := dkim.KeyRecord(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		records[dkim.KeyName("s1", d)] = rec
	}
	var seen []spool.Envelope
	sign := func(_ context.Context, env *spool.Envelope, body io.Reader) ([]byte, error) {
		seen = append(seen, *env)
		return dkim.SignMessage(body, func(from string) []*dkim.Signer {
			if s := signers[from]; s != nil {
				return []*dkim.Signer{s}
			}
			return nil
		})
	}
	lookup := func(_ context.Context, name string) ([]string, error) {
		if rec, ok := records[name]; ok {
			return []string{rec}, nil
		}
		return nil, fmt.Errorf("%s: %w", name, dkim.ErrNoKey)
	}
	return sign, lookup, &seen
}

// verifyReceived checks the DKIM signatures of a message as the receiver stored it
// (behind its own Received field) and returns the signing domains that verified.
func verifyReceived(t *testing.T, lookup dkim.LookupTXT, body string) []string {
	t.Helper()
	v := &dkim.Verifier{Lookup: lookup}
	res, err := v.Verify(context.Background(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var ok []string
	for _, r := range res {
		if r.Err != nil {
			t.Errorf("signature does not verify: %v\n%s", r.Err, body)
			continue
		}
		ok = append(ok, r.Signature.Domain)
	}
	return ok
}

// A message From a domain with a key leaves signed: the receiver gets the
// DKIM-Signature field in front of the message, the signature verifies, and the
// declared SIZE grew with the field (the receiver accepted it).
func TestRemoteSignsOutbound(t *testing.T) {
	h := newRemoteHarness(t)
	rv := startReceiver(t, receiverConfig{users: []string{"bob@example.net"}})
	r := h.newRemote(rv.port)
	sign, lookup, seen := dkimSigner(t, "origin.test")
	r.Sign = sign
	id := h.enqueue(senderAddr, "bob@example.net", keepAddr)
	h.round(r)
	h.checkAttempt(id, "bob@example.net", 1, expect{"result": "delivered"})
	body := rv.body(t, 0)
	if got := verifyReceived(t, lookup, body); len(got) != 1 || got[0] != "origin.test" {
		t.Errorf("verified signatures %v, want one for origin.test", got)
	}
	if !strings.Contains(body, "\r\n.leading dot\r\n") {
		t.Errorf("body changed:\n%s", body)
	}
	if len(*seen) != 1 || (*seen)[0].From != senderAddr || (*seen)[0].ClientIP != "local" {
		t.Errorf("Sign saw envelopes %+v", *seen)
	}
}

// Mail From a domain without a key leaves as it is, and the DSN mxward writes when a
// recipient is refused is signed when the DSN's From domain (the host name) has a key:
// bounces take the same path as other mail.
func TestRemoteSignsBounces(t *testing.T) {
	h := newRemoteHarness(t)
	rv := startReceiver(t, receiverConfig{users: []string{"carol@example.net"}})
	r := h.newRemote(rv.port)
	sign, lookup, _ := dkimSigner(t, "mxward.origin.test")
	r.Sign = sign
	id := h.enqueue("carol@example.net", "gone@example.net", keepAddr)
	h.round(r)
	h.checkAttempt(id, "gone@example.net", 1, expect{"result": "bounced"})
	h.clock.Advance(time.Second)
	h.round(r)
	msgs := rv.messages()
	if len(msgs) != 1 || msgs[0].From != "" || msgs[0].Recipients[0].Addr != "carol@example.net" {
		t.Fatalf("receiver got %+v, want the DSN to carol", msgs)
	}
	body := rv.body(t, 0)
	if !strings.Contains(body, "<MAILER-DAEMON@mxward.origin.test>") {
		t.Fatalf("not the DSN:\n%s", body)
	}
	if got := verifyReceived(t, lookup, body); len(got) != 1 || got[0] != "mxward.origin.test" {
		t.Errorf("verified signatures %v, want one for mxward.origin.test", got)
	}
}

// A signing failure defers the message (4.3.0) instead of sending it unsigned.
func TestRemoteSignFailureDefers(t *testing.T) {
	h := newRemoteHarness(t)
	rv := startReceiver(t, receiverConfig{users: []string{"bob@example.net"}})
	r := h.newRemote(rv.port)
	r.Sign = func(context.Context, *spool.Envelope, io.Reader) ([]byte, error) {
		return nil, errors.New("key unavailable")
	}
	id := h.enqueue(senderAddr, "bob@example.net", keepAddr)
	h.round(r)
	h.checkAttempt(id, "bob@example.net", 1, expect{"result": "deferred", "reply": "~451 4.3.0 cannot sign the message: key unavailable", "reason": "sign_failed"})
	if _, rc := h.recipient(id, "bob@example.net"); rc.State != spool.StateQueued {
		t.Errorf("state %s, want queued", rc.State)
	}
	if n := len(rv.messages()); n != 0 {
		t.Errorf("receiver got %d messages, want none", n)
	}
}

// A hook that reads part of the body and signs nothing, and one that does not read it
// at all: either way the message leaves whole, from its first byte.
func TestRemoteSignReadsWithoutSigning(t *testing.T) {
	for _, n := range []int{0, 10} {
		h := newRemoteHarness(t)
		rv := startReceiver(t, receiverConfig{users: []string{"bob@example.net"}})
		r := h.newRemote(rv.port)
		r.Sign = func(_ context.Context, _ *spool.Envelope, body io.Reader) ([]byte, error) {
			_, err := io.ReadFull(body, make([]byte, n))
			return nil, err
		}
		id := h.enqueue(senderAddr, "bob@example.net", keepAddr)
		h.round(r)
		h.checkAttempt(id, "bob@example.net", 1, expect{"result": "delivered"})
		body := rv.body(t, 0)
		if strings.Contains(body, "DKIM-Signature") || !strings.Contains(body, "\r\n.leading dot\r\n") {
			t.Errorf("read %d bytes: body\n%s", n, body)
		}
		// The queued message starts with its From field (the receiver may add its own
		// trace fields above it).
		if !strings.Contains(body, "\r\nFrom: "+senderAddr+"\r\n") && !strings.HasPrefix(body, "From: "+senderAddr+"\r\n") {
			t.Errorf("read %d bytes: the From field did not arrive whole:\n%.300s", n, body)
		}
	}
}
