package smtpclient

import (
	"errors"
	"fmt"

	"mxward/internal/smtp"
)

// ErrUnusable is wrapped by the errors of operations on a connection that a previous
// failure (an I/O error, a timeout, a 421 reply, a malformed reply, an aborted message)
// or Close/Quit has made unusable.
var ErrUnusable = errors.New("connection is no longer usable")

// Error is the failure of one step of a session. The delivery layer maps it to a deferral
// or a bounce: Permanent reports a 5xx, everything else (4xx, I/O errors, timeouts) is
// temporary.
type Error struct {
	// Stage is the protocol step that failed: "connect", "greeting", "ehlo", "helo",
	// "starttls", "mail", "rcpt", "data", "bdat", "rset" or "quit".
	Stage string
	// Reply is the server's reply that ended the step, or, when Local is set, the reply
	// the client reports on the server's behalf for a check it made itself (a message
	// larger than the advertised SIZE, an SMTPUTF8 message to a server without SMTPUTF8).
	// Its Code is 0 when the step failed without a reply (I/O error, timeout, malformed
	// reply).
	Reply smtp.Reply
	Local bool
	// Err is the underlying cause when there is one.
	Err error
}

func (e *Error) Error() string {
	var s string
	switch {
	case e.Reply.Code != 0 && e.Local:
		s = fmt.Sprintf("smtp %s: not sent: %s", e.Stage, e.Reply)
	case e.Reply.Code != 0:
		s = fmt.Sprintf("smtp %s: server replied %s", e.Stage, e.Reply)
	default:
		s = "smtp " + e.Stage
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent reports a 5xx failure: retrying the same message will not help.
func (e *Error) Permanent() bool { return e.Reply.Permanent() }

// Temporary reports a failure that may go away on a later attempt: a 4xx reply, or no
// reply at all.
func (e *Error) Temporary() bool { return !e.Reply.Permanent() }

// Reasons carried by TLSError. They are stable words for logs and metrics; the delivery
// layer maps them to 4.7.x deferrals (reference semantics §9.1, decision 14.7).
const (
	// ReasonNotOffered: TLS was required but the EHLO reply did not list STARTTLS
	// (ST-10: possibly stripped by a man in the middle).
	ReasonNotOffered = "starttls_not_offered"
	// ReasonRefused: TLS was required but STARTTLS was answered with something other than
	// 220 (ST-01: 454 or 501).
	ReasonRefused = "starttls_refused"
	// ReasonInjection: plaintext arrived together with the 220 reply to STARTTLS (ST-07,
	// CVE-2011-0411). The connection was aborted.
	ReasonInjection = "starttls_injection"
	// ReasonHandshake: the TLS handshake failed.
	ReasonHandshake = "handshake_failed"
	// ReasonVerify: Security.Verify rejected the peer (ST-06). QUIT was sent.
	ReasonVerify = "verify_failed"
)

// TLSError is a failure to establish the transport security the session needed. It is
// always temporary from the message's point of view (decision 14.7): the caller defers
// or tries the next host.
type TLSError struct {
	Reason string     // one of the Reason constants
	Reply  smtp.Reply // the reply to STARTTLS for ReasonRefused; zero otherwise
	Err    error      // the handshake or verification error, if any
}

func (e *TLSError) Error() string {
	s := "smtp starttls: " + e.Reason
	if e.Reply.Code != 0 {
		s += ": server replied " + e.Reply.String()
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *TLSError) Unwrap() error { return e.Err }
