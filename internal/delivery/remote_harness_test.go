package delivery

// The harness for the outbound engine's tests: an in-process DNS server, receivers on
// 127.0.0.1 (mxward's own SMTP server, a scripted fake, a man in the middle), a spool
// in a temporary directory, an injected clock and a JSON log to read back. Nothing
// leaves the loopback interface.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"mxward/internal/dns"
	"mxward/internal/dns/dnstest"
	"mxward/internal/route"
	"mxward/internal/smtpclient"
	"mxward/internal/smtpserver"
	"mxward/internal/spool"
)

// remoteEpoch is where the injected clock starts. Test certificates are valid around
// it, and verification uses the injected clock, so the tests do not age.
var remoteEpoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const (
	senderAddr = "alice@origin.test" // the sender of test messages; its domain is local
	keepAddr   = "keep@origin.test"  // a local recipient that keeps a message (and its history) queued
)

// fakeClock is the injected time of the spool, the scheduler and the bouncer.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// logBuffer collects JSON log lines written from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the decoded log records whose msg is msg.
func (b *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	data := slices.Clone(b.buf.Bytes())
	b.mu.Unlock()
	var out []map[string]any
	for line := range bytes.Lines(data) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// testTimeouts keep every failure mode of a session well under a second or two.
var testTimeouts = smtpclient.Timeouts{
	Connect: 2 * time.Second, Greeting: 2 * time.Second, EHLO: 2 * time.Second,
	StartTLS: 2 * time.Second, Mail: 2 * time.Second, Rcpt: 2 * time.Second,
	DataInit: 2 * time.Second, DataBlock: 2 * time.Second, DataTerm: 3 * time.Second,
	Rset: time.Second, Quit: time.Second,
}

// remoteHarness is one sending side: DNS, spool, clock and log.
type remoteHarness struct {
	t     *testing.T
	ctx   context.Context
	clock *fakeClock
	dns   *dnstest.Server
	dir   string
	store *spool.FileStore
	logs  *logBuffer
	log   *slog.Logger
}

func newRemoteHarness(t *testing.T) *remoteHarness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	h := &remoteHarness{
		t: t, ctx: ctx, clock: &fakeClock{t: remoteEpoch}, dns: dnstest.NewServer(t),
		dir: t.TempDir(), logs: &logBuffer{},
	}
	h.log = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h.dns.Add(
		"example.net. 3600 IN SOA ns.example.net. hostmaster.example.net. 1 7200 900 1209600 300",
		"example.net. 300 IN MX 10 mx1.example.net.",
		"mx1.example.net. 300 IN A 127.0.0.1",
	)
	h.openStore()
	return h
}

// openStore opens the spool directory, as a starting process does.
func (h *remoteHarness) openStore() {
	h.t.Helper()
	st, err := spool.Open(h.ctx, h.dir, spool.Options{Now: h.clock.Now, Logger: h.log})
	if err != nil {
		h.t.Fatalf("open spool: %v", err)
	}
	h.store = st
	h.t.Cleanup(func() { st.Close() })
}

// newRemote returns an engine that sends to port on every MX host, with retry times
// that the injected clock and a jitter of 0.5 make exact.
func (h *remoteHarness) newRemote(port int) *Remote {
	h.t.Helper()
	// A generous timeout: on a loaded machine a reply from the in-process server can
	// take a second, and no test here relies on DNS timing out.
	res, err := dns.NewClient(dns.Config{Servers: []string{h.dns.Addr}, Timeout: 3 * time.Second,
		Attempts: 1, CacheSize: -1})
	if err != nil {
		h.t.Fatalf("dns client: %v", err)
	}
	return &Remote{
		Store:    h.store,
		Route:    DNSRouter(res, route.Options{Family: route.IPv4Only, Logger: h.log}),
		Hostname: "mxward.origin.test",
		Port:     port,
		Retry:    Retry{First: 5 * time.Minute, Max: time.Hour, Lifetime: 5 * 24 * time.Hour},
		Timeouts: testTimeouts,
		Bouncer: &Bouncer{
			Store: h.store, Hostname: "mxward.origin.test", Log: h.log, Now: h.clock.Now,
			IsLocal: func(addr string) bool { return strings.HasSuffix(addr, "@origin.test") },
		},
		Log:    h.log,
		Now:    h.clock.Now,
		Jitter: func() float64 { return 0.5 },
	}
}

// round runs one deterministic scheduling round: a scan, then every job it handed out.
func (h *remoteHarness) round(r *Remote) int {
	n := r.Scan(h.ctx)
	r.Wait()
	return n
}

// enqueue queues a message from sender to rcpts. A recipient in origin.test is local, so
// the remote engine leaves it alone; keepAddr is used that way to keep a message whose
// remote recipients are all final in the queue, with its attempt history.
func (h *remoteHarness) enqueue(sender string, rcpts ...string) spool.ID {
	h.t.Helper()
	w, err := h.store.Create(h.ctx)
	if err != nil {
		h.t.Fatalf("create: %v", err)
	}
	fmt.Fprintf(w, "From: %s\r\nTo: %s\r\nSubject: outbound test\r\nMessage-ID: <%d@origin.test>\r\n\r\nHello from mxward.\r\n.leading dot\r\n",
		sender, strings.Join(rcpts, ", "), time.Now().UnixNano())
	env := spool.Envelope{From: sender, ClientIP: "local"}
	for _, rc := range rcpts {
		env.Recipients = append(env.Recipients, spool.Recipient{Addr: rc, Local: strings.HasSuffix(rc, "@origin.test")})
	}
	id, err := w.Commit(h.ctx, env)
	if err != nil {
		h.t.Fatalf("commit: %v", err)
	}
	return id
}

// recipient returns the queue state of one recipient of a message.
func (h *remoteHarness) recipient(id spool.ID, addr string) (*spool.Message, spool.Recipient) {
	h.t.Helper()
	m, err := h.store.Get(h.ctx, id)
	if err != nil {
		h.t.Fatalf("get %s: %v", id, err)
	}
	for _, rc := range m.Envelope.Recipients {
		if rc.Addr == addr {
			return m, rc
		}
	}
	h.t.Fatalf("message %s has no recipient %s", id, addr)
	return nil, spool.Recipient{}
}

// gone asserts that a message has left the queue.
func (h *remoteHarness) gone(id spool.ID) {
	h.t.Helper()
	if m, err := h.store.Get(h.ctx, id); !errors.Is(err, spool.ErrNotFound) {
		h.t.Fatalf("message %s still queued (%v): %+v", id, err, m)
	}
}

// deliveryFields are the field names of the `delivery` log record; attemptFields those
// of the attempt history.
var (
	deliveryFields = []string{"queue_id", "rcpt", "domain", "mx", "ip", "result", "policy", "tls",
		"tls_version", "cipher", "auth", "reply", "reason"}
	attemptFields = []string{"domain", "mx", "ip", "policy", "tls", "tls_version", "cipher", "auth", "reason"}
	// The record also carries the attempt number and the policy's explanation.
	deliveryExtra = []string{"time", "level", "msg", "attempt", "policy_reason"}
)

// expect is what an outcome must show, by field name. A value is compared exactly,
// except that "~text" means "contains text" and "*" means "not empty". "result" and
// "reply" are checked against the attempt's Result and Reply, the rest against Fields.
type expect map[string]string

func (e expect) match(field, got string) bool {
	w, ok := e[field]
	switch {
	case !ok:
		return true
	case w == "*":
		return got != ""
	case strings.HasPrefix(w, "~"):
		return strings.Contains(got, w[1:])
	}
	return got == w
}

// checkAttempt checks the n-th recorded attempt (1-based) for rcpt of message id.
func (h *remoteHarness) checkAttempt(id spool.ID, rcpt string, n int, want expect) spool.Attempt {
	h.t.Helper()
	m, err := h.store.Get(h.ctx, id)
	if err != nil {
		h.t.Fatalf("get %s: %v", id, err)
	}
	var as []spool.Attempt
	for _, a := range m.Attempts {
		if a.Rcpt == rcpt {
			as = append(as, a)
		}
	}
	if len(as) < n {
		h.t.Fatalf("%s: %d attempts recorded, want at least %d", rcpt, len(as), n)
	}
	a := as[n-1]
	if !want.match("result", a.Result) {
		h.t.Errorf("%s attempt %d: result %q, want %q", rcpt, n, a.Result, want["result"])
	}
	if !want.match("reply", a.Reply) {
		h.t.Errorf("%s attempt %d: reply %q, want %q", rcpt, n, a.Reply, want["reply"])
	}
	for k := range a.Fields {
		if !slices.Contains(attemptFields, k) && k != "delay_dsn" {
			h.t.Errorf("%s attempt %d: unexpected field %q", rcpt, n, k)
		}
	}
	for _, k := range attemptFields {
		v, ok := a.Fields[k]
		if !ok {
			h.t.Errorf("%s attempt %d: field %q missing: %v", rcpt, n, k, a.Fields)
			continue
		}
		if !want.match(k, v) {
			h.t.Errorf("%s attempt %d: %s = %q, want %q", rcpt, n, k, v, want[k])
		}
	}
	return a
}

// checkLog checks the last `delivery` log record for rcpt of message id.
func (h *remoteHarness) checkLog(id spool.ID, rcpt string, want expect) map[string]any {
	h.t.Helper()
	var rec map[string]any
	for _, r := range h.logs.records(h.t, "delivery") {
		if r["queue_id"] == string(id) && r["rcpt"] == rcpt {
			rec = r
		}
	}
	if rec == nil {
		h.t.Fatalf("no delivery log record for %s %s", id, rcpt)
	}
	for k := range rec {
		if !slices.Contains(deliveryFields, k) && !slices.Contains(deliveryExtra, k) {
			h.t.Errorf("delivery record for %s: unexpected field %q", rcpt, k)
		}
	}
	for _, k := range deliveryFields {
		v, ok := rec[k].(string)
		if !ok {
			h.t.Errorf("delivery record for %s: field %q missing or not a string: %v", rcpt, k, rec[k])
			continue
		}
		if !want.match(k, v) {
			h.t.Errorf("delivery record for %s: %s = %q, want %q", rcpt, k, v, want[k])
		}
	}
	return rec
}

// parsedDSN is a queued delivery status notification, read back with go-message.
type parsedDSN struct {
	id         spool.ID
	env        spool.Envelope
	perMessage textproto.Header
	recipients []textproto.Header
}

// action returns the Action of the first recipient group.
func (d parsedDSN) action() string { return d.recipients[0].Get("Action") }

// dsns returns the DSNs in the queue (messages queued by the bouncer).
func (h *remoteHarness) dsns() []parsedDSN {
	h.t.Helper()
	msgs, err := h.store.List(h.ctx, spool.Filter{})
	if err != nil {
		h.t.Fatalf("list: %v", err)
	}
	var out []parsedDSN
	for _, m := range msgs {
		if m.Envelope.Listener != "dsn" {
			continue
		}
		body, err := h.store.Open(h.ctx, m.ID)
		if err != nil {
			h.t.Fatalf("open DSN %s: %v", m.ID, err)
		}
		d, err := parseDSN(body)
		body.Close()
		if err != nil {
			h.t.Fatalf("DSN %s: %v", m.ID, err)
		}
		d.id, d.env = m.ID, m.Envelope
		out = append(out, d)
	}
	return out
}

// parseDSN reads a multipart/report and the groups of its message/delivery-status part.
func parseDSN(r io.Reader) (parsedDSN, error) {
	var d parsedDSN
	e, err := message.Read(r)
	if err != nil {
		return d, fmt.Errorf("read DSN: %w", err)
	}
	if mt, params, _ := e.Header.ContentType(); mt != "multipart/report" || params["report-type"] != "delivery-status" {
		return d, fmt.Errorf("content type %q %v, want multipart/report; report-type=delivery-status", mt, params)
	}
	mr := e.MultipartReader()
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return d, fmt.Errorf("read DSN part: %w", err)
		}
		if mt, _, _ := p.Header.ContentType(); mt != "message/delivery-status" {
			continue
		}
		b, err := io.ReadAll(p.Body)
		if err != nil {
			return d, fmt.Errorf("read delivery-status: %w", err)
		}
		for i, block := range strings.Split(strings.TrimSpace(string(b)), "\r\n\r\n") {
			hdr, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(block + "\r\n\r\n")))
			if err != nil {
				return d, fmt.Errorf("delivery-status group %d: %w", i, err)
			}
			if i == 0 {
				d.perMessage = hdr
			} else {
				d.recipients = append(d.recipients, hdr)
			}
		}
	}
	if len(d.recipients) == 0 {
		return d, errors.New("no recipient groups in the delivery-status part")
	}
	return d, nil
}

// dsnsWith returns the queued DSNs whose first recipient group has the given Action.
func (h *remoteHarness) dsnsWith(action string) []parsedDSN {
	h.t.Helper()
	var out []parsedDSN
	for _, d := range h.dsns() {
		if d.action() == action {
			out = append(out, d)
		}
	}
	return out
}

// checkDSN checks that d reports on rcpt with action and status, and goes from the null
// sender to the original sender.
func checkDSN(t *testing.T, d parsedDSN, rcpt, action, status string) {
	t.Helper()
	if d.env.From != "" || len(d.env.Recipients) != 1 || d.env.Recipients[0].Addr != senderAddr {
		t.Errorf("DSN envelope from %q to %+v, want <> to %s", d.env.From, d.env.Recipients, senderAddr)
	}
	if len(d.recipients) != 1 {
		t.Fatalf("DSN has %d recipient groups, want 1", len(d.recipients))
	}
	g := d.recipients[0]
	if got := g.Get("Final-Recipient"); !strings.EqualFold(got, "rfc822; "+rcpt) {
		t.Errorf("Final-Recipient %q, want rfc822; %s", got, rcpt)
	}
	if got := g.Get("Action"); got != action {
		t.Errorf("Action %q, want %q", got, action)
	}
	if got := g.Get("Status"); got != status {
		t.Errorf("Status %q, want %q", got, status)
	}
}

// --- receivers ---

// testCA issues certificates that Remote.Roots can be told to trust.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mxward test CA"},
		NotBefore: remoteEpoch.Add(-time.Hour), NotAfter: remoteEpoch.Add(30 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// issue returns a server certificate for names signed by the CA, or self-signed when
// ca is nil.
func (ca *testCA) issue(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		DNSNames:  names,
		NotBefore: remoteEpoch.Add(-time.Hour), NotAfter: remoteEpoch.Add(30 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// fingerprint is the hex SHA-256 digest of a certificate, as a fingerprint policy pins it.
func fingerprint(c tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return hex.EncodeToString(sum[:])
}

// userSet is the receiver's set of existing addresses.
type userSet map[string]bool

func (u userSet) IsLocalDomain(domain string) bool {
	for a := range u {
		if strings.EqualFold(domainOf(a), domain) {
			return true
		}
	}
	return false
}

func (u userSet) Expand(addr string) ([]string, []string, error) {
	if u[strings.ToLower(addr)] {
		return []string{addr}, nil, nil
	}
	return nil, nil, smtpserver.ErrNoSuchUser
}

func (u userSet) Postmaster() string { return "" }

// receiver is mxward's own SMTP server on 127.0.0.1, queueing into a spool of its own.
type receiver struct {
	port  int
	ln    *countingListener
	store *spool.FileStore

	mu  sync.Mutex
	ids []spool.ID
	got []spool.Envelope
}

type receiverConfig struct {
	cert          *tls.Certificate // nil: no STARTTLS
	users         []string
	maxRecipients int
	slow          time.Duration // pause before reading each MAIL, to make sessions overlap
	minTLS        uint16        // TLS versions the receiver accepts; 0: Go's defaults
	maxTLS        uint16
	addr          string                     // listen address; "": 127.0.0.1 on a free port
	onHello       func(*tls.ClientHelloInfo) // sees each ClientHello (SNI)
}

func startReceiver(t *testing.T, cfg receiverConfig) *receiver {
	t.Helper()
	st, err := spool.Open(context.Background(), t.TempDir(), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rv := &receiver{store: st}
	users := userSet{}
	for _, u := range cfg.users {
		users[strings.ToLower(u)] = true
	}
	scfg := smtpserver.Config{
		Hostname: "mx1.example.net", Recipients: users, MaxRecipients: cfg.maxRecipients,
		CommandTimeout: 5 * time.Second, DataTimeout: 5 * time.Second,
		Queued: func(id spool.ID, env *spool.Envelope) {
			rv.mu.Lock()
			rv.ids = append(rv.ids, id)
			rv.got = append(rv.got, *env)
			rv.mu.Unlock()
		},
	}
	mode := smtpserver.TLSNone
	if cfg.cert != nil {
		scfg.TLS = &tls.Config{Certificates: []tls.Certificate{*cfg.cert}, MinVersion: cfg.minTLS, MaxVersion: cfg.maxTLS}
		if cfg.onHello != nil {
			scfg.TLS.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
				cfg.onHello(hi)
				return nil, nil
			}
		}
		mode = smtpserver.TLSStartTLS
	}
	srv := smtpserver.New(scfg, st, slog.New(slog.DiscardHandler))
	addr := cfg.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rv.ln = &countingListener{Listener: l, slow: cfg.slow}
	rv.port = l.Addr().(*net.TCPAddr).Port
	go srv.Serve(rv.ln, smtpserver.Listener{Name: "in", Role: smtpserver.RoleInbound, TLS: mode})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return rv
}

// messages returns the envelopes the receiver queued.
func (rv *receiver) messages() []spool.Envelope {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return slices.Clone(rv.got)
}

// body returns the i-th message the receiver queued, as it stored it.
func (rv *receiver) body(t *testing.T, i int) string {
	t.Helper()
	rv.mu.Lock()
	id := rv.ids[i]
	rv.mu.Unlock()
	rc, err := rv.store.Open(context.Background(), id)
	if err != nil {
		t.Fatalf("receiver: open %s: %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// countingListener counts the sessions a receiver accepts, and how many were open at
// once. A session counts as open from accept until the client's QUIT is read, or the
// connection ends: the client waits for the reply to QUIT before it opens another
// session, so sessions that follow each other never overlap in the count.
type countingListener struct {
	net.Listener
	slow time.Duration

	mu                      sync.Mutex
	accepted, open, maxOpen int
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.accepted++
	l.open++
	l.maxOpen = max(l.maxOpen, l.open)
	l.mu.Unlock()
	return &countedConn{Conn: c, l: l}, nil
}

func (l *countingListener) counts() (accepted, maxOpen int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted, l.maxOpen
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
	tail []byte
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	data := append(c.tail, p[:n]...)
	if c.l.slow > 0 && bytes.Contains(data, []byte("MAIL FROM:")) {
		time.Sleep(c.l.slow)
	}
	if bytes.Contains(data, []byte("QUIT\r\n")) || err != nil {
		c.end()
	}
	c.tail = slices.Clone(data[max(0, len(data)-8):])
	return n, err
}

func (c *countedConn) Close() error {
	c.end()
	return c.Conn.Close()
}

func (c *countedConn) end() {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		c.l.mu.Unlock()
	})
}

// stripProxy is a man in the middle between the sending engine and a receiver
// (ST-10): it removes STARTTLS from EHLO replies, or rewrites it to "XXXXXXXA", and
// records what the client sent.
type stripProxy struct {
	port    int
	target  string
	rewrite bool

	mu      sync.Mutex
	fromCli bytes.Buffer
}

func startStripProxy(t *testing.T, targetPort int, rewrite bool) *stripProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stripProxy{port: l.Addr().(*net.TCPAddr).Port, target: net.JoinHostPort("127.0.0.1", strconv.Itoa(targetPort)), rewrite: rewrite}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.serve(c)
			}()
		}
	}()
	return p
}

func (p *stripProxy) serve(cli net.Conn) {
	defer cli.Close()
	srv, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer srv.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := cli.Read(buf)
			if n > 0 {
				p.mu.Lock()
				p.fromCli.Write(buf[:n])
				p.mu.Unlock()
				srv.Write(buf[:n])
			}
			if err != nil {
				srv.Close()
				return
			}
		}
	}()
	// Server to client, a line at a time. A continuation line is held back until the
	// next one shows whether it has become the last line of its reply.
	br := bufio.NewReader(srv)
	var held string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break
		}
		starttls := len(line) >= 12 && strings.EqualFold(strings.TrimRight(line[4:], "\r\n"), "STARTTLS")
		switch {
		case starttls && p.rewrite:
			line = line[:4] + "XXXXXXXA\r\n"
		case starttls && line[3] == '-':
			continue
		case starttls:
			// The last line of the reply: the held line becomes the last one.
			if held != "" {
				line = held[:3] + " " + held[4:]
				held = ""
			} else {
				continue
			}
		}
		if held != "" {
			cli.Write([]byte(held))
			held = ""
		}
		if len(line) > 3 && line[3] == '-' {
			held = line
			continue
		}
		cli.Write([]byte(line))
	}
	cli.Close()
	<-done
}

// sent returns everything the client sent through the proxy.
func (p *stripProxy) sent() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fromCli.String()
}

// clientSent reports whether the client sent a line starting with prefix.
func (p *stripProxy) clientSent(prefix string) bool {
	for line := range strings.Lines(p.sent()) {
		if strings.HasPrefix(strings.ToUpper(line), prefix) {
			return true
		}
	}
	return false
}

// scriptedServer is a minimal SMTP server whose end of data can be made to misbehave.
type scriptedServer struct {
	port     int
	chunking bool // offer CHUNKING (and PIPELINING), so the client uses BDAT

	mu       sync.Mutex
	mode     string // at the end of data: "drop" closes, "stall" never answers, "answer" says 250
	bodies   int    // messages received to their end
	accepted int    // messages answered with 250
	mails    int
	ended    chan struct{} // a message was received to its end
}

func startScripted(t *testing.T, mode string, chunking bool) *scriptedServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedServer{port: l.Addr().(*net.TCPAddr).Port, mode: mode, chunking: chunking, ended: make(chan struct{}, 16)}
	var wg sync.WaitGroup
	var conns sync.Map
	t.Cleanup(func() {
		l.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conns.Delete(c)
				defer c.Close()
				s.serve(c)
			}()
		}
	}()
	return s
}

func (s *scriptedServer) setMode(m string) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

func (s *scriptedServer) stats() (mails, bodies, accepted int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mails, s.bodies, s.accepted
}

func (s *scriptedServer) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "220 fake.example.net ESMTP\r\n")
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimRight(line, "\r\n"))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			if s.chunking {
				io.WriteString(c, "250-fake.example.net\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n")
			} else {
				io.WriteString(c, "250-fake.example.net\r\n250 8BITMIME\r\n")
			}
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			s.mu.Lock()
			s.mails++
			s.mu.Unlock()
			io.WriteString(c, "250 2.1.0 ok\r\n")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			io.WriteString(c, "250 2.1.5 ok\r\n")
		case cmd == "DATA":
			io.WriteString(c, "354 go ahead\r\n")
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			if !s.endOfData(c, br) {
				return
			}
		case strings.HasPrefix(cmd, "BDAT "):
			f := strings.Fields(cmd)
			n, err := strconv.Atoi(f[1])
			if err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
				return
			}
			if len(f) < 3 || f[2] != "LAST" {
				io.WriteString(c, "250 2.0.0 chunk ok\r\n")
				continue
			}
			if !s.endOfData(c, br) {
				return
			}
		case cmd == "RSET" || cmd == "NOOP":
			io.WriteString(c, "250 2.0.0 ok\r\n")
		case cmd == "QUIT":
			io.WriteString(c, "221 2.0.0 bye\r\n")
			return
		default:
			io.WriteString(c, "500 5.5.2 what\r\n")
		}
	}
}

// endOfData answers the end of a message as the mode says; false ends the session.
func (s *scriptedServer) endOfData(c net.Conn, br *bufio.Reader) bool {
	s.mu.Lock()
	s.bodies++
	mode := s.mode
	if mode == "answer" {
		s.accepted++
	}
	s.mu.Unlock()
	select {
	case s.ended <- struct{}{}:
	default:
	}
	switch mode {
	case "drop":
		return false
	case "stall":
		io.Copy(io.Discard, br) // until the client gives up and closes
		return false
	}
	io.WriteString(c, "250 2.0.0 queued\r\n")
	return true
}

// closedPort returns a port on 127.0.0.1 that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}
