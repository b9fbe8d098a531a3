package smtpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"mxward/internal/smtp"
)

// cmdData handles DATA (RFC 5321 §4.1.1.4).
func (s *session) cmdData(arg string) bool {
	switch {
	case arg != "":
		s.reply(smtp.R(501, "5.5.4", "DATA takes no arguments"))
		return true
	case s.tx == nil:
		s.reply(smtp.R(503, "5.5.1", "Need MAIL and RCPT before DATA"))
		return true
	case s.tx.w != nil:
		s.reply(smtp.R(503, "5.5.1", "DATA not allowed after BDAT"))
		return true
	case len(s.tx.env.Recipients) == 0:
		s.reply(smtp.R(554, "5.5.1", "No valid recipients"))
		return true
	}
	ctx := context.Background()
	if err := s.beginBody(ctx); err != nil {
		s.reply(smtp.R(451, "4.3.0", "Temporary failure storing the message, try again later"))
		return true
	}
	s.reply(smtp.R(354, "", "End data with <CR><LF>.<CR><LF>"))
	if err := s.flush(); err != nil {
		return false
	}
	s.readTimeout = s.cfg.DataTimeout
	err := smtp.ReadData(s.br, s.tx.checker)
	switch {
	case err == nil:
		s.commit(ctx)
	case isContentError(err):
		s.rejectContent(err)
	default:
		s.log.Info("message data not received", "error", err)
		s.abortTx()
		if isTimeout(err) {
			s.reply(smtp.R(421, "4.4.2", s.cfg.Hostname+" Timeout waiting for data, closing connection"))
			s.flush()
		}
		return false
	}
	return true
}

// beginBody opens the spool writer and writes our Received header first.
func (s *session) beginBody(ctx context.Context) error {
	w, err := s.srv.store.Create(ctx)
	if err != nil {
		s.log.Error("queue create failed", "error", err)
		return err
	}
	s.tx.env.ReceivedAt = s.srv.now()
	s.tx.env.Helo = s.helo
	s.tx.env.AuthUser = s.authUser
	s.tx.env.Listener = s.l.Name
	s.tx.env.ClientIP = s.remoteString()
	if _, err := io.WriteString(w, s.receivedHeader()); err != nil {
		w.Abort()
		s.log.Error("queue write failed", "error", err)
		return err
	}
	s.tx.w = w
	s.tx.checker = &smtp.LineChecker{W: w, MaxLine: s.cfg.MaxLineLength, MaxSize: s.cfg.MaxMessageSize}
	return nil
}

func isContentError(err error) bool {
	return errors.Is(err, smtp.ErrBareLF) || errors.Is(err, smtp.ErrBareCR) ||
		errors.Is(err, smtp.ErrLineTooLong) || errors.Is(err, smtp.ErrTooBig)
}

// rejectContent answers a content violation and drops the transaction: nothing is stored.
func (s *session) rejectContent(err error) {
	s.log.Warn("message rejected", "reason", err.Error(), "from", s.tx.env.From)
	s.abortTx()
	switch {
	case errors.Is(err, smtp.ErrTooBig):
		s.reply(smtp.R(552, "5.3.4", fmt.Sprintf("Message size exceeds the limit of %d bytes", s.cfg.MaxMessageSize)))
	case errors.Is(err, smtp.ErrLineTooLong):
		s.reply(smtp.R(554, "5.6.0", fmt.Sprintf("Message rejected: a line is longer than %d bytes", s.cfg.MaxLineLength)))
	default:
		s.reply(smtp.R(554, "5.6.0", "Message rejected: "+err.Error()))
	}
}

// cmdBdat handles BDAT (RFC 3030). The chunk is always read, even when it is refused,
// because the client sends it without waiting for a reply.
func (s *session) cmdBdat(arg string) bool {
	f := strings.Fields(arg)
	var n int64 = -1
	if len(f) == 1 || len(f) == 2 {
		if v, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			n = v
		}
	}
	last := len(f) == 2 && strings.EqualFold(f[1], "LAST")
	if n < 0 || len(f) == 2 && !last || len(f[0]) > 18 {
		// Without a valid size there is no way to find the next command: give up.
		s.reply(smtp.R(501, "5.5.4", "Syntax: BDAT size [LAST]; closing connection"))
		s.flush()
		return false
	}
	var refuse *smtp.Reply
	switch {
	case s.tx == nil:
		r := smtp.R(503, "5.5.1", "Need MAIL and RCPT before BDAT")
		refuse = &r
	case len(s.tx.env.Recipients) == 0:
		r := smtp.R(554, "5.5.1", "No valid recipients")
		refuse = &r
	case s.tx.w == nil:
		if err := s.beginBody(context.Background()); err != nil {
			r := smtp.R(451, "4.3.0", "Temporary failure storing the message, try again later")
			refuse = &r
		}
	}
	s.readTimeout = s.cfg.DataTimeout
	var dst io.Writer = io.Discard
	if refuse == nil {
		dst = s.tx.checker
	}
	if _, err := io.CopyN(dst, s.br, n); err != nil {
		s.log.Info("BDAT chunk not received", "error", err)
		s.abortTx()
		return false
	}
	if refuse != nil {
		s.abortTx()
		s.reply(*refuse)
		return true
	}
	if err := s.tx.checker.Err(); err != nil {
		s.rejectContent(err)
		return true
	}
	if !last {
		s.reply(smtp.R(250, "2.0.0", fmt.Sprintf("%d bytes received", n)))
		return true
	}
	if err := s.tx.checker.Close(); err != nil {
		s.rejectContent(err)
		return true
	}
	s.commit(context.Background())
	return true
}

// receivedHeader builds the trace header (RFC 5321 §4.4) recording how the message came:
// the client, the protocol (RFC 3848 names) and the TLS version and cipher.
func (s *session) receivedHeader() string {
	var from string
	if s.l.Role == RoleLocal {
		from = "local"
		if s.peerUID >= 0 {
			from += " (uid " + strconv.Itoa(s.peerUID) + ")"
		}
	} else {
		from = sanitize(s.helo) + " ([" + s.ip.String() + "])"
	}
	proto := "SMTP"
	if s.esmtp {
		proto = "ESMTP"
		if s.tls != nil {
			proto += "S"
		}
		if s.authUser != "" {
			proto += "A"
		}
		if s.tx.env.SMTPUTF8 {
			proto = "UTF8" + proto
		}
	}
	var b strings.Builder
	b.WriteString("Received: from " + from + "\r\n")
	b.WriteString("\tby " + s.cfg.Hostname + " (mxward) with " + proto + " id " + s.id + "\r\n")
	if s.tls != nil {
		b.WriteString("\t(using " + tlsName(s.tls.Version) + " with cipher " + tls.CipherSuiteName(s.tls.CipherSuite) + ")\r\n")
	}
	if len(s.tx.env.Recipients) == 1 && s.tx.rcptSeen == 1 {
		b.WriteString("\tfor <" + sanitize(s.tx.env.Recipients[0].Addr) + ">;\r\n")
	} else {
		b.WriteString("\t;\r\n")
	}
	b.WriteString("\t" + s.srv.now().Format(time.RFC1123Z) + "\r\n")
	return b.String()
}

// tlsName is the protocol name as mail headers usually spell it ("TLSv1.3").
func tlsName(v uint16) string {
	return strings.Replace(tls.VersionName(v), "TLS 1", "TLSv1", 1)
}

// sanitize keeps client-supplied text from breaking the header's syntax.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 33 || r == 127 || r == '(' || r == ')' || r == '\\' || r == ';':
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	if b.Len() > 200 {
		return strings.ToValidUTF8(b.String()[:200], "")
	}
	return b.String()
}
