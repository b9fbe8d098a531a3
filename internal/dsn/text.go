package dsn

import (
	"bufio"
	"strings"
	"time"
	"unicode/utf8"
)

// textWidth is where the human-readable part wraps its lines.
const textWidth = 76

// intros explain, per action, what happened to the recipients listed after them. The
// notification groups recipients by action, so that a report mixing failures and delays
// says plainly which is which.
var intros = map[Action]string{
	ActionFailed: "Your message could not be delivered to the recipients below. " +
		"The failure is permanent: the mail server will not try again.",
	ActionDelayed: "Your message has not been delivered to the recipients below yet. " +
		"The mail server is still trying and you need not do anything; " +
		"if it has to give up, you will receive another notice.",
	ActionDelivered: "Your message was delivered to the recipients below. " +
		"You asked to be told when that happened.",
	ActionRelayed: "Your message was passed on to a mail system that does not report on " +
		"delivery. This is the last notice you will receive about the recipients below.",
	ActionExpanded: "Your message was delivered to the recipients below, aliases or " +
		"mailing lists which forwarded it to their members.",
}

// writeText writes the text/plain part: what happened to each recipient, with the remote
// server's reply, in words a sender can act on.
func (r *report) writeText(bw *bufio.Writer) {
	t := textWriter{bw: bw}
	opening := "This is the mail server " + r.text(r.msg.ReportingMTA) + ", reporting on a message you sent"
	if at := r.msg.Original.ReceivedAt; !at.IsZero() {
		opening += " on " + at.Format(time.RFC1123Z)
	}
	t.wrap("", "", opening+".")

	for _, a := range []Action{ActionFailed, ActionDelayed, ActionDelivered, ActionRelayed, ActionExpanded} {
		first := true
		for _, rs := range r.msg.Recipients {
			if rs.Action != a {
				continue
			}
			if first {
				t.para(intros[a])
				first = false
			}
			t.blank()
			r.writeRecipient(&t, rs)
		}
	}

	switch {
	case r.content == contentFull:
		t.para("The undelivered message is attached.")
	case r.content == contentHeaders && r.action == ActionFailed:
		t.para("The header section of the undelivered message is attached; its body is not returned.")
	case r.content == contentHeaders:
		t.para("The header section of your message is attached for reference.")
	}
}

func (r *report) writeRecipient(t *textWriter, rs RecipientStatus) {
	rcpt := r.text(rs.Rcpt)
	head := "<" + rcpt + ">"
	if _, orig, ok := r.orcpt(rs.ORCPT); ok && !strings.EqualFold(orig, rcpt) {
		head += " (originally addressed to " + orig + ")"
	}
	t.wrap("", "    ", head)
	t.field("Status:", rs.status()+" ("+statusMeaning(rs.Action, rs.status())+")")
	if mta := r.text(rs.RemoteMTA); mta != "" {
		t.field("Mail server:", untyped(mta))
	}
	if diag := r.words(rs.DiagnosticCode); diag != "" {
		t.field("Its reply:", untyped(diag))
	}
	if !rs.LastAttempt.IsZero() {
		t.field("Last attempt:", rs.LastAttempt.Format(time.RFC1123Z))
	}
	if rs.Action == ActionDelayed && !rs.WillRetryUntil.IsZero() {
		t.field("Trying until:", rs.WillRetryUntil.Format(time.RFC1123Z))
	}
}

// statusMeaning is the RFC 3463 class of a status, in words. A failure with a temporary
// status is one that lasted until the message expired.
func statusMeaning(a Action, status string) string {
	switch {
	case status[0] == '2':
		return "success"
	case status[0] == '4' && a == ActionFailed:
		return "temporary failure until the message expired"
	case status[0] == '4':
		return "temporary failure"
	}
	return "permanent failure"
}

// untyped drops the "smtp; " or "dns; " type prefix that the delivery-status fields
// carry and people need not read.
func untyped(v string) string {
	if t, rest, ok := strings.Cut(v, ";"); ok && isAtom(t) {
		return strings.TrimSpace(rest)
	}
	return v
}

// textWriter writes wrapped CRLF lines.
type textWriter struct {
	bw *bufio.Writer
}

// para writes a paragraph after an empty line.
func (t *textWriter) para(s string) {
	t.blank()
	t.wrap("", "", s)
}

func (t *textWriter) blank() { t.bw.WriteString("\r\n") }

// field writes an indented "label value" line, continuation lines aligned under the value.
func (t *textWriter) field(label, value string) {
	const indent = "    "
	first := indent + label + strings.Repeat(" ", max(1, 15-len(label)))
	t.wrap(first, strings.Repeat(" ", len(first)), value)
}

// wrap writes s as lines of at most textWidth characters where words allow, the first
// starting with first and the others with rest. A word too long for any line is broken,
// so that no line exceeds 998 octets whatever s holds.
func (t *textWriter) wrap(first, rest, s string) {
	const longest = 900 // octets of one word on a line; the prefixes are short
	line := first
	filled := false
	flush := func() {
		t.bw.WriteString(strings.TrimRight(line, " "))
		t.bw.WriteString("\r\n")
		line, filled = rest, false
	}
	for _, word := range strings.Fields(s) {
		for word != "" {
			piece := word
			if len(piece) > longest {
				cut := longest
				for cut > 0 && !utf8.RuneStart(piece[cut]) {
					cut--
				}
				if cut == 0 {
					cut = longest
				}
				piece = piece[:cut]
			}
			word = word[len(piece):]
			if filled && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(piece) > textWidth {
				flush()
			}
			if filled {
				line += " "
			}
			line += piece
			filled = true
		}
	}
	if filled || line != "" {
		flush()
	}
}
