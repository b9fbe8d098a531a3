package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Message content violations. The server answers each with a 5xx after the end of the data
// and stores nothing.
var (
	// ErrBareLF and ErrBareCR: a line ending other than CRLF. Accepting them is what makes
	// SMTP smuggling possible (CVE-2023-51766 and its siblings): a receiver that takes
	// "\n.\n" or "\r.\r" as the end of data can be fed a second, forged message inside the
	// first. mxward ends DATA only at CRLF "." CRLF and rejects any message that contains a
	// bare CR or LF, so nothing ambiguous is ever stored or relayed.
	ErrBareLF = errors.New("message contains a bare LF (line ends must be CRLF)")
	ErrBareCR = errors.New("message contains a bare CR (line ends must be CRLF)")
	// ErrLineTooLong: a text line longer than the limit (RFC 5321 §4.5.3.1.6).
	ErrLineTooLong = errors.New("message line too long")
	// ErrTooBig: the message exceeds the size limit (RFC 1870).
	ErrTooBig = errors.New("message exceeds the size limit")
)

// LineChecker validates the line structure of message content written through it in any
// number of pieces: CRLF line ends only, and no line longer than MaxLine bytes counting
// its CRLF. It remembers the first violation and stops passing data on after it.
type LineChecker struct {
	W       io.Writer // destination of valid content
	MaxLine int       // including CRLF; 0 means no limit
	MaxSize int64     // 0 means no limit

	n       int64
	lineLen int
	prevCR  bool
	err     error // first content violation
}

// Write checks p and copies it to W. It reports errors of W, never content violations:
// those are kept for Err so that the caller goes on reading to the end of the data.
func (c *LineChecker) Write(p []byte) (int, error) {
	if c.err != nil {
		return len(p), nil
	}
	for _, b := range p {
		if c.prevCR && b != '\n' {
			return c.fail(ErrBareCR, len(p))
		}
		c.lineLen++
		switch b {
		case '\n':
			if !c.prevCR {
				return c.fail(ErrBareLF, len(p))
			}
			if c.MaxLine > 0 && c.lineLen > c.MaxLine {
				return c.fail(ErrLineTooLong, len(p))
			}
			c.lineLen = 0
		default:
			if c.MaxLine > 0 && c.lineLen >= c.MaxLine {
				// Even the LF that must follow would make the line too long: stop now
				// rather than at the LF of an endless line.
				return c.fail(ErrLineTooLong, len(p))
			}
		}
		c.prevCR = b == '\r'
	}
	c.n += int64(len(p))
	if c.MaxSize > 0 && c.n > c.MaxSize {
		return c.fail(ErrTooBig, len(p))
	}
	if _, err := c.W.Write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *LineChecker) fail(err error, n int) (int, error) {
	c.err = err
	return n, nil
}

// Close checks the end of the content: a CR as the very last byte is a bare CR.
func (c *LineChecker) Close() error {
	if c.err == nil && c.prevCR {
		c.err = ErrBareCR
	}
	return c.err
}

// Err returns the first content violation seen so far.
func (c *LineChecker) Err() error { return c.err }

// Size returns the number of bytes accepted so far.
func (c *LineChecker) Size() int64 { return c.n }

// ReadData reads DATA content from r up to and including the terminating CRLF "." CRLF,
// removes dot-stuffing (RFC 5321 §4.5.2) and writes the content to c. The terminator is
// recognised only at the start of a line that followed a CRLF (or at the very start), and
// only as ".\r\n": ".\n", "\r.\r" and friends are ordinary (and rejected) content.
//
// It always consumes input up to the terminator, even after a content violation, so that
// the session stays in step with the client; the violation is then returned (one of
// ErrBareLF, ErrBareCR, ErrLineTooLong, ErrTooBig). An I/O error is returned wrapped, and
// leaves the session unusable.
func ReadData(r *bufio.Reader, c *LineChecker) error {
	atLineStart := true
	prevEndCR := false // the previous segment ended with CR (a CRLF split across two reads)
	for {
		seg, err := r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read message data: %w", err)
		}
		full := err == nil // seg ends with '\n'
		// Only a CRLF ends a line for the terminator's purposes: treating a bare LF as a
		// line end is exactly the smuggling ambiguity.
		endsCRLF := full && (len(seg) >= 2 && seg[len(seg)-2] == '\r' || len(seg) == 1 && prevEndCR)
		prevEndCR = len(seg) > 0 && seg[len(seg)-1] == '\r'
		if atLineStart {
			if full && bytes.Equal(seg, []byte(".\r\n")) {
				return c.Close()
			}
			if len(seg) > 0 && seg[0] == '.' {
				seg = seg[1:]
			}
		}
		if _, werr := c.Write(seg); werr != nil {
			return fmt.Errorf("write message data: %w", werr)
		}
		atLineStart = endsCRLF
	}
}
