package mtasts

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// WellKnownPath is the path of the policy on the policy host mta-sts.<domain>
// (RFC 8461 §3.2, STS-05).
const WellKnownPath = "/.well-known/mta-sts.txt"

// Publication is the MTA-STS policy a domain publishes: the text served at
// https://mta-sts.<domain>/.well-known/mta-sts.txt and the id announced in the
// _mta-sts TXT record.
//
// Both come from the same values through Publish, so the id in DNS cannot drift from
// the text served: senders fetch a policy again only when the id changes (STS-04), and a
// policy edited without a new id would stay unseen for as long as their caches hold
// the old one.
type Publication struct {
	// Policy holds the published values; its Raw is Text.
	Policy Policy
	// Text is the policy body, with CRLF line endings (RFC 8461 §3.2).
	Text string
	// ID is the policy id for the TXT record: 16 lower-case hex digits derived from
	// Text, so it changes whenever the text does (RFC 8461 §3.1).
	ID string
}

// Publish renders a policy from p's Mode, MX and MaxAge; p.Version must be empty or
// "STSv1" and p.Raw is ignored. It refuses what ParsePolicy would refuse, so that
// mxward never publishes a policy senders throw away as invalid (STS-12): an unknown
// mode, an mx pattern that is not a host name with at most a leading "*." (RFC 8461
// §4.1, see CheckPattern), no mx pattern in a mode other than none, and a max_age that
// is negative, not whole seconds, or above MaxMaxAge.
//
// Patterns are written in lower case in the order given. The text lists version, mode,
// each mx and max_age, one per line ending in CRLF, the order of the examples in RFC
// 8461 §3.2. The id is the hex form of the first 8 bytes of the SHA-256 of the text:
// 16 characters, within the 32 letters or digits RFC 8461 §3.1 allows (STS-02).
func Publish(p Policy) (*Publication, error) {
	if p.Version != "" && p.Version != "STSv1" {
		return nil, fmt.Errorf("publish MTA-STS policy: unsupported version %q", p.Version)
	}
	switch p.Mode {
	case ModeEnforce, ModeTesting, ModeNone:
	default:
		return nil, fmt.Errorf("publish MTA-STS policy: unknown mode %q (want enforce, testing or none)", p.Mode)
	}
	if p.MaxAge < 0 || p.MaxAge > MaxMaxAge {
		return nil, fmt.Errorf("publish MTA-STS policy: max_age %v is outside 0s to %v (RFC 8461 §3.2)", p.MaxAge, MaxMaxAge)
	}
	if p.MaxAge%time.Second != 0 {
		return nil, fmt.Errorf("publish MTA-STS policy: max_age %v is not a whole number of seconds", p.MaxAge)
	}
	if len(p.MX) == 0 && p.Mode != ModeNone {
		return nil, fmt.Errorf("publish MTA-STS policy: mode %s needs at least one mx pattern", p.Mode)
	}
	mx := make([]string, len(p.MX))
	for i, pat := range p.MX {
		if err := CheckPattern(pat); err != nil {
			return nil, fmt.Errorf("publish MTA-STS policy: %w", err)
		}
		mx[i] = strings.ToLower(pat)
	}

	var b strings.Builder
	b.WriteString("version: STSv1\r\n")
	b.WriteString("mode: " + string(p.Mode) + "\r\n")
	for _, pat := range mx {
		b.WriteString("mx: " + pat + "\r\n")
	}
	b.WriteString("max_age: " + strconv.FormatInt(int64(p.MaxAge/time.Second), 10) + "\r\n")
	text := b.String()
	sum := sha256.Sum256([]byte(text))
	return &Publication{
		Policy: Policy{Version: "STSv1", Mode: p.Mode, MX: mx, MaxAge: p.MaxAge, Raw: text},
		Text:   text,
		ID:     hex.EncodeToString(sum[:8]),
	}, nil
}

// Record returns the value of the _mta-sts TXT record announcing the publication,
// "v=STSv1; id=<ID>" (RFC 8461 §3.1).
func (p *Publication) Record() string {
	return "v=STSv1; id=" + p.ID
}

// ErrInvalidPattern is matched by every error CheckPattern returns.
var ErrInvalidPattern = errors.New("invalid mx pattern")

// CheckPattern reports why pat is not an mx pattern a policy may carry, or nil if it is
// one. The rules are those ParsePolicy applies (RFC 8461 §3.2, §4.1, STS-11, STS-17): a
// host name of dot-separated labels of ASCII letters, digits and hyphens (international
// names as A-labels), each 1 to 63 characters and neither starting nor ending with a
// hyphen, 253 characters at most, no trailing dot; optionally preceded by "*." standing
// for exactly one whole left-most label. A wildcard anywhere else ("mx*.example.com",
// "a.*.example.com", "*") matches nothing any sender would agree on, so it is refused
// with its own message. Case does not matter.
func CheckPattern(pat string) error {
	host, wild := strings.CutPrefix(pat, "*.")
	switch {
	case pat == "":
		return fmt.Errorf("%w: empty", ErrInvalidPattern)
	case strings.Contains(host, "*"):
		return fmt.Errorf("%w %q: a wildcard may only be the whole left-most label, as in \"*.example.com\"", ErrInvalidPattern, pat)
	case strings.HasSuffix(host, "."):
		return fmt.Errorf("%w %q: no trailing dot", ErrInvalidPattern, pat)
	case len(host) > 253:
		return fmt.Errorf("%w %q: longer than 253 characters", ErrInvalidPattern, pat)
	case host == "" && wild:
		return fmt.Errorf("%w %q: a wildcard needs a domain after \"*.\"", ErrInvalidPattern, pat)
	}
	for label := range strings.SplitSeq(host, ".") {
		switch {
		case label == "":
			return fmt.Errorf("%w %q: empty label", ErrInvalidPattern, pat)
		case len(label) > 63:
			return fmt.Errorf("%w %q: label longer than 63 characters", ErrInvalidPattern, pat)
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Errorf("%w %q: label %q starts or ends with a hyphen", ErrInvalidPattern, pat, label)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlpha(c) && !isDigit(c) && c != '-' {
				return fmt.Errorf("%w %q: character %q is not a letter, digit or hyphen (write international names as A-labels)", ErrInvalidPattern, pat, c)
			}
		}
	}
	return nil
}
