package smtp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits on what the reply reader accepts. RFC 5321 §4.5.3.1.5 allows reply lines of 512
// octets; the limits are generous, but a hostile or broken server cannot make the client
// grow memory without bound.
const (
	MaxReplyLine  = 4096 // octets per line, line end included; also the reader's buffer size
	MaxReplyLines = 100
)

// ErrMalformedReply is wrapped by every error about a reply that does not follow RFC 5321
// §4.2. After one the client and server are out of step, so the connection is dropped.
var ErrMalformedReply = errors.New("malformed reply")

// ReadReply reads one possibly multi-line reply (RFC 5321 §4.2.1), for the SMTP and LMTP
// clients. A line longer than MaxReplyLine octets is an error, whatever br's buffer size. An enhanced status code (RFC 3463) is
// taken from the start of the text whenever one is there whose class matches the reply
// code, whether or not the server advertised ENHANCEDSTATUSCODES: being lenient here
// costs nothing and gives the delivery record a better code. The text is cleaned of
// control characters and invalid UTF-8, since it ends up in logs and DSNs.
//
// It returns io.EOF when the connection ended cleanly before the reply began,
// io.ErrUnexpectedEOF when it ended inside one, and never panics on any input.
func ReadReply(br *bufio.Reader) (Reply, error) {
	var r Reply
	for n := 0; ; n++ {
		if n == MaxReplyLines {
			return Reply{}, fmt.Errorf("%w: more than %d lines", ErrMalformedReply, MaxReplyLines)
		}
		line, err := readLine(br, n == 0)
		if err != nil {
			return Reply{}, err
		}
		code, last, text, err := parseReplyLine(line)
		if err != nil {
			return Reply{}, err
		}
		if n == 0 {
			r.Code = code
		} else if code != r.Code {
			return Reply{}, fmt.Errorf("%w: code %03d in a reply that began with %03d", ErrMalformedReply, code, r.Code)
		}
		r.Lines = append(r.Lines, text)
		if last {
			break
		}
	}
	// With ENHANCEDSTATUSCODES every line repeats the code (RFC 2034 §4); it is taken from
	// the first line and removed from the others where they agree.
	if enh, rest, ok := cutEnhanced(r.Lines[0], r.Code); ok {
		r.Enhanced = enh
		r.Lines[0] = rest
		for i := 1; i < len(r.Lines); i++ {
			if e, rest, ok := cutEnhanced(r.Lines[i], r.Code); ok && e == enh {
				r.Lines[i] = rest
			}
		}
	}
	return r, nil
}

// readLine reads one line up to LF and strips the line end. A bare LF is accepted as a
// line end: it cannot cause ambiguity in replies, and some servers send it. first says
// whether this is the reply's first line, where a clean end of input is io.EOF.
func readLine(br *bufio.Reader, first bool) (string, error) {
	var line []byte
	for {
		b, err := br.ReadSlice('\n')
		if len(line)+len(b) > MaxReplyLine {
			return "", fmt.Errorf("%w: line longer than %d octets", ErrMalformedReply, MaxReplyLine)
		}
		line = append(line, b...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && first && len(line) == 0:
			return "", io.EOF
		case err == io.EOF:
			return "", io.ErrUnexpectedEOF
		case err != nil:
			return "", err
		}
		break
	}
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return string(line), nil
}

// parseReplyLine parses "250-text", "250 text" or "250".
func parseReplyLine(line string) (code int, last bool, text string, err error) {
	if len(line) < 3 {
		return 0, false, "", fmt.Errorf("%w: short line %q", ErrMalformedReply, cleanText(line))
	}
	c0, c1, c2 := line[0], line[1], line[2]
	if c0 < '2' || c0 > '5' || c1 < '0' || c1 > '5' || c2 < '0' || c2 > '9' {
		return 0, false, "", fmt.Errorf("%w: bad code in %q", ErrMalformedReply, cleanText(line))
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
		return 0, false, "", fmt.Errorf("%w: bad separator in %q", ErrMalformedReply, cleanText(line))
	}
	return code, last, cleanText(line[4:]), nil
}

// cleanText makes reply text safe to log and to quote in a DSN: valid UTF-8 without
// control characters.
func cleanText(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f || r == '\uFFFD':
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// cutEnhanced splits an RFC 3463 status code ("5.1.1") off the front of text. Its class
// must match the first digit of the reply code, and only 2, 4 and 5 are classes.
func cutEnhanced(text string, code int) (enh, rest string, ok bool) {
	end := strings.IndexByte(text, ' ')
	if end < 0 {
		end = len(text)
	}
	cand := text[:end]
	class, rest, ok1 := strings.Cut(cand, ".")
	subject, detail, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || len(class) != 1 || class[0] != byte('0'+code/100) || class[0] == '3' {
		return "", text, false
	}
	if !digits(subject, 3) || !digits(detail, 3) {
		return "", text, false
	}
	return cand, strings.TrimLeft(text[end:], " "), true
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

// Text is the reply's text on one line: its non-empty lines joined by spaces.
func (r Reply) Text() string {
	var parts []string
	for _, l := range r.Lines {
		if l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

// ValidNotify checks an RFC 3461 §4.1 NOTIFY value: NEVER, or a comma list of SUCCESS,
// FAILURE and DELAY without repeats.
func ValidNotify(v string) bool {
	if v == "NEVER" {
		return true
	}
	seen := map[string]bool{}
	for _, f := range strings.Split(v, ",") {
		if f != "SUCCESS" && f != "FAILURE" && f != "DELAY" || seen[f] {
			return false
		}
		seen[f] = true
	}
	return true
}
