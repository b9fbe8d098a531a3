package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// maxReplyLine bounds one reply line, CRLF included. RFC 5321 §4.5.3.1.5 sets 512;
// the margin only keeps a chatty server from failing the run.
const maxReplyLine = 2048

// maxReplyLines bounds a multi-line reply, so a server that never ends one cannot
// keep the client reading forever.
const maxReplyLines = 100

// reply is one SMTP reply: its code and the text of each line without the code.
type reply struct {
	code  int
	lines []string
}

func (r reply) String() string {
	return strconv.Itoa(r.code) + " " + strings.Join(r.lines, " / ")
}

// errMalformedReply is wrapped by every error readReply returns for bytes that
// are not an SMTP reply.
var errMalformedReply = errors.New("malformed SMTP reply")

// readReply reads one possibly multi-line reply (RFC 5321 §4.2.1): lines of a
// three-digit code followed by "-" on all but the last, by " " or nothing on the
// last. Every line must carry the same code.
func readReply(r *bufio.Reader) (reply, error) {
	var rep reply
	for n := 0; ; n++ {
		if n == maxReplyLines {
			return reply{}, fmt.Errorf("%w: more than %d lines", errMalformedReply, maxReplyLines)
		}
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxReplyLine {
			return reply{}, fmt.Errorf("%w: line longer than %d bytes", errMalformedReply, maxReplyLine)
		}
		if err != nil {
			return reply{}, fmt.Errorf("read reply: %w", err)
		}
		code, last, text, err := parseReplyLine(line)
		if err != nil {
			return reply{}, err
		}
		if n > 0 && code != rep.code {
			return reply{}, fmt.Errorf("%w: code %d in a reply that started with %d", errMalformedReply, code, rep.code)
		}
		rep.code = code
		rep.lines = append(rep.lines, text)
		if last {
			return rep, nil
		}
	}
}

// parseReplyLine splits one reply line (with its line end) into code, whether it
// is the last line, and text.
func parseReplyLine(line []byte) (code int, last bool, text string, err error) {
	s := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
	if len(s) < 3 {
		return 0, false, "", fmt.Errorf("%w: %q", errMalformedReply, s)
	}
	for i := range 3 {
		if s[i] < '0' || s[i] > '9' {
			return 0, false, "", fmt.Errorf("%w: %q", errMalformedReply, s)
		}
	}
	code = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	if code < 200 || code > 599 {
		return 0, false, "", fmt.Errorf("%w: code %d out of range", errMalformedReply, code)
	}
	switch {
	case len(s) == 3:
		return code, true, "", nil
	case s[3] == ' ':
		return code, true, s[4:], nil
	case s[3] == '-':
		return code, false, s[4:], nil
	}
	return 0, false, "", fmt.Errorf("%w: %q", errMalformedReply, s)
}

// hasExtension reports whether an EHLO reply advertises keyword (RFC 5321
// §4.1.1.1: the first line is the greeting, each further line one extension).
func (r reply) hasExtension(keyword string) bool {
	for _, l := range r.lines[min(1, len(r.lines)):] {
		name, _, _ := strings.Cut(l, " ")
		if strings.EqualFold(name, keyword) {
			return true
		}
	}
	return false
}

// session is what one benchmark SMTP session sends. The zero TLS config is never
// used: StartTLS needs TLS set.
type session struct {
	addr     string
	helo     string
	from, to string
	// message is the message text with CRLF line ends, already dot-stuffed and
	// ending in CRLF, without the terminating ".".
	message  []byte
	startTLS bool
	tls      *tls.Config
	// timeout bounds the whole session, so a stalled server cannot hold a
	// worker past the end of its cell.
	timeout time.Duration
}

// errRefused is wrapped by errors for a reply other than the one expected.
var errRefused = errors.New("unexpected reply")

// send runs one complete lockstep session: connect, greeting, EHLO, optionally
// STARTTLS and EHLO again, MAIL, RCPT, DATA, QUIT. Each command is written only
// after the reply to the one before has been read, so no pipelining helps either
// server. It returns once the reply to QUIT has been read and the connection is
// closed.
func (s *session) send(ctx context.Context, d *net.Dialer) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	raw, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", s.addr, err)
	}
	defer raw.Close()
	deadline, _ := ctx.Deadline()
	if err := raw.SetDeadline(deadline); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	// Stop at once if the context is cancelled before the deadline.
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c := newConn(raw)
	if _, err := c.expect(220); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	ehlo, err := c.cmd(250, "EHLO "+s.helo)
	if err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if s.startTLS {
		if !ehlo.hasExtension("STARTTLS") {
			return fmt.Errorf("STARTTLS: not offered in %v", ehlo)
		}
		if _, err := c.cmd(220, "STARTTLS"); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
		if c.r.Buffered() > 0 {
			return errors.New("STARTTLS: server sent data before the handshake")
		}
		tc := tls.Client(raw, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
		c = newConn(tc)
		if _, err := c.cmd(250, "EHLO "+s.helo); err != nil {
			return fmt.Errorf("EHLO after STARTTLS: %w", err)
		}
	}
	if _, err := c.cmd(250, "MAIL FROM:<"+s.from+">"); err != nil {
		return fmt.Errorf("MAIL: %w", err)
	}
	if _, err := c.cmd(250, "RCPT TO:<"+s.to+">"); err != nil {
		return fmt.Errorf("RCPT: %w", err)
	}
	if _, err := c.cmd(354, "DATA"); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := c.w.Write(s.message); err != nil {
		return fmt.Errorf("send message: %w", err)
	}
	if _, err := c.cmd(250, "."); err != nil {
		return fmt.Errorf("end of data: %w", err)
	}
	if _, err := c.cmd(221, "QUIT"); err != nil {
		return fmt.Errorf("QUIT: %w", err)
	}
	return nil
}

// conn is a connection's reading and writing ends. Writes go straight to the
// connection: in lockstep there is never more than one command to send.
type conn struct {
	r *bufio.Reader
	w net.Conn
}

func newConn(c net.Conn) *conn {
	return &conn{r: bufio.NewReaderSize(c, 4096), w: c}
}

func (c *conn) expect(code int) (reply, error) {
	rep, err := readReply(c.r)
	if err != nil {
		return reply{}, err
	}
	if rep.code != code {
		return rep, fmt.Errorf("%w: want %d, got %v", errRefused, code, rep)
	}
	return rep, nil
}

func (c *conn) cmd(code int, line string) (reply, error) {
	if _, err := c.w.Write([]byte(line + "\r\n")); err != nil {
		return reply{}, fmt.Errorf("write command: %w", err)
	}
	return c.expect(code)
}

// dialIdle opens a connection that reads the greeting and, with startTLS, also
// says EHLO, STARTTLS and EHLO again; then it leaves the connection idle for the
// caller to close. It is what a slow or parked client looks like to a server.
func dialIdle(ctx context.Context, d *net.Dialer, addr string, startTLS bool, cfg *tls.Config, helo string) (net.Conn, error) {
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	ok := false
	defer func() {
		if !ok {
			raw.Close()
		}
	}()
	if deadline, has := ctx.Deadline(); has {
		raw.SetDeadline(deadline)
	}
	c := newConn(raw)
	if _, err := c.expect(220); err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	var out net.Conn = raw
	if startTLS {
		if _, err := c.cmd(250, "EHLO "+helo); err != nil {
			return nil, fmt.Errorf("EHLO: %w", err)
		}
		if _, err := c.cmd(220, "STARTTLS"); err != nil {
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		c = newConn(tc)
		if _, err := c.cmd(250, "EHLO "+helo); err != nil {
			return nil, fmt.Errorf("EHLO after STARTTLS: %w", err)
		}
		out = tc
	}
	raw.SetDeadline(time.Time{})
	ok = true
	return out, nil
}

// makeMessage returns a plain-text message of about size bytes (never less), with
// CRLF line ends, as it goes on the wire after DATA: no line starts with a dot, so
// nothing needs stuffing, and it ends in CRLF without the final ".".
func makeMessage(size int, from, to string) []byte {
	var b strings.Builder
	b.Grow(size + 128)
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: mxward acceptance benchmark\r\n", from, to)
	b.WriteString("Date: Mon, 2 Feb 2026 10:00:00 +0000\r\n")
	b.WriteString("Message-ID: <bench.0@client.bench.test>\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\n")
	const line = "The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopqrst\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return []byte(b.String())
}
