// Package inject is the logic behind `mxward sendmail`, the sendmail-compatible
// injector that cron jobs and applications use to send mail.
//
// The injector never writes to the spool itself. It parses the classic sendmail command
// line (ParseArgs), reads and canonicalises the message from standard input into a
// temporary file (ReadMessage), and hands it to the running mxward server over the
// trusted local unix socket with a small SMTP client (Send). The server answers 250 to
// the final dot only once the message is durably queued, so a zero exit status means
// the message is safe. Submit chains the last two steps.
//
// Failures map to sysexits(3) codes through ExitCode, because that is what callers of
// sendmail (cron, mail(1), language mail libraries) inspect.
package inject

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
)

// Exit codes from sysexits(3), as sendmail returns them.
const (
	EX_OK          = 0
	EX_USAGE       = 64 // bad command line
	EX_DATAERR     = 65 // the message itself is unusable (bad headers, no recipients)
	EX_NOUSER      = 67 // one or more recipients were refused
	EX_UNAVAILABLE = 69 // the server refused the transaction permanently
	EX_SOFTWARE    = 70 // internal error
	EX_IOERR       = 74 // reading the message or writing the temporary copy failed
	EX_TEMPFAIL    = 75 // try again later: server not running, 4xx reply, connection lost
	EX_NOPERM      = 77 // not allowed to use the socket
)

// ErrServerNotRunning reports that nothing listens on the injection socket: the socket
// file is missing or the connection is refused. The message was not queued and the
// caller should exit EX_TEMPFAIL so that cron and friends retry or report it.
var ErrServerNotRunning = errors.New("mxward is not running")

// ErrNoRecipients reports a message with no envelope recipients: none on the command
// line and, with -t, none in the headers.
var ErrNoRecipients = errors.New("no recipients specified")

// ErrHeaderTooLarge reports a header section larger than MaxHeaderBytes. Only the
// header section is held in memory, so it is bounded.
var ErrHeaderTooLarge = errors.New("message header section too large")

// A UsageError is a bad command line.
type UsageError struct {
	Msg string
}

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// An AddressError is an address in the message headers or on the command line that
// could not be parsed.
type AddressError struct {
	Source string // where the address came from, e.g. "To header" or "-f"
	Value  string
	Err    error
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("bad address in %s %q: %v", e.Source, e.Value, e.Err)
}

func (e *AddressError) Unwrap() error { return e.Err }

// A ReplyError is a 4xx or 5xx reply (or any unexpected one) from the server, with the
// command that drew it.
type ReplyError struct {
	Command string // the command as sent, e.g. "RCPT TO:<x@y>", or "connect" for the greeting
	Code    int
	Text    string // the reply text after the code, lines joined by spaces
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("%s: %d %s", e.Command, e.Code, e.Text)
}

// Temporary reports a 4xx reply.
func (e *ReplyError) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// A RecipientError lists recipients the server refused. When Send returns it together
// with a queue ID, the message was queued for the remaining recipients; with an empty
// queue ID every recipient was refused and nothing was queued.
type RecipientError struct {
	Rejected []*ReplyError // one per refused recipient; Command names the recipient
}

func (e *RecipientError) Error() string {
	var b strings.Builder
	if len(e.Rejected) == 1 {
		b.WriteString("recipient refused: ")
	} else {
		fmt.Fprintf(&b, "%d recipients refused: ", len(e.Rejected))
	}
	for i, r := range e.Rejected {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(r.Error())
	}
	return b.String()
}

// ExitCode maps an error from this package to the sysexits(3) code sendmail would exit
// with. A nil error is EX_OK.
//
// Refused recipients give EX_NOUSER, unless every refusal was temporary (4xx), which
// gives EX_TEMPFAIL. Lost connections, timeouts and a stopped server are EX_TEMPFAIL:
// the message was not (or not certainly) queued and a retry is the right response.
func ExitCode(err error) int {
	if err == nil {
		return EX_OK
	}
	var (
		usage *UsageError
		rcpt  *RecipientError
		reply *ReplyError
		addr  *AddressError
	)
	switch {
	case errors.As(err, &usage):
		return EX_USAGE
	case errors.As(err, &rcpt):
		for _, r := range rcpt.Rejected {
			if !r.Temporary() {
				return EX_NOUSER
			}
		}
		return EX_TEMPFAIL
	case errors.As(err, &reply):
		if reply.Temporary() {
			return EX_TEMPFAIL
		}
		return EX_UNAVAILABLE
	case errors.Is(err, ErrServerNotRunning):
		return EX_TEMPFAIL
	case errors.Is(err, ErrNoRecipients), errors.Is(err, ErrHeaderTooLarge), errors.As(err, &addr):
		return EX_DATAERR
	case errors.Is(err, fs.ErrPermission):
		return EX_NOPERM
	case transient(err):
		return EX_TEMPFAIL
	}
	var ioe *ioError
	if errors.As(err, &ioe) {
		return EX_IOERR
	}
	return EX_SOFTWARE
}

// An ioError is a failure reading the message or writing its temporary copy.
type ioError struct {
	op  string
	err error
}

func (e *ioError) Error() string { return e.op + ": " + e.err.Error() }
func (e *ioError) Unwrap() error { return e.err }

// transient reports errors after which a later attempt can succeed.
func transient(err error) bool {
	var ne net.Error
	return errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ENOSPC) ||
		errors.As(err, &ne)
}
