// Package smtp holds the protocol pieces that mxward's SMTP server and client share:
// command and path parsing (RFC 5321 §4.1), ESMTP parameters (RFC 1870, 6152, 6531, 3461,
// 3030), replies with enhanced status codes (RFC 3463, RFC 2034) and the DATA reader that
// makes SMTP smuggling impossible.
package smtp

import (
	"errors"
	"fmt"
	"strings"
)

// Verb is an SMTP command name, upper-cased.
type Verb string

const (
	HELO     Verb = "HELO"
	EHLO     Verb = "EHLO"
	MAIL     Verb = "MAIL"
	RCPT     Verb = "RCPT"
	DATA     Verb = "DATA"
	BDAT     Verb = "BDAT"
	RSET     Verb = "RSET"
	NOOP     Verb = "NOOP"
	QUIT     Verb = "QUIT"
	VRFY     Verb = "VRFY"
	EXPN     Verb = "EXPN"
	HELP     Verb = "HELP"
	STARTTLS Verb = "STARTTLS"
	AUTH     Verb = "AUTH"
	LHLO     Verb = "LHLO"
)

var knownVerbs = map[string]Verb{
	"HELO": HELO, "EHLO": EHLO, "MAIL": MAIL, "RCPT": RCPT, "DATA": DATA, "BDAT": BDAT,
	"RSET": RSET, "NOOP": NOOP, "QUIT": QUIT, "VRFY": VRFY, "EXPN": EXPN, "HELP": HELP,
	"STARTTLS": STARTTLS, "AUTH": AUTH, "LHLO": LHLO,
}

// Command is one parsed command line (without its CRLF).
type Command struct {
	Verb Verb
	Arg  string // everything after the verb and one space, unparsed
}

// ErrUnknownCommand is returned by ParseCommand for a verb mxward does not implement.
var ErrUnknownCommand = errors.New("command not recognized")

// ErrSyntax marks parameter and argument syntax errors (reply 501 / 555).
var ErrSyntax = errors.New("syntax error")

// ParseCommand splits a command line into verb and argument. The line must not contain
// its terminating CRLF. A line with a NUL or a bare CR or LF is a syntax error: such bytes
// have no place in a command and only ever appear in injection attempts.
func ParseCommand(line string) (Command, error) {
	if strings.ContainsAny(line, "\x00\r\n") {
		return Command{}, fmt.Errorf("%w: control character in command", ErrSyntax)
	}
	verb, arg, _ := strings.Cut(line, " ")
	v, ok := knownVerbs[strings.ToUpper(verb)]
	if !ok {
		return Command{}, ErrUnknownCommand
	}
	return Command{Verb: v, Arg: arg}, nil
}

// Param is one ESMTP parameter of MAIL or RCPT (RFC 5321 §4.1.2 esmtp-param).
type Param struct {
	Key   string // upper-cased keyword
	Value string // raw value; "" when the parameter has none
	Bare  bool   // true when no "=" was given
}

// ParsePathArg parses the argument of MAIL ("FROM:<path> params") or RCPT
// ("TO:<path> params"). prefix is "FROM:" or "TO:". It returns the path without its
// angle brackets and the parameters. Per RFC 5321 §4.1.1.2 no space is allowed between
// the colon and the path; like most servers mxward tolerates one, because some widely
// deployed clients send it.
func ParsePathArg(arg, prefix string) (path string, params []Param, err error) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", nil, fmt.Errorf("%w: expected %s<address>", ErrSyntax, prefix)
	}
	rest := strings.TrimLeft(arg[len(prefix):], " ")
	if !strings.HasPrefix(rest, "<") {
		return "", nil, fmt.Errorf("%w: address must be in angle brackets", ErrSyntax)
	}
	end := closingBracket(rest)
	if end < 0 {
		return "", nil, fmt.Errorf("%w: unterminated address", ErrSyntax)
	}
	path = rest[1:end]
	// Strip a source route (RFC 5321 §4.1.2 A-d-l), which must be accepted and ignored.
	if strings.HasPrefix(path, "@") {
		i := strings.IndexByte(path, ':')
		if i < 0 {
			return "", nil, fmt.Errorf("%w: bad source route", ErrSyntax)
		}
		path = path[i+1:]
	}
	params, err = parseParams(rest[end+1:])
	if err != nil {
		return "", nil, err
	}
	return path, params, nil
}

// closingBracket finds the '>' that closes the path, skipping quoted local parts, which
// may contain '>'.
func closingBracket(s string) int {
	inQuote, esc := false, false
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case esc:
			esc = false
		case inQuote && c == '\\':
			esc = true
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '>':
			return i
		}
	}
	return -1
}

func parseParams(s string) ([]Param, error) {
	if s == "" {
		return nil, nil
	}
	if s[0] != ' ' {
		return nil, fmt.Errorf("%w: junk after address", ErrSyntax)
	}
	var params []Param
	for _, f := range strings.Split(s[1:], " ") {
		if f == "" {
			continue // tolerate doubled spaces
		}
		k, v, hasEq := strings.Cut(f, "=")
		if !isKeyword(k) {
			return nil, fmt.Errorf("%w: bad parameter %q", ErrSyntax, k)
		}
		if hasEq && !isParamValue(v) {
			return nil, fmt.Errorf("%w: bad value for %s", ErrSyntax, k)
		}
		params = append(params, Param{Key: strings.ToUpper(k), Value: v, Bare: !hasEq})
	}
	return params, nil
}

// isKeyword reports whether s is an esmtp-keyword: (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
func isKeyword(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '-') {
			return false
		}
	}
	return true
}

// isParamValue reports whether s is an esmtp-value: 1*(%d33-60 / %d62-126), and UTF-8
// (RFC 6531 allows it in some values).
func isParamValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c == '=' || c == 127 {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// DecodeXtext decodes RFC 3461 §4 xtext ("+" followed by two upper-case hex digits
// encodes a byte).
func DecodeXtext(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) {
				return "", fmt.Errorf("%w: truncated xtext escape", ErrSyntax)
			}
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("%w: bad xtext escape", ErrSyntax)
			}
			b.WriteByte(h<<4 | l)
			i += 2
		case c < 33 || c > 126 || c == '=':
			return "", fmt.Errorf("%w: bad xtext character", ErrSyntax)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// EncodeXtext encodes s as RFC 3461 xtext.
func EncodeXtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c > 126 || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
