package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"mxward/internal/smtp"
)

// Default LMTP timeouts. They follow the spirit of RFC 5321 §4.5.3.2 but are shorter,
// since the server is on the same host or network and a stuck one should not hold a
// queue runner for long.
const (
	DefaultLMTPDialTimeout    = 30 * time.Second
	DefaultLMTPCommandTimeout = 2 * time.Minute
	// DefaultLMTPDataTimeout covers the replies after the final dot, which the server only
	// sends once it has stored the message (and perhaps run filters on it).
	DefaultLMTPDataTimeout = 10 * time.Minute
)

// pipelineWindow is how many commands are sent before their replies are read when the
// server offers PIPELINING. Bounding it avoids the deadlock of RFC 2920 §3.1 where both
// sides block writing because neither reads.
const pipelineWindow = 64

// LMTP delivers to a mail store over LMTP (RFC 2033). It opens one connection per
// delivery.
type LMTP struct {
	network, address string
	hostname         string

	// Timeouts for connecting, for each command's write and reply, and for the replies
	// after the final dot. Writing the body times out when no progress is made for
	// CommandTimeout. Zero means the package default.
	DialTimeout    time.Duration
	CommandTimeout time.Duration
	DataTimeout    time.Duration
}

// NewLMTP returns an LMTP client for addr, "unix:/path/to/socket" or "tcp:host:port".
// hostname is announced in LHLO; "" means "localhost".
func NewLMTP(addr, hostname string) (*LMTP, error) {
	network, address, ok := strings.Cut(addr, ":")
	if !ok || address == "" {
		return nil, fmt.Errorf("lmtp address %q: want unix:/path or tcp:host:port", addr)
	}
	switch network {
	case "unix":
	case "tcp":
		if _, _, err := net.SplitHostPort(address); err != nil {
			return nil, fmt.Errorf("lmtp address %q: %w", addr, err)
		}
	default:
		return nil, fmt.Errorf("lmtp address %q: unknown network %q", addr, network)
	}
	if hostname == "" {
		hostname = "localhost"
	}
	if strings.ContainsAny(hostname, " \t\r\n") {
		return nil, fmt.Errorf("lmtp hostname %q: contains white space", hostname)
	}
	return &LMTP{network: network, address: address, hostname: hostname}, nil
}

func (c *LMTP) String() string { return c.network + ":" + c.address }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Deliver sends the message read from body to the targets in one LMTP transaction and
// returns one Result per target, in order. Each target's result is its own: LMTP answers
// every recipient separately after the data (RFC 2033 §4.2), so one mailbox may refuse
// while the others accept. A failure of the connection defers every target that had no
// answer yet. body is read once, as it is sent.
func (c *LMTP) Deliver(ctx context.Context, env Envelope, body io.Reader, targets []Target) []Result {
	results := make([]Result, len(targets))
	var active []int // targets taking part in the transaction
	for i, t := range targets {
		results[i] = Result{Rcpt: t.Rcpt, Mailbox: t.Mailbox.Address()}
		if err := checkPath(results[i].Mailbox); err != nil || results[i].Mailbox == "@" {
			results[i] = fail(results[i], 501, "5.1.3", false, fmt.Errorf("lmtp recipient %q: invalid address", results[i].Mailbox))
			continue
		}
		active = append(active, i)
	}
	if len(active) == 0 {
		return results
	}
	if err := checkPath(env.From); err != nil {
		for _, i := range active {
			results[i] = fail(results[i], 501, "5.1.7", false, fmt.Errorf("lmtp sender %q: invalid address", env.From))
		}
		return results
	}

	s := &lmtpSession{c: c, results: results, pending: active}
	s.run(ctx, env, body)
	return results
}

// lmtpSession is the state of one delivery.
type lmtpSession struct {
	c       *LMTP
	conn    net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	ext     map[string]string
	results []Result
	pending []int // indexes into results that have no answer yet
}

func (s *lmtpSession) run(ctx context.Context, env Envelope, body io.Reader) {
	d := net.Dialer{Timeout: orDefault(s.c.DialTimeout, DefaultLMTPDialTimeout)}
	conn, err := d.DialContext(ctx, s.c.network, s.c.address)
	if err != nil {
		s.failPending("4.4.1", fmt.Errorf("lmtp connect to %s: %w", s.c, err))
		return
	}
	defer conn.Close()
	// Closing the connection is the one way to interrupt a blocked read or write that a
	// deadline set later cannot undo.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	cmdTimeout := orDefault(s.c.CommandTimeout, DefaultLMTPCommandTimeout)
	s.conn = conn
	s.br = bufio.NewReaderSize(conn, maxReplyLine+96)
	s.bw = bufio.NewWriterSize(&deadlineWriter{conn: conn, timeout: cmdTimeout}, 32<<10)

	wrap := func(what string, err error) error {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("lmtp %s: %s: %w", s.c, what, err)
	}

	rep, err := s.read(cmdTimeout)
	if err != nil {
		s.failPending("4.4.2", wrap("read greeting", err))
		return
	}
	if rep.Code != 220 {
		s.answerPending(rep, "greeting")
		return
	}
	if err := s.send("LHLO " + s.c.hostname); err != nil {
		s.failPending("4.4.2", wrap("send LHLO", err))
		return
	}
	if rep, err = s.read(cmdTimeout); err != nil {
		s.failPending("4.4.2", wrap("read LHLO reply", err))
		return
	}
	if rep.Code != 250 {
		s.answerPending(rep, "LHLO")
		s.quit()
		return
	}
	s.ext = parseExtensions(rep)

	mail := "MAIL FROM:<" + env.From + ">"
	if env.EightBit {
		// Without 8BITMIME on offer the body goes as it is: a mail store on our own side
		// stores octets, and refusing here would bounce mail that would be read fine.
		if _, ok := s.ext["8BITMIME"]; ok {
			mail += " BODY=8BITMIME"
		}
	}
	_, haveUTF8 := s.ext["SMTPUTF8"]
	utf8Addrs := !smtp.IsASCII(env.From) || s.anyNonASCII()
	switch {
	case (env.SMTPUTF8 || utf8Addrs) && haveUTF8:
		mail += " SMTPUTF8"
	case utf8Addrs:
		// RFC 6531 §3.2: addresses cannot be downgraded, so this cannot be delivered here.
		s.answerPending(reply{Code: 553, Enhanced: "5.6.7", Lines: []string{"LMTP server does not support SMTPUTF8"}}, "MAIL")
		s.quit()
		return
	}
	// A message that needs SMTPUTF8 only for its headers goes without the parameter to a
	// store that does not announce it: the store files the octets as they are.

	cmds := make([]string, 0, len(s.pending)+2)
	cmds = append(cmds, mail)
	for _, i := range s.pending {
		cmds = append(cmds, "RCPT TO:<"+s.results[i].Mailbox+">")
	}
	cmds = append(cmds, "DATA")
	window := 1
	if _, ok := s.ext["PIPELINING"]; ok {
		window = pipelineWindow
	}

	rcpts := slices.Clone(s.pending) // s.pending shrinks as targets are answered
	var accepted []int
	for start := 0; start < len(cmds); {
		end := min(start+window, len(cmds))
		if window == 1 && end == len(cmds) && len(accepted) == 0 {
			// Every RCPT was refused: no DATA.
			s.quit()
			return
		}
		for _, cmd := range cmds[start:end] {
			s.bw.WriteString(cmd)
			s.bw.WriteString("\r\n")
		}
		if err := s.bw.Flush(); err != nil {
			s.failPending("4.4.2", wrap("send "+verb(cmds[start]), err))
			return
		}
		for k := start; k < end; k++ {
			rep, err := s.read(cmdTimeout)
			if err != nil {
				s.failPending("4.4.2", wrap("read reply to "+verb(cmds[k]), err))
				return
			}
			switch {
			case k == 0: // MAIL
				if rep.Code/100 != 2 {
					s.answerPending(rep, "MAIL")
					// Replies to pipelined commands may still be on their way; the
					// transaction is over, so the connection is dropped rather than drained.
					return
				}
			case k < len(cmds)-1: // RCPT
				i := rcpts[k-1]
				if rep.Code/100 == 2 {
					accepted = append(accepted, i)
				} else {
					s.answer(i, rep, "RCPT")
				}
			default: // DATA
				if len(accepted) == 0 {
					// Only reachable with pipelining. A server that still said 354 waits for
					// data that cannot go anywhere: hang up.
					return
				}
				if rep.Code != 354 {
					s.answerPending(rep, "DATA")
					s.quit()
					return
				}
			}
		}
		start = end
	}

	dw := &dotWriter{w: s.bw, bol: true}
	if _, err := io.Copy(dw, ctxReader{ctx, body}); err != nil {
		// The final dot must not be sent: the message is incomplete.
		s.failPending("4.4.2", wrap("send message data", err))
		return
	}
	if err := dw.Close(); err != nil {
		s.failPending("4.4.2", wrap("send message data", err))
		return
	}
	if err := s.bw.Flush(); err != nil {
		s.failPending("4.4.2", wrap("send message data", err))
		return
	}
	// One reply per accepted recipient, in RCPT order (RFC 2033 §4.2).
	dataTimeout := orDefault(s.c.DataTimeout, DefaultLMTPDataTimeout)
	for _, i := range accepted {
		rep, err := s.read(dataTimeout)
		if err != nil {
			s.failPending("4.4.2", wrap("read reply after data for "+s.results[i].Mailbox, err))
			return
		}
		s.answer(i, rep, "end of data")
	}
	s.quit()
}

// send writes one command line.
func (s *lmtpSession) send(cmd string) error {
	s.bw.WriteString(cmd)
	s.bw.WriteString("\r\n")
	return s.bw.Flush()
}

// read reads one reply within timeout.
func (s *lmtpSession) read(timeout time.Duration) (reply, error) {
	if err := s.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return reply{}, err
	}
	rep, err := readReply(s.br)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the server hung up while we waited for it
	}
	return rep, err
}

// quit ends the session politely, without caring whether the server listens.
func (s *lmtpSession) quit() {
	if s.send("QUIT") == nil {
		s.read(min(5*time.Second, orDefault(s.c.CommandTimeout, DefaultLMTPCommandTimeout)))
	}
}

// answer records the server's reply for results[i] and takes it off the pending list.
func (s *lmtpSession) answer(i int, rep reply, stage string) {
	r := &s.results[i]
	r.Code, r.Enhanced, r.Text = rep.Code, rep.Enhanced, rep.Text()
	switch rep.Code / 100 {
	case 2:
		r.Temporary, r.Err = false, nil
	case 4:
		r.Temporary = true
	case 5:
		r.Temporary = false
	default:
		r.Temporary = true
		r.Err = fmt.Errorf("lmtp %s: unexpected reply to %s: %s", s.c, stage, rep)
	}
	if stage != "end of data" && rep.Code/100 == 2 {
		// A positive reply that is not the final one cannot mean delivered.
		r.Temporary = true
		r.Err = fmt.Errorf("lmtp %s: unexpected reply to %s: %s", s.c, stage, rep)
	}
	s.pending = deleteIndex(s.pending, i)
}

// answerPending gives every pending target the same reply.
func (s *lmtpSession) answerPending(rep reply, stage string) {
	for _, i := range append([]int(nil), s.pending...) {
		s.answer(i, rep, stage)
	}
}

// failPending defers every pending target because of a local or connection error.
func (s *lmtpSession) failPending(enhanced string, err error) {
	for _, i := range s.pending {
		s.results[i] = fail(s.results[i], 0, enhanced, true, err)
	}
	s.pending = nil
}

func (s *lmtpSession) anyNonASCII() bool {
	for _, i := range s.pending {
		if !smtp.IsASCII(s.results[i].Mailbox) {
			return true
		}
	}
	return false
}

func deleteIndex(list []int, v int) []int {
	for k, x := range list {
		if x == v {
			return append(list[:k], list[k+1:]...)
		}
	}
	return list
}

// parseExtensions returns the LHLO keywords, upper-cased, with their parameters.
func parseExtensions(rep reply) map[string]string {
	ext := make(map[string]string)
	for _, l := range rep.Lines[1:] {
		kw, params, _ := strings.Cut(l, " ")
		if kw != "" {
			ext[strings.ToUpper(kw)] = params
		}
	}
	return ext
}

// verb is a command's first word, for error messages.
func verb(cmd string) string {
	v, _, _ := strings.Cut(cmd, " ")
	return v
}

// checkPath rejects addresses that would break the command line they are put in: control
// characters (CR LF above all), angle brackets, invalid UTF-8.
func checkPath(addr string) error {
	if hasControl(addr) || strings.ContainsAny(addr, "<>") {
		return errors.New("invalid address")
	}
	return nil
}

// deadlineWriter gives every write to conn its own deadline, so a body of any size can be
// sent as long as the server keeps taking it.
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if err := d.conn.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.conn.Write(p)
}

// dotWriter encodes message data for DATA (RFC 5321 §4.5.2): lines are ended with CRLF
// (a bare LF becomes CRLF) and a line starting with "." gets another one in front.
// Close ends the data with the final ".".
type dotWriter struct {
	w      io.Writer
	bol    bool // at the beginning of a line
	lastCR bool // the last byte written was CR
}

func (d *dotWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if d.bol && p[0] == '.' {
			if _, err := d.w.Write([]byte{'.'}); err != nil {
				return 0, err
			}
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if _, err := d.w.Write(p); err != nil {
				return 0, err
			}
			d.bol, d.lastCR = false, p[len(p)-1] == '\r'
			break
		}
		cr := d.lastCR
		if i > 0 {
			cr = p[i-1] == '\r'
			if _, err := d.w.Write(p[:i]); err != nil {
				return 0, err
			}
		}
		eol := []byte("\r\n")
		if cr {
			eol = eol[1:]
		}
		if _, err := d.w.Write(eol); err != nil {
			return 0, err
		}
		d.bol, d.lastCR = true, false
		p = p[i+1:]
	}
	return n, nil
}

// Close completes an unterminated last line and writes the final dot.
func (d *dotWriter) Close() error {
	end := ".\r\n"
	switch {
	case d.lastCR:
		end = "\n.\r\n"
	case !d.bol:
		end = "\r\n.\r\n"
	}
	_, err := io.WriteString(d.w, end)
	return err
}
