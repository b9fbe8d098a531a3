package mtasts

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Mode is a policy's mode (RFC 8461 §5).
type Mode string

const (
	// ModeEnforce: never deliver to an MX host that fails validation (STS-20).
	ModeEnforce Mode = "enforce"
	// ModeTesting: deliver anyway, report failures through TLS-RPT (STS-23).
	ModeTesting Mode = "testing"
	// ModeNone: the domain has no active policy; this is how a domain leaves
	// MTA-STS (STS-24, RFC 8461 §8.3).
	ModeNone Mode = "none"
)

// MaxMaxAge is the largest max_age a policy may carry, about one year
// (RFC 8461 §3.2, STS-11).
const MaxMaxAge = 31557600 * time.Second

// ErrInvalidPolicy is matched by every error ParsePolicy returns. For TLS-RPT such a
// failure is "sts-policy-invalid" (STS-12, RFC 8460 §4.3.2.2).
var ErrInvalidPolicy = errors.New("invalid MTA-STS policy")

// Policy is a parsed MTA-STS policy (RFC 8461 §3.2).
type Policy struct {
	Version string        `json:"version"` // always "STSv1"
	Mode    Mode          `json:"mode"`
	MX      []string      `json:"mx"`      // patterns in lower case, in policy order
	MaxAge  time.Duration `json:"max_age"` // whole seconds, at most MaxMaxAge
	// Raw is the policy text as served, kept so that operators can see exactly what
	// the domain published; the cache re-parses it when loading.
	Raw string `json:"raw"`
}

// ParsePolicy parses a policy body by RFC 8461 §3.2 (STS-11, STS-12).
//
// Lines end in LF or CRLF. Each line is "key:" followed by optional whitespace and a
// value; whitespace at the end of a line is dropped. Empty lines are skipped: the ABNF
// only allows one at the end, but an extra blank line changes no field and rejecting it
// would only lose protection. Fields may come in any order: the RFC requires "version"
// but not that it comes first. Unknown keys are ignored; for a repeated key other than
// "mx" the first value wins. The body must be UTF-8 without control characters other
// than tab, CR before LF, and LF.
func ParsePolicy(body []byte) (*Policy, error) {
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrInvalidPolicy)
	}
	p := &Policy{Raw: string(body)}
	seen := map[string]bool{}
	var maxAge string
	for n, line := range bytes.Split(body, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			continue
		}
		for _, c := range line {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return nil, fmt.Errorf("%w: line %d: control character %#x", ErrInvalidPolicy, n+1, c)
			}
		}
		key, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, fmt.Errorf("%w: line %d: no ':' after the key", ErrInvalidPolicy, n+1)
		}
		k := string(key)
		if !validFieldName(k) {
			return nil, fmt.Errorf("%w: line %d: invalid key %q", ErrInvalidPolicy, n+1, k)
		}
		v := strings.Trim(string(value), " \t")
		if k == "mx" {
			pat := strings.ToLower(v)
			if !validPattern(pat) {
				return nil, fmt.Errorf("%w: line %d: invalid mx pattern %q", ErrInvalidPolicy, n+1, v)
			}
			p.MX = append(p.MX, pat)
			continue
		}
		if seen[k] {
			continue // first value wins (STS-11)
		}
		seen[k] = true
		switch k {
		case "version":
			p.Version = v
		case "mode":
			p.Mode = Mode(v)
		case "max_age":
			maxAge = v
		}
	}
	if p.Version != "STSv1" {
		if !seen["version"] {
			return nil, fmt.Errorf("%w: no version field", ErrInvalidPolicy)
		}
		return nil, fmt.Errorf("%w: unsupported version %q", ErrInvalidPolicy, p.Version)
	}
	switch p.Mode {
	case ModeEnforce, ModeTesting, ModeNone:
	case "":
		return nil, fmt.Errorf("%w: no mode field", ErrInvalidPolicy)
	default:
		return nil, fmt.Errorf("%w: unknown mode %q", ErrInvalidPolicy, p.Mode)
	}
	if !seen["max_age"] {
		return nil, fmt.Errorf("%w: no max_age field", ErrInvalidPolicy)
	}
	age, err := parseMaxAge(maxAge)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPolicy, err)
	}
	p.MaxAge = age
	if len(p.MX) == 0 && p.Mode != ModeNone {
		return nil, fmt.Errorf("%w: mode %s needs at least one mx pattern", ErrInvalidPolicy, p.Mode)
	}
	return p, nil
}

// parseMaxAge reads max_age: 1 to 10 digits, at most MaxMaxAge (RFC 8461 §3.2).
func parseMaxAge(s string) (time.Duration, error) {
	if len(s) == 0 || len(s) > 10 {
		return 0, fmt.Errorf("max_age %q: want 1 to 10 digits", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("max_age %q: not a number of seconds", s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("max_age %q: %w", s, err)
	}
	if d := time.Duration(n) * time.Second; d <= MaxMaxAge {
		return d, nil
	}
	return 0, fmt.Errorf("max_age %d exceeds %d seconds", n, int64(MaxMaxAge/time.Second))
}

// validFieldName reports whether k is a field name: ALPHA or DIGIT, then up to 31
// ALPHA / DIGIT / "_" / "-" / "." (sts-policy-ext-name, RFC 8461 §3.2; the TXT
// record's sts-ext-name in §3.1 is the same). Names are case-sensitive: "Mode" is an
// extension, not the mode.
func validFieldName(k string) bool {
	if len(k) == 0 || len(k) > 32 || !isAlpha(k[0]) && !isDigit(k[0]) {
		return false
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if !isAlpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// validPattern reports whether p (lower case) is an mx pattern: an ASCII host name in
// the RFC 5321 §4.1.2 Domain syntax, optionally preceded by one "*." that stands for
// exactly one label (RFC 8461 §3.2, §4.1). International names must be A-labels, so
// anything outside letters, digits and hyphens is refused. A trailing dot is refused
// too: the Domain syntax has none.
func validPattern(p string) bool {
	p, _ = strings.CutPrefix(p, "*.")
	return validHostname(p)
}

// validHostname reports whether h is a dot-separated list of LDH labels of 1 to 63
// characters, neither starting nor ending with a hyphen, 253 characters at most.
func validHostname(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !isAlpha(c) && !isDigit(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// Matches reports whether mxHost, the MX host name as written in the MX record (or the
// domain itself for an implicit MX, decision 3), matches one of the policy's patterns
// (STS-17, RFC 8461 §4.1). Matching ignores case and a trailing dot. A "*." pattern
// covers exactly one whole left-most label: "*.example.com" matches
// "mx.example.com" but neither "example.com" nor "a.b.example.com".
func (p *Policy) Matches(mxHost string) bool {
	host := strings.ToLower(strings.TrimSuffix(mxHost, "."))
	if host == "" {
		return false
	}
	for _, pat := range p.MX {
		pat = strings.ToLower(pat)
		if suffix, ok := strings.CutPrefix(pat, "*"); ok && strings.HasPrefix(suffix, ".") {
			label, ok := strings.CutSuffix(host, suffix)
			if ok && label != "" && !strings.Contains(label, ".") {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}
