package smtpclient

import (
	"context"
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const mxName = "mx.example.test"

// certs are the server certificates the tests present.
type certs struct {
	ca                                    *testCA
	valid, selfSigned, expired, wrongName *tls.Certificate
}

func newCerts(t *testing.T) certs {
	now := time.Now()
	ca := newTestCA(t)
	return certs{
		ca:         ca,
		valid:      ca.leaf(t, mxName, now.Add(-time.Hour), now.Add(time.Hour)),
		selfSigned: (*testCA)(nil).leaf(t, mxName, now.Add(-time.Hour), now.Add(time.Hour)),
		expired:    ca.leaf(t, mxName, now.Add(-48*time.Hour), now.Add(-24*time.Hour)),
		wrongName:  ca.leaf(t, "other.example.test", now.Add(-time.Hour), now.Add(time.Hour)),
	}
}

// deliver sends one message on c and quits, failing the test on any error.
func deliver(t *testing.T, c *Client) {
	t.Helper()
	if _, err := c.Send(context.Background(), Envelope{From: "a@example.org"}, rcptsTo("b@example.net"), strings.NewReader(testBody)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := c.Quit(context.Background()); err != nil {
		t.Fatalf("Quit: %v", err)
	}
}

// TestSTARTTLSCertificates: opportunistic TLS accepts any certificate as "untrusted"
// (reference semantics §9.1 "may"); a Verify that authenticates makes it "verified"; a
// Verify that refuses ends the session with QUIT before anything else (ST-06).
func TestSTARTTLSCertificates(t *testing.T) {
	cs := newCerts(t)
	verify := webPKIVerify(cs.ca.pool, mxName)
	tests := []struct {
		name      string
		cert      *tls.Certificate
		mode      TLSMode
		verify    bool
		wantLevel string // "" when Verify must fail
	}{
		{"may, valid", cs.valid, TLSOpportunistic, false, "untrusted"},
		{"may, self-signed", cs.selfSigned, TLSOpportunistic, false, "untrusted"},
		{"may, expired", cs.expired, TLSOpportunistic, false, "untrusted"},
		{"may, wrong name", cs.wrongName, TLSOpportunistic, false, "untrusted"},
		{"required, no verifier", cs.selfSigned, TLSRequired, false, "untrusted"},
		{"verify, valid", cs.valid, TLSRequired, true, "verified"},
		{"verify, self-signed", cs.selfSigned, TLSRequired, true, ""},
		{"verify, expired", cs.expired, TLSRequired, true, ""},
		{"verify, wrong name", cs.wrongName, TLSRequired, true, ""},
		{"verify in may mode, wrong name", cs.wrongName, TLSOpportunistic, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := (&fakeServer{Ext: []string{"STARTTLS", "PIPELINING"}, Cert: tt.cert}).start(t)
			sec := Security{Mode: tt.mode, ServerName: mxName}
			if tt.verify {
				sec.Verify = verify
			}
			c, err := Dial(context.Background(), "tcp", srv.addr(), testOptions(t, sec))
			if tt.wantLevel == "" {
				var te *TLSError
				if !errors.As(err, &te) || te.Reason != ReasonVerify || te.Err == nil {
					t.Fatalf("Dial error = %v, want %s", err, ReasonVerify)
				}
				rec := srv.only()
				want := []string{"EHLO client.example.test", "STARTTLS", "[tls] QUIT"}
				if !slices.Equal(rec.lines(), want) {
					t.Errorf("commands = %q, want %q", rec.lines(), want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			info := c.TLS()
			wantAuth := "none"
			if tt.verify {
				wantAuth = "webpki"
			}
			if info.Level != tt.wantLevel || info.Auth != wantAuth || !info.Offered || info.Version != "TLSv1.3" || info.Cipher == "" {
				t.Errorf("TLS() = %+v", info)
			}
			deliver(t, c)
			rec := srv.only()
			want := []string{"EHLO client.example.test", "STARTTLS", "[tls] EHLO client.example.test",
				"[tls] MAIL FROM:<a@example.org>", "[tls] RCPT TO:<b@example.net>", "[tls] DATA", "[tls] QUIT"}
			if !slices.Equal(rec.lines(), want) {
				t.Errorf("commands = %q, want %q", rec.lines(), want)
			}
			if rec.SNI != mxName {
				t.Errorf("SNI = %q, want %q", rec.SNI, mxName)
			}
		})
	}
}

// TestSTARTTLSNotOffered: without STARTTLS, "may" goes on in plaintext and says so;
// TLSRequired refuses to send mail (ST-09 is why only a policy can demand it).
func TestSTARTTLSNotOffered(t *testing.T) {
	t.Run("opportunistic", func(t *testing.T) {
		srv := (&fakeServer{Ext: []string{"8BITMIME"}}).start(t)
		c := dialTest(t, srv.addr(), testOptions(t, Security{Mode: TLSOpportunistic}))
		if got, want := c.TLS(), (TLSInfo{Level: "none", Auth: "none"}); got != want {
			t.Errorf("TLS() = %+v, want %+v", got, want)
		}
		deliver(t, c)
		if rec := srv.only(); len(rec.Messages) != 1 {
			t.Error("not delivered")
		}
	})
	t.Run("required", func(t *testing.T) {
		srv := (&fakeServer{Ext: []string{"8BITMIME"}}).start(t)
		_, err := Dial(context.Background(), "tcp", srv.addr(), testOptions(t, Security{Mode: TLSRequired}))
		var te *TLSError
		if !errors.As(err, &te) || te.Reason != ReasonNotOffered {
			t.Fatalf("Dial error = %v, want %s", err, ReasonNotOffered)
		}
		if rec := srv.only(); !slices.Equal(rec.lines(), []string{"EHLO client.example.test", "QUIT"}) {
			t.Errorf("commands = %q", rec.lines())
		}
	})
	t.Run("disabled", func(t *testing.T) {
		srv := (&fakeServer{Ext: []string{"STARTTLS"}, Cert: newCerts(t).selfSigned}).start(t)
		c := dialTest(t, srv.addr(), testOptions(t, Security{Mode: TLSDisabled}))
		if got, want := c.TLS(), (TLSInfo{Level: "none", Auth: "none", Offered: true}); got != want {
			t.Errorf("TLS() = %+v, want %+v", got, want)
		}
		deliver(t, c)
		if rec := srv.only(); rec.count("STARTTLS") != 0 {
			t.Errorf("commands = %q", rec.lines())
		}
	})
}

// TestSTARTTLSRefused: a 454 (ST-01) is an error with TLSRequired and plaintext with
// "may", where the first EHLO's extensions stay valid.
func TestSTARTTLSRefused(t *testing.T) {
	refuse := func(line string, _ bool) string {
		if line == "STARTTLS" {
			return "454 4.7.0 TLS not available due to temporary reason\r\n"
		}
		return ""
	}
	t.Run("required", func(t *testing.T) {
		srv := (&fakeServer{Ext: []string{"STARTTLS"}, Reply: refuse}).start(t)
		_, err := Dial(context.Background(), "tcp", srv.addr(), testOptions(t, Security{Mode: TLSRequired}))
		var te *TLSError
		if !errors.As(err, &te) || te.Reason != ReasonRefused || te.Reply.Code != 454 || te.Reply.Enhanced != "4.7.0" {
			t.Fatalf("Dial error = %v, want %s with the 454", err, ReasonRefused)
		}
		if rec := srv.only(); !slices.Equal(rec.lines(), []string{"EHLO client.example.test", "STARTTLS", "QUIT"}) {
			t.Errorf("commands = %q", rec.lines())
		}
	})
	t.Run("opportunistic", func(t *testing.T) {
		srv := (&fakeServer{Ext: []string{"STARTTLS", "SIZE 1000"}, Reply: refuse}).start(t)
		c := dialTest(t, srv.addr(), testOptions(t, Security{Mode: TLSOpportunistic}))
		if got, want := c.TLS(), (TLSInfo{Level: "none", Auth: "none", Offered: true}); got != want {
			t.Errorf("TLS() = %+v, want %+v", got, want)
		}
		if _, ok := c.Extensions()["SIZE"]; !ok {
			t.Errorf("extensions = %v", c.Extensions())
		}
		deliver(t, c)
		want := []string{"EHLO client.example.test", "STARTTLS", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>", "DATA", "QUIT"}
		if rec := srv.only(); !slices.Equal(rec.lines(), want) {
			t.Errorf("commands = %q, want %q", rec.lines(), want)
		}
	})
}

// TestHandshakeFailure: a server that only speaks TLS 1.1 fails against the default
// minimum of TLS 1.2, in either mode.
func TestHandshakeFailure(t *testing.T) {
	cert := newCerts(t).selfSigned
	for _, mode := range []TLSMode{TLSOpportunistic, TLSRequired} {
		srv := (&fakeServer{Ext: []string{"STARTTLS"}, Cert: cert, MaxTLS: tls.VersionTLS11}).start(t)
		_, err := Dial(context.Background(), "tcp", srv.addr(), testOptions(t, Security{Mode: mode}))
		var te *TLSError
		if !errors.As(err, &te) || te.Reason != ReasonHandshake || !strings.Contains(err.Error(), "protocol version") {
			t.Fatalf("mode %d: Dial error = %v, want %s", mode, err, ReasonHandshake)
		}
		if rec := srv.only(); rec.TLSErr == nil {
			t.Errorf("mode %d: the server's handshake did not fail", mode)
		}
	}
}

// TestSTARTTLSInjection is the CVE-2011-0411 case (ST-07): a man in the middle appends a
// forged reply to the 220, in the same segment, hoping the client takes it as the reply
// to its post-TLS EHLO. The client must abort before the handshake.
func TestSTARTTLSInjection(t *testing.T) {
	cert := newCerts(t).selfSigned
	for _, mode := range []TLSMode{TLSOpportunistic, TLSRequired} {
		srv := (&fakeServer{
			Ext:           []string{"STARTTLS"},
			Cert:          cert,
			StartTLSReply: "220 ready\r\n250 fake\r\n",
		}).start(t)
		_, err := Dial(context.Background(), "tcp", srv.addr(), testOptions(t, Security{Mode: mode}))
		var te *TLSError
		if !errors.As(err, &te) || te.Reason != ReasonInjection {
			t.Fatalf("mode %d: Dial error = %v, want %s", mode, err, ReasonInjection)
		}
		rec := srv.only()
		if !slices.Equal(rec.lines(), []string{"EHLO client.example.test", "STARTTLS"}) {
			t.Errorf("mode %d: commands = %q", mode, rec.lines())
		}
		if rec.TLSErr == nil || rec.SNI != "" {
			t.Errorf("mode %d: a TLS session was established", mode)
		}
	}
}

// TestSTARTTLSForgetsPlaintextExtensions (ST-04): the pre-TLS EHLO offers CHUNKING,
// PIPELINING, a small SIZE and DSN; the post-TLS one only 8BITMIME. The client must use
// lockstep DATA, no SIZE (the message is larger than the forgotten limit) and no DSN.
func TestSTARTTLSForgetsPlaintextExtensions(t *testing.T) {
	srv := (&fakeServer{
		Ext:      []string{"STARTTLS", "PIPELINING", "CHUNKING", "SIZE 10", "DSN", "SMTPUTF8"},
		ExtTLS:   []string{"8BITMIME"},
		Cert:     newCerts(t).selfSigned,
		Lockstep: true,
	}).start(t)
	c := dialTest(t, srv.addr(), testOptions(t, Security{Mode: TLSRequired}))
	if got := c.Extensions(); len(got) != 1 || got["8BITMIME"] != "" {
		t.Errorf("extensions = %v, want only 8BITMIME", got)
	}
	env := Envelope{From: "a@example.org", Size: 1000, RET: "HDRS", EnvID: "x"}
	rcpts := []Recipient{{Addr: "b@example.net", Notify: "SUCCESS"}}
	res, err := c.Send(context.Background(), env, rcpts, strings.NewReader(testBody))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.DSN {
		t.Error("DSN reported from the plaintext EHLO")
	}
	if _, err := c.Send(context.Background(), Envelope{From: "a@example.org"}, rcptsTo("ü@example.net"), strings.NewReader(testBody)); err == nil {
		t.Error("SMTPUTF8 from the plaintext EHLO was used")
	}
	c.Quit(context.Background())
	rec := srv.only()
	want := []string{"EHLO client.example.test", "STARTTLS", "[tls] EHLO client.example.test",
		"[tls] MAIL FROM:<a@example.org>", "[tls] RCPT TO:<b@example.net>", "[tls] DATA", "[tls] QUIT"}
	if !slices.Equal(rec.lines(), want) {
		t.Errorf("commands = %q, want %q", rec.lines(), want)
	}
}

// TestSTARTTLSOnce (ST-05): a server that still lists STARTTLS over TLS does not get a
// second one.
func TestSTARTTLSOnce(t *testing.T) {
	srv := (&fakeServer{
		Ext:    []string{"STARTTLS"},
		ExtTLS: []string{"STARTTLS", "PIPELINING"},
		Cert:   newCerts(t).selfSigned,
	}).start(t)
	c := dialTest(t, srv.addr(), testOptions(t, Security{Mode: TLSOpportunistic}))
	deliver(t, c)
	if rec := srv.only(); rec.count("STARTTLS") != 1 || len(rec.Messages) != 1 {
		t.Errorf("commands = %q", rec.lines())
	}
}

// TestSNI: ServerName is sent as SNI unless it is empty or an IP address.
func TestSNI(t *testing.T) {
	cert := newCerts(t).selfSigned
	for _, tt := range []struct{ name, want string }{
		{mxName, mxName},
		{"", ""},
		{"127.0.0.1", ""},
		{"[::1]", ""},
	} {
		srv := (&fakeServer{Ext: []string{"STARTTLS"}, Cert: cert}).start(t)
		c := dialTest(t, srv.addr(), testOptions(t, Security{Mode: TLSRequired, ServerName: tt.name}))
		c.Quit(context.Background())
		if rec := srv.only(); rec.SNI != tt.want {
			t.Errorf("ServerName %q: SNI = %q, want %q", tt.name, rec.SNI, tt.want)
		}
	}
}

// TestTLSConfigCopied: the caller's Config is copied, not changed, and its settings are
// kept apart from the ones the client owns.
func TestTLSConfigCopied(t *testing.T) {
	base := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: "ignored.example.test"}
	got := tlsConfig(Security{Config: base, ServerName: mxName})
	if !got.InsecureSkipVerify || got.ServerName != mxName || got.MinVersion != tls.VersionTLS13 {
		t.Errorf("config = InsecureSkipVerify %v, ServerName %q, MinVersion %x", got.InsecureSkipVerify, got.ServerName, got.MinVersion)
	}
	if base.InsecureSkipVerify || base.ServerName != "ignored.example.test" {
		t.Error("the caller's Config was modified")
	}
	if def := tlsConfig(Security{}); def.MinVersion != tls.VersionTLS12 || def.ServerName != "" {
		t.Errorf("default config: MinVersion %x, ServerName %q", def.MinVersion, def.ServerName)
	}
}

// TestREQUIRETLS: the parameter goes only to a server that offers it over TLS (RTLS-01,
// RTLS-02); otherwise the message fails permanently with 5.7.30 (RTLS-04).
func TestREQUIRETLS(t *testing.T) {
	cert := newCerts(t).selfSigned
	env := Envelope{From: "a@example.org", RequireTLS: true}
	t.Run("offered", func(t *testing.T) {
		srv := (&fakeServer{Ext: []string{"STARTTLS"}, ExtTLS: []string{"REQUIRETLS"}, Cert: cert}).start(t)
		c := dialTest(t, srv.addr(), testOptions(t, Security{Mode: TLSRequired}))
		if _, err := c.Send(context.Background(), env, rcptsTo("b@example.net"), strings.NewReader(testBody)); err != nil {
			t.Fatal(err)
		}
		c.Quit(context.Background())
		if rec := srv.only(); rec.count("MAIL FROM:<a@example.org> REQUIRETLS") != 1 {
			t.Errorf("commands = %q", rec.lines())
		}
	})
	t.Run("offered only before TLS", func(t *testing.T) {
		srv := (&fakeServer{Ext: []string{"STARTTLS", "REQUIRETLS"}, ExtTLS: []string{}, Cert: cert}).start(t)
		c := dialTest(t, srv.addr(), testOptions(t, Security{Mode: TLSRequired}))
		_, err := c.Send(context.Background(), env, rcptsTo("b@example.net"), strings.NewReader(testBody))
		var e *Error
		if !errors.As(err, &e) || !e.Permanent() || e.Reply.Enhanced != "5.7.30" {
			t.Fatalf("Send error = %v, want 5.7.30", err)
		}
		c.Quit(context.Background())
		if rec := srv.only(); rec.count("MAIL") != 0 {
			t.Errorf("commands = %q", rec.lines())
		}
	})
}

// TestStrippingAttack (ST-10): a man in the middle removes STARTTLS from the EHLO reply,
// or rewrites it to "XXXXXXXA". Opportunistic TLS cannot notice and delivers in
// plaintext, reporting that STARTTLS was not offered; TLSRequired refuses before MAIL.
func TestStrippingAttack(t *testing.T) {
	cert := newCerts(t).selfSigned
	for _, mode := range []string{"strip", "rewrite"} {
		t.Run(mode+"/opportunistic", func(t *testing.T) {
			srv := (&fakeServer{Ext: []string{"STARTTLS", "8BITMIME"}, Cert: cert}).start(t)
			addr := startStripper(t, srv.addr(), mode)
			c := dialTest(t, addr, testOptions(t, Security{Mode: TLSOpportunistic, ServerName: mxName}))
			if got, want := c.TLS(), (TLSInfo{Level: "none", Auth: "none", Offered: false}); got != want {
				t.Errorf("TLS() = %+v, want %+v", got, want)
			}
			if _, ok := c.Extensions()["STARTTLS"]; ok {
				t.Error("STARTTLS survived the proxy")
			}
			deliver(t, c)
			rec := srv.only()
			if len(rec.Messages) != 1 || rec.count("STARTTLS") != 0 {
				t.Errorf("commands = %q", rec.lines())
			}
			for _, cmd := range rec.Cmds {
				if cmd.TLS {
					t.Errorf("%q went over TLS", cmd.Line)
				}
			}
		})
		t.Run(mode+"/required", func(t *testing.T) {
			srv := (&fakeServer{Ext: []string{"STARTTLS", "8BITMIME"}, Cert: cert}).start(t)
			addr := startStripper(t, srv.addr(), mode)
			_, err := Dial(context.Background(), "tcp", addr, testOptions(t, Security{Mode: TLSRequired, ServerName: mxName}))
			var te *TLSError
			if !errors.As(err, &te) || te.Reason != ReasonNotOffered {
				t.Fatalf("Dial error = %v, want %s", err, ReasonNotOffered)
			}
			if rec := srv.only(); !slices.Equal(rec.lines(), []string{"EHLO client.example.test", "QUIT"}) {
				t.Errorf("commands = %q", rec.lines())
			}
		})
	}
}
