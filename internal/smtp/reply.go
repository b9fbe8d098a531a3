package smtp

import (
	"fmt"
	"strings"
)

// Reply is a server reply: a three-digit code, an optional RFC 3463 enhanced status code
// and one or more text lines.
type Reply struct {
	Code     int
	Enhanced string // e.g. "5.7.1"; "" for replies that carry none (220, 221 greeting lines)
	Lines    []string
}

// R builds a one-line reply.
func R(code int, enhanced, text string) Reply {
	return Reply{Code: code, Enhanced: enhanced, Lines: []string{text}}
}

// Format renders the reply on the wire, CRLF-terminated, with the enhanced code on every
// line as RFC 2034 §4 requires.
func (r Reply) Format() string {
	var b strings.Builder
	lines := r.Lines
	if len(lines) == 0 {
		lines = []string{""}
	}
	for i, l := range lines {
		sep := '-'
		if i == len(lines)-1 {
			sep = ' '
		}
		fmt.Fprintf(&b, "%03d%c", r.Code, sep)
		if r.Enhanced != "" {
			b.WriteString(r.Enhanced)
			if l != "" {
				b.WriteByte(' ')
			}
		}
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	return b.String()
}

// String is the reply on one line, for logs.
func (r Reply) String() string {
	s := fmt.Sprintf("%03d", r.Code)
	if r.Enhanced != "" {
		s += " " + r.Enhanced
	}
	return s + " " + strings.Join(r.Lines, " / ")
}

// Temporary reports a 4xx reply; Permanent a 5xx reply.
func (r Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }
func (r Reply) Permanent() bool { return r.Code >= 500 }
