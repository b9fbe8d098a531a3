package dkim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Canonicalization is a header or body canonicalization algorithm (RFC 6376 §3.4).
type Canonicalization string

const (
	// Simple tolerates almost no change (§3.4.1, §3.4.3).
	Simple Canonicalization = "simple"
	// Relaxed tolerates the changes common in transit: header case, folding and white
	// space (§3.4.2, §3.4.4). It is the default, because simple signatures are broken
	// by relays that refold headers.
	Relaxed Canonicalization = "relaxed"
)

func parseCanonicalization(s string) (Canonicalization, error) {
	switch c := Canonicalization(strings.ToLower(s)); c {
	case Simple, Relaxed:
		return c, nil
	}
	return "", fmt.Errorf("unknown canonicalization %q", s)
}

// maxHeaderBytes bounds the header section read into memory. The message size limit
// bounds the body, which is streamed; the header is kept whole because fields are
// selected from the bottom up (§5.4.2).
const maxHeaderBytes = 1 << 20

// ErrMalformed is wrapped by the errors for messages that cannot be signed as they
// are. Such a message can still be sent unsigned.
var ErrMalformed = errors.New("dkim: message cannot be signed")

var (
	// ErrHeaderTooLarge is returned for a message whose header section exceeds 1 MiB.
	ErrHeaderTooLarge = fmt.Errorf("%w: header section larger than 1 MiB", ErrMalformed)
	// ErrLeadingWhitespace is returned for a message whose first line starts with white
	// space: a field put in front of it would swallow that line as a continuation.
	ErrLeadingWhitespace = fmt.Errorf("%w: first line starts with white space", ErrMalformed)
)

// field is one header field as it goes on the wire: raw holds the name, the colon,
// the value with its folding and the final CRLF.
type field struct {
	name string // as written, without white space before the colon
	raw  []byte
}

// value returns the field's value: everything after the colon, folding included,
// without the final CRLF.
func (f field) value() []byte {
	i := bytes.IndexByte(f.raw, ':')
	if i < 0 {
		return nil
	}
	return bytes.TrimSuffix(f.raw[i+1:], []byte("\r\n"))
}

// lineReader reads lines the way the SMTP client puts them on the wire: CRLF, a bare
// CR and a bare LF all end a line (smtpclient sends each as CRLF).
type lineReader struct {
	r *bufio.Reader
}

// line appends the next line, without its end, to buf. It returns io.EOF only when no
// byte was read; an unterminated last line is returned as a line. Reading byte by byte
// is fast enough for the header section, the only part read this way.
func (lr *lineReader) line(buf []byte, limit int) ([]byte, error) {
	start := len(buf)
	for {
		c, err := lr.r.ReadByte()
		if err == io.EOF && len(buf) > start {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		switch c {
		case '\n':
			return buf, nil
		case '\r':
			if next, err := lr.r.Peek(1); err == nil && next[0] == '\n' {
				lr.r.Discard(1)
			}
			return buf, nil
		}
		buf = append(buf, c)
		if len(buf)-start > limit {
			return buf, ErrHeaderTooLarge
		}
	}
}

// readHeader reads the header section: fields up to the empty line that ends it, or
// to the end of the message. Continuation lines (starting with white space) belong to
// the field before them; a continuation line before any field, or a line without a
// colon and a valid name before it, is kept as a nameless field so that it is never selected but the body still
// starts in the right place.
func readHeader(lr *lineReader) ([]field, error) {
	var (
		fields []field
		total  int
		buf    []byte
	)
	for {
		var err error
		buf, err = lr.line(buf[:0], maxHeaderBytes)
		if err == io.EOF {
			return fields, nil
		}
		if err != nil {
			return nil, err
		}
		total += len(buf) + 2
		if total > maxHeaderBytes {
			return nil, ErrHeaderTooLarge
		}
		if len(buf) == 0 {
			return fields, nil
		}
		if isWSP(buf[0]) && len(fields) > 0 {
			f := &fields[len(fields)-1]
			f.raw = append(append(f.raw, buf...), '\r', '\n')
			continue
		}
		raw := append(append(make([]byte, 0, len(buf)+2), buf...), '\r', '\n')
		name := ""
		if i := bytes.IndexByte(buf, ':'); i > 0 {
			if n := strings.TrimRight(string(buf[:i]), " \t"); validFieldName(n) {
				name = n
			}
		}
		fields = append(fields, field{name: name, raw: raw})
	}
}

// canonicalHeader appends field f in canonical form c to dst (RFC 6376 §3.4.1,
// §3.4.2). Relaxed: the name lower-cased, the value unfolded, runs of white space
// made one SP, white space around the colon and at the end removed.
func canonicalHeader(dst []byte, f field, c Canonicalization) []byte {
	if c == Simple {
		return append(dst, f.raw...)
	}
	dst = append(dst, strings.ToLower(f.name)...)
	dst = append(dst, ':')
	return append(relaxedValue(dst, f.value()), '\r', '\n')
}

// relaxedValue appends v unfolded, with white space runs as one SP and none at the
// ends.
func relaxedValue(dst, v []byte) []byte {
	space := false
	started := false
	for _, c := range v {
		switch c {
		case '\r', '\n':
			continue // unfolding: delete the CRLF, keep the white space after it
		case ' ', '\t':
			space = true
			continue
		}
		if space && started {
			dst = append(dst, ' ')
		}
		space = false
		started = true
		dst = append(dst, c)
	}
	return dst
}

// bodyCanon computes the canonical form of a body as it is written to it, without
// keeping it (RFC 6376 §3.4.3, §3.4.4). Line ends are recognised the way the SMTP
// client sends them: CRLF, bare CR and bare LF each end a line. Empty lines are held
// back until a line with content follows, since trailing ones are not part of the
// canonical body.
type bodyCanon struct {
	w       io.Writer
	relaxed bool

	cr       bool // a CR was seen and its line end not yet counted
	space    bool // relaxed: white space seen in the line and not yet written
	content  bool // any content in the body so far
	pending  int  // line ends not yet written
	out      []byte
	writeErr error
}

func (b *bodyCanon) Write(p []byte) (int, error) {
	out := b.out[:0]
	for _, c := range p {
		if b.cr {
			b.cr = false
			b.endLine()
			if c == '\n' {
				continue
			}
		}
		switch c {
		case '\r':
			b.cr = true
			continue
		case '\n':
			b.endLine()
			continue
		case ' ', '\t':
			if b.relaxed {
				b.space = true
				continue
			}
		}
		for ; b.pending > 0; b.pending-- {
			out = append(out, '\r', '\n')
		}
		if b.space {
			out = append(out, ' ')
			b.space = false
		}
		out = append(out, c)
		b.content = true
	}
	b.out = out
	if _, err := b.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (b *bodyCanon) endLine() {
	b.space = false // relaxed: white space at the end of a line is removed
	b.pending++
}

// Close writes the end of the canonical body: the last line's CRLF, or for simple an
// empty body's single CRLF; a relaxed empty body stays empty (§3.4.3, §3.4.4).
func (b *bodyCanon) Close() error {
	if b.content || !b.relaxed {
		_, err := b.w.Write([]byte("\r\n"))
		return err
	}
	return nil
}
