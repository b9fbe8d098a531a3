package smtpclient

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// cmdRec is one command line as the fake server received it.
type cmdRec struct {
	Line string
	TLS  bool // it arrived over TLS
}

func (c cmdRec) String() string {
	if c.TLS {
		return "[tls] " + c.Line
	}
	return c.Line
}

// sessionRec is everything the fake server saw in one session.
type sessionRec struct {
	Cmds     []cmdRec
	Messages []string // accepted message content (DATA unstuffed, or BDAT chunks joined)
	Wire     []string // DATA only: the octets after 354, terminator included
	Chunks   []int    // BDAT chunk sizes, in order
	SNI      string
	TLSErr   error    // the server's handshake error, if the handshake failed
	Problems []string // protocol violations by the client
}

// lines returns the command lines, prefixed with "[tls] " when they came over TLS.
func (s *sessionRec) lines() []string {
	var out []string
	for _, c := range s.Cmds {
		out = append(out, c.String())
	}
	return out
}

// count returns how many commands start with prefix (case-sensitive).
func (s *sessionRec) count(prefix string) int {
	n := 0
	for _, c := range s.Cmds {
		if strings.HasPrefix(c.Line, prefix) {
			n++
		}
	}
	return n
}

// fakeServer is a scriptable SMTP receiver on 127.0.0.1 that records exactly what the
// client sent. The zero configuration is a plain server with no extensions that accepts
// everything.
type fakeServer struct {
	Greeting string   // raw greeting; "" for a 220, "none" to never greet
	Ext      []string // EHLO keywords in plaintext
	ExtTLS   []string // EHLO keywords over TLS; nil means Ext without STARTTLS
	Cert     *tls.Certificate
	MaxTLS   uint16
	// StartTLSReply is written in reply to STARTTLS; "" means "220 2.0.0 Ready\r\n". It
	// may carry extra lines, as a man in the middle would inject them (ST-07).
	StartTLSReply string
	// Reply may override the reply to a command line: it returns the raw reply, or "" for
	// the default. The end of data is passed as the line ".", for DATA and BDAT LAST.
	Reply func(line string, tls bool) string
	// HoldBatch makes the server hold its replies after MAIL until it has read this many
	// more commands, so a client that waits for each reply never gets one.
	HoldBatch int
	// Lockstep records a problem whenever the client sends a command before the reply to
	// the previous one.
	Lockstep bool
	// DropAfter closes the connection once this many octets of message data arrived.
	DropAfter int
	// StallFinal never answers the end of data.
	StallFinal bool

	t    *testing.T
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	recs []*sessionRec
}

// start listens on loopback and serves sessions until the test ends.
func (s *fakeServer) start(t *testing.T) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.t, s.ln = t, ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			rec := &sessionRec{}
			s.mu.Lock()
			s.recs = append(s.recs, rec)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(20 * time.Second))
				ss := &srvSession{s: s, rec: rec, conn: conn}
				ss.setConn(conn)
				ss.run()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

// sessions stops the server and waits for its sessions to end, which they do when the
// client closes its side. It returns what each session saw.
func (s *fakeServer) sessions() []*sessionRec {
	s.t.Helper()
	s.ln.Close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.t.Fatal("fake server sessions did not end; is a client still open?")
	}
	return s.recs
}

// only returns the single session, failing the test if there were more or none.
func (s *fakeServer) only() *sessionRec {
	s.t.Helper()
	recs := s.sessions()
	if len(recs) != 1 {
		s.t.Fatalf("server saw %d sessions, want 1", len(recs))
	}
	for _, p := range recs[0].Problems {
		s.t.Errorf("client protocol violation: %s", p)
	}
	return recs[0]
}

type srvSession struct {
	s    *fakeServer
	rec  *sessionRec
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	tls  bool

	hold    int      // commands still to read before the held replies go out
	pending []string // held replies
	rcptOK  int
	data    int             // octets of message data received
	chunks  strings.Builder // the BDAT message being assembled
}

func (ss *srvSession) setConn(c net.Conn) {
	ss.conn = c
	ss.br = bufio.NewReader(c)
	ss.bw = bufio.NewWriter(c)
}

func (ss *srvSession) run() {
	switch g := ss.s.Greeting; g {
	case "none":
		io.Copy(io.Discard, ss.conn)
		return
	case "":
		ss.send("220 mx.example.test ESMTP fake\r\n")
	default:
		ss.send(g)
	}
	for {
		line, err := ss.br.ReadString('\n')
		if err != nil {
			return
		}
		if !strings.HasSuffix(line, "\r\n") {
			ss.problem("command line without CRLF: %q", line)
		}
		line = strings.TrimRight(line, "\r\n")
		ss.rec.Cmds = append(ss.rec.Cmds, cmdRec{Line: line, TLS: ss.tls})
		if !ss.handle(line) {
			return
		}
	}
}

func (ss *srvSession) problem(format string, args ...any) {
	ss.rec.Problems = append(ss.rec.Problems, fmt.Sprintf(format, args...))
}

// send writes a reply now.
func (ss *srvSession) send(r string) {
	ss.bw.WriteString(r)
	ss.bw.Flush()
}

// reply answers a command, holding the reply while a batch is being collected.
func (ss *srvSession) reply(cmd, r string) {
	if ss.hold > 0 {
		ss.pending = append(ss.pending, r)
		ss.hold--
		if ss.hold == 0 {
			ss.send(strings.Join(ss.pending, ""))
			ss.pending = nil
		}
		return
	}
	if ss.s.Lockstep {
		ss.checkNothingPending(cmd)
	}
	ss.send(r)
}

// releaseHeld sends held replies at once (before reading message data).
func (ss *srvSession) releaseHeld() {
	if len(ss.pending) > 0 {
		ss.send(strings.Join(ss.pending, ""))
		ss.pending, ss.hold = nil, 0
	}
}

// checkNothingPending records a problem if the client sent anything more before the
// reply to cmd: a short wait makes a pipelining client's next command show up.
func (ss *srvSession) checkNothingPending(cmd string) {
	if ss.br.Buffered() == 0 {
		ss.conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		ss.br.Peek(1)
		ss.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	}
	if ss.br.Buffered() > 0 {
		ss.problem("client sent more before the reply to %q", cmd)
	}
}

func (ss *srvSession) override(line string) string {
	if ss.s.Reply == nil {
		return ""
	}
	return ss.s.Reply(line, ss.tls)
}

// handle answers one command; false ends the session.
func (ss *srvSession) handle(line string) bool {
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	r := ss.override(line)
	if strings.HasPrefix(r, "421") {
		ss.releaseHeld()
		ss.send(r)
		return false
	}
	switch verb {
	case "EHLO":
		if r == "" {
			r = ss.ehlo()
		}
	case "HELO":
		if r == "" {
			r = "250 mx.example.test\r\n"
		}
	case "MAIL":
		if r == "" {
			r = "250 2.1.0 Ok\r\n"
		}
		ss.rcptOK = 0
		if ss.s.HoldBatch > 0 {
			ss.hold = ss.s.HoldBatch + 1
		}
	case "RCPT":
		if r == "" {
			r = "250 2.1.5 Ok\r\n"
		}
		if strings.HasPrefix(r, "2") {
			ss.rcptOK++
		}
	case "RSET":
		ss.rcptOK = 0
		ss.chunks.Reset()
		if r == "" {
			r = "250 2.0.0 Ok\r\n"
		}
	case "NOOP":
		if r == "" {
			r = "250 2.0.0 Ok\r\n"
		}
	case "QUIT":
		ss.releaseHeld()
		ss.send("221 2.0.0 Bye\r\n")
		return false
	case "STARTTLS":
		return ss.startTLS(r)
	case "DATA":
		if r == "" {
			r = "354 Go ahead\r\n"
			if ss.rcptOK == 0 {
				r = "554 5.5.1 No valid recipients\r\n"
			}
		}
		ss.reply(line, r)
		if !strings.HasPrefix(r, "354") {
			return true
		}
		ss.releaseHeld()
		return ss.readData()
	case "BDAT":
		return ss.bdat(line, arg, r)
	default:
		if r == "" {
			r = "502 5.5.2 Command not recognized\r\n"
		}
	}
	ss.reply(line, r)
	return true
}

func (ss *srvSession) ehlo() string {
	ext := ss.s.Ext
	if ss.tls {
		ext = ss.s.ExtTLS
		if ext == nil {
			for _, e := range ss.s.Ext {
				if e != "STARTTLS" {
					ext = append(ext, e)
				}
			}
		}
	}
	lines := append([]string{"mx.example.test greets you"}, ext...)
	var b strings.Builder
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		b.WriteString("250" + sep + l + "\r\n")
	}
	return b.String()
}

func (ss *srvSession) startTLS(r string) bool {
	// ST-03: nothing may follow STARTTLS in the same batch.
	if ss.br.Buffered() > 0 {
		ss.problem("client pipelined %d octets after STARTTLS", ss.br.Buffered())
	}
	if r == "" {
		switch {
		case ss.tls:
			r = "503 5.5.1 TLS already active\r\n"
		case ss.s.Cert == nil:
			r = "454 4.7.0 TLS not available\r\n"
		case ss.s.StartTLSReply != "":
			r = ss.s.StartTLSReply
		default:
			r = "220 2.0.0 Ready\r\n"
		}
	}
	ss.send(r)
	if !strings.HasPrefix(r, "220") || ss.s.Cert == nil {
		return true
	}
	tc := tls.Server(ss.conn, &tls.Config{Certificates: []tls.Certificate{*ss.s.Cert}, MaxVersion: ss.s.MaxTLS})
	if err := tc.Handshake(); err != nil {
		ss.rec.TLSErr = err
		return false
	}
	ss.rec.SNI = tc.ConnectionState().ServerName
	ss.tls = true
	ss.rcptOK = 0
	ss.setConn(tc)
	return true
}

// readData reads DATA content up to CRLF.CRLF.
func (ss *srvSession) readData() bool {
	var wire, msg strings.Builder
	for {
		line, err := ss.br.ReadString('\n')
		wire.WriteString(line)
		ss.data += len(line)
		if err != nil {
			return false
		}
		if ss.s.DropAfter > 0 && ss.data >= ss.s.DropAfter {
			return false
		}
		if line == ".\r\n" {
			break
		}
		msg.WriteString(strings.TrimPrefix(line, "."))
	}
	ss.rec.Wire = append(ss.rec.Wire, wire.String())
	return ss.endOfData(msg.String())
}

func (ss *srvSession) endOfData(msg string) bool {
	if ss.s.StallFinal {
		io.Copy(io.Discard, ss.br)
		return false
	}
	r := ss.override(".")
	if r == "" {
		r = "250 2.0.0 Ok: queued\r\n"
	}
	if strings.HasPrefix(r, "2") {
		ss.rec.Messages = append(ss.rec.Messages, msg)
	}
	ss.send(r)
	ss.rcptOK = 0
	return !strings.HasPrefix(r, "421")
}

// bdat reads one chunk (RFC 3030).
func (ss *srvSession) bdat(line, arg, r string) bool {
	sizeArg, last, _ := strings.Cut(arg, " ")
	n, err := strconv.Atoi(sizeArg)
	if err != nil || n < 0 || (last != "" && last != "LAST") {
		ss.problem("bad BDAT command %q", line)
		ss.send("501 5.5.4 Bad BDAT\r\n")
		return false
	}
	ss.releaseHeld()
	want := n
	if ss.s.DropAfter > 0 && ss.data+n >= ss.s.DropAfter {
		want = ss.s.DropAfter - ss.data
	}
	buf := make([]byte, want)
	if _, err := io.ReadFull(ss.br, buf); err != nil {
		return false
	}
	ss.data += want
	if want < n {
		return false
	}
	ss.rec.Chunks = append(ss.rec.Chunks, n)
	ss.chunks.Write(buf)
	switch {
	case r != "":
	case ss.rcptOK == 0:
		r = "554 5.5.1 No valid recipients\r\n"
	case last == "":
		r = "250 2.0.0 Chunk received\r\n"
	default:
		msg := ss.chunks.String()
		ss.chunks.Reset()
		return ss.endOfData(msg)
	}
	if !strings.HasPrefix(r, "2") {
		ss.chunks.Reset() // a refused chunk discards the message being built
	}
	ss.send(r)
	return true
}

// Certificates.

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mxward test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
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

// leaf issues a server certificate for name valid from notBefore to notAfter, signed by
// the CA, or self-signed when ca is nil.
func (ca *testCA) leaf(t *testing.T, name string, notBefore, notAfter time.Time) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	parent, signer := tmpl, any(key)
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// webPKIVerify is a Security.Verify that authenticates the peer by chain and name.
func webPKIVerify(pool *x509.CertPool, name string) func(tls.ConnectionState) (string, error) {
	return func(cs tls.ConnectionState) (string, error) {
		if len(cs.PeerCertificates) == 0 {
			return "", errors.New("no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: name})
		if err != nil {
			return "", err
		}
		return "webpki", nil
	}
}

// Client helpers.

// testOptions are short enough that a broken test fails in seconds rather than the
// minutes of the RFC defaults.
func testOptions(t *testing.T, sec Security) Options {
	d := 5 * time.Second
	return Options{
		Hostname: "client.example.test",
		Security: sec,
		Timeouts: Timeouts{Connect: d, Greeting: d, EHLO: d, StartTLS: d, Mail: d, Rcpt: d,
			DataInit: d, DataBlock: d, DataTerm: d, Rset: d, Quit: d},
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func dialTest(t *testing.T, addr string, opts Options) *Client {
	t.Helper()
	c, err := Dial(context.Background(), "tcp", addr, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Stripping proxy (ST-10).

// startStripper runs a man in the middle on loopback that forwards to target and edits
// the server's "250-STARTTLS" EHLO line: mode "strip" removes it, "rewrite" turns it into
// "250-XXXXXXXA". It returns the address to connect to.
func startStripper(t *testing.T, target, mode string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				down.Close()
				continue
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				io.Copy(up, down)
				up.Close()
			}()
			go func() {
				defer wg.Done()
				defer down.Close()
				br := bufio.NewReader(up)
				for {
					line, err := br.ReadString('\n')
					if len(line) >= 4 && strings.EqualFold(strings.TrimRight(line[4:], "\r\n"), "STARTTLS") {
						if mode == "strip" {
							continue
						}
						line = line[:4] + "XXXXXXXA\r\n"
					}
					if _, werr := io.WriteString(down, line); werr != nil || err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
