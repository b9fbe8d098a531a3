package local

import (
	"bufio"
	"fmt"
	"strings"

	"mxward/internal/smtp"
)

// The reply reader is the one the SMTP client uses (internal/smtp).
const (
	maxReplyLine  = smtp.MaxReplyLine
	maxReplyLines = smtp.MaxReplyLines
)

// errMalformed is wrapped by every error about a reply that does not follow RFC 5321.
var errMalformed = smtp.ErrMalformedReply

// reply is one SMTP/LMTP reply.
type reply struct {
	code     int
	enhanced string   // RFC 3463 code from the first line, "" if none
	lines    []string // text of each line without code, separator and enhanced code
}

// text is the reply's text on one line.
func (r reply) text() string {
	var parts []string
	for _, l := range r.lines {
		if l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

func (r reply) String() string {
	s := fmt.Sprint(r.code)
	if r.enhanced != "" {
		s += " " + r.enhanced
	}
	if t := r.text(); t != "" {
		s += " " + t
	}
	return s
}

// readReply reads one possibly multi-line reply. It returns io.EOF if the connection
// ended cleanly before the reply began, an error wrapping errMalformed for replies that
// break the syntax, and never panics on any input.
func readReply(br *bufio.Reader) (reply, error) {
	r, err := smtp.ReadReply(br)
	if err != nil {
		return reply{}, err
	}
	return reply{code: r.Code, enhanced: r.Enhanced, lines: r.Lines}, nil
}
