// Package smtpclient runs one outbound SMTP session (RFC 5321): greeting, EHLO, STARTTLS
// as the session's Security demands, and any number of mail transactions using
// PIPELINING, SIZE, 8BITMIME, SMTPUTF8, DSN, CHUNKING and REQUIRETLS when the server
// offers them.
//
// The client applies a transport-security decision made elsewhere; it never weakens it.
// A required STARTTLS that is missing, refused or fails is an error with a reason
// (TLSError). STARTTLS follows RFC 3207 and the rules ST-01..ST-10 of the reference
// semantics: plaintext that arrives together with the 220 reply aborts the session
// (ST-07), the TLS layer is built on the raw connection, capabilities learned in
// plaintext are forgotten (ST-04), STARTTLS is sent at most once (ST-05) and the peer is
// judged by Security.Verify before any further command (ST-06).
//
// A Client is not safe for concurrent use.
package smtpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"mxward/internal/smtp"
)

// Timeouts bound each step of a session. A zero field takes the default given with it;
// the defaults are those of RFC 5321 §4.5.3.2 where it names one. Every read and write
// has a deadline derived from them, and the context of each call can end it sooner.
type Timeouts struct {
	Connect  time.Duration // TCP connect in Dial; 30s
	Greeting time.Duration // the 220 greeting; 5m (§4.5.3.2.1)
	EHLO     time.Duration // the reply to EHLO or HELO; 5m
	// StartTLS bounds the reply to STARTTLS and, separately, the handshake; 1m. A
	// handshake is a few round trips, so a minute is already generous.
	StartTLS time.Duration
	Mail     time.Duration // the reply to MAIL; 5m (§4.5.3.2.2)
	Rcpt     time.Duration // the reply to each RCPT; 5m (§4.5.3.2.3)
	DataInit time.Duration // the 354 reply to DATA; 2m (§4.5.3.2.4)
	// DataBlock bounds each write of message data and the reply to each BDAT chunk but
	// the last; 3m (§4.5.3.2.5).
	DataBlock time.Duration
	// DataTerm bounds the reply to the end of data (the final dot or the last BDAT
	// chunk), which servers send only once the message is safe; 10m (§4.5.3.2.6).
	DataTerm time.Duration
	Rset     time.Duration // the reply to RSET; 20s (RSET costs the server nothing)
	Quit     time.Duration // the reply to QUIT; 10s (nothing depends on it)
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Connect, 30*time.Second)
	def(&t.Greeting, 5*time.Minute)
	def(&t.EHLO, 5*time.Minute)
	def(&t.StartTLS, time.Minute)
	def(&t.Mail, 5*time.Minute)
	def(&t.Rcpt, 5*time.Minute)
	def(&t.DataInit, 2*time.Minute)
	def(&t.DataBlock, 3*time.Minute)
	def(&t.DataTerm, 10*time.Minute)
	def(&t.Rset, 20*time.Second)
	def(&t.Quit, 10*time.Second)
	return t
}

// Options configure a session.
type Options struct {
	// Hostname is the name given in EHLO: the configured host name of this MTA (RFC 5321
	// §4.1.1.1), or an address literal. It is required.
	Hostname string
	Security Security
	Timeouts Timeouts
	// Auth, when set, logs in with AUTH PLAIN after TLS is up (smarthosts). Without TLS
	// the session fails rather than send the password in the clear.
	Auth *Credentials
	// Logger receives protocol traces at debug level and the TLS outcome at info level.
	// nil discards them.
	Logger *slog.Logger
}

// Credentials are a login for AUTH PLAIN.
type Credentials struct {
	User, Password string
}

// Client is one SMTP session with a server.
type Client struct {
	raw  net.Conn // the TCP connection; closing it ends the session at every layer
	conn net.Conn // raw, or the TLS connection on top of it
	br   *bufio.Reader
	bw   *bufio.Writer
	wto  time.Duration // deadline for each write of the current step

	hostname string
	sec      Security
	to       Timeouts
	log      *slog.Logger

	ext map[string]string // EHLO keywords (upper case) and their parameters
	tls TLSInfo
	err error // why the connection cannot be used any more; nil while it can
}

// Dial connects to addr and sets the session up as NewClient does. The connect step is
// bounded by opts.Timeouts.Connect and ctx.
func Dial(ctx context.Context, network, addr string, opts Options) (*Client, error) {
	if err := checkHostname(opts.Hostname); err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: opts.Timeouts.withDefaults().Connect}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &Error{Stage: "connect", Err: err}
	}
	return NewClient(ctx, conn, opts)
}

// NewClient runs the start of a session on conn: it reads the greeting, sends EHLO (HELO
// when the server rejects EHLO with a 5xx, RFC 5321 §3.2), does STARTTLS as
// opts.Security says and, after TLS, EHLO again. On error conn is closed; the error is a
// *TLSError when the transport security could not be had, an *Error otherwise.
//
// In TLSOpportunistic mode a server that does not offer STARTTLS, or refuses it with a
// reply other than 421, is used in plaintext; a handshake failure is an error, and
// whether to reconnect in plaintext is the caller's decision.
func NewClient(ctx context.Context, conn net.Conn, opts Options) (_ *Client, err error) {
	if err := checkHostname(opts.Hostname); err != nil {
		conn.Close()
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		raw:      conn,
		conn:     conn,
		hostname: opts.Hostname,
		sec:      opts.Security,
		to:       opts.Timeouts.withDefaults(),
		log:      log,
		tls:      TLSInfo{Level: "none", Auth: "none"},
	}
	c.wto = c.to.EHLO
	c.br = bufio.NewReaderSize(conn, maxReplyLine)
	c.bw = bufio.NewWriter(deadlineWriter{c})
	if err := ctx.Err(); err != nil {
		conn.Close()
		return nil, &Error{Stage: "greeting", Err: err}
	}
	defer func() {
		if err != nil {
			c.fail(err)
		}
	}()
	defer c.watch(ctx)(&err)

	r, err := c.readReply("greeting", c.to.Greeting)
	if err != nil {
		return nil, err
	}
	if r.Code != 220 {
		// A 554 greeting still expects QUIT (RFC 5321 §3.1).
		c.quit()
		return nil, &Error{Stage: "greeting", Reply: r}
	}
	if err := c.hello(); err != nil {
		return nil, err
	}
	c.tls.Offered = c.has("STARTTLS")
	switch {
	case c.sec.Mode == TLSDisabled:
	case !c.tls.Offered:
		if c.sec.Mode == TLSRequired {
			c.quit()
			return nil, &TLSError{Reason: ReasonNotOffered}
		}
		c.log.Info("starttls not offered, continuing in plaintext")
	default:
		if err := c.startTLS(ctx); err != nil {
			return nil, err
		}
	}
	if opts.Auth != nil {
		if err := c.auth(*opts.Auth); err != nil {
			c.quit()
			return nil, err
		}
	}
	return c, nil
}

// auth logs in with AUTH PLAIN (RFC 4954, RFC 4616), only over TLS: credentials are never
// sent in plaintext, whatever the server offers.
func (c *Client) auth(cr Credentials) error {
	if c.tls.Level == "" || c.tls.Level == "none" {
		return &Error{Stage: "auth", Err: errors.New("refusing to send credentials without TLS")}
	}
	mechs := strings.Fields(strings.ToUpper(c.ext["AUTH"]))
	if !slices.Contains(mechs, "PLAIN") {
		return &Error{Stage: "auth", Err: fmt.Errorf("server does not offer AUTH PLAIN (offers %q)", c.ext["AUTH"])}
	}
	if strings.ContainsAny(cr.User+cr.Password, "\x00") {
		return &Error{Stage: "auth", Err: errors.New("credentials contain NUL")}
	}
	resp := base64.StdEncoding.EncodeToString([]byte("\x00" + cr.User + "\x00" + cr.Password))
	c.log.Debug("smtp send", "command", "AUTH PLAIN <credentials>")
	c.wto = c.to.Mail
	c.bw.WriteString("AUTH PLAIN " + resp + "\r\n")
	if err := c.flush(c.to.Mail); err != nil {
		return &Error{Stage: "auth", Err: err}
	}
	r, err := c.readReply("auth", c.to.Mail)
	if err != nil {
		return err
	}
	if r.Code != 235 {
		return &Error{Stage: "auth", Reply: r}
	}
	c.log.Info("authenticated to server", "auth_user", cr.User)
	return nil
}

// checkHostname refuses an EHLO name that could break the command line.
func checkHostname(h string) error {
	if h == "" {
		return errors.New("smtpclient: Options.Hostname is empty")
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("smtpclient: Options.Hostname %q contains white space or control characters", h)
		}
	}
	return nil
}

// hello sends EHLO, falling back to HELO on a permanent rejection, and records the
// extensions. It replaces whatever was known before (ST-04).
func (c *Client) hello() error {
	c.ext = map[string]string{}
	if err := c.command(c.to.EHLO, "EHLO "+c.hostname); err != nil {
		return &Error{Stage: "ehlo", Err: err}
	}
	r, err := c.readReply("ehlo", c.to.EHLO)
	if err != nil {
		return err
	}
	if r.Code/100 == 2 {
		for _, l := range r.Lines[1:] {
			kw, params, _ := strings.Cut(strings.TrimSpace(l), " ")
			if kw != "" {
				c.ext[strings.ToUpper(kw)] = strings.TrimSpace(params)
			}
		}
		return nil
	}
	if !r.Permanent() {
		return &Error{Stage: "ehlo", Reply: r}
	}
	c.log.Debug("ehlo rejected, trying helo", "reply", r.String())
	if err := c.command(c.to.EHLO, "HELO "+c.hostname); err != nil {
		return &Error{Stage: "helo", Err: err}
	}
	r, err = c.readReply("helo", c.to.EHLO)
	if err != nil {
		return err
	}
	if r.Code/100 != 2 {
		return &Error{Stage: "helo", Reply: r}
	}
	return nil
}

// startTLS upgrades the connection (RFC 3207). STARTTLS goes alone, never in a
// pipelined batch (ST-03).
func (c *Client) startTLS(ctx context.Context) error {
	if err := c.command(c.to.StartTLS, "STARTTLS"); err != nil {
		return &Error{Stage: "starttls", Err: err}
	}
	r, err := c.readReply("starttls", c.to.StartTLS)
	if err != nil {
		return err
	}
	if r.Code == 421 {
		return &Error{Stage: "starttls", Reply: r}
	}
	if r.Code != 220 {
		// ST-01: 454 or 501. Local policy decides; the session is still in its plaintext
		// state, with the extensions of the first EHLO.
		if c.sec.Mode == TLSRequired {
			c.quit()
			return &TLSError{Reason: ReasonRefused, Reply: r}
		}
		c.log.Info("starttls refused, continuing in plaintext", "reply", r.String())
		return nil
	}
	// ST-07 (CVE-2011-0411): anything already buffered after the 220 was sent in
	// plaintext, possibly by a man in the middle, and must never be read as the server's
	// reply to the EHLO that follows TLS. Postfix discards it; mxward aborts, since an
	// honest server never sends it.
	if n := c.br.Buffered(); n > 0 {
		err := fmt.Errorf("%d octets of plaintext arrived with the 220 reply to STARTTLS", n)
		c.log.Warn("aborting session: plaintext injected after STARTTLS", "bytes", n)
		c.fail(err)
		return &TLSError{Reason: ReasonInjection, Err: err}
	}
	// The TLS layer goes on the raw connection, never on the buffered reader (ST-07).
	tc := tls.Client(c.raw, tlsConfig(c.sec))
	c.raw.SetDeadline(time.Now().Add(c.to.StartTLS))
	if err := tc.HandshakeContext(ctx); err != nil {
		c.fail(err)
		return &TLSError{Reason: ReasonHandshake, Err: err}
	}
	c.raw.SetDeadline(time.Time{})
	c.conn = tc
	c.br = bufio.NewReaderSize(tc, maxReplyLine)
	c.bw = bufio.NewWriter(deadlineWriter{c})
	c.ext = nil // ST-04: nothing learned in plaintext survives

	cs := tc.ConnectionState()
	auth := "none"
	if c.sec.Verify != nil {
		// ST-06: judge the peer before anything else is sent over the channel.
		a, err := c.sec.Verify(cs)
		if err != nil {
			c.log.Info("tls peer rejected", "tls_version", versionName(cs.Version), "error", err)
			c.quit()
			return &TLSError{Reason: ReasonVerify, Err: err}
		}
		if a != "" {
			auth = a
		}
	}
	level := "untrusted"
	if auth != "none" {
		level = "verified"
	}
	c.tls = TLSInfo{
		Level:   level,
		Version: versionName(cs.Version),
		Cipher:  tls.CipherSuiteName(cs.CipherSuite),
		Auth:    auth,
		Offered: true,
	}
	c.log.Info("tls established", "tls_level", c.tls.Level, "tls_version", c.tls.Version,
		"tls_cipher", c.tls.Cipher, "tls_auth", c.tls.Auth)
	// ST-04, ST-05: back to "just greeted"; the new extension list is the only one used,
	// and STARTTLS is never sent again even if it lists it.
	return c.hello()
}

// tlsConfig derives the handshake configuration from sec: a copy of sec.Config with
// certificate checks left to Verify, SNI only for a host name, and TLS 1.2 at least
// unless the base configuration says otherwise.
func tlsConfig(sec Security) *tls.Config {
	cfg := &tls.Config{}
	if sec.Config != nil {
		cfg = sec.Config.Clone()
	}
	cfg.InsecureSkipVerify = true
	cfg.ServerName = ""
	if name := sec.ServerName; name != "" {
		if _, err := netip.ParseAddr(strings.Trim(name, "[]")); err != nil {
			cfg.ServerName = name
		}
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

// versionName names a TLS version the way OpenSSL and Postfix logs do ("TLSv1.3"), as
// TLSInfo.Version promises.
func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return tls.VersionName(v)
}

// TLS reports the transport security of the session.
func (c *Client) TLS() TLSInfo { return c.tls }

// Extensions returns the server's EHLO keywords, upper-cased, with their parameters. After
// STARTTLS it holds only what the server announced over TLS (ST-04). It is empty after a
// HELO fallback.
func (c *Client) Extensions() map[string]string { return maps.Clone(c.ext) }

// Usable reports whether the connection can carry another transaction. It is false after
// an I/O error, a timeout, a 421 reply, a malformed reply, an aborted message, a failed
// RSET, Quit or Close.
func (c *Client) Usable() bool { return c.err == nil }

// Reset sends RSET, abandoning any transaction. Send already resets after a transaction
// that failed part-way; Reset is for callers that want to check a connection before
// reusing it. A failed RSET makes the connection unusable.
func (c *Client) Reset(ctx context.Context) (err error) {
	if c.err != nil {
		return &Error{Stage: "rset", Err: fmt.Errorf("%w: %w", ErrUnusable, c.err)}
	}
	defer c.watch(ctx)(&err)
	return c.rset()
}

func (c *Client) rset() error {
	if err := c.command(c.to.Rset, "RSET"); err != nil {
		return &Error{Stage: "rset", Err: err}
	}
	r, err := c.readReply("rset", c.to.Rset)
	if err != nil {
		return err
	}
	if r.Code/100 != 2 {
		err := &Error{Stage: "rset", Reply: r}
		c.fail(err)
		return err
	}
	return nil
}

// Quit ends the session politely and closes the connection. Its error is only of
// interest to logs: the connection is closed either way.
func (c *Client) Quit(ctx context.Context) (err error) {
	if c.err != nil {
		c.raw.Close()
		return nil
	}
	defer c.watch(ctx)(&err)
	defer c.fail(fmt.Errorf("session ended with QUIT"))
	if err := c.command(c.to.Quit, "QUIT"); err != nil {
		return &Error{Stage: "quit", Err: err}
	}
	_, err = c.readReply("quit", c.to.Quit)
	return err
}

// quit is QUIT on a failure path: errors are ignored and the connection is closed.
func (c *Client) quit() {
	if c.err == nil && c.command(c.to.Quit, "QUIT") == nil {
		c.readReply("quit", c.to.Quit)
	}
	c.fail(fmt.Errorf("session ended with QUIT"))
}

// Close closes the connection without QUIT.
func (c *Client) Close() error {
	c.fail(fmt.Errorf("connection closed"))
	return nil
}

// fail records why the connection is unusable and closes it.
func (c *Client) fail(err error) {
	if c.err == nil {
		c.err = err
		c.raw.Close()
	}
}

// watch makes ctx's end close the connection for the duration of one operation, which
// unblocks any read or write in progress. Use it as
//
//	defer c.watch(ctx)(&err)
//
// so that an error caused by the cancellation reports ctx's cause.
func (c *Client) watch(ctx context.Context) func(*error) {
	stop := context.AfterFunc(ctx, func() { c.raw.Close() })
	return func(errp *error) {
		if stop() {
			return
		}
		cause := context.Cause(ctx)
		c.fail(cause)
		if *errp == nil {
			return
		}
		var e *Error
		var te *TLSError
		switch {
		case errors.As(*errp, &e) && e.Reply.Code == 0:
			e.Err = cause
		case errors.As(*errp, &te) && te.Reason == ReasonHandshake:
			te.Err = cause
		default:
			*errp = fmt.Errorf("%w (%w)", cause, *errp)
		}
	}
}

// has reports whether the server announced the extension kw.
func (c *Client) has(kw string) bool {
	_, ok := c.ext[kw]
	return ok
}

// command queues one command line and flushes it.
func (c *Client) command(timeout time.Duration, line string) error {
	c.wto = timeout
	if err := c.queue(line); err != nil {
		return err
	}
	return c.flush(timeout)
}

// queue buffers one command line. Lines are built by this package from validated parts;
// the check is the last guard against a CR or LF splitting one command into two.
func (c *Client) queue(line string) error {
	if c.err != nil {
		return fmt.Errorf("%w: %w", ErrUnusable, c.err)
	}
	if strings.ContainsAny(line, "\r\n") {
		return fmt.Errorf("refusing to send a command with a line break: %q", line)
	}
	c.log.Debug("smtp send", "command", line)
	c.bw.WriteString(line)
	c.bw.WriteString("\r\n")
	return nil
}

// flush writes what is buffered, each write bounded by timeout. (Writes that happen
// while queueing, when the buffer fills, use the timeout set by the step before it
// queued.)
func (c *Client) flush(timeout time.Duration) error {
	if c.err != nil {
		return fmt.Errorf("%w: %w", ErrUnusable, c.err)
	}
	c.wto = timeout
	if err := c.bw.Flush(); err != nil {
		c.fail(err)
		return err
	}
	return nil
}

// readReply reads the reply that ends stage. An I/O error or malformed reply makes the
// connection unusable and is returned as an *Error; so does a 421, which is also
// returned as a reply, since the caller must attribute it (RFC 5321 §3.8).
func (c *Client) readReply(stage string, timeout time.Duration) (r smtp.Reply, err error) {
	if c.err != nil {
		return r, &Error{Stage: stage, Err: fmt.Errorf("%w: %w", ErrUnusable, c.err)}
	}
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	r, err = readReply(c.br)
	if err != nil {
		e := &Error{Stage: stage, Err: fmt.Errorf("read reply: %w", err)}
		c.fail(e)
		return r, e
	}
	c.log.Debug("smtp reply", "stage", stage, "reply", r.String())
	if r.Code == 421 {
		c.fail(&Error{Stage: stage, Reply: r})
	}
	return r, nil
}

// deadlineWriter gives every write on the connection the current step's deadline; for
// message data that is the per-block timeout of RFC 5321 §4.5.3.2.5.
type deadlineWriter struct{ c *Client }

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.c.conn.SetWriteDeadline(time.Now().Add(w.c.wto))
	return w.c.conn.Write(p)
}
