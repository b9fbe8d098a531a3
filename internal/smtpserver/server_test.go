package smtpserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"mxward/internal/spool"
)

// memStore is an in-memory spool for protocol tests. The real spool has its own tests;
// here only the session's use of the interface matters.
type memStore struct {
	mu   sync.Mutex
	msgs map[spool.ID]*memMsg
	seq  int
}

type memMsg struct {
	env  spool.Envelope
	body []byte
}

type memWriter struct {
	s    *memStore
	buf  bytes.Buffer
	done bool
}

func newMemStore() *memStore { return &memStore{msgs: map[spool.ID]*memMsg{}} }

func (s *memStore) Create(context.Context) (spool.Writer, error) { return &memWriter{s: s}, nil }
func (w *memWriter) Write(p []byte) (int, error)                 { return w.buf.Write(p) }
func (w *memWriter) Abort() error                                { w.done = true; return nil }
func (w *memWriter) Commit(_ context.Context, env spool.Envelope) (spool.ID, error) {
	if w.done {
		return "", fmt.Errorf("writer already finished")
	}
	w.done = true
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.seq++
	id := spool.ID(fmt.Sprintf("M%d", w.s.seq))
	env.Size = int64(w.buf.Len())
	w.s.msgs[id] = &memMsg{env: env, body: w.buf.Bytes()}
	return id, nil
}
func (s *memStore) Open(_ context.Context, id spool.ID) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.msgs[id]
	if !ok {
		return nil, spool.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(m.body)), nil
}
func (s *memStore) Get(context.Context, spool.ID) (*spool.Message, error) { return nil, nil }
func (s *memStore) List(context.Context, spool.Filter) ([]spool.Message, error) {
	return nil, nil
}
func (s *memStore) Due(context.Context, time.Time, bool, int) ([]spool.Message, error) {
	return nil, nil
}
func (s *memStore) Record(context.Context, spool.ID, []spool.Outcome) error { return nil }
func (s *memStore) Hold(context.Context, spool.ID) error                    { return nil }
func (s *memStore) Release(context.Context, spool.ID) error                 { return nil }
func (s *memStore) Delete(context.Context, spool.ID) error                  { return nil }
func (s *memStore) Close() error                                            { return nil }

func (s *memStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

func (s *memStore) only(t *testing.T) *memMsg {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(s.msgs))
	}
	for _, m := range s.msgs {
		return m
	}
	return nil
}

// fakeRecipients: example.org is local with alice and bob; postmaster is an alias for alice;
// team@ expands to alice and a remote address.
type fakeRecipients struct{}

func (fakeRecipients) IsLocalDomain(d string) bool { return d == "example.org" }
func (fakeRecipients) Postmaster() string          { return "postmaster@example.org" }
func (fakeRecipients) Expand(addr string) ([]string, []string, error) {
	switch strings.ToLower(addr) {
	case "alice@example.org", "postmaster@example.org":
		return []string{"alice@example.org"}, nil, nil
	case "bob@example.org":
		return []string{"bob@example.org"}, nil, nil
	case "team@example.org":
		return []string{"alice@example.org"}, []string{"carol@remote.example"}, nil
	}
	return nil, nil, ErrNoSuchUser
}

type fakeUsers map[string]string

func (u fakeUsers) Verify(user, pass string) bool { p, ok := u[user]; return ok && p == pass }

type countingThrottle struct {
	mu       sync.Mutex
	failures int
	max      int
}

func (c *countingThrottle) Allowed(netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failures < c.max
}
func (c *countingThrottle) Failure(netip.Addr)             { c.mu.Lock(); c.failures++; c.mu.Unlock() }
func (c *countingThrottle) Success(netip.Addr)             { c.mu.Lock(); c.failures = 0; c.mu.Unlock() }
func (c *countingThrottle) Delay(netip.Addr) time.Duration { return 0 }

func selfSigned(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.example.org"},
		DNSNames: []string{"mx.example.org"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, SessionTicketsDisabled: true}
}

type harness struct {
	srv   *Server
	store *memStore
	addrs map[Role]string
}

// trusted decides whether 127.0.0.1 is a trusted network: tests of the relay rules need
// both an untrusted and a trusted client, and the only address available is loopback.
func startServer(t *testing.T, trusted bool, mod func(*Config)) *harness {
	t.Helper()
	cfg := Config{
		Hostname:       "mx.example.org",
		MaxMessageSize: 10000,
		MaxRecipients:  3,
		MaxErrors:      20,
		CommandTimeout: 5 * time.Second,
		DataTimeout:    5 * time.Second,
		TLS:            selfSigned(t),
		Recipients:     fakeRecipients{},
		Users:          fakeUsers{"alice@example.org": "s3cret"},
		AuthThrottle:   &countingThrottle{max: 3},
	}
	if trusted {
		cfg.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	if mod != nil {
		mod(&cfg)
	}
	h := &harness{store: newMemStore(), addrs: map[Role]string{}}
	h.srv = New(cfg, h.store, nil)
	for _, l := range []Listener{{Name: "in", Role: RoleInbound, TLS: TLSStartTLS}, {Name: "sub", Role: RoleSubmission, TLS: TLSStartTLS}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		h.addrs[l.Role] = ln.Addr().String()
		go h.srv.Serve(ln, l)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return h
}

// client is a line-level SMTP client for conformance tests.
type client struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, br: bufio.NewReader(conn)}
	c.expect("220")
	return c
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// reply reads one (possibly multi-line) reply and returns it joined with "\n".
func (c *client) reply() string {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply: %v (so far %q)", err, lines)
		}
		lines = append(lines, strings.TrimRight(l, "\r\n"))
		if len(l) < 4 || l[3] != '-' {
			break
		}
	}
	return strings.Join(lines, "\n")
}

// expect reads a reply and checks that it starts with prefix (code and maybe enhanced code).
func (c *client) expect(prefix string) string {
	c.t.Helper()
	r := c.reply()
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("reply %q, want prefix %q", r, prefix)
	}
	return r
}

func (c *client) cmd(line, prefix string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(prefix)
}

func (c *client) startTLS() {
	c.t.Helper()
	c.cmd("STARTTLS", "220 2.0.0")
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, ServerName: "mx.example.org"})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	c.conn = tc
	c.br = bufio.NewReader(tc)
}

func plain(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

// TestConformance drives single sessions through command sequences and checks every reply.
func TestConformance(t *testing.T) {
	type step struct{ send, want string }
	tests := []struct {
		name    string
		role    Role
		trusted bool
		steps   []step
		stored  int
	}{
		{"ehlo lists extensions", RoleInbound, false, []step{
			{"EHLO client.example", "250-mx.example.org"},
		}, 0},
		{"helo", RoleInbound, false, []step{{"HELO client.example", "250 mx.example.org"}}, 0},
		{"helo needs a name", RoleInbound, false, []step{{"EHLO", "501 5.5.4"}}, 0},
		{"mail before helo", RoleInbound, false, []step{{"MAIL FROM:<a@b.example>", "503 5.5.1"}}, 0},
		{"rcpt before mail", RoleInbound, false, []step{{"EHLO c", "250"}, {"RCPT TO:<alice@example.org>", "503 5.5.1"}}, 0},
		{"data before rcpt", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250 2.1.0"}, {"DATA", "554 5.5.1"}}, 0},
		{"nested mail", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"MAIL FROM:<a@b.example>", "503 5.5.1"}}, 0},
		{"unknown command", RoleInbound, false, []step{{"XYZZY", "500 5.5.2"}}, 0},
		{"bad sender syntax", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a..b@c>", "501 5.1.7"}}, 0},
		{"mail without brackets", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:a@b.example", "501 5.5.4"}}, 0},
		{"unknown mail parameter", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example> FOO=BAR", "555 5.5.4"}}, 0},
		{"size over limit", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example> SIZE=10001", "552 5.3.4"}}, 0},
		{"utf8 sender without SMTPUTF8", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<jörg@b.example>", "553 5.6.7"}}, 0},
		{"utf8 sender with SMTPUTF8", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<jörg@b.example> SMTPUTF8", "250"}}, 0},
		{"bad body", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example> BODY=BINARYMIME", "501 5.5.4"}}, 0},
		{"unknown local user", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<nobody@example.org>", "550 5.1.1"}}, 0},
		{"relay denied from untrusted", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<x@remote.example>", "554 5.7.1"}}, 0},
		{"relay denied to address literal", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<x@[127.0.0.1]>", "554 5.7.1"}}, 0},
		{"relay allowed from trusted", RoleInbound, true, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<x@remote.example>", "250 2.1.5"}}, 0},
		{"bare postmaster", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<>", "250"}, {"RCPT TO:<Postmaster>", "250 2.1.5"}}, 0},
		{"too many recipients", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"},
			{"RCPT TO:<alice@example.org>", "250"}, {"RCPT TO:<bob@example.org>", "250"}, {"RCPT TO:<team@example.org>", "250"},
			{"RCPT TO:<postmaster@example.org>", "452 4.5.3"}}, 0},
		{"bad notify", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.org> NOTIFY=NEVER,SUCCESS", "501 5.5.4"}}, 0},
		{"bad orcpt", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.org> ORCPT=rfc822", "501 5.5.4"}}, 0},
		{"vrfy does not disclose", RoleInbound, false, []step{{"VRFY alice", "252 2.5.0"}}, 0},
		{"rset and noop", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"RSET", "250 2.0.0"}, {"NOOP", "250 2.0.0"}, {"RCPT TO:<alice@example.org>", "503"}}, 0},
		{"simple delivery", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"},
			{"DATA", "354"}, {"Subject: hi\r\n\r\nhello\r\n.", "250 2.0.0 Ok: queued as"}, {"QUIT", "221 2.0.0"}}, 1},
		{"bdat delivery", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"},
			{"BDAT 10\r\nSubject:", "250 2.0.0 10 bytes"}, {"BDAT 15 LAST\r\n x: y\r\n\r\nbody", "250 2.0.0 Ok: queued as"}}, 1},
		{"bdat without rcpt consumes the chunk", RoleInbound, false, []step{{"EHLO c", "250"}, {"BDAT 4 LAST\r\nNO", "503 5.5.1"}, {"NOOP", "250"}}, 0},
		{"bdat bad size closes", RoleInbound, false, []step{{"EHLO c", "250"}, {"BDAT x", "501 5.5.4"}}, 0},
		{"data after bdat", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"},
			{"BDAT 5\r\nabc", "250"}, {"DATA", "503 5.5.1"}}, 0},
		{"auth on inbound port", RoleInbound, false, []step{{"EHLO c", "250"}, {"AUTH PLAIN " + plain("alice@example.org", "s3cret"), "503 5.5.1"}}, 0},
		{"auth before tls", RoleSubmission, false, []step{{"EHLO c", "250"}, {"AUTH PLAIN " + plain("alice@example.org", "s3cret"), "538 5.7.11"}}, 0},
		{"submission needs auth", RoleSubmission, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<alice@example.org>", "530 5.7.0"}}, 0},
		{"starttls with argument", RoleInbound, false, []step{{"STARTTLS x", "501 5.5.4"}}, 0},
		{"long command line", RoleInbound, false, []step{{"NOOP " + strings.Repeat("x", 3000), "500 5.5.2"}, {"NOOP", "250"}}, 0},
		{"bare LF in data", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"},
			{"DATA", "354"}, {"Subject: x\n\nbody\r\n.", "554 5.6.0"}, {"NOOP", "250"}}, 0},
		{"bare CR in data", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"},
			{"DATA", "354"}, {"Subject: x\r\rbody\r\n.", "554 5.6.0"}}, 0},
		{"line too long in data", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"},
			{"DATA", "354"}, {strings.Repeat("y", 1200) + "\r\n.", "554 5.6.0"}}, 0},
		{"message too big", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"},
			{"DATA", "354"}, {strings.Repeat(strings.Repeat("z", 98)+"\r\n", 120) + ".", "552 5.3.4"}, {"NOOP", "250"}}, 0},
		{"bdat too big", RoleInbound, false, []step{{"EHLO c", "250"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"},
			{"BDAT 12000 LAST\r\n" + strings.Repeat(strings.Repeat("z", 98)+"\r\n", 119) + strings.Repeat("z", 98), "552 5.3.4"}, {"NOOP", "250"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startServer(t, tt.trusted, nil)
			c := dial(t, h.addrs[tt.role])
			for _, s := range tt.steps {
				c.cmd(s.send, s.want)
			}
			if got := h.store.count(); got != tt.stored {
				t.Errorf("%d messages stored, want %d", got, tt.stored)
			}
		})
	}
}

// The smuggling sequences of CVE-2023-51766 and friends: a fake end of data followed by a
// forged transaction. Nothing may be stored, and the forged MAIL must never run as a command.
func TestSmuggling(t *testing.T) {
	for _, seq := range []string{"\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r", "\r.\r\n", "\r\n\x00.\r\n"} {
		t.Run(fmt.Sprintf("%q", seq), func(t *testing.T) {
			h := startServer(t, false, nil)
			c := dial(t, h.addrs[RoleInbound])
			c.cmd("EHLO c", "250")
			c.cmd("MAIL FROM:<a@b.example>", "250")
			c.cmd("RCPT TO:<alice@example.org>", "250")
			c.cmd("DATA", "354")
			c.send("Subject: first\r\n\r\nbody" + seq + "MAIL FROM:<admin@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: forged\r\n\r\nforged\r\n.\r\n")
			r := c.reply()
			if seq == "\r\n\x00.\r\n" {
				// NUL is legal (if unwise) content: the message is one message.
				if !strings.HasPrefix(r, "250") {
					t.Fatalf("reply %q", r)
				}
				if m := h.store.only(t); !bytes.Contains(m.body, []byte("Subject: forged")) || len(m.env.Recipients) != 1 {
					t.Fatalf("stored %+v", m.env)
				}
				return
			}
			if !strings.HasPrefix(r, "554 5.6.0") {
				t.Fatalf("reply %q, want 554 5.6.0", r)
			}
			c.cmd("NOOP", "250")
			if n := h.store.count(); n != 0 {
				t.Fatalf("%d messages stored", n)
			}
		})
	}
}

// ST-07 server side (CVE-2011-0411): commands pipelined with STARTTLS in plaintext must be
// discarded, not executed inside the TLS session.
func TestStartTLSInjection(t *testing.T) {
	h := startServer(t, false, nil)
	c := dial(t, h.addrs[RoleInbound])
	c.cmd("EHLO c", "250")
	c.send("STARTTLS\r\nMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<alice@example.org>\r\n")
	c.expect("220 2.0.0")
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.conn, c.br = tc, bufio.NewReader(tc)
	// Had the injected MAIL been executed, this RCPT would succeed.
	c.cmd("EHLO c", "250")
	c.cmd("RCPT TO:<alice@example.org>", "503 5.5.1")
}

func TestStartTLSResetsState(t *testing.T) {
	h := startServer(t, false, nil)
	c := dial(t, h.addrs[RoleInbound])
	ehlo := c.cmd("EHLO c", "250")
	if !strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("STARTTLS not offered: %q", ehlo)
	}
	c.cmd("MAIL FROM:<a@b.example>", "250")
	c.startTLS()
	// RFC 3207 §4.2: the client must EHLO again, and the transaction is gone.
	c.cmd("MAIL FROM:<a@b.example>", "503 5.5.1")
	ehlo = c.cmd("EHLO c", "250")
	if strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("STARTTLS offered again under TLS: %q", ehlo)
	}
	c.cmd("STARTTLS", "503 5.5.1")
	c.cmd("MAIL FROM:<a@b.example>", "250")
	c.cmd("RCPT TO:<alice@example.org>", "250")
	c.cmd("DATA", "354")
	c.cmd("Subject: t\r\n\r\nx\r\n.", "250")
	m := h.store.only(t)
	if !bytes.Contains(m.body, []byte("with ESMTPS")) || !bytes.Contains(m.body, []byte("(using TLSv1.3 with cipher TLS_")) {
		t.Errorf("Received header lacks TLS details:\n%s", m.body)
	}
}

func TestSubmissionAuth(t *testing.T) {
	h := startServer(t, false, nil)
	c := dial(t, h.addrs[RoleSubmission])
	ehlo := c.cmd("EHLO c", "250")
	if strings.Contains(ehlo, "AUTH") {
		t.Fatalf("AUTH offered before TLS: %q", ehlo)
	}
	c.startTLS()
	ehlo = c.cmd("EHLO c", "250")
	if !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Fatalf("AUTH not offered under TLS: %q", ehlo)
	}
	c.cmd("AUTH PLAIN "+plain("alice@example.org", "wrong"), "535 5.7.8")
	c.cmd("AUTH LOGIN", "334 VXNlcm5hbWU6")
	c.cmd(base64.StdEncoding.EncodeToString([]byte("alice@example.org")), "334 UGFzc3dvcmQ6")
	c.cmd("*", "501 5.0.0")
	c.cmd("AUTH PLAIN", "334")
	c.cmd(plain("alice@example.org", "s3cret"), "235 2.7.0")
	c.cmd("AUTH PLAIN "+plain("alice@example.org", "s3cret"), "503 5.5.1")
	c.cmd("MAIL FROM:<alice@example.org>", "250")
	c.cmd("RCPT TO:<someone@remote.example>", "250 2.1.5")
	c.cmd("DATA", "354")
	c.cmd("Subject: t\r\n\r\nx\r\n.", "250")
	m := h.store.only(t)
	if m.env.AuthUser != "alice@example.org" || m.env.Recipients[0].Local {
		t.Errorf("envelope %+v", m.env)
	}
	if !bytes.Contains(m.body, []byte("with ESMTPSA")) {
		t.Errorf("Received header:\n%s", m.body)
	}
}

func TestAuthThrottle(t *testing.T) {
	h := startServer(t, false, nil)
	c := dial(t, h.addrs[RoleSubmission])
	c.cmd("EHLO c", "250")
	c.startTLS()
	c.cmd("EHLO c", "250")
	for i := 0; i < 3; i++ {
		c.cmd("AUTH PLAIN "+plain("alice@example.org", "guess"), "535 5.7.8")
	}
	// Even the right password is refused while throttled.
	c.cmd("AUTH PLAIN "+plain("alice@example.org", "s3cret"), "454 4.7.0")
}

func TestEnvelopeParameters(t *testing.T) {
	h := startServer(t, true, nil)
	c := dial(t, h.addrs[RoleInbound])
	c.cmd("EHLO c", "250")
	c.cmd("MAIL FROM:<a@b.example> BODY=8BITMIME RET=HDRS ENVID=abc+2Bdef SMTPUTF8", "250")
	c.cmd("RCPT TO:<x@remote.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+40remote.example", "250")
	c.cmd("RCPT TO:<team@example.org> NOTIFY=NEVER", "250")
	c.cmd("RCPT TO:<alice@example.org>", "250") // already there through team@: stored once
	c.cmd("DATA", "354")
	c.cmd("Subject: t\r\n\r\nx\r\n.", "250")
	env := h.store.only(t).env
	if env.BodyType != spool.Body8BitMIME || env.RET != "HDRS" || env.EnvID != "abc+def" || !env.SMTPUTF8 {
		t.Errorf("envelope %+v", env)
	}
	want := []spool.Recipient{
		{Addr: "x@remote.example", Notify: "SUCCESS,FAILURE", ORCPT: "rfc822;x@remote.example"},
		{Addr: "alice@example.org", Notify: "NEVER", ORCPT: "rfc822;team@example.org", Local: true},
		{Addr: "carol@remote.example", Notify: "NEVER", ORCPT: "rfc822;team@example.org"},
	}
	if len(env.Recipients) != len(want) {
		t.Fatalf("recipients %+v", env.Recipients)
	}
	for i := range want {
		if env.Recipients[i] != want[i] {
			t.Errorf("recipient %d = %+v, want %+v", i, env.Recipients[i], want[i])
		}
	}
}

func TestPipelining(t *testing.T) {
	h := startServer(t, false, nil)
	c := dial(t, h.addrs[RoleInbound])
	c.cmd("EHLO c", "250")
	c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
	for _, want := range []string{"250 2.1.0", "250 2.1.5", "550 5.1.1", "250 2.1.5", "354"} {
		c.expect(want)
	}
	c.send("Subject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n")
	c.expect("250 2.0.0")
	c.expect("221")
	if n := len(h.store.only(t).env.Recipients); n != 2 {
		t.Errorf("%d recipients", n)
	}
}

func TestTooManyErrors(t *testing.T) {
	h := startServer(t, false, func(c *Config) { c.MaxErrors = 3 })
	c := dial(t, h.addrs[RoleInbound])
	for i := 0; i < 3; i++ {
		c.cmd("BOGUS", "500")
	}
	c.send("NOOP\r\n")
	c.expect("421 4.7.0")
	if _, err := c.br.ReadByte(); err == nil {
		t.Error("connection still open")
	}
}

func TestConnectionLimits(t *testing.T) {
	h := startServer(t, false, func(c *Config) { c.MaxConnectionsPerIP = 2 })
	dial(t, h.addrs[RoleInbound])
	dial(t, h.addrs[RoleInbound])
	conn, err := net.Dial("tcp", h.addrs[RoleInbound])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.HasPrefix(line, "421 4.7.0") {
		t.Fatalf("third connection got %q", line)
	}
}

func TestCommandTimeout(t *testing.T) {
	h := startServer(t, false, func(c *Config) { c.CommandTimeout = 200 * time.Millisecond })
	c := dial(t, h.addrs[RoleInbound])
	c.expect("421 4.4.2")
}

// Shutdown answers idle sessions with 421 at once but lets a transaction in DATA finish.
func TestShutdownDrains(t *testing.T) {
	h := startServer(t, false, nil)
	idle := dial(t, h.addrs[RoleInbound])
	busy := dial(t, h.addrs[RoleInbound])
	busy.cmd("EHLO c", "250")
	busy.cmd("MAIL FROM:<a@b.example>", "250")
	busy.cmd("RCPT TO:<alice@example.org>", "250")
	busy.cmd("DATA", "354")
	busy.send("Subject: half\r\n")

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	idle.expect("421 4.3.2")
	time.Sleep(100 * time.Millisecond)
	busy.send("\r\nrest\r\n.\r\n")
	busy.expect("250 2.0.0")
	busy.expect("421 4.3.2")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if h.store.count() != 1 {
		t.Fatal("message in flight was lost")
	}
	if _, err := net.DialTimeout("tcp", h.addrs[RoleInbound], time.Second); err == nil {
		t.Error("listener still accepting")
	}
}
