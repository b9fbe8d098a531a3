package smtpserver

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"mxward/internal/smtp"
	"mxward/internal/spool"
)

// Buffer sizes are small on purpose: an idle session should cost little memory (the goal is
// well under 64 KiB per idle connection). Long lines are handled in segments.
const (
	readBufSize  = 4096
	writeBufSize = 1024
)

// session is one SMTP connection.
type session struct {
	srv  *Server
	cfg  *Config
	l    Listener
	conn net.Conn // current connection (a *tls.Conn after STARTTLS)
	raw  net.Conn // the accepted socket
	br   *bufio.Reader
	bw   *bufio.Writer
	ip   netip.Addr
	id   string
	log  *slog.Logger

	idle        atomic.Bool   // waiting for a command: Shutdown may wake it
	readTimeout time.Duration // applied afresh before every read from the socket

	tls      *tls.ConnectionState
	helo     string
	esmtp    bool
	authUser string
	errors   int
	peerUID  int // for RoleLocal: the injecting user's uid, -1 if unknown

	tx *transaction
}

// transaction is the state between MAIL and the end of DATA/BDAT LAST.
type transaction struct {
	env      spool.Envelope
	seen     map[string]bool // expanded recipient addresses already added
	rcptSeen int             // RCPT commands accepted (the limit counts these)
	// BDAT state
	w       spool.Writer
	checker *smtp.LineChecker
}

func newSession(srv *Server, cfg *Config, conn net.Conn, l Listener, ip netip.Addr) *session {
	var b [5]byte
	rand.Read(b[:])
	id := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	s := &session{
		srv: srv, cfg: cfg, l: l, conn: conn, raw: conn, ip: ip, id: id, peerUID: -1,
	}
	s.log = srv.log.With("session", id, "listener", l.Name, "remote_ip", s.remoteString())
	return s
}

func (s *session) remoteString() string {
	if s.ip.IsValid() {
		return s.ip.String()
	}
	return "local"
}

// wakeIfIdle interrupts a session that waits for its next command, so that it notices
// the shutdown. Sessions in the middle of a transaction are left alone.
func (s *session) wakeIfIdle() {
	if s.idle.Load() {
		s.raw.SetReadDeadline(time.Unix(1, 0))
	}
}

func (s *session) run() {
	defer s.conn.Close()
	start := s.srv.now()
	s.log.Info("connect")
	defer func() { s.log.Info("disconnect", "duration", s.srv.now().Sub(start).Round(time.Millisecond)) }()

	if s.l.Role == RoleLocal {
		s.peerUID = peerUID(s.conn)
	}
	if s.l.TLS == TLSImplicit {
		if s.cfg.TLS == nil {
			s.log.Error("implicit TLS listener without a certificate")
			return
		}
		tc := tls.Server(s.conn, s.cfg.TLS)
		tc.SetDeadline(time.Now().Add(s.cfg.CommandTimeout))
		if err := tc.Handshake(); err != nil {
			s.log.Info("tls handshake failed", "error", err)
			return
		}
		tc.SetDeadline(time.Time{})
		st := tc.ConnectionState()
		s.tls = &st
		s.conn = tc
	}
	s.br = bufio.NewReaderSize(deadlineReader{s}, readBufSize)
	s.bw = bufio.NewWriterSize(s.conn, writeBufSize)

	s.reply(smtp.R(220, "", s.cfg.Hostname+" ESMTP mxward"))
	s.flush()
	for s.next() {
	}
	s.abortTx()
}

// reply queues a reply; it is sent when the client has nothing more pipelined (RFC 2920).
func (s *session) reply(r smtp.Reply) {
	s.conn.SetWriteDeadline(time.Now().Add(s.cfg.CommandTimeout))
	s.bw.WriteString(r.Format())
	if r.Code >= 500 {
		s.errors++
	}
}

func (s *session) flush() error {
	s.conn.SetWriteDeadline(time.Now().Add(s.cfg.CommandTimeout))
	return s.bw.Flush()
}

var errLineTooLong = errors.New("line too long")

// readLine reads one command line without its line end. A line over the limit is consumed
// entirely and reported as errLineTooLong.
func (s *session) readLine() (string, error) {
	var line []byte
	tooLong := false
	for {
		seg, err := s.br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
		if !tooLong {
			if len(line)+len(seg) > s.cfg.MaxCommandLength {
				tooLong, line = true, nil
			} else {
				line = append(line, seg...)
			}
		}
		if err == nil {
			break
		}
	}
	if tooLong {
		return "", errLineTooLong
	}
	l := string(line)
	l = strings.TrimSuffix(l, "\n")
	l = strings.TrimSuffix(l, "\r")
	return l, nil
}

// next reads and handles one command; it returns false when the session is over.
func (s *session) next() bool {
	if s.errors >= s.cfg.MaxErrors {
		s.reply(smtp.R(421, "4.7.0", s.cfg.Hostname+" Too many errors, closing connection"))
		s.flush()
		s.log.Warn("too many errors", "errors", s.errors)
		return false
	}
	if s.br.Buffered() == 0 {
		if err := s.flush(); err != nil {
			return false
		}
	}
	s.readTimeout = s.cfg.CommandTimeout
	s.idle.Store(true)
	if s.srv.shutting.Load() && s.tx == nil {
		s.idle.Store(false)
		s.reply(smtp.R(421, "4.3.2", s.cfg.Hostname+" Service shutting down"))
		s.flush()
		return false
	}
	line, err := s.readLine()
	s.idle.Store(false)
	if err != nil {
		switch {
		case errors.Is(err, errLineTooLong):
			s.reply(smtp.R(500, "5.5.2", "Line too long"))
			return true
		case isTimeout(err) && s.srv.shutting.Load():
			s.reply(smtp.R(421, "4.3.2", s.cfg.Hostname+" Service shutting down"))
		case isTimeout(err):
			s.reply(smtp.R(421, "4.4.2", s.cfg.Hostname+" Timeout, closing connection"))
			s.log.Info("command timeout")
		case errors.Is(err, io.EOF):
			s.log.Debug("client closed connection")
		default:
			s.log.Info("read error", "error", err)
		}
		s.flush()
		return false
	}
	cmd, err := smtp.ParseCommand(line)
	if err != nil {
		if errors.Is(err, smtp.ErrUnknownCommand) {
			s.reply(smtp.R(500, "5.5.2", "Command not recognized"))
		} else {
			s.reply(smtp.R(501, "5.5.2", "Syntax error: "+err.Error()))
		}
		return true
	}
	return s.handle(cmd)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *session) handle(cmd smtp.Command) bool {
	switch cmd.Verb {
	case smtp.HELO, smtp.EHLO:
		s.cmdHello(cmd)
	case smtp.MAIL:
		s.cmdMail(cmd.Arg)
	case smtp.RCPT:
		s.cmdRcpt(cmd.Arg)
	case smtp.DATA:
		return s.cmdData(cmd.Arg)
	case smtp.BDAT:
		return s.cmdBdat(cmd.Arg)
	case smtp.RSET:
		if cmd.Arg != "" {
			s.reply(smtp.R(501, "5.5.4", "RSET takes no arguments"))
			break
		}
		s.abortTx()
		s.reply(smtp.R(250, "2.0.0", "Ok"))
	case smtp.NOOP:
		s.reply(smtp.R(250, "2.0.0", "Ok"))
	case smtp.QUIT:
		s.reply(smtp.R(221, "2.0.0", s.cfg.Hostname+" Bye"))
		s.flush()
		return false
	case smtp.VRFY, smtp.EXPN:
		// Answering would let anyone enumerate mailboxes (RFC 5321 §7.3).
		s.reply(smtp.R(252, "2.5.0", "Cannot verify the user, but will accept the message and attempt delivery"))
	case smtp.HELP:
		s.reply(smtp.R(214, "2.0.0", "See RFC 5321; this is mxward"))
	case smtp.STARTTLS:
		return s.cmdStartTLS(cmd.Arg)
	case smtp.AUTH:
		return s.cmdAuth(cmd.Arg)
	default:
		s.reply(smtp.R(500, "5.5.2", "Command not recognized"))
	}
	return true
}

func (s *session) cmdHello(cmd smtp.Command) {
	name := strings.TrimSpace(cmd.Arg)
	if name == "" || strings.ContainsAny(name, " \t") {
		s.reply(smtp.R(501, "5.5.4", "Syntax: "+string(cmd.Verb)+" hostname"))
		return
	}
	s.abortTx()
	s.helo = name
	s.esmtp = cmd.Verb == smtp.EHLO
	if !s.esmtp {
		s.reply(smtp.R(250, "", s.cfg.Hostname))
		return
	}
	lines := []string{
		s.cfg.Hostname + " greets " + name,
		"PIPELINING",
		"SIZE " + strconv.FormatInt(s.cfg.MaxMessageSize, 10),
		"8BITMIME",
		"SMTPUTF8",
		"ENHANCEDSTATUSCODES",
		"DSN",
		"CHUNKING",
	}
	if s.tls == nil && s.l.TLS == TLSStartTLS && s.cfg.TLS != nil {
		lines = append(lines, "STARTTLS")
	}
	if s.l.Role == RoleSubmission && s.tls != nil && s.authUser == "" {
		lines = append(lines, "AUTH PLAIN LOGIN")
	}
	s.reply(smtp.Reply{Code: 250, Lines: lines})
}

// abortTx drops the current transaction and any partial body.
func (s *session) abortTx() {
	if s.tx != nil && s.tx.w != nil {
		s.tx.w.Abort()
	}
	s.tx = nil
}

func (s *session) cmdMail(arg string) {
	switch {
	case s.helo == "":
		s.reply(smtp.R(503, "5.5.1", "Send EHLO or HELO first"))
		return
	case s.tx != nil:
		s.reply(smtp.R(503, "5.5.1", "Nested MAIL command"))
		return
	case s.l.Role == RoleSubmission && s.authUser == "":
		s.reply(smtp.R(530, "5.7.0", "Authentication required"))
		return
	}
	path, params, err := smtp.ParsePathArg(arg, "FROM:")
	if err != nil {
		s.reply(smtp.R(501, "5.5.4", "Syntax: MAIL FROM:<address> [parameters]"))
		return
	}
	env := spool.Envelope{BodyType: spool.Body7Bit}
	for _, p := range params {
		switch p.Key {
		case "SIZE":
			n, err := strconv.ParseInt(p.Value, 10, 64)
			if err != nil || n < 0 {
				s.reply(smtp.R(501, "5.5.4", "Bad SIZE value"))
				return
			}
			if n > s.cfg.MaxMessageSize {
				s.reply(smtp.R(552, "5.3.4", fmt.Sprintf("Message size exceeds the limit of %d bytes", s.cfg.MaxMessageSize)))
				return
			}
		case "BODY":
			switch strings.ToUpper(p.Value) {
			case "7BIT":
				env.BodyType = spool.Body7Bit
			case "8BITMIME":
				env.BodyType = spool.Body8BitMIME
			default:
				s.reply(smtp.R(501, "5.5.4", "Unsupported BODY value"))
				return
			}
		case "SMTPUTF8":
			if !p.Bare {
				s.reply(smtp.R(501, "5.5.4", "SMTPUTF8 takes no value"))
				return
			}
			env.SMTPUTF8 = true
		case "RET":
			v := strings.ToUpper(p.Value)
			if v != "FULL" && v != "HDRS" || env.RET != "" {
				s.reply(smtp.R(501, "5.5.4", "Bad RET parameter"))
				return
			}
			env.RET = v
		case "ENVID":
			v, err := smtp.DecodeXtext(p.Value)
			if err != nil || v == "" || len(v) > 100 || env.EnvID != "" {
				s.reply(smtp.R(501, "5.5.4", "Bad ENVID parameter"))
				return
			}
			env.EnvID = v
		case "AUTH":
			// RFC 4954 §5: accepted and not passed on, since we do not trust it.
		default:
			s.reply(smtp.R(555, "5.5.4", "Unsupported parameter "+p.Key))
			return
		}
	}
	if path != "" {
		if _, err := smtp.ParseAddress(path, env.SMTPUTF8); err != nil {
			if !env.SMTPUTF8 && !smtp.IsASCII(path) {
				s.reply(smtp.R(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"))
				return
			}
			s.reply(smtp.R(501, "5.1.7", "Bad sender address syntax"))
			return
		}
	}
	env.From = path
	s.tx = &transaction{env: env, seen: make(map[string]bool)}
	s.reply(smtp.R(250, "2.1.0", "Ok"))
}

func (s *session) cmdRcpt(arg string) {
	if s.tx == nil {
		s.reply(smtp.R(503, "5.5.1", "Need MAIL before RCPT"))
		return
	}
	if s.tx.w != nil {
		s.reply(smtp.R(503, "5.5.1", "RCPT not allowed during BDAT"))
		return
	}
	path, params, err := smtp.ParsePathArg(arg, "TO:")
	if err != nil {
		s.reply(smtp.R(501, "5.5.4", "Syntax: RCPT TO:<address> [parameters]"))
		return
	}
	if strings.EqualFold(path, "postmaster") {
		path = s.cfg.Recipients.Postmaster()
		if path == "" {
			s.reply(smtp.R(550, "5.1.1", "No postmaster here"))
			return
		}
	}
	addr, err := smtp.ParseAddress(path, s.tx.env.SMTPUTF8)
	if err != nil {
		if !s.tx.env.SMTPUTF8 && !smtp.IsASCII(path) {
			s.reply(smtp.R(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"))
			return
		}
		s.reply(smtp.R(501, "5.1.3", "Bad recipient address syntax"))
		return
	}
	r := spool.Recipient{Addr: path}
	for _, p := range params {
		switch p.Key {
		case "NOTIFY":
			v := strings.ToUpper(p.Value)
			if !smtp.ValidNotify(v) || r.Notify != "" {
				s.reply(smtp.R(501, "5.5.4", "Bad NOTIFY parameter"))
				return
			}
			r.Notify = v
		case "ORCPT":
			typ, raw, ok := strings.Cut(p.Value, ";")
			v, err := smtp.DecodeXtext(raw)
			if !ok || typ == "" || err != nil || v == "" || r.ORCPT != "" {
				s.reply(smtp.R(501, "5.5.4", "Bad ORCPT parameter"))
				return
			}
			r.ORCPT = typ + ";" + v
		default:
			s.reply(smtp.R(555, "5.5.4", "Unsupported parameter "+p.Key))
			return
		}
	}
	if s.tx.rcptSeen >= s.cfg.MaxRecipients {
		// RFC 5321 §4.5.3.1.10: 452 and the client retries the rest later.
		s.reply(smtp.R(452, "4.5.3", "Too many recipients"))
		return
	}

	var rcpts []spool.Recipient
	domain := strings.ToLower(addr.Domain)
	switch {
	case !addr.IsLiteral() && s.cfg.Recipients.IsLocalDomain(domain):
		local, remote, err := s.cfg.Recipients.Expand(path)
		if errors.Is(err, ErrNoSuchUser) {
			s.reply(smtp.R(550, "5.1.1", "No such user here"))
			return
		}
		if err != nil {
			s.log.Error("recipient expansion failed", "rcpt", path, "error", err)
			s.reply(smtp.R(451, "4.3.0", "Temporary failure resolving the recipient"))
			return
		}
		orcpt := r.ORCPT
		if orcpt == "" {
			orcpt = "rfc822;" + path
		}
		for _, a := range local {
			rcpts = append(rcpts, spool.Recipient{Addr: a, Notify: r.Notify, ORCPT: orcpt, Local: true})
		}
		for _, a := range remote {
			rcpts = append(rcpts, spool.Recipient{Addr: a, Notify: r.Notify, ORCPT: orcpt})
		}
	case s.mayRelay():
		rcpts = []spool.Recipient{r}
	default:
		s.log.Warn("relay denied", "rcpt", path, "from", s.tx.env.From)
		s.reply(smtp.R(554, "5.7.1", "Relay access denied"))
		return
	}
	for _, rc := range rcpts {
		key := strings.ToLower(rc.Addr)
		if s.tx.seen[key] {
			continue
		}
		s.tx.seen[key] = true
		s.tx.env.Recipients = append(s.tx.env.Recipients, rc)
	}
	s.tx.rcptSeen++
	s.reply(smtp.R(250, "2.1.5", "Ok"))
}

// mayRelay reports whether this client may send to non-local domains.
func (s *session) mayRelay() bool {
	switch s.l.Role {
	case RoleLocal:
		return true
	case RoleSubmission:
		return s.authUser != ""
	default:
		return s.authUser != "" || s.cfg.trusted(s.ip)
	}
}

func (s *session) cmdStartTLS(arg string) bool {
	switch {
	case arg != "":
		s.reply(smtp.R(501, "5.5.4", "STARTTLS takes no arguments"))
		return true
	case s.tls != nil:
		s.reply(smtp.R(503, "5.5.1", "TLS already active"))
		return true
	case s.l.TLS != TLSStartTLS || s.cfg.TLS == nil:
		s.reply(smtp.R(502, "5.5.1", "STARTTLS not available"))
		return true
	}
	s.reply(smtp.R(220, "2.0.0", "Ready to start TLS"))
	if err := s.flush(); err != nil {
		return false
	}
	// ST-07 (CVE-2011-0411): anything the client pipelined after STARTTLS arrived in
	// plaintext and must never be taken as a command of the TLS session. The TLS
	// connection is built on the raw socket and the old reader, with whatever it holds,
	// is dropped.
	if n := s.br.Buffered(); n > 0 {
		s.log.Warn("discarding plaintext pipelined after STARTTLS", "bytes", n)
	}
	tc := tls.Server(s.raw, s.cfg.TLS)
	tc.SetDeadline(time.Now().Add(s.cfg.CommandTimeout))
	if err := tc.Handshake(); err != nil {
		s.log.Info("tls handshake failed", "error", err)
		return false
	}
	tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	s.tls = &st
	s.conn = tc
	s.br = bufio.NewReaderSize(deadlineReader{s}, readBufSize)
	s.bw = bufio.NewWriterSize(tc, writeBufSize)
	// RFC 3207 §4.2: back to the state after the greeting.
	s.abortTx()
	s.helo, s.esmtp = "", false
	s.log.Info("tls established", "tls_version", tls.VersionName(st.Version), "cipher", tls.CipherSuiteName(st.CipherSuite))
	return true
}

// commit makes the transaction's message durable and answers for it. It is the only place
// that answers 250 for a message, and it does so only after the spool's commit returned.
func (s *session) commit(ctx context.Context) {
	tx := s.tx
	s.tx = nil
	id, err := tx.w.Commit(ctx, tx.env)
	tx.w = nil
	if err != nil {
		s.log.Error("queue commit failed", "error", err)
		s.reply(smtp.R(451, "4.3.0", "Temporary failure storing the message, try again later"))
		return
	}
	s.log.Info("queued", "queue_id", string(id), "from", tx.env.From, "rcpts", len(tx.env.Recipients),
		"size", tx.checker.Size(), "tls", s.tlsVersion(), "auth_user", s.authUser)
	s.reply(smtp.R(250, "2.0.0", "Ok: queued as "+string(id)))
	if s.cfg.Queued != nil {
		s.cfg.Queued(id, &tx.env)
	}
}

func (s *session) tlsVersion() string {
	if s.tls == nil {
		return "none"
	}
	return tls.VersionName(s.tls.Version)
}

// deadlineReader renews the read deadline before every read, so a timeout limits the
// silence between packets (RFC 5321 §4.5.3.2), not the length of a transfer.
type deadlineReader struct{ s *session }

var errShuttingDown = &timeoutError{}

type timeoutError struct{}

func (*timeoutError) Error() string   { return "server shutting down" }
func (*timeoutError) Timeout() bool   { return true }
func (*timeoutError) Temporary() bool { return true }

func (d deadlineReader) Read(p []byte) (int, error) {
	s := d.s
	s.raw.SetReadDeadline(time.Now().Add(s.readTimeout))
	// Shutdown may have poked the old deadline just before it was renewed.
	if s.idle.Load() && s.srv.shutting.Load() {
		return 0, errShuttingDown
	}
	return s.conn.Read(p)
}
