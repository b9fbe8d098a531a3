package policylist

import (
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// Mode says whether failing an entry's requirement stops delivery (LIST-03).
type Mode string

const (
	// ModeEnforce: a host or certificate that does not match defers the message.
	ModeEnforce Mode = "enforce"
	// ModeTesting: a mismatch is logged and reported, and the message is delivered.
	ModeTesting Mode = "testing"
)

// Minimum security levels an entry may demand, in the vocabulary of
// smtp_tls_policy_maps (reference semantics §9.1). Entries from the EFF list are always
// LevelSecure: the certificate name is checked against the list's patterns, never
// against a name taken from DNS (LIST-03).
const (
	LevelEncrypt = "encrypt" // TLS required, any certificate
	LevelVerify  = "verify"  // Web PKI chain, name may come from (unauthenticated) DNS
	LevelSecure  = "secure"  // Web PKI chain, name must match the entry's patterns
)

// Entry is the policy a list holds for one domain.
type Entry struct {
	// Domain is the next-hop domain the entry is for, in lower-case A-labels.
	Domain string
	// Mode is enforce or testing.
	Mode Mode
	// MXs are the patterns an MX host and the server's certificate must match: full
	// names, or ".suffix" for any name below suffix (decision 5).
	MXs []string
	// MinTLS is the minimum security level: LevelEncrypt, LevelVerify or LevelSecure.
	MinTLS string
	// MinVersion is the lowest TLS protocol version to accept; TLS 1.2 for the EFF list
	// (LIST-03).
	MinVersion uint16
	// Alias names the policy alias the entry was taken from, "" if none; for the log.
	Alias string
}

// MatchesMX reports whether host, an MX host name as written in the MX record (or the
// domain itself for an implicit MX), matches one of the entry's patterns. A pattern
// ".example.net" matches any name ending in ".example.net" at any depth, and not
// "example.net" itself (decision 5, LIST-02); any other pattern matches only the same
// name. Comparison ignores case and a trailing dot; U-labels are compared as A-labels.
func (e Entry) MatchesMX(host string) bool {
	h, err := normalizeName(host)
	if err != nil || validateName(h) != nil {
		return false // "", "..example.net" and the like are no host names
	}
	for _, p := range e.MXs {
		if matchPattern(p, h) {
			return true
		}
	}
	return false
}

// matchPattern matches a normalized host against a normalized pattern.
func matchPattern(pattern, host string) bool {
	if strings.HasPrefix(pattern, ".") {
		return len(host) > len(pattern) && strings.HasSuffix(host, pattern)
	}
	return host == pattern
}

// Enforced reports whether a failure of the entry's requirement must stop delivery.
func (e Entry) Enforced() bool { return e.Mode == ModeEnforce }

// Policy renders the entry's requirement as a smtp_tls_policy_maps value, the form the
// EFF's generator wrote for Postfix (LIST-03): "secure match=mx.example.com:.example.net".
// Its match semantics, ".suffix" at any depth, are the ones this package uses.
func (e Entry) Policy() string {
	level := e.MinTLS
	if level == "" {
		level = LevelSecure
	}
	if level == LevelEncrypt || len(e.MXs) == 0 {
		return level
	}
	return level + " match=" + strings.Join(e.MXs, ":")
}

// List is one static policy list. It is immutable after parsing; its methods are safe
// for concurrent use. A nil *List is an empty list that never expires.
type List struct {
	// Version is the format version, "0.1" for the EFF list and "mxward" for the
	// operator's own file.
	Version string
	// Author is the list's author, as it says.
	Author string
	// Timestamp is when the list was generated; Install refuses to replace a list with
	// an older one (LIST-04). Zero for a list without one.
	Timestamp time.Time
	// Expires is when the list stops applying; zero means never (the operator's file).
	Expires time.Time

	entries map[string]Entry
	// raw is the document the list was parsed from, kept so that Install stores the
	// bytes as published (a detached signature covers those bytes, not a re-encoding).
	raw []byte
}

// ErrExpired is matched, with errors.Is, by the error a list returns after its expires
// time (LIST-04). The caller logs it at error level and proceeds without the list.
var ErrExpired = errors.New("static TLS policy list has expired")

// ExpiredError says when a list expired. It satisfies errors.Is(err, ErrExpired).
type ExpiredError struct {
	Expires time.Time // the list's expires time
	Now     time.Time // the time it was consulted
	Author  string
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("static TLS policy list by %q expired at %s (now %s) and no longer applies; install a fresh list",
		e.Author, e.Expires.UTC().Format(time.RFC3339), e.Now.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrExpired) true.
func (e *ExpiredError) Is(target error) bool { return target == ErrExpired }

// Check returns an *ExpiredError if the list has expired at now, else nil. A list
// expires at the instant of its expires time.
func (l *List) Check(now time.Time) error {
	if l == nil || l.Expires.IsZero() || now.Before(l.Expires) {
		return nil
	}
	return &ExpiredError{Expires: l.Expires, Now: now, Author: l.Author}
}

// Lookup returns the entry for the next-hop domain, matched exactly (LIST-01). If the
// list has expired at now it returns no entry and an *ExpiredError (LIST-04): the caller
// logs the error, which alerts the operator, and proceeds as if the domain were not
// listed. A domain that cannot be a host name is simply not listed.
func (l *List) Lookup(domain string, now time.Time) (Entry, bool, error) {
	if err := l.Check(now); err != nil {
		return Entry{}, false, err
	}
	if l == nil {
		return Entry{}, false, nil
	}
	d, err := normalizeName(domain)
	if err != nil {
		return Entry{}, false, nil
	}
	e, ok := l.entries[d]
	if !ok {
		return Entry{}, false, nil
	}
	e.MXs = append([]string(nil), e.MXs...) // the caller may not alter the list
	return e, true, nil
}

// Len returns the number of domains on the list.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return len(l.entries)
}

// Domains returns the listed domains, sorted.
func (l *List) Domains() []string {
	if l == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(l.entries))
}

// normalizeName lower-cases a name, drops one trailing dot and turns U-labels into
// A-labels, so that list keys and looked-up names compare byte for byte.
func normalizeName(s string) (string, error) {
	s = strings.TrimSuffix(s, ".")
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			a, err := idna.Lookup.ToASCII(s)
			if err != nil {
				return "", fmt.Errorf("converting %q to A-labels: %w", s, err)
			}
			return strings.ToLower(a), nil
		}
	}
	return strings.ToLower(s), nil
}

// validateName checks a normalized domain or MX name: 1 to 253 octets of LDH labels of
// 1 to 63 octets (RFC 1035 §2.3.4, RFC 5890 §2.3.1); underscores are tolerated, as
// some operators use them in host names.
func validateName(s string) error {
	if s == "" {
		return errors.New("empty name")
	}
	if len(s) > 253 {
		return fmt.Errorf("name of %d octets exceeds 253", len(s))
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return fmt.Errorf("empty label in %q", s)
		}
		if len(label) > 63 {
			return fmt.Errorf("label of %d octets in %q exceeds 63", len(label), s)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q in %q starts or ends with a hyphen", label, s)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("character %q in %q is not allowed in a host name", c, s)
			}
		}
	}
	return nil
}

// parseDomain normalizes and validates a list key (an exact domain, LIST-01).
func parseDomain(s string) (string, error) {
	d, err := normalizeName(s)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(d, ".") {
		return "", fmt.Errorf("domain %q: domains are matched exactly and cannot be suffixes", s)
	}
	if err := validateName(d); err != nil {
		return "", fmt.Errorf("domain %q: %w", s, err)
	}
	return d, nil
}

// parsePattern normalizes and validates an MX pattern: a name, or a ".suffix".
func parsePattern(s string) (string, error) {
	suffix := strings.HasPrefix(s, ".")
	p, err := normalizeName(strings.TrimPrefix(s, "."))
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(p, "*") {
		return "", fmt.Errorf("MX pattern %q: write a suffix as %q, not a wildcard", s, strings.TrimPrefix(p, "*"))
	}
	if err := validateName(p); err != nil {
		return "", fmt.Errorf("MX pattern %q: %w", s, err)
	}
	if suffix {
		p = "." + p
	}
	return p, nil
}

// parseMXs validates a pattern list: at least one pattern, each well formed, duplicates
// dropped.
func parseMXs(mxs []string) ([]string, error) {
	if len(mxs) == 0 {
		return nil, errors.New("no MX patterns")
	}
	out := make([]string, 0, len(mxs))
	seen := make(map[string]bool, len(mxs))
	for _, m := range mxs {
		p, err := parsePattern(m)
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// parseMode parses a mode word.
func parseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeEnforce, ModeTesting:
		return m, nil
	}
	return "", fmt.Errorf("mode %q: want %q or %q", s, ModeEnforce, ModeTesting)
}

// defaultMinVersion is TLS 1.2, the minimum the EFF list demanded (LIST-03).
const defaultMinVersion = tls.VersionTLS12
