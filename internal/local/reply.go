package local

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits on what the reply parser accepts. RFC 5321 allows reply lines of 512 octets;
// the limits are generous but keep a misbehaving server from growing memory without bound.
const (
	maxReplyLine  = 4000 // octets per line, CRLF included; less than the reader's buffer
	maxReplyLines = 100
)

// errMalformed is wrapped by every error about a reply that does not follow RFC 5321.
var errMalformed = errors.New("malformed reply")

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
// break the syntax, and never panics on any input. br's buffer must be larger than
// maxReplyLine.
func readReply(br *bufio.Reader) (reply, error) {
	var rep reply
	for n := 0; ; n++ {
		if n == maxReplyLines {
			return reply{}, fmt.Errorf("%w: more than %d lines", errMalformed, maxReplyLines)
		}
		line, err := readLine(br)
		if err != nil {
			if err == io.EOF && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return reply{}, err
		}
		code, last, text, err := parseReplyLine(line)
		if err != nil {
			return reply{}, err
		}
		if n == 0 {
			rep.code = code
		} else if code != rep.code {
			return reply{}, fmt.Errorf("%w: code %d in a reply that began with %d", errMalformed, code, rep.code)
		}
		rep.lines = append(rep.lines, text)
		if last {
			break
		}
	}
	// The enhanced code is taken from the first line; with ENHANCEDSTATUSCODES every line
	// repeats it, so it is removed from the others too.
	if enh, rest, ok := cutEnhanced(rep.lines[0], rep.code); ok {
		rep.enhanced = enh
		rep.lines[0] = rest
		for i := 1; i < len(rep.lines); i++ {
			if e, rest, ok := cutEnhanced(rep.lines[i], rep.code); ok && e == enh {
				rep.lines[i] = rest
			}
		}
	}
	return rep, nil
}

// readLine reads one line up to LF, at most maxReplyLine octets, and strips the line end.
// A missing final LF at the end of the stream is an error: the line may be incomplete.
func readLine(br *bufio.Reader) (string, error) {
	b, err := br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull || len(b) > maxReplyLine:
		return "", fmt.Errorf("%w: line longer than %d octets", errMalformed, maxReplyLine)
	case err == io.EOF && len(b) > 0:
		return "", io.ErrUnexpectedEOF
	case err != nil:
		return "", err
	}
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return string(b), nil
}

// parseReplyLine parses "250-text", "250 text" or "250".
func parseReplyLine(line string) (code int, last bool, text string, err error) {
	if len(line) < 3 {
		return 0, false, "", fmt.Errorf("%w: short line %q", errMalformed, line)
	}
	c0, c1, c2 := line[0], line[1], line[2]
	if c0 < '2' || c0 > '5' || c1 < '0' || c1 > '5' || c2 < '0' || c2 > '9' {
		return 0, false, "", fmt.Errorf("%w: bad code in %q", errMalformed, line)
	}
	code = int(c0-'0')*100 + int(c1-'0')*10 + int(c2-'0')
	if len(line) == 3 {
		return code, true, "", nil
	}
	switch line[3] {
	case ' ':
		last = true
	case '-':
	default:
		return 0, false, "", fmt.Errorf("%w: bad separator in %q", errMalformed, line)
	}
	return code, last, cleanText(line[4:]), nil
}

// cleanText makes reply text safe to log and to quote in a DSN: valid UTF-8 without
// control characters.
func cleanText(s string) string {
	if !hasControl(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			if r == '\t' {
				return ' '
			}
			return '?'
		}
		return r
	}, s)
}

// cutEnhanced splits an RFC 3463 status code ("5.1.1") off the front of text. The class
// must match the reply code's first digit.
func cutEnhanced(text string, code int) (enh, rest string, ok bool) {
	end := strings.IndexByte(text, ' ')
	if end < 0 {
		end = len(text)
	}
	cand := text[:end]
	class, subject, detail, found := cut3(cand)
	if !found || len(class) != 1 || class[0] != byte('0'+code/100) || (class[0] != '2' && class[0] != '4' && class[0] != '5') {
		return "", text, false
	}
	if !digits(subject, 3) || !digits(detail, 3) {
		return "", text, false
	}
	return cand, strings.TrimLeft(text[end:], " "), true
}

func cut3(s string) (a, b, c string, ok bool) {
	a, rest, ok1 := strings.Cut(s, ".")
	b, c, ok2 := strings.Cut(rest, ".")
	return a, b, c, ok1 && ok2
}

// digits reports whether s is 1 to max ASCII digits.
func digits(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
