package smtpclient

import (
	"bufio"
	"io"

	"mxward/internal/smtp"
)

// Reply limits and errors are the shared reader's (internal/smtp).
const (
	maxReplyLine  = smtp.MaxReplyLine
	maxReplyLines = smtp.MaxReplyLines
)

// ErrMalformedReply is wrapped by every error about a reply that does not follow RFC 5321
// §4.2. After one the client and server are out of step, so the connection is dropped.
var ErrMalformedReply = smtp.ErrMalformedReply

// readReply reads one reply; an end of input anywhere is io.ErrUnexpectedEOF, since the
// client reads a reply only when it expects one.
func readReply(br *bufio.Reader) (smtp.Reply, error) {
	r, err := smtp.ReadReply(br)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return r, err
}
