package dsn

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"mxward/internal/spool"
)

// DefaultMaxOriginal is the size up to which a failed message is returned whole when its
// sender gave no RET parameter. Larger messages are returned as their header section: a
// bounce that is itself too large to deliver helps nobody.
const DefaultMaxOriginal = 1 << 20

// Message is one delivery status notification about one queued message.
type Message struct {
	// ReportingMTA is this host's name, for Reporting-MTA, the author address and the
	// Message-ID.
	ReportingMTA string
	// Original is the envelope of the message reported on. Write uses From, RET, EnvID,
	// SMTPUTF8, BodyType, Size and ReceivedAt (Arrival-Date, omitted when zero).
	Original spool.Envelope
	// QueueID, when set, is reported in an X-Mxward-Queue-ID field so that an operator
	// shown the DSN can find the message in the queue and the logs.
	QueueID spool.ID
	// Recipients are the recipients reported on, at least one. They may mix actions; the
	// most severe (failed, then delayed) sets the Subject and what is returned.
	Recipients []RecipientStatus

	// From is the DSN's author address; "" means MAILER-DAEMON@ReportingMTA.
	From string
	// FromName is the author's display name; "" means "Mail Delivery System".
	FromName string
	// To is where the DSN goes; "" means Original.From, the reverse-path.
	To string

	// Date is the DSN's Date; zero means the time of the call.
	Date time.Time
	// MessageID is the DSN's Message-ID without angle brackets; "" means a random one at
	// ReportingMTA.
	MessageID string
	// Boundary is the multipart boundary; "" means one of 256 random bits, which no
	// content can be expected to contain. It is settable so that output can be compared.
	Boundary string

	// MaxOriginal is the size up to which a failed message without RET is returned whole
	// (Original.Size decides; an unknown size of 0 returns the header section). Zero means
	// DefaultMaxOriginal; a negative value returns only the header section.
	MaxOriginal int64
}

// Returned content: what of the original message a DSN carries in its third part.
type content int

const (
	contentNone    content = iota // no third part
	contentHeaders                // the header section
	contentFull                   // the whole message
)

// report is a Message checked and normalised for writing.
type report struct {
	msg       Message
	action    Action // the most severe action
	global    bool   // RFC 6533 types: an address is UTF-8 or the original was SMTPUTF8
	eightBit  bool   // some part holds 8-bit data
	content   content
	from      string // formatted From field body
	to        string
	boundary  string
	messageID string
	date      time.Time
}

// Envelope returns the envelope to queue the DSN with: the null reverse-path, so that
// no notification is ever sent about it, and the DSN's sender as its one recipient with
// NOTIFY=NEVER. BodyType and SMTPUTF8 follow what Write puts in the message: 8BITMIME when
// a part holds 8-bit data (assuming the original is returned), SMTPUTF8 when the RFC 6533
// types or a UTF-8 address are used.
func (m Message) Envelope() spool.Envelope {
	global, eightBit := m.charset(true)
	env := spool.Envelope{
		Recipients: []spool.Recipient{{Addr: m.to(), Notify: "NEVER"}},
		BodyType:   spool.Body7Bit,
		SMTPUTF8:   global,
		ReceivedAt: m.Date,
		ClientIP:   "local",
	}
	if eightBit {
		env.BodyType = spool.Body8BitMIME
	}
	return env
}

func (m Message) to() string {
	if m.To != "" {
		return strings.TrimSpace(m.To)
	}
	return strings.TrimSpace(m.Original.From)
}

// charset reports whether the DSN uses the RFC 6533 global types and whether it carries
// 8-bit data, given whether the original is returned.
func (m Message) charset(returned bool) (global, eightBit bool) {
	global = m.Original.SMTPUTF8 || !ascii(m.to()) || !ascii(m.Original.From)
	for _, rs := range m.Recipients {
		if !ascii(rs.Rcpt) || !ascii(rs.ORCPT) {
			global = true
		}
	}
	bt := strings.ToUpper(string(m.Original.BodyType))
	eightBit = global || (returned && bt != "" && bt != string(spool.Body7Bit))
	return global, eightBit
}

// Write writes msg as a complete RFC 5322 message to w: a multipart/report (RFC 6522)
// with a human-readable explanation, the RFC 3464 delivery-status fields and the returned
// original, read from original (nil: no third part). Lines end in CRLF and are at most
// 998 octets long.
//
// What is returned of the original:
//   - for a failed recipient, the whole message when RET=FULL, the header section when
//     RET=HDRS, and without RET the whole message up to MaxOriginal, else the header
//     section;
//   - for a delayed or successful delivery, only the header section whatever RET says:
//     RET=FULL asks for content in failure reports (RFC 3461 §4.3), and a sender who is
//     told that mail is on its way does not need it back;
//   - for a BINARYMIME original, only the header section: its body cannot be carried in
//     an 8bit MIME part.
//
// The original is streamed, never held in memory.
func Write(w io.Writer, msg Message, original io.Reader) error {
	r, err := newReport(msg, original != nil)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 32*1024)
	r.writeHeader(bw)
	bw.WriteString("--" + r.boundary + "\r\n")
	r.writeNotification(bw)
	bw.WriteString("\r\n--" + r.boundary + "\r\n")
	r.writeStatus(bw)
	if r.content != contentNone {
		bw.WriteString("\r\n--" + r.boundary + "\r\n")
		r.writeContentHeader(bw)
		if err := copyOriginal(bw, original, r.content == contentFull); err != nil {
			var rerr *readError
			if errors.As(err, &rerr) {
				return fmt.Errorf("read original message: %w", rerr.err)
			}
			return fmt.Errorf("write dsn: %w", err)
		}
	}
	bw.WriteString("\r\n--" + r.boundary + "--\r\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write dsn: %w", err)
	}
	return nil
}

func newReport(msg Message, returnable bool) (*report, error) {
	r := &report{msg: msg, date: msg.Date}
	r.global, r.eightBit = msg.charset(returnable)

	to := msg.to()
	if isNullSender(to) {
		return nil, ErrNullSender
	}
	r.to = r.text(to)
	host := msg.ReportingMTA
	if !validHost(host) {
		return nil, fmt.Errorf("dsn: invalid reporting MTA name %q", host)
	}
	if len(msg.Recipients) == 0 {
		return nil, errors.New("dsn: no recipients to report on")
	}
	for i, rs := range msg.Recipients {
		if !rs.Action.valid() {
			return nil, fmt.Errorf("dsn: recipient %d: unknown action %q", i, rs.Action)
		}
		if r.text(rs.Rcpt) == "" {
			return nil, fmt.Errorf("dsn: recipient %d: no address", i)
		}
	}
	r.action = mostSevere(msg.Recipients)

	if r.date.IsZero() {
		r.date = time.Now()
	}
	r.boundary = msg.Boundary
	if r.boundary == "" {
		r.boundary = "=_" + rand.Text() + rand.Text()
	} else if !validBoundary(r.boundary) {
		return nil, fmt.Errorf("dsn: invalid MIME boundary %q", r.boundary)
	}
	r.messageID = msg.MessageID
	if r.messageID == "" {
		r.messageID = rand.Text() + "@" + host
	} else if !validMessageID(r.messageID) {
		return nil, fmt.Errorf("dsn: invalid Message-ID %q", r.messageID)
	}

	from := msg.From
	if from == "" {
		from = "MAILER-DAEMON@" + host
	}
	name := msg.FromName
	if name == "" {
		name = "Mail Delivery System"
	}
	r.from = (&mail.Address{Name: r.text(name), Address: r.text(from)}).String()

	r.content = contentNone
	if returnable {
		r.content = r.returned()
	}
	return r, nil
}

// returned decides how much of the original the DSN carries; see Write.
func (r *report) returned() content {
	env := r.msg.Original
	if r.action != ActionFailed || strings.EqualFold(string(env.BodyType), string(spool.BodyBinaryMIME)) {
		return contentHeaders
	}
	switch strings.ToUpper(strings.TrimSpace(env.RET)) {
	case "FULL":
		return contentFull
	case "HDRS":
		return contentHeaders
	}
	limit := r.msg.MaxOriginal
	if limit == 0 {
		limit = DefaultMaxOriginal
	}
	if env.Size > 0 && env.Size <= limit {
		return contentFull
	}
	return contentHeaders
}

// mostSevere returns the action that decides a DSN's Subject: a failure outweighs a
// delay, which outweighs any success.
func mostSevere(rs []RecipientStatus) Action {
	best := rs[0].Action
	rank := func(a Action) int {
		switch a {
		case ActionFailed:
			return 3
		case ActionDelayed:
			return 2
		}
		return 1
	}
	for _, s := range rs[1:] {
		if rank(s.Action) > rank(best) {
			best = s.Action
		}
	}
	return best
}

func (r *report) writeHeader(bw *bufio.Writer) {
	writeField(bw, "From", r.from)
	writeField(bw, "To", "<"+r.to+">")
	writeField(bw, "Subject", Subject(r.action))
	writeField(bw, "Date", r.date.Format(time.RFC1123Z))
	writeField(bw, "Message-ID", "<"+r.messageID+">")
	writeField(bw, "MIME-Version", "1.0")
	// RFC 3834 §5: marks the DSN as automatic, so that responders do not answer it.
	writeField(bw, "Auto-Submitted", "auto-replied")
	writeField(bw, "Content-Type", mime.FormatMediaType("multipart/report",
		map[string]string{"report-type": "delivery-status", "boundary": r.boundary}))
	if r.eightBit {
		writeField(bw, "Content-Transfer-Encoding", "8bit")
	}
	bw.WriteString("\r\nThis is a MIME-encapsulated delivery status notification.\r\n\r\n")
}

func (r *report) writeNotification(bw *bufio.Writer) {
	charset := "us-ascii"
	if r.global {
		charset = "utf-8"
	}
	writeField(bw, "Content-Description", "Notification")
	writeField(bw, "Content-Type", "text/plain; charset="+charset)
	if r.global {
		writeField(bw, "Content-Transfer-Encoding", "8bit")
	}
	bw.WriteString("\r\n")
	r.writeText(bw)
}

func (r *report) writeStatus(bw *bufio.Writer) {
	typ := "message/delivery-status"
	if r.global {
		typ = "message/global-delivery-status"
	}
	writeField(bw, "Content-Description", "Delivery report")
	writeField(bw, "Content-Type", typ)
	if r.global {
		writeField(bw, "Content-Transfer-Encoding", "8bit")
	}
	bw.WriteString("\r\n")

	// Per-message fields, in RFC 3464 §2.2 order.
	env := r.msg.Original
	if id := r.text(env.EnvID); id != "" {
		writeField(bw, "Original-Envelope-Id", id)
	}
	writeField(bw, "Reporting-MTA", "dns; "+r.text(r.msg.ReportingMTA))
	if !env.ReceivedAt.IsZero() {
		writeField(bw, "Arrival-Date", env.ReceivedAt.Format(time.RFC1123Z))
	}
	if id := r.text(string(r.msg.QueueID)); id != "" {
		writeField(bw, "X-Mxward-Queue-ID", id)
	}

	// Per-recipient fields, each group after an empty line, in RFC 3464 §2.3 order.
	for _, rs := range r.msg.Recipients {
		bw.WriteString("\r\n")
		if typ, addr, ok := r.orcpt(rs.ORCPT); ok {
			writeField(bw, "Original-Recipient", typ+";"+addr)
		}
		writeField(bw, "Final-Recipient", r.addressType(rs.Rcpt)+"; "+r.text(rs.Rcpt))
		writeField(bw, "Action", string(rs.Action))
		writeField(bw, "Status", rs.status())
		if mta := r.text(rs.RemoteMTA); mta != "" {
			writeField(bw, "Remote-MTA", typed(mta, "dns"))
		}
		if diag := r.words(rs.DiagnosticCode); diag != "" {
			writeField(bw, "Diagnostic-Code", typed(diag, "smtp"))
		}
		if !rs.LastAttempt.IsZero() {
			writeField(bw, "Last-Attempt-Date", rs.LastAttempt.Format(time.RFC1123Z))
		}
		if rs.Action == ActionDelayed && !rs.WillRetryUntil.IsZero() {
			writeField(bw, "Will-Retry-Until", rs.WillRetryUntil.Format(time.RFC1123Z))
		}
	}
}

func (r *report) writeContentHeader(bw *bufio.Writer) {
	var typ, desc string
	switch {
	case r.content == contentFull && r.global:
		typ, desc = "message/global", "Undelivered message"
	case r.content == contentFull:
		typ, desc = "message/rfc822", "Undelivered message"
	case r.global:
		typ, desc = "message/global-headers", "Message headers"
	default:
		typ, desc = "text/rfc822-headers", "Message headers"
	}
	if r.content == contentHeaders && r.action == ActionFailed {
		desc = "Undelivered message headers"
	}
	writeField(bw, "Content-Description", desc)
	writeField(bw, "Content-Type", typ)
	if r.eightBit {
		writeField(bw, "Content-Transfer-Encoding", "8bit")
	}
	bw.WriteString("\r\n")
}

// orcpt splits an ORCPT value into its address type and address; ok is false when the
// value is absent or malformed, and then no Original-Recipient is written. RFC 3461 §4.2
// asks for the value as the client gave it, so only unsafe characters are changed.
func (r *report) orcpt(v string) (typ, addr string, ok bool) {
	typ, addr, ok = strings.Cut(v, ";")
	typ, addr = strings.TrimSpace(r.text(typ)), strings.TrimSpace(r.text(addr))
	if !ok || typ == "" || addr == "" || strings.ContainsAny(typ, " ;") {
		return "", "", false
	}
	return typ, addr, true
}

// addressType is the RFC 3464 address type of a final recipient: rfc822, or for a UTF-8
// address RFC 6533 §3's utf-8, which the global delivery-status carries unescaped.
func (r *report) addressType(addr string) string {
	if !ascii(addr) {
		return "utf-8"
	}
	return "rfc822"
}

// typed prefixes v with "deftype; " unless it already starts with a type: an atom and a
// semicolon, as in "smtp; 550 ..." or "dns; mx.example.com".
func typed(v, deftype string) string {
	if t, rest, ok := strings.Cut(v, ";"); ok && t != "" && isAtom(t) {
		return t + "; " + strings.TrimSpace(rest)
	}
	return deftype + "; " + v
}

func isAtom(s string) bool {
	for i := range len(s) {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>[]:;@\,."`, c) >= 0 {
			return false
		}
	}
	return true
}

// text makes s safe as part of a header field or a line of text: line breaks and tabs
// become spaces, other control characters '?', and so do non-ASCII characters unless the
// DSN uses the global types (invalid UTF-8 becomes U+FFFD there). Leading and trailing
// white space is removed.
func (r *report) text(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		c, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		switch {
		case c == '\r' || c == '\n' || c == '\t':
			b.WriteByte(' ')
		case c < ' ' || c == 0x7f || (c >= 0x80 && c < 0xa0):
			b.WriteByte('?')
		case c < utf8.RuneSelf:
			b.WriteByte(byte(c))
		case !r.global:
			b.WriteByte('?')
		default:
			b.WriteRune(c) // utf8.RuneError for invalid input
		}
	}
	return strings.TrimSpace(b.String())
}

// words is text with runs of white space collapsed, for replies that arrived on several
// lines.
func (r *report) words(s string) string {
	return strings.Join(strings.Fields(r.text(s)), " ")
}

// writeField writes a header field, folding its body at white space to keep lines within
// 78 characters where it can and within 998 octets always; a word too long for that is
// broken, at a character boundary. Runs of white space become one space, as they do
// anyway when a reader unfolds the field.
func writeField(bw *bufio.Writer, name, value string) {
	bw.WriteString(name)
	bw.WriteString(":")
	n := len(name) + 1 // octets on the current line
	for i, word := range strings.Fields(value) {
		if i > 0 && n+1+len(word) > 78 {
			bw.WriteString("\r\n")
			n = 0
		}
		bw.WriteByte(' ')
		n++
		// Only a word that starts a line can be this long, so cut is well above zero.
		for n+len(word) > maxLine {
			cut := maxLine - n
			for cut > maxLine-n-utf8.UTFMax && !utf8.RuneStart(word[cut]) {
				cut--
			}
			bw.WriteString(word[:cut])
			bw.WriteString("\r\n ")
			n = 1
			word = word[cut:]
		}
		bw.WriteString(word)
		n += len(word)
	}
	bw.WriteString("\r\n")
}

func ascii(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// validBoundary reports whether b is an RFC 2046 §5.1.1 boundary.
func validBoundary(b string) bool {
	if len(b) < 1 || len(b) > 70 || b[len(b)-1] == ' ' {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' ||
			strings.IndexByte("'()+_,-./:=? ", c) >= 0) {
			return false
		}
	}
	return true
}

// validHost reports whether name can serve as the reporting MTA's name in Reporting-MTA,
// the author address and the Message-ID: a non-empty run of printable ASCII without
// characters that are special in those places.
func validHost(name string) bool {
	if name == "" {
		return false
	}
	for i := range len(name) {
		if c := name[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`<>()@,;:\"`, c) >= 0 {
			return false
		}
	}
	return true
}

// validMessageID reports whether id can stand between angle brackets as an RFC 5322
// msg-id: printable ASCII with one "@" and no brackets or white space.
func validMessageID(id string) bool {
	left, right, ok := strings.Cut(id, "@")
	if !ok || left == "" || right == "" || strings.Contains(right, "@") {
		return false
	}
	for i := range len(id) {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return false
		}
	}
	return true
}

// readError marks an error from reading the original, as opposed to writing the DSN.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }
