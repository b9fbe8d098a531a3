package inject

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mxward/internal/smtp"
)

// Timeouts for each step of the SMTP dialogue, after RFC 5321 §4.5.3.2. The reply to
// the final dot gets longer because the server answers it only once the message is
// safely on disk.
const (
	commandTimeout = 5 * time.Minute
	finalTimeout   = 10 * time.Minute
	// quitTimeout is short: by the time QUIT is sent the outcome is settled, and a
	// cron job should not hang on a server that fails to say goodbye.
	quitTimeout = 10 * time.Second
)

// Limits on server replies, so that a broken peer cannot make the client buffer
// without bound.
const (
	maxReplyLine  = 4096
	maxReplyLines = 100
)

// Send delivers the message in body to the mxward server listening on the unix socket
// at socketPath, and returns the queue ID from the server's final reply.
//
// body should be CRLF text as ReadMessage writes it; LF and lone CR line ends are
// converted anyway. Send dot-stuffs it for DATA. If reading body fails, the connection
// is dropped before the final dot so that no truncated message is queued.
//
// Every reply is checked: a refusal of the session, MAIL or DATA is a *ReplyError naming
// the command. Recipients are refused one by one: if some are accepted, the message is
// queued for those and Send returns the queue ID together with a *RecipientError
// listing the others; if none is, it returns "" and the *RecipientError. A missing
// socket or refused connection is ErrServerNotRunning. Each read and write has a
// timeout, and cancelling ctx aborts the session.
func Send(ctx context.Context, socketPath string, env Envelope, body io.Reader) (string, error) {
	return send(ctx, socketPath, env, body, commandTimeout, finalTimeout)
}

func send(ctx context.Context, socketPath string, env Envelope, body io.Reader, timeout, final time.Duration) (string, error) {
	if err := checkEnvelope(env); err != nil {
		return "", err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socketPath)
	if err != nil {
		var errno syscall.Errno
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			if errors.As(err, &errno) {
				return "", fmt.Errorf("connect to %s: %w: %v", socketPath, ErrServerNotRunning, errno)
			}
			return "", fmt.Errorf("connect to %s: %w", socketPath, ErrServerNotRunning)
		}
		return "", fmt.Errorf("connect to %s: %w", socketPath, err)
	}
	defer conn.Close()
	// Closing the connection is the one way to interrupt a blocked read or write
	// that a later deadline cannot undo.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	c := &client{
		conn:    conn,
		r:       newReplyReader(conn),
		w:       bufio.NewWriter(deadlineWriter{conn: conn, timeout: timeout}),
		timeout: timeout,
	}
	id, err := c.transaction(env, body, final)
	if err != nil && ctx.Err() != nil {
		var re *RecipientError
		if !errors.As(err, &re) {
			return "", fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
	}
	return id, err
}

// checkEnvelope refuses addresses that would corrupt the SMTP dialogue.
func checkEnvelope(env Envelope) error {
	if len(env.Recipients) == 0 {
		return ErrNoRecipients
	}
	if env.Sender != "" {
		if _, err := smtp.ParseAddress(env.Sender, true); err != nil {
			return &AddressError{Source: "envelope sender", Value: env.Sender, Err: err}
		}
	}
	for _, r := range env.Recipients {
		if _, err := smtp.ParseAddress(r, true); err != nil {
			return &AddressError{Source: "envelope recipient", Value: r, Err: err}
		}
	}
	if env.Notify != "" {
		if n, err := parseNotify(env.Notify); err != nil || n != env.Notify {
			return fmt.Errorf("bad NOTIFY value %q in envelope", env.Notify)
		}
	}
	switch env.Ret {
	case "", "FULL", "HDRS":
	default:
		return fmt.Errorf("bad RET value %q in envelope", env.Ret)
	}
	switch env.BodyType {
	case "", "7BIT", "8BITMIME":
	default:
		return fmt.Errorf("bad BODY value %q in envelope", env.BodyType)
	}
	return nil
}

type client struct {
	conn    net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	timeout time.Duration
	ext     map[string]string // EHLO keywords (upper case) and their parameters
}

type reply struct {
	code  int
	lines []string
}

func (r reply) text() string { return strings.Join(r.lines, " ") }

func (r reply) err(command string) *ReplyError {
	return &ReplyError{Command: command, Code: r.code, Text: r.text()}
}

func (c *client) transaction(env Envelope, body io.Reader, final time.Duration) (string, error) {
	rep, err := c.readReply("greeting", c.timeout)
	if err != nil {
		return "", err
	}
	if rep.code != 220 {
		return "", rep.err("greeting")
	}
	if err := c.hello(); err != nil {
		return "", err
	}

	mail := "MAIL FROM:<" + env.Sender + ">"
	if err := c.checkMail(mail, env); err != nil {
		c.quit()
		return "", err
	}

	var rejected []*ReplyError
	accepted := 0
	for _, r := range env.Recipients {
		cmd := "RCPT TO:<" + r + ">"
		params := ""
		if env.Notify != "" && c.has("DSN") {
			params = " NOTIFY=" + env.Notify
		}
		rep, err := c.cmd(cmd, params)
		if err != nil {
			return "", err
		}
		switch {
		case rep.code/100 == 2:
			accepted++
		case rep.code == 421: // the server is closing the session
			return "", rep.err(cmd)
		default:
			rejected = append(rejected, rep.err(cmd))
		}
	}
	if accepted == 0 {
		c.quit()
		return "", &RecipientError{Rejected: rejected}
	}

	rep, err = c.cmd("DATA", "")
	if err != nil {
		return "", err
	}
	if rep.code != 354 {
		c.quit()
		return "", rep.err("DATA")
	}
	src := &errReader{r: body}
	dw := textproto.NewWriter(c.w).DotWriter()
	_, err = io.Copy(dw, &normalizer{r: bufio.NewReader(src), bol: true})
	if src.err != nil {
		// Hang up without the final dot: the server discards the partial message.
		c.conn.Close()
		return "", &ioError{op: "read message", err: src.err}
	}
	if err == nil {
		err = dw.Close()
	}
	if err != nil {
		return "", fmt.Errorf("send message data: %w", err)
	}
	rep, err = c.readReply("end of data", final)
	if err != nil {
		return "", err
	}
	if rep.code != 250 {
		c.quit()
		return "", rep.err("end of data")
	}
	c.quit()
	id := queueID(rep.text())
	if len(rejected) > 0 {
		return id, &RecipientError{Rejected: rejected}
	}
	return id, nil
}

// hello sends EHLO, falling back to HELO if the server does not speak ESMTP, and
// records the extensions.
func (c *client) hello() error {
	c.ext = map[string]string{}
	rep, err := c.cmd("EHLO localhost", "")
	if err != nil {
		return err
	}
	if rep.code == 250 {
		for _, l := range rep.lines[1:] {
			k, v, _ := strings.Cut(l, " ")
			c.ext[strings.ToUpper(k)] = v
		}
		return nil
	}
	if rep.code < 500 {
		return rep.err("EHLO localhost")
	}
	rep, err = c.cmd("HELO localhost", "")
	if err != nil {
		return err
	}
	if rep.code != 250 {
		return rep.err("HELO localhost")
	}
	return nil
}

func (c *client) has(ext string) bool {
	_, ok := c.ext[ext]
	return ok
}

// checkMail sends MAIL FROM with the parameters the envelope and the server's
// extensions call for. DSN and BODY requests are dropped for a server that does not
// offer them, as sendmail does, since the message is deliverable without them;
// SMTPUTF8 is not optional.
func (c *client) checkMail(mail string, env Envelope) error {
	var p strings.Builder
	if env.Size > 0 && c.has("SIZE") {
		p.WriteString(" SIZE=" + strconv.FormatInt(env.Size, 10))
	}
	if env.BodyType != "" && c.has("8BITMIME") {
		p.WriteString(" BODY=" + env.BodyType)
	}
	if env.SMTPUTF8 {
		if !c.has("SMTPUTF8") {
			return fmt.Errorf("%s: the server does not offer SMTPUTF8, which non-ASCII addresses need", mail)
		}
		p.WriteString(" SMTPUTF8")
	}
	if c.has("DSN") {
		if env.Ret != "" {
			p.WriteString(" RET=" + env.Ret)
		}
		if env.EnvID != "" {
			p.WriteString(" ENVID=" + smtp.EncodeXtext(env.EnvID))
		}
	}
	rep, err := c.cmd(mail, p.String())
	if err != nil {
		return err
	}
	if rep.code != 250 {
		return rep.err(mail)
	}
	return nil
}

// cmd sends one command (cmd followed by params) and reads its reply. Errors name cmd
// without the parameters.
func (c *client) cmd(cmd, params string) (reply, error) {
	c.w.WriteString(cmd + params + "\r\n")
	if err := c.w.Flush(); err != nil {
		return reply{}, fmt.Errorf("send %s: %w", cmd, err)
	}
	return c.readReply(cmd, c.timeout)
}

// quit ends the session politely. Its outcome does not matter: by now the message is
// either queued or refused.
func (c *client) quit() {
	c.w.WriteString("QUIT\r\n")
	if c.w.Flush() == nil {
		c.readReply("QUIT", min(c.timeout, quitTimeout))
	}
}

// readReply reads one possibly multi-line reply.
func (c *client) readReply(cmd string, timeout time.Duration) (reply, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	var rep reply
	for {
		line, err := c.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the server hung up before replying
			}
			return reply{}, fmt.Errorf("read reply to %s: %w", cmd, err)
		}
		code, err := strconv.Atoi(line[:min(3, len(line))])
		if len(line) < 3 || err != nil || code < 200 || code > 599 ||
			len(line) > 3 && line[3] != ' ' && line[3] != '-' ||
			len(rep.lines) > 0 && code != rep.code {
			return reply{}, fmt.Errorf("read reply to %s: malformed reply line %q", cmd, line)
		}
		rep.code = code
		text := ""
		if len(line) > 4 {
			text = line[4:]
		}
		rep.lines = append(rep.lines, text)
		if len(line) == 3 || line[3] == ' ' {
			return rep, nil
		}
		if len(rep.lines) >= maxReplyLines {
			return reply{}, fmt.Errorf("read reply to %s: more than %d lines", cmd, maxReplyLines)
		}
	}
}

// newReplyReader buffers server replies; its size bounds the length of a reply line.
func newReplyReader(r io.Reader) *bufio.Reader {
	return bufio.NewReaderSize(r, maxReplyLine)
}

// readLine reads one reply line without its line end.
func (c *client) readLine() (string, error) {
	line, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("reply line longer than %d bytes", maxReplyLine)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// queueID extracts the ID from a final reply such as "2.0.0 Ok: queued as 0123abc".
func queueID(text string) string {
	_, after, ok := strings.Cut(text, "queued as ")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(strings.TrimSpace(after), " ")
	return id
}

// deadlineWriter gives every write its own timeout, so a large message may take as
// long as it needs while a stalled server is still detected.
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.conn.Write(p)
}

// errReader records the error from its reader, to tell failures reading the message
// from failures writing it to the server.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}
