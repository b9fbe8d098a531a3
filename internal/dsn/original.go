package dsn

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxLine is the longest line, without its CRLF, that RFC 5322 §2.1.1 allows.
const maxLine = 998

// copyOriginal streams the returned message into w: its header section, and its body too
// when full is set. The spool holds bodies that the SMTP server has already made CRLF-clean,
// but a DSN that is itself malformed is worse than none, so the copy guards anyway:
//
//   - every line ends in CRLF, whether the original used CRLF, a bare LF or a bare CR,
//     and a last line without one gets one;
//   - a line longer than 998 octets is broken: in the header section with CRLF SP, which
//     folds the field rather than starting a malformed one, in the body with CRLF;
//   - the header section ends at the first line that is neither a field nor a
//     continuation. If that line is not the empty line, one is inserted, so that the
//     returned message/rfc822 always has a well-formed header section and the
//     text/rfc822-headers part holds only fields.
//
// Memory use is bounded by a line, whatever the size of the original.
func copyOriginal(w io.Writer, r io.Reader, full bool) error {
	lr := lineReader{br: bufio.NewReaderSize(r, 32*1024), buf: make([]byte, 0, maxLine)}
	var (
		inHeader = true
		first    = true // at the message's first line
		midLine  = false
	)
	crlf := []byte("\r\n")
	fold := []byte("\r\n ")
	for {
		limit := maxLine
		if inHeader && midLine {
			limit-- // the folded piece is preceded by a space
		}
		piece, eol, err := lr.next(limit)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if inHeader && !midLine && !headerLine(piece, first) {
			// The header section ends here.
			if !full {
				return nil
			}
			inHeader = false
			if _, err := w.Write(crlf); err != nil {
				return err
			}
			if len(piece) == 0 && eol {
				// The original's own separator line, just written.
				first = false
				continue
			}
		}
		first = false
		if _, err := w.Write(piece); err != nil {
			return err
		}
		switch {
		case eol:
			_, err = w.Write(crlf)
		case inHeader:
			_, err = w.Write(fold)
		default:
			_, err = w.Write(crlf)
		}
		if err != nil {
			return err
		}
		midLine = !eol
	}
}

// headerLine reports whether line starts a header field or, unless it is the message's
// first line, continues one. Field names are printable ASCII without a colon (RFC 5322
// §3.6.8); white space before the colon is obsolete syntax that is still met.
func headerLine(line []byte, first bool) bool {
	if len(line) == 0 {
		return false
	}
	if line[0] == ' ' || line[0] == '\t' {
		return !first
	}
	i := 0
	for i < len(line) && line[i] > ' ' && line[i] < 0x7f && line[i] != ':' {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	return i < len(line) && line[i] == ':'
}

// lineReader splits its input into lines ended by CRLF, LF or a lone CR, handing out
// long lines in pieces.
type lineReader struct {
	br  *bufio.Reader
	buf []byte
}

// next returns the next at most limit octets of the current line, without a line
// terminator, and whether they end the line. A line of exactly limit octets is returned
// whole with eol set. At the end of the input next returns io.EOF, once the last line,
// terminated or not, has been returned. The piece is valid until the next call.
func (l *lineReader) next(limit int) (piece []byte, eol bool, err error) {
	l.buf = l.buf[:0]
	for len(l.buf) < limit {
		data, err := l.br.Peek(1)
		if err != nil {
			return l.eof(err)
		}
		data, _ = l.br.Peek(l.br.Buffered())
		if room := limit - len(l.buf); len(data) > room {
			data = data[:room]
		}
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			l.buf = append(l.buf, data...)
			l.br.Discard(len(data))
			continue
		}
		l.buf = append(l.buf, data[:i]...)
		l.br.Discard(i)
		return l.buf, true, l.terminator()
	}
	// The piece is full; it ends the line if a terminator or the end follows.
	b, err := l.br.Peek(1)
	switch {
	case errors.Is(err, io.EOF):
		return l.buf, true, nil
	case err != nil:
		return nil, false, &readError{err}
	case b[0] == '\r' || b[0] == '\n':
		return l.buf, true, l.terminator()
	}
	return l.buf, false, nil
}

// eof finishes next at the end of the input: an unterminated last line is still a line.
func (l *lineReader) eof(err error) ([]byte, bool, error) {
	if !errors.Is(err, io.EOF) {
		return nil, false, &readError{err}
	}
	if len(l.buf) > 0 {
		return l.buf, true, nil
	}
	return nil, false, io.EOF
}

// terminator consumes the CRLF, LF or CR at the reader's position.
func (l *lineReader) terminator() error {
	c, err := l.br.ReadByte()
	if err != nil {
		return &readError{err}
	}
	if c == '\r' {
		if b, err := l.br.Peek(1); err == nil && b[0] == '\n' {
			l.br.Discard(1)
		} else if err != nil && !errors.Is(err, io.EOF) {
			return &readError{err}
		}
	}
	return nil
}
