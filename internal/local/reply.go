package local

import (
	"mxward/internal/smtp"
)

// The LMTP client reads replies with the SMTP client's reader (internal/smtp).
const (
	maxReplyLine  = smtp.MaxReplyLine
	maxReplyLines = smtp.MaxReplyLines
)

// errMalformed is wrapped by every error about a reply that does not follow RFC 5321.
var errMalformed = smtp.ErrMalformedReply

// reply is one LMTP reply.
type reply = smtp.Reply

// readReply reads one possibly multi-line reply. It returns io.EOF if the connection
// ended cleanly before the reply began, an error wrapping errMalformed for replies that
// break the syntax, and never panics on any input.
var readReply = smtp.ReadReply
